//! The fuse-pattern table (`references/fuse-patterns.json`) and the similarity note.

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitStep {
    #[serde(default)]
    pub family: Option<String>,
    /// Regex (case-insensitive) on the full kernel name.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseSource {
    pub path: String,
    pub origin: String,
    #[serde(default)]
    pub pr: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseEntry {
    pub id: String,
    pub name: String,
    pub frameworks: Vec<String>,
    pub split_signature: Vec<SplitStep>,
    pub fused_signature: Vec<String>,
    /// Kernels allowed between consecutive split steps on the stream (default 0 = adjacent).
    #[serde(default)]
    pub max_between: usize,
    pub source: FuseSource,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    entries: Vec<FuseEntry>,
}

struct CompiledStep {
    family: Option<usize>,
    name: Option<Regex>,
}

pub struct FuseCatalog {
    pub entries: Vec<FuseEntry>,
    split: Vec<Vec<CompiledStep>>,
    fused: Vec<Vec<Regex>>,
}

impl FuseCatalog {
    pub fn from_json(text: &str, source: &str, classifier: &Classifier) -> Result<Self> {
        let f: CatalogFile = serde_json::from_str(text)
            .with_context(|| format!("{source}: not a fuse-pattern catalog"))?;
        let mut split = Vec::new();
        let mut fused = Vec::new();
        for e in &f.entries {
            let mut steps = Vec::new();
            for st in &e.split_signature {
                let family = match &st.family {
                    Some(fam) => Some(
                        classifier
                            .families
                            .iter()
                            .position(|x| &x.name == fam)
                            .or((fam == "other").then_some(classifier.families.len()))
                            .with_context(|| {
                                format!("{source}: entry {}: unknown family {fam:?}", e.id)
                            })?,
                    ),
                    None => None,
                };
                let name =
                    match &st.name {
                        Some(r) => Some(Regex::new(&format!("(?i){r}")).with_context(|| {
                            format!("{source}: entry {}: bad regex {r:?}", e.id)
                        })?),
                        None => None,
                    };
                anyhow::ensure!(
                    family.is_some() || name.is_some(),
                    "{source}: entry {}: a split step needs a family or a name",
                    e.id
                );
                steps.push(CompiledStep { family, name });
            }
            anyhow::ensure!(
                !steps.is_empty(),
                "{source}: entry {}: empty split_signature",
                e.id
            );
            let mut fr = Vec::new();
            for r in &e.fused_signature {
                fr.push(
                    Regex::new(&format!("(?i){r}"))
                        .with_context(|| format!("{source}: entry {}: bad regex {r:?}", e.id))?,
                );
            }
            split.push(steps);
            fused.push(fr);
        }
        Ok(Self {
            entries: f.entries,
            split,
            fused,
        })
    }

    pub fn load(classifier: &Classifier) -> Result<Self> {
        let (text, source) = vllm_sota_core::refs::load(
            "fuse-patterns.json",
            Some(include_str!("../../../../references/fuse-patterns.json")),
        )?;
        Self::from_json(&text, &source, classifier)
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FuseRow {
    pub id: String,
    pub pattern: String,
    /// `already fused`, `split present`, `both` (fused and split sites), or `not applicable`.
    pub status: String,
    pub evidence_kernels: Vec<String>,
    /// Adjacent split occurrences found (on one stream).
    pub split_occurrences: u64,
    /// GPU time of the split kernels (the time a fusion would act on), share of stage GPU time.
    pub split_share_pct: f64,
    pub fused_share_pct: f64,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SimilarityNote {
    pub level: String,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FuseTable {
    pub rows: Vec<FuseRow>,
    pub not_applicable: Vec<String>,
    pub similarity: Vec<SimilarityNote>,
    pub note: String,
}

/// What a pattern step looks at depends only on the kernel name: the stage's distinct names,
/// numbered densely (first appearance) and classified once.
struct NameInfo {
    family: usize,
    canonical: String,
    total_ns: i64,
}

/// One stream's kernels in time order, as (kernel, dense name) columns.
struct StreamSeq {
    kernels: Vec<u32>,
    names: Vec<u32>,
}

/// The stage's distinct kernel names and each stream's SM-kernel sequence over them.
fn stage_sequences(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
) -> (Vec<NameInfo>, Vec<StreamSeq>) {
    let s = sk.store;
    let k = &s.kernels;
    let mut dense_of_name = vec![NONE; s.names.len()];
    let mut names: Vec<NameInfo> = Vec::new();
    for &i in &sk.kernels {
        let n = k.name[i as usize] as usize;
        if dense_of_name[n] == NONE {
            dense_of_name[n] = names.len() as u32;
            let canonical = canonical_name(s.name(n as NameId));
            names.push(NameInfo {
                family: sk.family_index(classifier, &canonical),
                canonical,
                total_ns: 0,
            });
        }
        names[dense_of_name[n] as usize].total_ns += k.dur_ns[i as usize];
    }
    let mut stream_slot: FxHashMap<i64, usize> = FxHashMap::default();
    let mut streams: Vec<StreamSeq> = Vec::new();
    for &i in &sk.kernels {
        // memcpy/memset on copy engines are not part of the SM kernel chain
        if k.kind[i as usize] == GpuKind::Kernel {
            let slot = *stream_slot.entry(k.stream[i as usize]).or_insert_with(|| {
                streams.push(StreamSeq {
                    kernels: Vec::new(),
                    names: Vec::new(),
                });
                streams.len() - 1
            });
            streams[slot].kernels.push(i);
            streams[slot]
                .names
                .push(dense_of_name[k.name[i as usize] as usize]);
        }
    }
    (names, streams)
}

/// One catalog entry's split chain over the stage's streams.
#[derive(Default)]
struct SplitScan {
    /// Full chains matched by name.
    occurrences: u64,
    /// GPU time of their kernels, in total and per dense name (None: never part of one).
    split_ns: i64,
    split_by_name: Vec<Option<i64>>,
    /// Longest family-level prefix of the chain, and full family-level chains whose names
    /// do not match.
    best_partial: usize,
    family_only_full: u64,
}

/// Find the split chain `steps` (step j+1 within `gap` kernels after step j on one stream).
fn scan_split(
    steps: &[CompiledStep],
    gap: usize,
    names: &[NameInfo],
    streams: &[StreamSeq],
    dur_ns: &[i64],
) -> SplitScan {
    // (matches by name, matches by family) per step and dense name: [step * names + name].
    let step_matches: Vec<(bool, bool)> = steps
        .iter()
        .flat_map(|st| {
            names.iter().map(move |info| {
                let fam_ok = st.family.map(|f| f == info.family).unwrap_or(false);
                let fam_gate = st.family.map(|f| f == info.family).unwrap_or(true);
                let name_ok = st
                    .name
                    .as_ref()
                    .map(|r| r.is_match(&info.canonical))
                    .unwrap_or(true);
                (fam_gate && name_ok, fam_ok)
            })
        })
        .collect();
    let step_match = |j: usize, d: u32| step_matches[j * names.len() + d as usize];
    let mut scan = SplitScan {
        split_by_name: vec![None; names.len()],
        ..SplitScan::default()
    };
    let mut picked: Vec<usize> = Vec::new();
    for seq in streams {
        let seq_names = &seq.names[..];
        // Positions of the longest chain of pattern steps starting at seq[i] (into
        // `picked`): step j+1 within `gap` kernels after step j, matched by name (exact)
        // or by family only.
        let chain = |i: usize, exact: bool, picked: &mut Vec<usize>| {
            picked.clear();
            let mut pos = i;
            for j in 0..steps.len() {
                let (from, lim) = if j == 0 {
                    (i, i + 1)
                } else {
                    (pos + 1, (pos + 2 + gap).min(seq_names.len()))
                };
                let hit = |q: usize| {
                    let (by_name, by_family) = step_match(j, seq_names[q]);
                    if exact { by_name } else { by_family }
                };
                match (from..lim).find(|&q| hit(q)) {
                    Some(q) => {
                        picked.push(q);
                        pos = q;
                    }
                    None => break,
                }
            }
            picked.len()
        };
        let mut i = 0;
        while i < seq_names.len() {
            let (first_by_name, first_by_family) = step_match(0, seq_names[i]);
            // Most positions start neither chain: both would be empty.
            if !first_by_name && !first_by_family {
                i += 1;
                continue;
            }
            if first_by_name && chain(i, true, &mut picked) == steps.len() {
                scan.occurrences += 1;
                for &q in &picked {
                    let kk = seq.kernels[q] as usize;
                    scan.split_ns += dur_ns[kk];
                    *scan.split_by_name[seq_names[q] as usize].get_or_insert(0) += dur_ns[kk];
                }
                i = picked[picked.len() - 1] + 1;
                continue;
            }
            // Family-level chain (names ignored) for the similarity note.
            let fam_prefix = if first_by_family {
                chain(i, false, &mut picked)
            } else {
                0
            };
            if fam_prefix == steps.len() && steps.iter().any(|s| s.name.is_some()) {
                scan.family_only_full += 1;
            }
            scan.best_partial = scan.best_partial.max(fam_prefix);
            i += 1;
        }
    }
    scan
}

/// The similarity note of a pattern that is neither fused nor split in the stage: its
/// families occur adjacently (all steps, or most of them), its names do not.
fn similarity_note(e: &FuseEntry, steps: usize, scan: &SplitScan) -> Option<SimilarityNote> {
    if scan.family_only_full > 0 {
        Some(SimilarityNote {
            level: "high".into(),
            pattern: e.name.clone(),
            reason: format!(
                "{} adjacent runs match the pattern's kernel families ({}) on one stream, but not its kernel names",
                scan.family_only_full,
                e.split_signature
                    .iter()
                    .map(|s| s
                        .family
                        .clone()
                        .unwrap_or_else(|| s.name.clone().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        })
    } else if scan.best_partial >= 2 && scan.best_partial < steps {
        Some(SimilarityNote {
            level: if scan.best_partial + 1 == steps {
                "medium".into()
            } else {
                "low".into()
            },
            pattern: e.name.clone(),
            reason: format!(
                "{} of {steps} steps of the split chain occur adjacently by family",
                scan.best_partial
            ),
        })
    } else {
        None
    }
}

/// The evidence kernels of a row: split names, then fused names, each in name order before
/// the stable sort by time (equal times keep a fixed order; hash-map order made them vary
/// between runs); the four heaviest, with their share of stage time.
fn evidence_kernels(
    split_names: FxHashMap<String, i64>,
    fused_names: FxHashMap<String, i64>,
    total: i64,
) -> Vec<String> {
    let mut split_names: Vec<(String, i64)> = split_names.into_iter().collect();
    split_names.sort_unstable();
    let mut fused_names: Vec<(String, i64)> = fused_names.into_iter().collect();
    fused_names.sort_unstable();
    let mut ev: Vec<(String, i64)> = split_names.into_iter().chain(fused_names).collect();
    ev.sort_by_key(|x| std::cmp::Reverse(x.1));
    ev.dedup_by(|a, b| a.0 == b.0);
    ev.into_iter()
        .take(4)
        .map(|x| format!("{} ({:.1}%)", x.0, 100.0 * x.1 as f64 / total as f64))
        .collect()
}

/// Fuse-pattern table: adjacency on each stream's time-ordered kernel sequence.
pub fn fuse_table(
    sk: &StageKernels<'_>,
    classifier: &Classifier,
    catalog: &FuseCatalog,
    framework: &str,
) -> FuseTable {
    let total = sk.total_ns().max(1);
    let (names, streams) = stage_sequences(sk, classifier);
    let mut short_names: Vec<Option<String>> = vec![None; names.len()];
    let mut short_of = |d: usize| -> String {
        short_names[d]
            .get_or_insert_with(|| short_name(&names[d].canonical))
            .clone()
    };
    let mut rows = Vec::new();
    let mut not_applicable = Vec::new();
    let mut similarity = Vec::new();
    for (ei, e) in catalog.entries.iter().enumerate() {
        let applies =
            e.frameworks.iter().any(|f| f == "any" || f == framework) || framework == "pytorch";
        // fused evidence
        let mut fused_t = 0i64;
        let mut fused_names: FxHashMap<String, i64> = FxHashMap::default();
        for (d, info) in names.iter().enumerate() {
            if catalog.fused[ei]
                .iter()
                .any(|r| r.is_match(&info.canonical))
            {
                fused_t += info.total_ns;
                *fused_names.entry(short_of(d)).or_default() += info.total_ns;
            }
        }
        // split evidence: adjacent occurrences
        let steps = &catalog.split[ei];
        let scan = scan_split(
            steps,
            e.max_between,
            &names,
            &streams,
            &sk.store.kernels.dur_ns,
        );
        let mut split_names: FxHashMap<String, i64> = FxHashMap::default();
        for (d, t) in scan.split_by_name.iter().enumerate() {
            if let Some(t) = t {
                *split_names.entry(short_of(d)).or_default() += t;
            }
        }
        let status = match (fused_t > 0, scan.occurrences > 0) {
            (true, true) => "both",
            (true, false) => "already fused",
            (false, true) => "split present",
            (false, false) => "not applicable",
        };
        if status == "not applicable" {
            not_applicable.push(e.id.clone());
            if applies && steps.len() >= 2 {
                similarity.extend(similarity_note(e, steps.len(), &scan));
            }
            continue;
        }
        let src = match &e.source.pr {
            Some(pr) => format!("{} ({}, {pr})", e.source.path, e.source.origin),
            None => format!("{} ({})", e.source.path, e.source.origin),
        };
        rows.push(FuseRow {
            id: e.id.clone(),
            pattern: e.name.clone(),
            status: status.into(),
            evidence_kernels: evidence_kernels(split_names, fused_names, total),
            split_occurrences: scan.occurrences,
            split_share_pct: 100.0 * scan.split_ns as f64 / total as f64,
            fused_share_pct: 100.0 * fused_t as f64 / total as f64,
            source: if applies {
                src
            } else {
                format!("{src} — not a {framework} path")
            },
        });
    }
    rows.sort_by(|a, b| {
        let rank = |r: &FuseRow| {
            if r.status == "split present" || r.status == "both" {
                0
            } else {
                1
            }
        };
        rank(a)
            .cmp(&rank(b))
            .then(b.split_share_pct.total_cmp(&a.split_share_pct))
            .then(b.fused_share_pct.total_cmp(&a.fused_share_pct))
    });
    let order = |l: &str| match l {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    similarity.sort_by_key(|n| order(&n.level));
    similarity.truncate(3);
    FuseTable {
        rows,
        not_applicable,
        similarity,
        note: "split = the pattern's kernels occur back to back on one stream (adjacency, not keyword bags); layer boundaries are not checked".into(),
    }
}
