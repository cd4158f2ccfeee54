//! `profile_tables`: the MCP/CLI tool over the store and the tables.

use crate::classify::Classifier;
use crate::discover::{
    ChosenTrace, Selection, SkippedTrace, Stage, detect_framework, framework_label, select_traces,
};
use crate::graph::{GraphMap, GraphMapSummary, map_graph_kernels};
use crate::hoststall::{HostStallGroup, HostStalls, host_stalls, render_host_stalls_md};
use crate::store::TraceStore;
use crate::tables::*;
use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vllm_sota_core::Framework;
use vllm_sota_core::md::{Align, Table};
use vllm_sota_core::tool::{Tool, ToolContext};

pub struct ProfileTables;

fn default_cutoff() -> f64 {
    1.0
}
fn default_top() -> usize {
    15
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileTablesRequest {
    /// Trace to analyze: a `.json`/`.json.gz` torch-profiler trace, a directory of traces (the GPU
    /// worker's trace is chosen over vLLM's `*.async_llm.*` API-server trace; rank 0 over other
    /// ranks), or a stage directory holding `prefill/` and `decode/`.
    pub trace: PathBuf,
    /// Mapping trace of the same workload without CUDA graphs (vLLM `--enforce-eager`): file or
    /// stage directory. Graph-replayed kernels get the CPU op and source of their eager twin.
    #[serde(default)]
    pub mapping_trace: Option<PathBuf>,
    /// A competitor's trace (file or stage directory) of the same workload, for the per-family
    /// ms-per-step comparison and analysis/root-cause.md.
    #[serde(default)]
    pub competitor_trace: Option<PathBuf>,
    /// Engine steps in `trace`'s profiler window, when the trace has no step annotations
    /// (vLLM `execute_context_*` and `execute_model_step_*` / `ProfilerStep#*` are counted automatically).
    #[serde(default)]
    pub steps: Option<u64>,
    /// Engine steps in `competitor_trace`'s window (same rule); without annotations or this
    /// field, the comparison falls back to per-trace totals and says so.
    #[serde(default)]
    pub competitor_steps: Option<u64>,
    /// Competitor framework label (`sglang`, `tensorrt_llm`, `tokenspeed`); detected when omitted.
    #[serde(default)]
    pub competitor_framework: Option<Framework>,
    /// Framework of `trace` (`vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`); detected from the trace when omitted.
    #[serde(default)]
    pub framework: Option<Framework>,
    /// Kernel rows below this share (%) of stage GPU time are hidden (default 1.0).
    #[serde(default = "default_cutoff")]
    pub share_cutoff_pct: f64,
    /// Rows per table in this tool's result (the files hold all rows above the cutoff). Default 15.
    #[serde(default = "default_top")]
    pub top_rows: usize,
    /// Campaign run directory: outputs go to profiles/round-N/<framework>/<stage>/tables.md + .json
    /// and (with a competitor) analysis/round-N/root-cause.md + analysis/root-cause.md.
    #[serde(default)]
    pub campaign_dir: Option<PathBuf>,
    /// Round number (with campaign_dir; 0 = baseline).
    #[serde(default)]
    pub round: Option<u32>,
    /// Output directory when there is no campaign: <out_dir>/<stage>/tables.md + .json.
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
}

impl ProfileTablesRequest {
    /// A request for `trace` (and its eager mapping twin) with every other field at its
    /// default: no competitor, steps and framework detected, 1% cutoff, 15 rows, no files.
    pub fn for_trace(trace: PathBuf, mapping_trace: Option<PathBuf>) -> Self {
        ProfileTablesRequest {
            trace,
            mapping_trace,
            competitor_trace: None,
            competitor_framework: None,
            steps: None,
            competitor_steps: None,
            framework: None,
            share_cutoff_pct: default_cutoff(),
            top_rows: default_top(),
            campaign_dir: None,
            round: None,
            out_dir: None,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StageReport {
    pub stage: String,
    pub trace: PathBuf,
    pub mapping_trace: Option<PathBuf>,
    pub events: u64,
    pub kernels: u64,
    pub total_gpu_ms: f64,
    /// Top kernel rows (the file holds all rows above the cutoff).
    pub kernel_rows: Vec<KernelRow>,
    pub families: Vec<FamilyRow>,
    pub hidden_rows: usize,
    pub hidden_share_pct: f64,
    pub graph_note: Option<String>,
    pub graph_map: Option<GraphMapSummary>,
    pub overlap: OverlapSummary,
    pub overlap_rows: Vec<OverlapRow>,
    /// CPU ops that hold the host while the GPU idles inside steps, heaviest first.
    pub host_stalls: Vec<HostStallGroup>,
    pub fuse_rows: Vec<FuseRow>,
    pub similarity: Vec<SimilarityNote>,
    pub comparison: Option<Comparison>,
    pub tables_md: Option<PathBuf>,
    pub tables_json: Option<PathBuf>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OverlapSummary {
    pub wall_ms: f64,
    pub gpu_busy_ms: f64,
    pub busy_pct_of_wall: f64,
    pub idle_gaps: u64,
    pub largest_gap_us: f64,
    pub launch_bound: String,
    pub streams: usize,
    pub exposed_communication_ms: f64,
    pub exposed_memory_ms: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProfileTablesReport {
    pub framework: String,
    pub framework_reason: String,
    pub chosen: Vec<ChosenTrace>,
    pub skipped: Vec<SkippedTrace>,
    pub stages: Vec<StageReport>,
    pub root_cause_md: Option<PathBuf>,
    pub share_cutoff_pct: f64,
}

/// Everything computed for one stage (also written as tables.json).
#[derive(Debug, Serialize)]
pub struct StageTables {
    pub stage: String,
    pub framework: String,
    pub trace: PathBuf,
    pub mapping_trace: Option<PathBuf>,
    pub kernel_table: KernelTable,
    pub overlap_table: OverlapTable,
    pub host_stalls: HostStalls,
    pub fuse_table: FuseTable,
    pub graph_map: Option<GraphMapSummary>,
    pub comparison: Option<Comparison>,
    pub competitor_framework: Option<String>,
}

fn read(path: &Path, ctx: &ToolContext) -> Result<TraceStore> {
    ctx.progress(0.0, None, &format!("reading {}", path.display()));
    let s = crate::reader::read_trace(path)?;
    if s.kernels.is_empty() {
        bail!(
            "trace {} has no GPU kernels ({} events read): it is not a GPU worker trace, or the profiler window \
             held no GPU work (vLLM 0.26 records only `active_iterations` engine steps — 5 by default — so send \
             the workload while the profiler is active)",
            path.display(),
            s.counts.total
        );
    }
    Ok(s)
}

fn pick_stage(sel: &[ChosenTrace], stage: Stage) -> Option<&ChosenTrace> {
    sel.iter()
        .find(|c| c.stage == stage)
        .or_else(|| sel.iter().find(|c| c.stage == Stage::All))
        .or(if sel.len() == 1 { sel.first() } else { None })
}

/// tables.md and tables.json of one stage, in the campaign (profiles/round-N/<framework>/
/// <stage>/) or under `out_dir/<stage>/`; none without either.
fn write_stage_files(
    req: &ProfileTablesRequest,
    fw: &str,
    t: &StageTables,
) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let dir = match (&req.campaign_dir, &req.out_dir) {
        (Some(c), _) => Some(
            vllm_sota_core::layout::CampaignPaths::new(c).profile_stage_dir(
                req.round.unwrap_or(0),
                fw,
                &t.stage,
            ),
        ),
        (None, Some(o)) => Some(o.join(&t.stage)),
        _ => None,
    };
    Ok(match &dir {
        Some(d) => {
            let md = d.join("tables.md");
            let js = d.join("tables.json");
            vllm_sota_core::fsx::write_text(
                &md,
                &render_stage_md(t, req.share_cutoff_pct, usize::MAX),
            )?;
            vllm_sota_core::fsx::write_json(&js, t)?;
            (Some(md), Some(js))
        }
        None => (None, None),
    })
}

/// The tool result's summary of one stage: the top rows of each table and where the files are.
fn stage_report(
    t: &StageTables,
    events: u64,
    top: usize,
    md_path: Option<PathBuf>,
    json_path: Option<PathBuf>,
) -> StageReport {
    StageReport {
        stage: t.stage.clone(),
        trace: t.trace.clone(),
        mapping_trace: t.mapping_trace.clone(),
        events,
        kernels: t.kernel_table.kernel_count,
        total_gpu_ms: t.kernel_table.total_gpu_ms,
        kernel_rows: t.kernel_table.rows.iter().take(top).cloned().collect(),
        families: t.kernel_table.families.iter().take(top).cloned().collect(),
        hidden_rows: t.kernel_table.hidden_rows,
        hidden_share_pct: t.kernel_table.hidden_share_pct,
        graph_note: t.kernel_table.graph_note.clone(),
        graph_map: t.graph_map.clone(),
        overlap: OverlapSummary {
            wall_ms: t.overlap_table.wall_ms,
            gpu_busy_ms: t.overlap_table.gpu_busy_ms,
            busy_pct_of_wall: t.overlap_table.busy_pct_of_wall,
            idle_gaps: t.overlap_table.idle_gaps,
            largest_gap_us: t.overlap_table.largest_gap_us,
            launch_bound: t.overlap_table.launch_bound.clone(),
            streams: t.overlap_table.streams.len(),
            exposed_communication_ms: t.overlap_table.exposed_communication_ms,
            exposed_memory_ms: t.overlap_table.exposed_memory_ms,
        },
        overlap_rows: t.overlap_table.rows.iter().take(top).cloned().collect(),
        host_stalls: t.host_stalls.groups.iter().take(top).cloned().collect(),
        fuse_rows: t.fuse_table.rows.iter().take(top).cloned().collect(),
        similarity: t.fuse_table.similarity.clone(),
        comparison: t.comparison.clone().map(|mut c| {
            c.rows.truncate(top);
            c
        }),
        tables_md: md_path,
        tables_json: json_path,
    }
}

/// root-cause.md when a competitor was compared: in the campaign (one section per
/// competitor, the round's file and the campaign's), or under `out_dir`.
fn write_root_cause(
    req: &ProfileTablesRequest,
    tables: &[StageTables],
    fw: &str,
) -> Result<Option<PathBuf>> {
    if !tables.iter().any(|t| t.comparison.is_some()) {
        return Ok(None);
    }
    let md = render_root_cause(tables, fw);
    let competitor = tables
        .iter()
        .find_map(|t| t.competitor_framework.clone())
        .unwrap_or_else(|| "competitor".into());
    match (&req.campaign_dir, &req.out_dir) {
        (Some(c), _) => {
            let paths = vllm_sota_core::layout::CampaignPaths::new(c);
            let round = req.round.unwrap_or(0);
            // One section per competitor: a call for another competitor keeps the others.
            for p in [paths.round_root_cause(round), paths.root_cause()] {
                let old = std::fs::read_to_string(&p).ok();
                let merged = merge_root_cause(old.as_deref(), &competitor, &md);
                vllm_sota_core::fsx::write_text(&p, &merged)?;
            }
            Ok(Some(paths.round_root_cause(round)))
        }
        (None, Some(o)) => {
            let p = o.join("root-cause.md");
            vllm_sota_core::fsx::write_text(&p, &md)?;
            Ok(Some(p))
        }
        _ => Ok(None),
    }
}

/// Our stage's kernel table against the same stage of the competitor's trace: per-family
/// ms per step, and the competitor's framework (given, else detected).
fn compare_competitor(
    req: &ProfileTablesRequest,
    path: &Path,
    kt: &KernelTable,
    ours_steps: (u64, String),
    classifier: &Classifier,
    ctx: &ToolContext,
) -> Result<(Comparison, &'static str)> {
    ctx.check_cancelled()?;
    let cs = read(path, ctx).with_context(|| "field `competitor_trace`")?;
    let comp_fw = framework_label(req.competitor_framework.or_else(|| detect_framework(&cs).0));
    let csk = StageKernels::heaviest_device(&cs);
    let ckt = kernel_table(&csk, classifier, None, 100.0);
    let theirs_steps = match req.competitor_steps {
        Some(n) => (n.max(1), format!("{n} steps (given)")),
        None => count_steps(&cs),
    };
    Ok((compare(kt, ours_steps, &ckt, theirs_steps), comp_fw))
}

/// The stage's mapping trace (`mapping_trace`, else the eager twin beside the trace,
/// `<stage>-eager/`) and the graph map of our store onto it.
fn stage_mapping(
    map_sel: Option<&Selection>,
    chosen: &ChosenTrace,
    store: &TraceStore,
    classifier: &Classifier,
    ctx: &ToolContext,
) -> Result<(Option<PathBuf>, Option<GraphMap>)> {
    // Without `mapping_trace`, the eager twin beside the trace (`<stage>-eager/`).
    let twin_sel = match (map_sel, crate::discover::eager_twin(&chosen.path)) {
        (None, Some(t)) => Some(select_traces(&t)?),
        _ => None,
    };
    let mapping = map_sel
        .or(twin_sel.as_ref())
        .and_then(|m| pick_stage(&m.chosen, chosen.stage))
        .map(|c| c.path.clone());
    let graph_map: Option<GraphMap> = match &mapping {
        Some(mp) => {
            ctx.check_cancelled()?;
            let eager = read(mp, ctx).with_context(|| "field `mapping_trace`")?;
            Some(map_graph_kernels(store, &eager, classifier))
        }
        None => None,
    };
    Ok((mapping, graph_map))
}

/// Run the whole analysis.
pub fn run_tables(
    req: &ProfileTablesRequest,
    ctx: &ToolContext,
) -> Result<(ProfileTablesReport, Vec<StageTables>)> {
    anyhow::ensure!(
        req.share_cutoff_pct >= 0.0 && req.share_cutoff_pct < 100.0,
        "share_cutoff_pct must be in [0, 100)"
    );
    if req.campaign_dir.is_some() && req.round.is_none() {
        bail!("round is required with campaign_dir (0 = baseline)");
    }
    crate::names::ensure_loaded()?;
    let classifier = Classifier::load()?;
    let catalog = FuseCatalog::load(&classifier)?;
    let sel = select_traces(&req.trace)
        .with_context(|| format!("field `trace` ({})", req.trace.display()))?;
    let map_sel = match &req.mapping_trace {
        Some(p) => Some(
            select_traces(p).with_context(|| format!("field `mapping_trace` ({})", p.display()))?,
        ),
        None => None,
    };
    let comp_sel = match &req.competitor_trace {
        Some(p) => Some(
            select_traces(p)
                .with_context(|| format!("field `competitor_trace` ({})", p.display()))?,
        ),
        None => None,
    };
    let mut framework: Option<(Option<Framework>, String)> = req
        .framework
        .map(|f| (Some(f), "given in the request".to_string()));
    let mut stages = Vec::new();
    let mut tables = Vec::new();
    for chosen in &sel.chosen {
        ctx.check_cancelled()?;
        let store = read(&chosen.path, ctx)?;
        if framework.is_none() {
            framework = Some(detect_framework(&store));
        }
        let fw_id = framework.as_ref().and_then(|f| f.0);
        let fw = framework_label(fw_id);
        let (mapping, graph_map) =
            stage_mapping(map_sel.as_ref(), chosen, &store, &classifier, ctx)?;
        ctx.progress(0.5, None, "tables");
        let sk = StageKernels::heaviest_device(&store);
        let (mut kt, mut ot, ft) = stage_tables(
            &sk,
            &classifier,
            graph_map.as_ref(),
            req.share_cutoff_pct,
            &catalog,
            fw,
        );
        if let Some(n) = kt.graph_note.as_mut() {
            *n = crate::capture::twin_advice(n, fw_id);
        }
        let host_stalls = host_stalls(&sk);
        if let Some(h) = host_stalls.headline() {
            ot.launch_bound = format!("{}; {h}", ot.launch_bound);
        }
        let ours_steps = match req.steps {
            Some(n) => (n.max(1), format!("{n} steps (given)")),
            None => count_steps(&store),
        };
        let events = store.counts.total;
        drop(sk);
        drop(store);
        let (comparison, comp_fw) = match comp_sel
            .as_ref()
            .and_then(|c| pick_stage(&c.chosen, chosen.stage))
        {
            Some(c) => {
                let (cmp, cfw) =
                    compare_competitor(req, &c.path, &kt, ours_steps, &classifier, ctx)?;
                (Some(cmp), Some(cfw))
            }
            None => (None, None),
        };
        tables.push(StageTables {
            stage: chosen.stage.as_str().into(),
            framework: fw.to_string(),
            trace: chosen.path.clone(),
            mapping_trace: mapping,
            kernel_table: kt,
            overlap_table: ot,
            host_stalls,
            fuse_table: ft,
            graph_map: graph_map.as_ref().map(|m| m.summary.clone()),
            comparison,
            competitor_framework: comp_fw.map(String::from),
        });
        let _ = events;
        stages.push(events);
    }
    let (fw, fw_reason) = framework.unwrap_or_else(|| (None, "no trace read".into()));
    let fw = framework_label(fw).to_string();
    // Outputs.
    let mut stage_reports = Vec::new();
    for (t, events) in tables.iter().zip(stages) {
        let (md_path, json_path) = write_stage_files(req, &fw, t)?;
        stage_reports.push(stage_report(t, events, req.top_rows, md_path, json_path));
    }
    let root_cause_md = write_root_cause(req, &tables, &fw)?;
    Ok((
        ProfileTablesReport {
            framework: fw,
            framework_reason: fw_reason,
            chosen: sel.chosen,
            skipped: sel.skipped,
            stages: stage_reports,
            root_cause_md,
            share_cutoff_pct: req.share_cutoff_pct,
        },
        tables,
    ))
}

/// Markdown for one stage: the three tables, similarity note, comparison.
pub fn render_stage_md(t: &StageTables, cutoff: f64, top: usize) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "## {} — {} ({})\n\n",
        t.stage,
        t.framework,
        t.trace.display()
    ));
    if let Some(m) = &t.mapping_trace {
        o.push_str(&format!("Mapping trace (eager twin): {}\n\n", m.display()));
    }
    kernel_md(&mut o, &t.kernel_table, cutoff, top);
    overlap_md(&mut o, &t.overlap_table, cutoff, top);
    o.push_str(&render_host_stalls_md(&t.host_stalls, top));
    fuse_md(&mut o, &t.fuse_table, top);
    if let Some(c) = &t.comparison {
        comparison_md(&mut o, c, t.competitor_framework.as_deref(), top);
    }
    o
}

/// The kernel table section of a stage's markdown.
fn kernel_md(o: &mut String, kt: &KernelTable, cutoff: f64, top: usize) {
    o.push_str(&format!(
        "### Kernel table\n\nStage GPU time {:.2} ms over {} kernel calls ({} memcpy and {} memset apart).\n\n",
        kt.total_gpu_ms, kt.kernel_count, kt.memcpy_count, kt.memset_count
    ));
    let mut t = Table::new(&[
        ("Family", Align::Left),
        ("Kernel", Align::Left),
        ("Calls", Align::Right),
        ("Total ms", Align::Right),
        ("Avg µs", Align::Right),
        ("Share", Align::Right),
        ("Cum.", Align::Right),
        ("CPU op", Align::Left),
        ("Python location", Align::Left),
        ("Attribution", Align::Left),
    ]);
    for r in kt.rows.iter().take(top) {
        let attr = match &r.match_quality {
            Some(q) => format!("{} ({q})", r.attribution),
            None => r.attribution.clone(),
        };
        let loc = match &r.annotation {
            Some(a) => format!("{} [{}]", r.location, a),
            None => r.location.clone(),
        };
        t.row(&[
            r.family.clone(),
            r.kernel.clone(),
            r.calls.to_string(),
            format!("{:.2}", r.total_ms),
            format!("{:.1}", r.avg_us),
            format!("{:.1}%", r.share_pct),
            format!("{:.1}%", r.cumulative_pct),
            r.cpu_op.clone(),
            loc,
            attr,
        ]);
    }
    if kt.rows.is_empty() {
        let none = format!("No kernel rows at or above {cutoff:.1}% share.");
        t.row(&["-", &none, "-", "-", "-", "-", "-", "-", "-", "-"]);
    }
    o.push_str(&t.render());
    o.push_str(&format!(
        "\n{} rows below the {cutoff:.1}% share cutoff are hidden ({:.1}% of stage GPU time).\n",
        kt.hidden_rows, kt.hidden_share_pct
    ));
    if let Some(n) = &kt.graph_note {
        o.push_str(&format!("\n{n}\n"));
    }
    o.push_str("\nFamilies: ");
    o.push_str(
        &kt.families
            .iter()
            .map(|f| format!("{} {:.1}%", f.family, f.share_pct))
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// The overlap-opportunity section of a stage's markdown.
fn overlap_md(o: &mut String, ot: &OverlapTable, cutoff: f64, top: usize) {
    o.push_str("\n\n### Overlap-opportunity table\n\n");
    o.push_str(&format!(
        "Kernel wall {:.2} ms, GPU busy {:.2} ms ({:.1}%), {} idle gaps totalling {:.2} ms (largest {:.1} µs, median {:.1} µs). {}.\n\n",
        ot.wall_ms, ot.gpu_busy_ms, ot.busy_pct_of_wall, ot.idle_gaps, ot.idle_total_ms, ot.largest_gap_us, ot.median_gap_us, ot.launch_bound
    ));
    o.push_str(&format!(
        "Streams: {}. Max concurrent streams {}; multi-stream overlap {:.2} ms. Compute {:.2} ms, communication {:.2} ms (overlapped with compute {:.2}, exposed {:.2}), copy-engine memory {:.2} ms (overlapped {:.2}, exposed {:.2}).\n\n{}\n\n",
        ot.streams.iter().map(|s| format!("{}:{} {:.2} ms/{} kernels", s.device, s.stream, s.busy_ms, s.kernels)).collect::<Vec<_>>().join(", "),
        ot.max_concurrent_streams,
        ot.multi_stream_overlap_ms,
        ot.compute_ms,
        ot.communication_ms,
        ot.compute_comm_overlap_ms,
        ot.exposed_communication_ms,
        ot.memory_ms,
        ot.compute_memory_overlap_ms,
        ot.exposed_memory_ms,
        ot.mode_note
    ));
    let mut t = Table::new(&[
        ("Kernel", Align::Left),
        ("Family", Align::Left),
        ("Class", Align::Left),
        ("Total ms", Align::Right),
        ("Share", Align::Right),
        ("Exposed ms", Align::Right),
        ("Hidden ms", Align::Right),
        ("Dep. risk", Align::Left),
        ("Location", Align::Left),
        ("Recommendation", Align::Left),
    ]);
    for r in ot.rows.iter().take(top) {
        t.row(&[
            r.kernel.as_str(),
            &r.family,
            &r.overlap_class,
            &format!("{:.2}", r.total_ms),
            &format!("{:.1}%", r.share_pct),
            &format!("{:.2}", r.exclusive_ms),
            &format!("{:.2}", r.hidden_ms),
            &r.dependency_risk,
            &r.location,
            &r.recommendation,
        ]);
    }
    if ot.rows.is_empty() {
        let none = format!("No exposed non-compute kernel at or above {cutoff:.1}% share.");
        t.row(&[&none, "-", "-", "-", "-", "-", "-", "-", "-", "-"]);
    }
    o.push_str(&t.render());
}

/// The fuse-pattern section (and the similarity note) of a stage's markdown.
fn fuse_md(o: &mut String, ft: &FuseTable, top: usize) {
    o.push_str("\n### Fuse-pattern table\n\n");
    let mut t = Table::new(&[
        ("Pattern", Align::Left),
        ("Status", Align::Left),
        ("Evidence kernels", Align::Left),
        ("Split occurrences", Align::Right),
        ("Split share", Align::Right),
        ("Fused share", Align::Right),
        ("Source", Align::Left),
    ]);
    for r in ft.rows.iter().take(top) {
        t.row(&[
            r.pattern.clone(),
            r.status.clone(),
            r.evidence_kernels.join("<br>"),
            r.split_occurrences.to_string(),
            format!("{:.1}%", r.split_share_pct),
            format!("{:.1}%", r.fused_share_pct),
            r.source.clone(),
        ]);
    }
    if ft.rows.is_empty() {
        t.row(&[
            "No catalog pattern matched this trace.",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]);
    }
    o.push_str(&t.render());
    o.push_str(&format!(
        "\nNot applicable (no split or fused kernels): {}. {}.\n",
        ft.not_applicable.join(", "),
        ft.note
    ));
    if !ft.similarity.is_empty() {
        o.push_str("\n### Similarity note (heuristic, not part of the tables)\n\n");
        for n in &ft.similarity {
            o.push_str(&format!(
                "- **{}** — {}: {}\n",
                n.level, n.pattern, n.reason
            ));
        }
    }
}

/// The cross-trace comparison section of a stage's markdown.
fn comparison_md(o: &mut String, c: &Comparison, competitor: Option<&str>, top: usize) {
    o.push_str(&format!(
        "\n### Cross-trace comparison (vs {})\n\nPer step: ours {:.3} ms, theirs {:.3} ms ({}).\n\n",
        competitor.unwrap_or("competitor"),
        c.ours_ms_per_step,
        c.theirs_ms_per_step,
        c.step_basis
    ));
    let mut t = Table::new(&[
        ("Family", Align::Left),
        ("Ours ms/step", Align::Right),
        ("Theirs ms/step", Align::Right),
        ("Diff ms/step", Align::Right),
    ]);
    for r in c.rows.iter().take(top) {
        family_diff_row(&mut t, r);
    }
    o.push_str(&t.render());
}

/// One family row of a per-step comparison: ours, theirs, signed difference.
fn family_diff_row(t: &mut Table, r: &CompareRow) {
    t.row(&[
        r.family.clone(),
        format!("{:.3}", r.ours_ms_per_step),
        format!("{:.3}", r.theirs_ms_per_step),
        format!("{:+.3}", r.diff_ms_per_step),
    ]);
}

const ROOT_CAUSE_TITLE: &str = "# Root cause across competitors (profile_tables)";

/// `existing` root-cause.md with `competitor`'s section replaced by `md` (added when new);
/// the sections of every other competitor are kept. A file without sections (a placeholder,
/// or written by hand) is replaced.
pub(crate) fn merge_root_cause(existing: Option<&str>, competitor: &str, md: &str) -> String {
    let begin = |c: &str| format!("<!-- competitor: {c} -->");
    let end = |c: &str| format!("<!-- end competitor: {c} -->");
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut rest = existing.unwrap_or("");
    while let Some(i) = rest.find("<!-- competitor: ") {
        let after = &rest[i + "<!-- competitor: ".len()..];
        let Some(j) = after.find(" -->") else { break };
        let name = after[..j].to_string();
        let body_start = &after[j + " -->".len()..];
        let Some(k) = body_start.find(&end(&name)) else {
            break;
        };
        sections.push((name.clone(), body_start[..k].trim().to_string()));
        rest = &body_start[k + end(&name).len()..];
    }
    let body = md.replacen(
        "# Root cause (profile_tables)",
        &format!("## Against {competitor}"),
        1,
    );
    match sections.iter_mut().find(|(n, _)| n == competitor) {
        Some(sec) => sec.1 = body.trim().to_string(),
        None => sections.push((competitor.to_string(), body.trim().to_string())),
    }
    let mut o = format!("{ROOT_CAUSE_TITLE}\n\n");
    for (name, text) in &sections {
        o.push_str(&format!("{}\n{text}\n{}\n\n", begin(name), end(name)));
    }
    o
}

/// analysis/root-cause.md from the stages that have a comparison.
pub(crate) fn render_root_cause(tables: &[StageTables], framework: &str) -> String {
    let mut o = String::from("# Root cause (profile_tables)\n\n");
    let mut worst: Option<(&StageTables, f64)> = None;
    for t in tables {
        if let Some(c) = &t.comparison {
            let gap = c.ours_ms_per_step - c.theirs_ms_per_step;
            o.push_str(&format!(
                "- {}: {framework} {:.3} ms/step of GPU time vs {} {:.3} ms/step ({:+.3} ms/step; {}).\n",
                t.stage,
                c.ours_ms_per_step,
                t.competitor_framework.as_deref().unwrap_or("competitor"),
                c.theirs_ms_per_step,
                gap,
                c.step_basis
            ));
            if worst.map(|w| gap > w.1).unwrap_or(true) {
                worst = Some((t, gap));
            }
        }
    }
    if let Some((t, gap)) = worst {
        let c = t.comparison.as_ref().unwrap();
        o.push_str(&format!(
            "\n## Slower stage: {} ({:+.3} ms/step)\n\nFamilies that explain the gap (positive = {framework} spends more):\n\n",
            t.stage, gap
        ));
        let ours = format!("{framework} ms/step");
        let mut gaps = Table::new(&[
            ("Family", Align::Left),
            (&ours, Align::Right),
            ("competitor ms/step", Align::Right),
            ("Diff", Align::Right),
        ]);
        for r in c
            .rows
            .iter()
            .filter(|r| r.diff_ms_per_step.abs() >= 0.001)
            .take(8)
        {
            family_diff_row(&mut gaps, r);
        }
        o.push_str(&gaps.render());
        o.push_str("\n## Plausible patch targets\n\n");
        let mut n = 0;
        for r in c.rows.iter().filter(|r| r.diff_ms_per_step > 0.0).take(4) {
            for k in t
                .kernel_table
                .rows
                .iter()
                .filter(|k| k.family == r.family)
                .take(2)
            {
                o.push_str(&format!(
                    "- {} ({:+.3} ms/step): kernel `{}` ({:.1}% of stage GPU time), launched by `{}` at `{}`{}\n",
                    r.family,
                    r.diff_ms_per_step,
                    k.kernel,
                    k.share_pct,
                    k.cpu_op,
                    k.location,
                    if k.attribution == "graph_unattributed" { " (graph-replayed: the location is the graph launch; add a mapping trace)" } else { "" }
                ));
                n += 1;
            }
        }
        if n == 0 {
            o.push_str("- none: no family where we spend more GPU time per step.\n");
        }
        let fused: Vec<&FuseRow> = t
            .fuse_table
            .rows
            .iter()
            .filter(|r| r.status == "split present")
            .take(3)
            .collect();
        if !fused.is_empty() {
            o.push_str("\nSplit fuse patterns present in this stage:\n\n");
            for r in fused {
                o.push_str(&format!(
                    "- {} ({:.1}% of stage GPU time): {}\n",
                    r.pattern, r.split_share_pct, r.source
                ));
            }
        }
    }
    o
}

impl Tool for ProfileTables {
    const NAME: &'static str = "profile_tables";
    const DESCRIPTION: &'static str = "Read torch-profiler traces (vLLM, SGLang, TensorRT-LLM, TokenSpeed; .json/.json.gz, a directory or a prefill/+decode/ stage directory) in one streaming pass and build, per stage, the kernel table (family, calls, ms, share, cumulative share, launching CPU op and Python source), the overlap-opportunity table (GPU busy vs wall, idle gaps, per-stream busy, exposed communication/memcpy, kernels that could be hidden, dependency risk) and the fuse-pattern table (catalog patterns matched by same-stream adjacency: already fused / split present). Give `mapping_trace` (an --enforce-eager capture of the same workload) to attribute CUDA-graph-replayed kernels to their eager CPU ops and source lines; give `competitor_trace` for a per-family ms/step comparison that writes analysis/root-cause.md. Writes profiles/round-N/<framework>/<stage>/tables.md + tables.json with campaign_dir + round; returns the top rows and file paths.";
    type Request = ProfileTablesRequest;
    type Report = ProfileTablesReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        Ok(run_tables(&request, ctx)?.0)
    }

    fn markdown(r: &Self::Report) -> String {
        let mut o = format!(
            "# Profile tables — {} ({})\n\n",
            r.framework, r.framework_reason
        );
        for c in &r.chosen {
            o.push_str(&format!("- {}: {}\n", c.stage.as_str(), c.path.display()));
        }
        for s in &r.skipped {
            o.push_str(&format!("- skipped {}: {}\n", s.path.display(), s.reason));
        }
        for s in &r.stages {
            o.push_str(&format!(
                "\n## {} — {:.2} ms GPU, {} kernels, {} events\n\n",
                s.stage, s.total_gpu_ms, s.kernels, s.events
            ));
            let mut t = Table::new(&[
                ("Family", Align::Left),
                ("Kernel", Align::Left),
                ("Calls", Align::Right),
                ("Total ms", Align::Right),
                ("Share", Align::Right),
                ("Cum.", Align::Right),
                ("CPU op", Align::Left),
                ("Location", Align::Left),
                ("Attribution", Align::Left),
            ]);
            for k in &s.kernel_rows {
                t.row(&[
                    k.family.as_str(),
                    &k.kernel,
                    &k.calls.to_string(),
                    &format!("{:.2}", k.total_ms),
                    &format!("{:.1}%", k.share_pct),
                    &format!("{:.1}%", k.cumulative_pct),
                    &k.cpu_op,
                    &k.location,
                    &k.attribution,
                ]);
            }
            o.push_str(&t.render());
            o.push_str(&format!(
                "\n{} rows below {:.1}% hidden ({:.1}% of GPU time).\n",
                s.hidden_rows, r.share_cutoff_pct, s.hidden_share_pct
            ));
            if let Some(n) = &s.graph_note {
                o.push_str(&format!("\n{n}\n"));
            }
            o.push_str(&format!(
                "\nOverlap: busy {:.1}% of {:.2} ms wall, {} idle gaps (largest {:.1} µs); {}; exposed comm {:.2} ms, exposed memcpy {:.2} ms.\n",
                s.overlap.busy_pct_of_wall, s.overlap.wall_ms, s.overlap.idle_gaps, s.overlap.largest_gap_us, s.overlap.launch_bound,
                s.overlap.exposed_communication_ms, s.overlap.exposed_memory_ms
            ));
            for f in &s.fuse_rows {
                o.push_str(&format!(
                    "- fuse: {} — {} ({:.1}% split, {:.1}% fused)\n",
                    f.pattern, f.status, f.split_share_pct, f.fused_share_pct
                ));
            }
            for n in &s.similarity {
                o.push_str(&format!(
                    "- similarity {}: {} — {}\n",
                    n.level, n.pattern, n.reason
                ));
            }
            if let Some(p) = &s.tables_md {
                o.push_str(&format!("\nFull tables: {}\n", p.display()));
            }
        }
        if let Some(p) = &r.root_cause_md {
            o.push_str(&format!("\nRoot cause: {}\n", p.display()));
        }
        o
    }
}

#[cfg(test)]
mod root_cause_tests {
    use super::merge_root_cause;

    #[test]
    fn a_second_competitor_keeps_the_first_and_a_rerun_replaces_its_own() {
        let sg = "# Root cause (profile_tables)\n\n- decode: vllm 10.000 ms/step vs sglang 9.000\n";
        let trt = "# Root cause (profile_tables)\n\n- decode: vllm 10.000 ms/step vs tensorrt_llm 8.000\n";
        let one = merge_root_cause(Some("<!-- placeholder -->\n# root-cause\n"), "sglang", sg);
        assert!(!one.contains("placeholder"), "{one}");
        let two = merge_root_cause(Some(&one), "tensorrt_llm", trt);
        assert!(
            two.contains("## Against sglang") && two.contains("vs sglang 9.000"),
            "{two}"
        );
        assert!(
            two.contains("## Against tensorrt_llm") && two.contains("vs tensorrt_llm 8.000"),
            "{two}"
        );
        let again = merge_root_cause(Some(&two), "sglang", &sg.replace("9.000", "9.500"));
        assert!(
            again.contains("vs sglang 9.500") && !again.contains("vs sglang 9.000"),
            "{again}"
        );
        assert!(again.contains("vs tensorrt_llm 8.000"), "{again}");
        assert_eq!(again.matches("## Against sglang").count(), 1, "{again}");
    }
}
