//! `ncu_digest`: Nsight Compute evidence for a baseline and a candidate kernel,
//! side by side, ending in exactly one `Next edit:` line.
//!
//! Parts:
//! - [`csvpage`]: parsers for ncu's CSV pages (long `details`, wide `raw` with a
//!   units row); columns by header name, errors name file and line.
//! - [`units`]: number and unit normalisation (`us`/`usecond`, `Gbyte/s`, `n/a`, `1,234`).
//! - [`metrics`]: one launch → the headline quantities (raw page first, details
//!   page as fallback), stall shares, derived facts, details-vs-raw cross-check.
//! - [`rules`]: `references/ncu-rules.json` (thresholds, bound classes, findings,
//!   edit templates) and the deterministic procedure documented in
//!   `references/ncu-next-edit-rule.md`.
//! - [`capture`]: ncu and harness child processes (own log files, `LC_ALL=C`, timeouts).
//! - [`eligibility`]: the ≥1% kernel share / >1% gap gate.
//! - [`digest`]: the markdown digest.
//! - [`NcuDigest`]: the tool (capture or import mode → `kernel/ncu-digests/<version>/digest.{md,json}`).

pub mod capture;
pub mod csvpage;
pub mod digest;
pub mod eligibility;
pub mod metrics;
pub mod rules;
pub mod units;

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vllm_sota_core::{Tool, ToolContext, fsx};

use crate::csvpage::{LaunchData, RuleRow};
use crate::metrics::{KernelSummary, Stall};
use crate::rules::{BoundClass, Considered, RulesFile};

/// The `ncu_digest` tool.
pub struct NcuDigest;

/// Request of `ncu_digest`. Give exactly one of `capture` or `import`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcuDigestRequest {
    /// Label of this comparison, e.g. `rmsnorm-onepass-v2` (letters, digits, `.`, `_`, `-`).
    /// The digest goes to `<campaign_dir>/kernel/ncu-digests/<version>/digest.md` (+ `digest.json`).
    pub version: String,
    /// Regex on the kernel name (ncu's function name, e.g. `rms_` or `fused_add_rms_norm`).
    /// Used for `ncu -k regex:` in capture mode and to select launches in both modes, so keep it
    /// to syntax both ncu and Rust's `regex` accept (literals, `^`, `|`, `.*`, classes).
    pub kernel_regex: String,
    /// Which matching launch to digest per side: `median` (by duration, default), `first`,
    /// `last`, a 0-based index among the matching launches (`"2"`), or `id:N` (ncu's ID column).
    #[serde(default)]
    pub launch: Option<String>,
    /// Capture mode: run both harness commands under ncu (needs `ncu`).
    #[serde(default)]
    pub capture: Option<CaptureSpec>,
    /// Import mode: existing reports (`.ncu-rep`, exported with ncu when present) or CSV pages.
    #[serde(default)]
    pub import: Option<ImportSpec>,
    /// Harness timing and correctness of the baseline, when measured outside this tool.
    #[serde(default)]
    pub baseline_harness: Option<HarnessResult>,
    /// Harness timing and correctness of the candidate. The harness decides faster/slower; ncu explains.
    #[serde(default)]
    pub candidate_harness: Option<HarnessResult>,
    /// GPU name for the roofline peaks (`references/gpu-specs.json`); default: the report's device name.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Measured peaks that replace the datasheet ones in the roofline.
    #[serde(default)]
    pub measured_peaks: Option<MeasuredPeaks>,
    /// Problem size, the same for both sides: enables arithmetic intensity and the DRAM-excess estimate.
    #[serde(default)]
    pub problem: Option<ProblemSpec>,
    /// `triton`, `cuda` or `auto` (default: a name with `(`, `<` or `void ` is CUDA C++, else Triton).
    /// Picks the wording of the next edit.
    #[serde(default)]
    pub kernel_language: Option<String>,
    /// Campaign run directory: output goes to `kernel/ncu-digests/<version>/`.
    #[serde(default)]
    pub campaign_dir: Option<PathBuf>,
    /// Output directory when not in a campaign (the digest files go directly in it).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    /// Latest kernel table JSON (profile_tables' `profiles/round-N/<framework>/<stage>/tables.json`):
    /// the share of rows matching `kernel_regex` feeds the eligibility gate.
    #[serde(default)]
    pub kernel_table_json: Option<PathBuf>,
    /// The kernel (family) share of the stage's GPU time in percent, when no table is given.
    #[serde(default)]
    pub kernel_share_pct: Option<f64>,
    /// Gap in percent between vLLM and the best framework on the scenario (> 1 to be eligible).
    #[serde(default)]
    pub gap_pct: Option<f64>,
    /// Path to the `ncu` executable (default: `$PATH`, then /opt/nvidia/nsight-compute/*/).
    #[serde(default)]
    pub ncu_path: Option<PathBuf>,
}

/// Capture mode settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Baseline harness argv, e.g. `["python3", "bench.py", "base"]`.
    pub baseline_argv: Vec<String>,
    /// Candidate harness argv.
    pub candidate_argv: Vec<String>,
    /// Launches to profile per side (`ncu -c`), default 1.
    #[serde(default)]
    pub count: Option<u32>,
    /// Launches to skip first (`ncu --launch-skip`: warm-up and autotuning), default 0.
    #[serde(default)]
    pub launch_skip: Option<u32>,
    /// `function` (ncu's default), `demangled` or `mangled`: what `-k regex:` matches.
    #[serde(default)]
    pub kernel_name_base: Option<String>,
    /// Extra ncu flags, e.g. `["--section", "PmSampling"]`.
    #[serde(default)]
    pub extra_ncu_args: Vec<String>,
    /// Working directory of the harness.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Timeout per ncu run in seconds (default 900).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Also run each harness once without ncu and read its timing/correctness from its output.
    #[serde(default)]
    pub timing: Option<TimingSpec>,
}

