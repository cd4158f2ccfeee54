//! Parsers for ncu's CSV pages (`ncu --import X.ncu-rep --csv --page details|raw`).
//!
//! - The **details** page is long: one row per (launch, section, metric) plus rule
//!   rows (`Rule Name`, `Rule Type`, `Estimated Speedup`). Metric rows are keyed by
//!   (section display name, metric label): labels repeat across sections.
//! - The **raw** page is wide: one column per metric ID, a units row under the
//!   header, one row per launch.
//!
//! Columns are found by header name (they differ between ncu versions), lines
//! starting with `==` (`==PROF==`, `==WARNING==`) and anything before the header
//! are skipped, and every error names the file and the line.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::units::{display_tolerance, normalise, parse_number};

/// Which ncu CSV page a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Details,
    Raw,
}

/// One metric value as printed, plus its normalised number.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// The cell as printed.
    pub text: String,
    /// The unit as printed.
    pub unit: String,
    /// Value in the base unit (`ns`, `byte`, `hz`, `…/s`), None when not numeric or `n/a`.
    pub value: Option<f64>,
    /// Base unit of `value`.
    pub base_unit: String,
    /// How far the printed (rounded) value may sit from the exact one, in the base unit.
    pub tolerance: f64,
}

impl Metric {
    fn new(text: &str, unit: &str) -> Self {
        let parsed = parse_number(text);
        let (value, base_unit) = match parsed {
            Some(v) => {
                let (v, u) = normalise(v, unit);
                (Some(v), u)
            }
            None => (None, normalise(1.0, unit).1),
        };
        let tolerance = if parsed.is_some() {
            display_tolerance(text, unit)
        } else {
            0.0
        };
        Metric {
            text: text.trim().to_string(),
            unit: unit.trim().to_string(),
            value,
            base_unit,
            tolerance,
        }
    }
}

/// One rule-engine result from the details page.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RuleRow {
    /// Section identifier, e.g. `WarpStateStats`.
    pub section: String,
    /// Rule name, e.g. `CPIStall`.
    pub rule: String,
    /// `OPT`, `WRN` or `INF`.
    pub kind: String,
    pub description: String,
    /// `global`, `local` or empty.
    pub speedup_type: String,
    /// NCU's estimated speedup in percent, when it gives one.
    pub speedup_pct: Option<f64>,
}

/// One profiled launch (one `ID`) as read from one or more pages.
#[derive(Debug, Clone, Default)]
pub struct LaunchData {
    pub id: u64,
    pub kernel_name: String,
    /// Identification columns (`Block Size`, `Grid Size`, `Device`, `CC`, NVTX columns, …).
    pub ident: BTreeMap<String, String>,
    /// Details page metrics keyed by (section display name, metric label).
    pub details: BTreeMap<(String, String), Metric>,
    /// Raw page metrics keyed by metric ID.
    pub raw: BTreeMap<String, Metric>,
    pub rules: Vec<RuleRow>,
    /// `file:line` where this launch first appears, per page.
    pub origin: Vec<String>,
}

/// A parsed page: launches by ID.
#[derive(Debug, Clone)]
pub struct Page {
    pub path: PathBuf,
    pub kind: PageKind,
    pub launches: BTreeMap<u64, LaunchData>,
}

/// Columns that identify a launch rather than hold a metric.
const IDENT_COLUMNS: &[&str] = &[
    "ID",
    "Process ID",
    "Process Name",
    "Host Name",
    "Kernel Name",
    "Kernel Time",
    "Context",
    "Stream",
    "Block Size",
    "Grid Size",
    "Device",
    "CC",
];

fn is_ident_column(name: &str) -> bool {
    IDENT_COLUMNS.contains(&name)
        || name.contains("Domain:")
        || name.starts_with("thread ")
        || name.starts_with("NVTX")
}

/// Read a page from disk, detecting details vs raw from the header.
pub fn read_page(path: &Path) -> Result<Page> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read ncu CSV {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {}): export with LC_ALL=C",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    parse_page(path, &text)
}