/// How to read a harness's own output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    /// Regex whose group 1 is the kernel time, e.g. `ms ([0-9.eE+-]+)`; the last match counts.
    pub time_regex: String,
    /// Unit of that number: `s`, `ms`, `us` or `ns`.
    pub time_unit: String,
    /// Regex whose group 1 is an error measure (e.g. `max abs err ([0-9.eE+-]+)`).
    #[serde(default)]
    pub error_regex: Option<String>,
    /// The harness is correct when that error is <= this (and it exits 0).
    #[serde(default)]
    pub max_error: Option<f64>,
}

/// Import mode inputs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    pub baseline: SideFiles,
    pub candidate: SideFiles,
}

/// One side's report: a `.ncu-rep` and/or its CSV pages.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideFiles {
    /// `.ncu-rep`: exported to CSV with `ncu --import` when ncu exists.
    #[serde(default)]
    pub ncu_rep: Option<PathBuf>,
    /// `ncu --import X --csv --page details [--print-units base]` output.
    #[serde(default)]
    pub details_csv: Option<PathBuf>,
    /// `ncu --import X --csv --page raw` output.
    #[serde(default)]
    pub raw_csv: Option<PathBuf>,
}

/// A harness's own verdict for one side.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HarnessResult {
    /// Kernel time in microseconds (event timing / do_bench, not ncu).
    #[serde(default)]
    pub time_us: Option<f64>,
    /// Whether the output matched the reference.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Free text: how it was measured, the error value.
    #[serde(default)]
    pub note: Option<String>,
}

/// Measured ceilings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasuredPeaks {
    /// DRAM bandwidth in GB/s (1e9 bytes/s), e.g. 4300 for a measured H200 device copy.
    #[serde(default)]
    pub dram_gbps: Option<f64>,
    /// Math peak in TFLOP/s for `problem.dtype`.
    #[serde(default)]
    pub tflops: Option<f64>,
}

/// The problem's size, identical for baseline and candidate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemSpec {
    /// Useful floating-point operations of one launch (e.g. 2*M*N*K).
    #[serde(default)]
    pub flops: Option<f64>,
    /// Bytes one launch must move at least (inputs read once + outputs written once).
    #[serde(default)]
    pub ideal_bytes: Option<f64>,
    /// dtype of the math peak (`bf16`, `fp16`, `fp8`, `fp32`, ...), default `bf16`.
    #[serde(default)]
    pub dtype: Option<String>,
    /// Free text, e.g. "8192 x 4096 bf16".
    #[serde(default)]
    pub shape: Option<String>,
}

/// One side in the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideReport {
    pub kernel_name: String,
    pub launch_id: u64,
    /// (ID, duration ns) of every matching launch (at most 32 listed).
    pub matched_launches: Vec<(u64, Option<f64>)>,
    pub block: Option<String>,
    pub grid: Option<String>,
    pub device_name: Option<String>,
    pub compute_capability: Option<String>,
    pub bound_class: BoundClass,
    pub top_stalls: Vec<Stall>,
    /// NCU rule results with an estimated speedup or of type OPT/WRN, largest first (bounded).
    pub rules: Vec<RuleRow>,
    pub roofline: Option<Roofline>,
    /// Where it was read (`file:line`).
    pub origin: Vec<String>,
}

/// One headline comparison row.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HeadlineRow {
    pub label: String,
    /// ncu metric ID (or `derived: ...`).
    pub metric: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// (candidate - baseline) / baseline in percent.
    pub delta_pct: Option<f64>,
}

/// Roofline placement of one side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Roofline {
    /// DRAM peak used, bytes/s.
    pub peak_bytes_per_s: f64,
    pub peak_source: String,
    /// DRAM peak ncu computes from the report (bytes/cycle x DRAM clock), bytes/s.
    pub ncu_peak_bytes_per_s: Option<f64>,
    pub achieved_bytes_per_s: Option<f64>,
    /// Achieved / peak bandwidth, percent.
    pub bandwidth_pct_of_peak: Option<f64>,
    pub flops: Option<f64>,
    /// FLOP per DRAM byte.
    pub arithmetic_intensity: Option<f64>,
    pub ridge_flop_per_byte: Option<f64>,
    /// Achieved FLOP/s over attainable (min(peak, AI x BW)), percent.
    pub pct_of_attainable: Option<f64>,
    /// One sentence.
    pub placement: String,
}

/// Report of `ncu_digest` (also written as `digest.json`, with every fact).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NcuDigestReport {
    pub version: String,
    /// `capture` or `import`.
    pub mode: String,
    pub digest_md: PathBuf,
    pub digest_json: PathBuf,
    pub kernel_regex: String,
    pub gpu: Option<String>,
    /// The single `Next edit:` line.
    pub next_edit: String,
    /// How it was chosen: `gate:<name>`, `finding:<id>`, `fallback:<id>`, `class_default:<class>`.
    pub chosen_by: String,
    /// Faster/slower by the harness (or ncu duration when no harness timing), with deltas.
    pub verdict: String,
    /// Why counters could not be read, when they could not.
    pub blocker: Option<String>,
    pub eligibility: eligibility::Eligibility,
    pub baseline: Option<SideReport>,
    pub candidate: Option<SideReport>,
    pub baseline_harness: Option<HarnessResult>,
    pub candidate_harness: Option<HarnessResult>,
    pub headline: Vec<HeadlineRow>,
    /// Findings that triggered on the candidate and what the rule did with them.
    pub considered: Vec<Considered>,
    /// `triton` / `cuda` / `generic`: wording of the edit.
    pub kernel_language: String,
    pub warnings: Vec<String>,
    /// Details page vs raw page agreement per side, e.g. "baseline: 29 of 29 quantities agree".
    pub cross_checks: Vec<String>,
    /// Files written or read (reports, CSV exports, logs).
    pub artifacts: Vec<PathBuf>,
    /// Exact commands run (capture / export), secrets redacted.
    pub commands: Vec<String>,
}

#[derive(Serialize)]
struct DigestFile<'a> {
    #[serde(flatten)]
    report: &'a NcuDigestReport,
    baseline_facts: Option<&'a BTreeMap<String, f64>>,
    candidate_facts: Option<&'a BTreeMap<String, f64>>,
}

impl Tool for NcuDigest {
    const NAME: &'static str = "ncu_digest";
    const DESCRIPTION: &'static str = "Nsight Compute evidence for one kernel edit: profiles (capture mode: runs both harness commands under `ncu --set full --clock-control none`) or imports (`.ncu-rep` or CSV pages) a baseline and a candidate, selects the kernel by regex and launch, and writes `kernel/ncu-digests/<version>/digest.md` + `digest.json`: identity, a baseline/candidate/delta table (duration, SM/memory/DRAM % of peak, DRAM bandwidth, occupancy, waves, L1/L2 hit, bank conflicts, issue slots, tensor pipe), top warp stalls, NCU rule findings with estimated speedups, a roofline placement, a bound class, the harness's own timing and correctness (the harness decides; an ncu win alone is not success), the eligibility gate (kernel >= 1% of stage GPU time and gap > 1%), and exactly one `Next edit:` line chosen by the documented rule in references/ncu-next-edit-rule.md. When ncu is missing or cannot read counters the digest records a Blocker and falls back to harness timing.";
    type Request = NcuDigestRequest;
    type Report = NcuDigestReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run_digest(request, ctx)
    }

    fn markdown(report: &Self::Report) -> String {
        let mut s = format!(
            "# ncu_digest {}\n\nDigest: {}\n\n{}\n\n",
            report.version,
            report.digest_md.display(),
            report.verdict
        );
        if let Some(b) = &report.blocker {
            s.push_str(&format!("Blocker: {b}\n\n"));
        }
        s.push_str(&format!("Eligibility: {}\n\n", report.eligibility.why));
        s.push_str(&report.next_edit);
        s.push('\n');
        s
    }
}

fn check_version(v: &str) -> Result<()> {
    if v.is_empty()
        || v.len() > 100
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        || v.starts_with('.')
    {
        bail!(
            "version '{v}': use 1-100 letters, digits, '.', '_' or '-' (it names a folder), not starting with '.'"
        );
    }
    Ok(())
}

/// Where the digest goes.
fn output_dir(req: &NcuDigestRequest) -> Result<PathBuf> {
    match (&req.campaign_dir, &req.out_dir) {
        (Some(c), None) => Ok(vllm_sota_core::layout::CampaignPaths::open(c)?
            .ncu_digests_dir()
            .join(&req.version)),
        (None, Some(o)) => Ok(o.clone()),
        (Some(_), Some(_)) => bail!("give campaign_dir or out_dir, not both"),
        (None, None) => {
            bail!("give campaign_dir (digest to kernel/ncu-digests/<version>/) or out_dir")
        }
    }
}

/// The pages of one side, or why they could not be had.
enum SidePages {
    Pages(Vec<PathBuf>),
    Blocked(String),
}

fn language_of(req: &NcuDigestRequest, kernel_name: Option<&str>) -> Result<String> {
    match req.kernel_language.as_deref().unwrap_or("auto") {
        "triton" => Ok("triton".into()),
        "cuda" => Ok("cuda".into()),
        "generic" => Ok("generic".into()),
        "auto" => Ok(match kernel_name {
            Some(n) if n.contains('(') || n.contains('<') || n.starts_with("void ") => {
                "cuda".into()
            }
            Some(_) => "triton".into(),
            None => "generic".into(),
        }),
        other => bail!("kernel_language '{other}': use triton, cuda, generic or auto"),
    }
}

/// Select the launch to digest among those matching the regex.
#[allow(clippy::type_complexity)]
pub fn select_launch<'a>(
    launches: &'a BTreeMap<u64, LaunchData>,
    re: &regex::Regex,
    how: Option<&str>,
    side: &str,
) -> Result<(&'a LaunchData, Vec<(u64, Option<f64>)>)> {
    let matching: Vec<&LaunchData> = launches
        .values()
        .filter(|l| re.is_match(&l.kernel_name))
        .collect();
    if matching.is_empty() {
        let mut names: Vec<&str> = launches.values().map(|l| l.kernel_name.as_str()).collect();
        names.dedup();
        names.truncate(10);
        bail!(
            "{side}: no launch matches kernel_regex '{}'; the report holds: {}",
            re.as_str(),
            names.join(" | ")
        );
    }
    let listed: Vec<(u64, Option<f64>)> = matching
        .iter()
        .map(|l| (l.id, metrics::duration_ns(l)))
        .collect();
    let how = how.unwrap_or("median").trim();
    let chosen = match how {
        "first" => matching[0],
        "last" => matching[matching.len() - 1],
        "median" => {
            let mut by_dur: Vec<&LaunchData> = matching.clone();
            by_dur.sort_by(|a, b| {
                metrics::duration_ns(a)
                    .unwrap_or(f64::MAX)
                    .total_cmp(&metrics::duration_ns(b).unwrap_or(f64::MAX))
                    .then(a.id.cmp(&b.id))
            });
            by_dur[(by_dur.len() - 1) / 2]
        }
        s if s.starts_with("id:") => {
            let id: u64 = s[3..]
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("launch '{s}': id:N needs a number"))?;
            matching
                .iter()
                .find(|l| l.id == id)
                .copied()
                .with_context(|| {
                    format!(
                        "{side}: launch id {id} is not among the matching launches {:?}",
                        listed.iter().map(|x| x.0).collect::<Vec<_>>()
                    )
                })?
        }
        s => {
            let n: usize = s.parse().map_err(|_| {
                anyhow::anyhow!("launch '{s}': use median, first, last, an index or id:N")
            })?;
            matching.get(n).copied().with_context(|| {
                format!(
                    "{side}: launch index {n} but only {} launches match",
                    matching.len()
                )
            })?
        }
    };
    Ok((chosen, listed))
}

fn detect_blocker(rules: &RulesFile, log_text: &str) -> Option<String> {
    rules
        .blocker_patterns
        .iter()
        .find(|p| log_text.contains(&p.pattern))
        .map(|p| {
            let line = log_text
                .lines()
                .find(|l| l.contains(&p.pattern))
                .unwrap_or("")
                .trim();
            format!(
                "{} — ncu said: {}",
                p.meaning,
                line.chars().take(300).collect::<String>()
            )
        })
}