/// Parse page text; `path` is only used in messages.
pub(crate) fn parse_page(path: &Path, text: &str) -> Result<Page> {
    let file = path.display().to_string();
    if text.trim().is_empty() {
        bail!(
            "{file}: empty file: no ncu CSV header (a row starting with \"ID\"); did ncu profile any kernel?"
        );
    }
    // Keep only the CSV part: from the header on, without `==PROF==` style lines or
    // blank lines; remember each kept line's number in the original file.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header_idx = lines.iter().position(|l| {
        let t = l.trim_start_matches('\u{feff}').trim_start();
        t.starts_with("\"ID\",")
            || t.starts_with("ID,")
            || t.trim_end() == "\"ID\""
            || t.trim_end() == "ID"
    });
    let Some(header_idx) = header_idx else {
        bail!(
            "{file}: no ncu CSV header found in {} lines (expected a row whose first field is \"ID\"; is this `ncu --csv --page details|raw` output?)",
            lines.len()
        );
    };
    let mut kept = String::with_capacity(text.len());
    let mut line_map: Vec<usize> = Vec::new(); // kept line index → 1-based original line
    for (i, l) in lines.iter().enumerate().skip(header_idx) {
        let t = l.trim();
        if t.is_empty() || t.starts_with("==") {
            continue;
        }
        kept.push_str(l);
        if !l.ends_with('\n') {
            kept.push('\n');
        }
        line_map.push(i + 1);
    }
    // A file cut mid-row: the last line has no line end and an open quote.
    let last_line_no = lines.len();
    let truncated_tail = !text.ends_with('\n')
        && lines
            .last()
            .is_some_and(|l| l.matches('"').count() % 2 == 1);
    if truncated_tail {
        bail!("{file}:{last_line_no}: truncated file: the last line ends inside a quoted field");
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(kept.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(r) => {
            r.with_context(|| format!("{file}:{}: unreadable CSV header", header_idx + 1))?
        }
        None => bail!("{file}: no header"),
    };
    let header: Vec<String> = header.iter().map(|s| s.trim().to_string()).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let header_line = header_idx + 1;
    for required in ["ID", "Kernel Name"] {
        if col(required).is_none() {
            bail!(
                "{file}:{header_line}: header has no '{required}' column (columns: {})",
                header.join(", ")
            );
        }
    }
    let is_details = ["Section Name", "Metric Name", "Metric Unit", "Metric Value"]
        .iter()
        .any(|c| col(c).is_some());
    let ident_cols: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| is_ident_column(h))
        .map(|(i, h)| (i, h.clone()))
        .collect();
    let h = Header {
        file: &file,
        id_col: col("ID").unwrap(),
        name_col: col("Kernel Name").unwrap(),
        cols: header,
        line: header_line,
        ident_cols,
        line_map: &line_map,
        last_line_no,
    };
    let mut page = Page {
        path: path.to_path_buf(),
        kind: if is_details {
            PageKind::Details
        } else {
            PageKind::Raw
        },
        launches: BTreeMap::new(),
    };
    if is_details {
        parse_details(&h, records, &mut page)?;
    } else {
        parse_raw(&h, records, &mut page)?;
    }
    Ok(page)
}

/// The header of one page and how to name a line of it.
struct Header<'a> {
    file: &'a str,
    cols: Vec<String>,
    /// 1-based line of the header in the file.
    line: usize,
    id_col: usize,
    name_col: usize,
    ident_cols: Vec<(usize, String)>,
    /// Kept CSV line index → 1-based original line.
    line_map: &'a [usize],
    last_line_no: usize,
}

impl Header<'_> {
    fn col(&self, name: &str) -> Option<usize> {
        self.cols.iter().position(|h| h == name)
    }

    fn orig_line(&self, rec: &csv::StringRecord) -> usize {
        let csv_line = rec.position().map(|p| p.line()).unwrap_or(0);
        let idx = (csv_line as usize).saturating_sub(1);
        self.line_map.get(idx).copied().unwrap_or(self.last_line_no)
    }

    fn parse_id(&self, rec: &csv::StringRecord, line: usize) -> Result<u64> {
        let raw = rec.get(self.id_col).unwrap_or("").trim();
        raw.replace(',', "")
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("{}:{line}: ID '{raw}' is not a launch index", self.file))
    }
}