struct Run<'a> {
    req: &'a NcuDigestRequest,
    rules: &'a RulesFile,
    out: PathBuf,
    ctx: &'a ToolContext,
    artifacts: Vec<PathBuf>,
    commands: Vec<String>,
    warnings: Vec<String>,
}

impl Run<'_> {
    fn record(&mut self, argv: &[String]) {
        self.commands
            .push(vllm_sota_core::redact::redact(&shell_join(argv)).into_owned());
    }

    /// Export the details and raw pages of a report.
    fn export(&mut self, ncu: &Path, report: &Path, side: &str) -> Result<SidePages> {
        let mut pages = Vec::new();
        for page in ["details", "raw"] {
            let csv = self.out.join(format!("{side}_{page}.csv"));
            let log = self.out.join(format!("{side}_{page}_export.log"));
            let argv = capture::ncu_export_argv(ncu, report, page);
            self.record(&argv);
            let r = capture::run_logged(
                &argv,
                None,
                &log,
                Some(&csv),
                Duration::from_secs(600),
                self.ctx,
            )?;
            let log_text = capture::log_tail(&log, 4000);
            if r.code != Some(0) {
                let why = detect_blocker(self.rules, &log_text).unwrap_or_else(|| {
                    format!(
                        "`ncu --import` of {} exited with {:?}: {}",
                        report.display(),
                        r.code,
                        log_text.trim()
                    )
                });
                return Ok(SidePages::Blocked(why));
            }
            self.artifacts.push(csv.clone());
            pages.push(csv);
        }
        Ok(SidePages::Pages(pages))
    }

    fn capture_side(
        &mut self,
        ncu: &Path,
        spec: &CaptureSpec,
        side: &str,
        argv: &[String],
    ) -> Result<SidePages> {
        if argv.is_empty() {
            bail!("capture.{side}_argv is empty");
        }
        let stem = self.out.join(side);
        let collect = capture::ncu_collect_argv(
            ncu,
            &self.req.kernel_regex,
            spec.count.unwrap_or(1).max(1),
            spec.launch_skip.unwrap_or(0),
            spec.kernel_name_base.as_deref(),
            &spec.extra_ncu_args,
            &stem,
            argv,
        );
        self.record(&collect);
        let log = self.out.join(format!("{side}_ncu.log"));
        self.artifacts.push(log.clone());
        let r = capture::run_logged(
            &collect,
            spec.cwd.as_deref(),
            &log,
            None,
            Duration::from_secs(spec.timeout_s.unwrap_or(900)),
            self.ctx,
        )?;
        let log_text = capture::log_tail(&log, 20_000);
        if r.timed_out {
            return Ok(SidePages::Blocked(format!(
                "ncu run timed out after {:.0} s (log {})",
                r.wall_s,
                log.display()
            )));
        }
        let report = capture::report_for_stem(&stem);
        if let Some(why) = detect_blocker(self.rules, &log_text)
            && (report.is_none() || r.code != Some(0))
        {
            return Ok(SidePages::Blocked(why));
        }
        let Some(report) = report else {
            let tail: String = log_text
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ");
            return Ok(SidePages::Blocked(format!(
                "ncu exited with {:?} and wrote no report (log {}): {tail}",
                r.code,
                log.display()
            )));
        };
        if r.code != Some(0) {
            self.warnings.push(format!(
                "{side}: ncu exited with {:?} but wrote {}",
                r.code,
                report.display()
            ));
        }
        self.artifacts.push(report.clone());
        self.export(ncu, &report, side)
    }

    fn harness_timing(
        &mut self,
        spec: &CaptureSpec,
        t: &TimingSpec,
        side: &str,
        argv: &[String],
    ) -> Result<HarnessResult> {
        let time_re = regex::Regex::new(&t.time_regex)
            .with_context(|| format!("capture.timing.time_regex '{}'", t.time_regex))?;
        let err_re = t
            .error_regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .context("capture.timing.error_regex")?;
        if !matches!(t.time_unit.as_str(), "s" | "ms" | "us" | "ns") {
            bail!(
                "capture.timing.time_unit '{}': use s, ms, us or ns",
                t.time_unit
            );
        }
        let log = self.out.join(format!("{side}_harness.log"));
        self.record(argv);
        let r = capture::run_logged(
            argv,
            spec.cwd.as_deref(),
            &log,
            None,
            Duration::from_secs(spec.timeout_s.unwrap_or(900)),
            self.ctx,
        )?;
        self.artifacts.push(log.clone());
        let text = capture::log_tail(&log, 200_000);
        let time_us = capture::last_number(&text, &time_re)
            .map(|v| units::normalise(v, &t.time_unit).0 / 1e3);
        let err = err_re
            .as_ref()
            .and_then(|re| capture::last_number(&text, re));
        let correct = match (r.code, err, t.max_error) {
            (Some(c), _, _) if c != 0 => Some(false),
            (None, _, _) => Some(false),
            (_, Some(e), Some(m)) => Some(e <= m),
            (_, None, Some(_)) => None,
            _ => None,
        };
        if time_us.is_none() {
            self.warnings.push(format!(
                "{side}: harness output has no match for time_regex '{}' (log {})",
                t.time_regex,
                log.display()
            ));
        }
        let exit = match (r.code, r.timed_out) {
            (_, true) => format!("timed out after {:.0} s", r.wall_s),
            (Some(0), _) => "exit 0".to_string(),
            (Some(c), _) => {
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                format!(
                    "FAILED with exit {c} (last line: {}; log {})",
                    last.chars().take(200).collect::<String>(),
                    log.display()
                )
            }
            (None, _) => "killed by a signal".to_string(),
        };
        let note = format!(
            "{} run without ncu: {exit}{}{}{}",
            shell_join(argv),
            time_us
                .map(|t| format!(", time {} us", rules::fmt_num(t)))
                .unwrap_or_default(),
            err.map(|e| format!(", error {e}")).unwrap_or_default(),
            t.max_error
                .map(|m| format!(" (max allowed {m})"))
                .unwrap_or_default()
        );
        Ok(HarnessResult {
            time_us,
            correct,
            note: Some(note),
        })
    }
}

use vllm_sota_core::proc::shell_join;

fn run_digest(req: NcuDigestRequest, ctx: &ToolContext) -> Result<NcuDigestReport> {
    check_version(&req.version)?;
    let re = regex::Regex::new(&req.kernel_regex)
        .with_context(|| format!("kernel_regex '{}' is not a valid regex", req.kernel_regex))?;
    let rules = rules::load_rules()?;
    let mode = match (&req.capture, &req.import) {
        (Some(_), None) => "capture",
        (None, Some(_)) => "import",
        (Some(_), Some(_)) => bail!("give capture or import, not both"),
        (None, None) => {
            bail!("give capture (harness commands to profile) or import (.ncu-rep or CSV pages)")
        }
    };
    let out = output_dir(&req)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Absolute, because ncu runs in the harness's working directory and writes `-o` there.
    let out =
        std::path::absolute(&out).with_context(|| format!("cannot resolve {}", out.display()))?;
    let mut run = Run {
        req: &req,
        rules: &rules,
        out: out.clone(),
        ctx,
        artifacts: Vec::new(),
        commands: Vec::new(),
        warnings: Vec::new(),
    };
    let ncu = capture::find_ncu(req.ncu_path.as_deref());
    if let (Some(p), None) = (&req.ncu_path, &ncu) {
        run.warnings
            .push(format!("ncu_path {} is not a file", p.display()));
    }

    // 1. Pages per side.
    let mut sides: Vec<(&str, SidePages)> = Vec::new();
    let mut base_h = req.baseline_harness.clone();
    let mut cand_h = req.candidate_harness.clone();
    match mode {
        "capture" => {
            let spec = req.capture.clone().unwrap();
            for (i, (side, argv)) in [
                ("baseline", &spec.baseline_argv),
                ("candidate", &spec.candidate_argv),
            ]
            .into_iter()
            .enumerate()
            {
                ctx.check_cancelled()?;
                ctx.progress(i as f64, Some(2.0), &format!("profiling {side} under ncu"));
                let pages = match &ncu {
                    Some(n) => run.capture_side(n, &spec, side, argv)?,
                    None => SidePages::Blocked(
                        "ncu is not installed here (not on PATH, nor under /opt/nvidia/nsight-compute/): no counters"
                            .into(),
                    ),
                };
                sides.push((side, pages));
            }
            if let Some(t) = &spec.timing {
                ctx.progress(2.0, Some(3.0), "timing both harnesses without ncu");
                let b = run.harness_timing(&spec, t, "baseline", &spec.baseline_argv)?;
                let c = run.harness_timing(&spec, t, "candidate", &spec.candidate_argv)?;
                base_h = base_h.or(Some(b));
                cand_h = cand_h.or(Some(c));
            }
        }
        _ => {
            let spec = req.import.clone().unwrap();
            for (side, files) in [("baseline", &spec.baseline), ("candidate", &spec.candidate)] {
                let mut csvs: Vec<PathBuf> = files
                    .details_csv
                    .iter()
                    .chain(files.raw_csv.iter())
                    .cloned()
                    .collect();
                let pages = if !csvs.is_empty() {
                    for c in &csvs {
                        run.artifacts.push(c.clone());
                    }
                    if files.ncu_rep.is_some() {
                        run.warnings.push(format!(
                            "{side}: CSV pages given, so ncu_rep was not re-exported"
                        ));
                    }
                    SidePages::Pages(std::mem::take(&mut csvs))
                } else if let Some(rep) = &files.ncu_rep {
                    if !rep.is_file() {
                        bail!("import.{side}.ncu_rep {} does not exist", rep.display());
                    }
                    match &ncu {
                        Some(n) => run.export(n, rep, side)?,
                        None => SidePages::Blocked(format!(
                            "ncu is not installed here, so {} cannot be exported: pass its CSV pages (details_csv / raw_csv) instead",
                            rep.display()
                        )),
                    }
                } else {
                    bail!("import.{side}: give ncu_rep, details_csv or raw_csv");
                };
                sides.push((side, pages));
            }
        }
    }

    // 2. Parse and select.
    let mut summaries: BTreeMap<&str, KernelSummary> = BTreeMap::new();
    let mut blockers = Vec::new();
    let mut cross_checks = Vec::new();
    for (side, pages) in &sides {
        match pages {
            SidePages::Blocked(why) => blockers.push(format!("{side}: {why}")),
            SidePages::Pages(paths) => {
                let parsed = paths
                    .iter()
                    .map(|p| csvpage::read_page(p))
                    .collect::<Result<Vec<_>>>()?;
                let launches = csvpage::merge_pages(parsed)?;
                let (launch, listed) = select_launch(&launches, &re, req.launch.as_deref(), side)?;
                let checks = metrics::cross_check(launch);
                if !checks.is_empty() {
                    cross_checks.push(format!(
                        "{side}: {} of {} quantities printed on both the details and the raw page agree within print rounding",
                        checks.iter().filter(|c| c.agrees).count(),
                        checks.len()
                    ));
                }
                for c in checks {
                    if !c.agrees {
                        run.warnings.push(format!(
                            "{side}: details page and raw page disagree on {}: {} vs {}",
                            c.key,
                            rules::fmt_num(c.details),
                            rules::fmt_num(c.raw)
                        ));
                    }
                }
                summaries.insert(side, metrics::summarize(launch, listed));
            }
        }
    }
    let blocker = (!blockers.is_empty()).then(|| blockers.join("; "));

    // 3. Facts, classes, roofline.
    let gpu_name = req
        .gpu
        .clone()
        .or_else(|| summaries.values().find_map(|s| s.device_name.clone()));
    let spec = match &gpu_name {
        Some(n) => match vllm_sota_core::gpu::find(n) {
            Ok(s) => Some(s),
            Err(e) => {
                run.warnings.push(format!("no datasheet peaks: {e}"));
                None
            }
        },
        None => None,
    };
    let mut side_reports: BTreeMap<&str, SideReport> = BTreeMap::new();
    for (side, s) in summaries.iter_mut() {
        add_problem_facts(&mut s.facts, req.problem.as_ref());
        rules::add_rule_facts(&rules, &s.rules.clone(), &mut s.facts);
        let class = rules::classify(&rules, &s.facts);
        let roofline = roofline(
            &s.facts,
            spec.as_ref(),
            req.measured_peaks.as_ref(),
            req.problem.as_ref(),
        );
        let mut rule_rows: Vec<RuleRow> = s
            .rules
            .iter()
            .filter(|r| r.speedup_pct.is_some() || r.kind == "OPT" || r.kind == "WRN")
            .cloned()
            .collect();
        rule_rows.sort_by(|a, b| {
            b.speedup_pct
                .unwrap_or(-1.0)
                .total_cmp(&a.speedup_pct.unwrap_or(-1.0))
                .then(a.rule.cmp(&b.rule))
        });
        rule_rows.truncate(rules.thresholds.top_rules);
        for r in rule_rows.iter_mut() {
            if r.description.chars().count() > 400 {
                r.description = r.description.chars().take(400).collect::<String>() + "…";
            }
        }
        side_reports.insert(
            side,
            SideReport {
                kernel_name: s.kernel_name.clone(),
                launch_id: s.launch_id,
                matched_launches: s.matched_launches.iter().take(32).cloned().collect(),
                block: s.block.clone(),
                grid: s.grid.clone(),
                device_name: s.device_name.clone(),
                compute_capability: s.compute_capability.clone(),
                bound_class: class,
                top_stalls: s
                    .stalls
                    .iter()
                    .take(rules.thresholds.top_stalls)
                    .cloned()
                    .collect(),
                rules: rule_rows,
                roofline,
                origin: s.origin.clone(),
            },
        );
    }
    if let (Some(b), Some(c)) = (summaries.get("baseline"), summaries.get("candidate"))
        && b.kernel_name != c.kernel_name
    {
        run.warnings.push(format!(
            "baseline kernel '{}' and candidate kernel '{}' differ (matched by regex)",
            b.kernel_name, c.kernel_name
        ));
    }
    if let (Some(b), Some(c)) = (summaries.get("baseline"), summaries.get("candidate"))
        && (b.grid != c.grid || b.block != c.block)
    {
        run.warnings.push(format!(
            "launch geometry changed: grid {} → {}, block {} → {}",
            b.grid.as_deref().unwrap_or("?"),
            c.grid.as_deref().unwrap_or("?"),
            b.block.as_deref().unwrap_or("?"),
            c.block.as_deref().unwrap_or("?")
        ));
    }

    let headline = digest::headline_rows(
        summaries.get("baseline").map(|s| &s.facts),
        summaries.get("candidate").map(|s| &s.facts),
    );
    let verdict = digest::verdict(
        &rules,
        base_h.as_ref(),
        cand_h.as_ref(),
        summaries.get("baseline"),
        summaries.get("candidate"),
    );

    // 4. Eligibility.
    let eligibility = {
        let (share, source) = match (&req.kernel_table_json, req.kernel_share_pct) {
            (Some(p), _) => match eligibility::share_from_table(p, &re) {
                Ok((s, m, n)) => (
                    Some(s),
                    format!(
                        "{} ({m} of {n} rows match '{}')",
                        p.display(),
                        req.kernel_regex
                    ),
                ),
                Err(e) => {
                    run.warnings.push(format!("kernel table unusable: {e:#}"));
                    (
                        req.kernel_share_pct,
                        "request (kernel table unusable)".to_string(),
                    )
                }
            },
            (None, Some(s)) => (Some(s), "request".to_string()),
            (None, None) => (None, "none".to_string()),
        };
        eligibility::decide(
            share,
            req.gap_pct,
            source,
            rules.thresholds.eligibility_min_kernel_share_pct,
            rules.thresholds.eligibility_min_gap_pct,
        )
    };

    // 5. The one next edit.
    let cand_name = summaries.get("candidate").map(|s| s.kernel_name.clone());
    let language = language_of(
        &req,
        cand_name
            .as_deref()
            .or(summaries.get("baseline").map(|s| s.kernel_name.as_str())),
    )?;
    let decision = decide_next_edit(
        &rules,
        &req,
        &summaries,
        side_reports.get("candidate"),
        base_h.as_ref(),
        cand_h.as_ref(),
        blocker.as_deref(),
        &language,
    );

    let digest_md = out.join("digest.md");
    let digest_json = out.join("digest.json");
    let report = NcuDigestReport {
        version: req.version.clone(),
        mode: mode.into(),
        digest_md: digest_md.clone(),
        digest_json: digest_json.clone(),
        kernel_regex: req.kernel_regex.clone(),
        gpu: gpu_name,
        next_edit: decision.line.clone(),
        chosen_by: decision.chosen_by.clone(),
        verdict,
        blocker,
        eligibility,
        baseline: side_reports.remove("baseline"),
        candidate: side_reports.remove("candidate"),
        baseline_harness: base_h,
        candidate_harness: cand_h,
        headline,
        considered: decision.considered.clone(),
        kernel_language: language,
        warnings: run.warnings.clone(),
        cross_checks,
        artifacts: run.artifacts.clone(),
        commands: run.commands.clone(),
    };
    let md = digest::render(&report, &rules, spec.as_ref(), req.problem.as_ref());
    fsx::write_text(&digest_md, &md)?;
    fsx::write_json(
        &digest_json,
        &DigestFile {
            report: &report,
            baseline_facts: summaries.get("baseline").map(|s| &s.facts),
            candidate_facts: summaries.get("candidate").map(|s| &s.facts),
        },
    )?;
    ctx.progress(1.0, Some(1.0), "digest written");
    Ok(report)
}