/// The long details page: one row per (launch, section, metric) or rule result.
fn parse_details(
    h: &Header,
    records: csv::StringRecordsIter<&[u8]>,
    page: &mut Page,
) -> Result<()> {
    let (file, header, header_line) = (h.file, &h.cols, h.line);
    let (id_col, name_col, ident_cols) = (h.id_col, h.name_col, &h.ident_cols);
    let col = |name: &str| h.col(name);
    let need = |name: &str| -> Result<usize> {
        col(name).with_context(|| {
            format!(
                "{file}:{header_line}: details page header has no '{name}' column (columns: {})",
                header.join(", ")
            )
        })
    };
    let (sec_c, name_c, unit_c, val_c) = (
        need("Section Name")?,
        need("Metric Name")?,
        need("Metric Unit")?,
        need("Metric Value")?,
    );
    let rule_c = col("Rule Name");
    let (rtype_c, rdesc_c, stype_c, speed_c) = (
        col("Rule Type"),
        col("Rule Description"),
        col("Estimated Speedup Type"),
        col("Estimated Speedup"),
    );
    let min_fields = [id_col, name_col, sec_c, name_c, unit_c, val_c]
        .into_iter()
        .max()
        .unwrap()
        + 1;
    let mut rows = 0usize;
    for rec in records {
        let rec = rec.with_context(|| format!("{file}: unreadable CSV record"))?;
        let line = h.orig_line(&rec);
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_string();
        let rule_name = get(rule_c);
        let is_rule = !rule_name.is_empty();
        let needed = if is_rule {
            rule_c.unwrap() + 1
        } else {
            min_fields
        };
        if rec.len() < needed {
            bail!(
                "{file}:{line}: row has {} fields, at least {needed} expected for a {} row (header has {}): truncated or wrong columns",
                rec.len(),
                if is_rule { "rule" } else { "metric" },
                header.len()
            );
        }
        let id = h.parse_id(&rec, line)?;
        let launch = page
            .launches
            .entry(id)
            .or_insert_with(|| new_launch(id, &rec, name_col, ident_cols, file, line));
        check_same_kernel(launch, &rec, name_col, file, line)?;
        if is_rule {
            launch.rules.push(RuleRow {
                section: get(Some(sec_c)),
                rule: rule_name,
                kind: get(rtype_c),
                description: get(rdesc_c),
                speedup_type: get(stype_c),
                speedup_pct: parse_number(&get(speed_c)),
            });
        } else {
            let key = (get(Some(sec_c)), get(Some(name_c)));
            if key.1.is_empty() {
                continue;
            }
            launch
                .details
                .entry(key)
                .or_insert_with(|| Metric::new(&get(Some(val_c)), &get(Some(unit_c))));
        }
        rows += 1;
    }
    if rows == 0 {
        bail!("{file}: header but no rows: the report holds no profiled launch");
    }
    Ok(())
}

/// The wide raw page: a units row after the header, then one row per launch.
fn parse_raw(
    h: &Header,
    mut records: csv::StringRecordsIter<&[u8]>,
    page: &mut Page,
) -> Result<()> {
    let (file, header, header_line) = (h.file, &h.cols, h.line);
    let (id_col, name_col, ident_cols) = (h.id_col, h.name_col, &h.ident_cols);
    let units = match records.next() {
        Some(r) => r.with_context(|| format!("{file}: unreadable units row"))?,
        None => {
            bail!("{file}:{header_line}: raw page has a header but no units row and no launches")
        }
    };
    let units_line = h.orig_line(&units);
    if units.len() != header.len() {
        bail!(
            "{file}:{units_line}: units row has {} fields, header has {}: truncated or wrong columns",
            units.len(),
            header.len()
        );
    }
    if !units.get(id_col).unwrap_or("").trim().is_empty() {
        bail!(
            "{file}:{units_line}: expected the units row (empty ID cell) after the header, found ID '{}'",
            units.get(id_col).unwrap_or("")
        );
    }
    let metric_cols: Vec<usize> = (0..header.len())
        .filter(|i| !is_ident_column(&header[*i]))
        .collect();
    if metric_cols.is_empty() {
        bail!("{file}:{header_line}: raw page header has no metric columns");
    }
    let mut rows = 0usize;
    for rec in records {
        let rec = rec.with_context(|| format!("{file}: unreadable CSV record"))?;
        let line = h.orig_line(&rec);
        if rec.len() != header.len() {
            bail!(
                "{file}:{line}: row has {} fields, header has {}: truncated or wrong columns",
                rec.len(),
                header.len()
            );
        }
        let id = h.parse_id(&rec, line)?;
        if page.launches.contains_key(&id) {
            bail!("{file}:{line}: launch ID {id} appears twice on a raw page");
        }
        let mut launch = new_launch(id, &rec, name_col, ident_cols, file, line);
        for &c in &metric_cols {
            let cell = rec.get(c).unwrap_or("");
            if cell.trim().is_empty() {
                continue;
            }
            launch.raw.insert(
                header[c].clone(),
                Metric::new(cell, units.get(c).unwrap_or("")),
            );
        }
        page.launches.insert(id, launch);
        rows += 1;
    }
    if rows == 0 {
        bail!("{file}: header and units row but no launches: the report holds no profiled launch");
    }
    Ok(())
}