fn add_problem_facts(f: &mut BTreeMap<String, f64>, p: Option<&ProblemSpec>) {
    let get = |f: &BTreeMap<String, f64>, k: &str| f.get(k).copied();
    if let Some(b) = get(f, "dram_bytes_total") {
        f.insert("dram_mb".into(), b / 1e6);
    }
    if let Some(t) = get(f, "theoretical_occupancy_pct") {
        f.insert("theoretical_occupancy_gap_pct".into(), (100.0 - t).max(0.0));
    }
    if let Some(w) = get(f, "target_warps_per_block") {
        f.insert("target_threads_per_block".into(), w * 32.0);
    }
    if let Some(x) = get(f, "ld_bytes_per_sector") {
        f.insert(
            "uncoalesced_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if let Some(x) = get(f, "st_bytes_per_sector") {
        f.insert(
            "sparse_store_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if let Some(x) = get(f, "threads_per_warp") {
        f.insert(
            "divergence_est_pct".into(),
            ((1.0 - x / 32.0) * 100.0).max(0.0),
        );
    }
    if get(f, "max_warps_per_sm").is_none() {
        f.insert("max_warps_per_sm".into(), 64.0);
    }
    let Some(p) = p else { return };
    if let Some(ideal) = p.ideal_bytes {
        f.insert("ideal_bytes".into(), ideal);
        f.insert("ideal_mb".into(), ideal / 1e6);
        if let Some(b) = get(f, "dram_bytes_total")
            && b > 0.0
        {
            f.insert("dram_excess_pct".into(), ((b - ideal) / b * 100.0).max(0.0));
        }
    }
    if let Some(fl) = p.flops {
        f.insert("flops".into(), fl);
        if let Some(b) = get(f, "dram_bytes_total")
            && b > 0.0
        {
            f.insert("arithmetic_intensity".into(), fl / b);
        }
    }
}

fn roofline(
    f: &BTreeMap<String, f64>,
    spec: Option<&vllm_sota_core::gpu::GpuSpec>,
    measured: Option<&MeasuredPeaks>,
    problem: Option<&ProblemSpec>,
) -> Option<Roofline> {
    let ncu_peak = f.get("ncu_dram_peak_bytes_per_s").copied();
    let (peak, source) = if let Some(g) = measured.and_then(|m| m.dram_gbps) {
        (g * 1e9, "measured (request)".to_string())
    } else if let Some(s) = spec {
        (
            s.memory_bandwidth_gbps * 1e9,
            format!("{} datasheet (references/gpu-specs.json)", s.name),
        )
    } else if let Some(p) = ncu_peak {
        (
            p,
            "ncu (dram__bytes.sum.peak_sustained x DRAM clock)".to_string(),
        )
    } else {
        return None;
    };
    let achieved = f
        .get("dram_bytes_total")
        .zip(f.get("duration_ns"))
        .filter(|(_, d)| **d > 0.0)
        .map(|(b, d)| b / (d * 1e-9))
        .or(f.get("dram_bytes_per_s").copied());
    let bw_pct = achieved.map(|a| a / peak * 100.0);
    let dtype = problem
        .and_then(|p| p.dtype.clone())
        .unwrap_or_else(|| "bf16".into());
    let peak_flops = measured
        .and_then(|m| m.tflops)
        .or_else(|| spec.and_then(|s| s.peak_tflops.get(&dtype).copied()))
        .map(|t| t * 1e12);
    let flops = f.get("flops").copied();
    let ai = f.get("arithmetic_intensity").copied();
    let ridge = peak_flops.map(|p| p / peak);
    let pct_att = match (flops, ai, peak_flops, f.get("duration_ns")) {
        (Some(fl), Some(ai), Some(pf), Some(d)) if *d > 0.0 => {
            let attainable = pf.min(ai * peak);
            Some(fl / (d * 1e-9) / attainable * 100.0)
        }
        _ => None,
    };
    let placement = match (ai, ridge) {
        (Some(ai), Some(r)) => format!(
            "AI {} FLOP/byte is {} the {dtype} ridge ({} FLOP/byte): {}-side of the roofline",
            rules::fmt_num(ai),
            if ai < r { "below" } else { "above" },
            rules::fmt_num(r),
            if ai < r { "memory" } else { "compute" }
        ),
        _ => match bw_pct {
            Some(p) => format!(
                "DRAM traffic runs at {}% of the {} peak (no FLOP count given: pass problem.flops for AI)",
                rules::fmt_num(p),
                if source.starts_with("measured") {
                    "measured"
                } else {
                    "datasheet"
                }
            ),
            None => "no DRAM byte count in the report".into(),
        },
    };
    Some(Roofline {
        peak_bytes_per_s: peak,
        peak_source: source,
        ncu_peak_bytes_per_s: ncu_peak,
        achieved_bytes_per_s: achieved,
        bandwidth_pct_of_peak: bw_pct,
        flops,
        arithmetic_intensity: ai,
        ridge_flop_per_byte: ridge,
        pct_of_attainable: pct_att,
        placement,
    })
}

/// Step 1 (gates) of the documented rule, then [`rules::choose`].
#[allow(clippy::too_many_arguments)]
fn decide_next_edit(
    rules: &RulesFile,
    req: &NcuDigestRequest,
    summaries: &BTreeMap<&str, KernelSummary>,
    cand_report: Option<&SideReport>,
    base_h: Option<&HarnessResult>,
    cand_h: Option<&HarnessResult>,
    blocker: Option<&str>,
    language: &str,
) -> rules::Decision {
    let kernel = summaries
        .get("candidate")
        .or(summaries.get("baseline"))
        .map(|s| short_kernel(&s.kernel_name))
        .unwrap_or_else(|| req.kernel_regex.clone());
    let gate = |name: &str, line: String| rules::Decision {
        line,
        chosen_by: format!("gate:{name}"),
        estimate_pct: None,
        considered: Vec::new(),
    };
    // Gate 1: a wrong candidate is fixed before anything else.
    if let Some(h) = cand_h
        && h.correct == Some(false)
    {
        return gate(
            "correctness",
            format!(
                "Next edit: fix {kernel}'s correctness before any speed work — because the candidate harness did not pass ({}); no counter evidence counts until it passes.",
                h.note.as_deref().unwrap_or("correct=false")
            ),
        );
    }
    // Gate 2: no counters for the candidate.
    let Some(cand) = summaries.get("candidate") else {
        return gate(
            "blocker",
            format!(
                "Next edit: unblock ncu for {kernel} ({}) and rerun ncu_digest — because without counters only the harness timing above is evidence.",
                blocker.unwrap_or("no candidate counters")
            ),
        );
    };
    // Gate 3: a slower candidate is reverted or repaired.
    let base = summaries.get("baseline");
    let (bt, ct, source) = match (
        base_h.and_then(|h| h.time_us),
        cand_h.and_then(|h| h.time_us),
    ) {
        (Some(b), Some(c)) => (Some(b), Some(c), "harness"),
        _ => (
            base.and_then(|b| b.facts.get("duration_us").copied()),
            cand.facts.get("duration_us").copied(),
            "ncu duration (no harness timing)",
        ),
    };
    if let (Some(b), Some(c)) = (bt, ct)
        && b > 0.0
        && (c - b) / b * 100.0 > rules.thresholds.noise_band_pct
    {
        let worst = base
            .map(|b| digest::largest_adverse_move(&b.facts, &cand.facts))
            .unwrap_or_default();
        return gate(
            "regression",
            format!(
                "Next edit: revert or repair the candidate change to {kernel} — because the {source} says it is slower: {} → {} us (+{}%){}.",
                rules::fmt_num(b),
                rules::fmt_num(c),
                rules::fmt_num((c - b) / b * 100.0),
                if worst.is_empty() {
                    String::new()
                } else {
                    format!("; largest adverse counter move: {worst}")
                }
            ),
        );
    }
    let class = cand_report
        .map(|r| r.bound_class.clone())
        .unwrap_or_else(|| rules::classify(rules, &cand.facts));
    let limiter = pick_limiter(&cand.facts);
    let cx = rules::Context {
        kernel: &kernel,
        language,
        limiter,
    };
    rules::choose(
        rules,
        &class,
        &cand.facts,
        base.map(|b| &b.facts),
        &cand.rules,
        &cx,
    )
}

/// The occupancy limiter an edit should name: among tied limiters, blocks-per-SM
/// first when blocks are small (fewer than 4 warps), then registers, shared memory, warps.
pub fn pick_limiter(f: &BTreeMap<String, f64>) -> Option<&'static str> {
    let names = metrics::limiter_names(f);
    let small_blocks = f.get("warps_per_block").is_some_and(|w| *w < 4.0);
    let order: &[&str] = if small_blocks {
        &[
            "blocks per SM",
            "registers",
            "shared memory",
            "warps",
            "barriers",
        ]
    } else {
        &[
            "registers",
            "shared memory",
            "warps",
            "blocks per SM",
            "barriers",
        ]
    };
    order.iter().find(|n| names.contains(n)).copied()
}

/// A kernel name short enough for a sentence: the one shortener of every tool.
pub use vllm_sota_core::kname::short as short_kernel;

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> BTreeMap<u64, LaunchData> {
        // Three launches of `k` (durations 5, 1, 3 us) and one of `other`.
        let text = "\"ID\",\"Kernel Name\",\"gpu__time_duration.sum\"\n\"\",\"\",\"us\"\n\"0\",\"k\",\"5\"\n\"1\",\"other\",\"9\"\n\"2\",\"k\",\"1\"\n\"3\",\"k\",\"3\"\n";
        csvpage::parse_page(Path::new("p.csv"), text)
            .unwrap()
            .launches
    }

    #[test]
    fn launch_selection_by_median_position_and_id() {
        let l = page();
        let re = regex::Regex::new("^k$").unwrap();
        let (m, listed) = select_launch(&l, &re, None, "baseline").unwrap();
        assert_eq!(m.id, 3, "median duration of 5, 1, 3 us is launch 3");
        assert_eq!(
            listed,
            vec![(0, Some(5000.0)), (2, Some(1000.0)), (3, Some(3000.0))]
        );
        assert_eq!(select_launch(&l, &re, Some("first"), "b").unwrap().0.id, 0);
        assert_eq!(select_launch(&l, &re, Some("last"), "b").unwrap().0.id, 3);
        assert_eq!(select_launch(&l, &re, Some("1"), "b").unwrap().0.id, 2);
        assert_eq!(select_launch(&l, &re, Some("id:2"), "b").unwrap().0.id, 2);
        let err = select_launch(&l, &re, Some("id:1"), "candidate")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("candidate: launch id 1 is not among the matching launches [0, 2, 3]"),
            "{err}"
        );
        let err = select_launch(&l, &re, Some("7"), "b")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("launch index 7 but only 3 launches match"),
            "{err}"
        );
        assert!(select_launch(&l, &re, Some("middle"), "b").is_err());
    }
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn request_and_report_schemas_are_objects_with_described_fields() {
        let req = serde_json::to_value(schemars::schema_for!(super::NcuDigestRequest)).unwrap();
        assert_eq!(req["type"], "object");
        let props = req["properties"].as_object().unwrap();
        for f in [
            "version",
            "kernel_regex",
            "capture",
            "import",
            "campaign_dir",
            "kernel_share_pct",
            "gap_pct",
        ] {
            assert!(props.contains_key(f), "missing {f}");
        }
        assert!(
            props["kernel_regex"]["description"]
                .as_str()
                .unwrap()
                .contains("regex")
        );
        assert_eq!(
            req["required"],
            serde_json::json!(["version", "kernel_regex"])
        );
        let rep = serde_json::to_value(schemars::schema_for!(super::NcuDigestReport)).unwrap();
        assert_eq!(rep["type"], "object");
        assert!(
            rep["properties"]["next_edit"]["description"]
                .as_str()
                .unwrap()
                .contains("Next edit:")
        );
    }
}