fn new_launch(
    id: u64,
    rec: &csv::StringRecord,
    name_col: usize,
    ident_cols: &[(usize, String)],
    file: &str,
    line: usize,
) -> LaunchData {
    let mut ident = BTreeMap::new();
    for (c, h) in ident_cols {
        if let Some(v) = rec.get(*c) {
            ident.insert(h.clone(), v.trim().to_string());
        }
    }
    LaunchData {
        id,
        kernel_name: rec.get(name_col).unwrap_or("").trim().to_string(),
        ident,
        origin: vec![format!("{file}:{line}")],
        ..Default::default()
    }
}

fn check_same_kernel(
    launch: &LaunchData,
    rec: &csv::StringRecord,
    name_col: usize,
    file: &str,
    line: usize,
) -> Result<()> {
    let name = rec.get(name_col).unwrap_or("").trim();
    if name != launch.kernel_name {
        bail!(
            "{file}:{line}: launch ID {} is kernel '{name}' here but '{}' earlier",
            launch.id,
            launch.kernel_name
        );
    }
    Ok(())
}

/// Merge the pages of one report (details and/or raw) into launches by ID. Pages of
/// one report must agree on which kernel each ID is.
pub fn merge_pages(pages: Vec<Page>) -> Result<BTreeMap<u64, LaunchData>> {
    let mut out: BTreeMap<u64, LaunchData> = BTreeMap::new();
    for page in pages {
        for (id, l) in page.launches {
            match out.get_mut(&id) {
                None => {
                    out.insert(id, l);
                }
                Some(have) => {
                    if have.kernel_name != l.kernel_name {
                        bail!(
                            "{}: launch ID {id} is '{}' but another page of the same report says '{}' ({}): are these pages from one report?",
                            page.path.display(),
                            l.kernel_name,
                            have.kernel_name,
                            have.origin.join(", ")
                        );
                    }
                    have.details.extend(l.details);
                    have.raw.extend(l.raw);
                    have.rules.extend(l.rules);
                    for (k, v) in l.ident {
                        have.ident.entry(k).or_insert(v);
                    }
                    have.origin.extend(l.origin);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAILS_HEADER: &str = "\"ID\",\"Process ID\",\"Process Name\",\"Host Name\",\"Kernel Name\",\"Context\",\"Stream\",\"Block Size\",\"Grid Size\",\"Device\",\"CC\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\",\"Rule Name\",\"Rule Type\",\"Rule Description\",\"Estimated Speedup Type\",\"Estimated Speedup\"\n";

    fn row(id: u32, kernel: &str, sec: &str, name: &str, unit: &str, val: &str) -> String {
        format!(
            "\"{id}\",\"1\",\"p\",\"h\",\"{kernel}\",\"1\",\"7\",\"(256, 1, 1)\",\"(8, 1, 1)\",\"0\",\"9.0\",\"{sec}\",\"{name}\",\"{unit}\",\"{val}\",\n"
        )
    }

    #[test]
    fn several_kernels_and_launches_are_grouped_by_id_and_prof_lines_skipped() {
        let text = format!(
            "==PROF== Connected to process 1\nsome app output\n{DETAILS_HEADER}{}{}==WARNING== something\n{}{}",
            row(
                0,
                "void k<(int)8, 256>(float*, int)",
                "GPU Speed Of Light Throughput",
                "Duration",
                "us",
                "1,046.34"
            ),
            row(
                0,
                "void k<(int)8, 256>(float*, int)",
                "Occupancy",
                "Achieved Occupancy",
                "%",
                "n/a"
            ),
            row(
                1,
                "other",
                "GPU Speed Of Light Throughput",
                "Duration",
                "ns",
                "900"
            ),
            row(
                2,
                "void k<(int)8, 256>(float*, int)",
                "GPU Speed Of Light Throughput",
                "Duration",
                "usecond",
                "2"
            ),
        );
        let page = parse_page(Path::new("t.csv"), &text).unwrap();
        assert_eq!(page.kind, PageKind::Details);
        assert_eq!(page.launches.len(), 3);
        let l0 = &page.launches[&0];
        assert_eq!(l0.kernel_name, "void k<(int)8, 256>(float*, int)");
        assert_eq!(l0.ident["Block Size"], "(256, 1, 1)");
        let d = &l0.details[&(
            "GPU Speed Of Light Throughput".to_string(),
            "Duration".to_string(),
        )];
        assert_eq!(d.value, Some(1_046_340.0));
        assert_eq!(d.base_unit, "ns");
        assert_eq!(
            l0.details[&("Occupancy".to_string(), "Achieved Occupancy".to_string())].value,
            None
        );
        assert_eq!(
            page.launches[&2].details.values().next().unwrap().value,
            Some(2000.0)
        );
        assert_eq!(l0.origin, vec!["t.csv:4".to_string()]);
    }

    #[test]
    fn malformed_pages_name_file_and_line() {
        let err = parse_page(Path::new("empty.csv"), "")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("empty.csv: empty file"), "{err}");
        let err = parse_page(Path::new("x.csv"), "a,b\n1,2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.csv: no ncu CSV header found in 2 lines"),
            "{err}"
        );
        // A details row cut short.
        let text = format!(
            "{DETAILS_HEADER}{}\"0\",\"1\",\"p\",\"h\",\"k\",\"1\"\n",
            row(0, "k", "S", "Duration", "ns", "5")
        );
        let err = parse_page(Path::new("short.csv"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("short.csv:3: row has 6 fields"), "{err}");
        // A file cut inside a quoted field.
        let text = format!(
            "{DETAILS_HEADER}{}\"0\",\"1\",\"p\",\"h\",\"k\",\"1\",\"7\",\"(25",
            row(0, "k", "S", "Duration", "ns", "5")
        );
        let err = parse_page(Path::new("cut.csv"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cut.csv:3: truncated file"), "{err}");
        // Details-like header without the value column.
        let err = parse_page(
            Path::new("cols.csv"),
            "\"ID\",\"Kernel Name\",\"Section Name\",\"Metric Name\",\"Metric Unit\"\n\"0\",\"k\",\"S\",\"D\",\"ns\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("cols.csv:1: details page header has no 'Metric Value' column"),
            "{err}"
        );
        let err = parse_page(
            Path::new("noname.csv"),
            "\"ID\",\"Name\",\"x\"\n\"\",\"\",\"ns\"\n\"0\",\"k\",\"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("noname.csv:1: header has no 'Kernel Name' column"),
            "{err}"
        );
        // Raw page: row with a missing field, bad ID, missing units row.
        let raw = "\"ID\",\"Kernel Name\",\"gpu__time_duration.sum\",\"x.pct\"\n\"\",\"\",\"us\",\"%\"\n\"0\",\"k\",\"1.5\",\"3\"\n\"1\",\"k\",\"2\"\n";
        let err = parse_page(Path::new("raw.csv"), raw)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("raw.csv:4: row has 3 fields, header has 4"),
            "{err}"
        );
        let raw = "\"ID\",\"Kernel Name\",\"m\"\n\"\",\"\",\"us\"\n\"zero\",\"k\",\"1.5\"\n";
        let err = parse_page(Path::new("id.csv"), raw)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("id.csv:3: ID 'zero' is not a launch index"),
            "{err}"
        );
        let raw = "\"ID\",\"Kernel Name\",\"m\"\n\"0\",\"k\",\"1.5\"\n";
        let err = parse_page(Path::new("nounits.csv"), raw)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("nounits.csv:2: expected the units row"),
            "{err}"
        );
        let err = parse_page(Path::new("hdr.csv"), DETAILS_HEADER)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("hdr.csv: header but no rows"), "{err}");
    }
}
