//! Artifacts of a search: `summary.md`, `winning-commands.md`, one SVG per scenario
//! (throughput vs p50 TPOT per framework, SLA line), the profiler handoff and the
//! `llm-serving-auto-benchmark` export of the rows ([`crate::interop`]).

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::results::{CandidateRow, RankingMetric, RowRef, RunStatus, compare_rank};
use vllm_sota_core::{Framework, fsx};

use crate::config::Scenario;
use crate::measure::Point;
use crate::preflight::Plan;
use vllm_sota_core::proc::shell_join as display_argv;

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct ArtifactPaths {
    pub candidates: String,
    pub summary: String,
    pub winning_commands: String,
    /// scenario → SVG path.
    pub plots: BTreeMap<String, String>,
    pub profiler_handoff: String,
    pub plan: String,
    /// The candidate rows in the `llm-serving-auto-benchmark` result schema.
    #[serde(default)]
    pub interop_export: String,
}

/// Best ok row per framework per scenario, cross-framework sorted by the ranking rule.
pub fn winners(
    rows: &[CandidateRow],
    metric: RankingMetric,
) -> BTreeMap<String, Vec<CandidateRow>> {
    let mut per: BTreeMap<(String, String), CandidateRow> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.status == RunStatus::Ok && r.metrics.is_some())
    {
        let key = (r.scenario.clone(), r.framework.clone());
        match per.get(&key) {
            Some(best) if compare_rank(best, r, metric) != std::cmp::Ordering::Greater => {}
            _ => {
                per.insert(key, r.clone());
            }
        }
    }
    let mut out: BTreeMap<String, Vec<CandidateRow>> = BTreeMap::new();
    for ((sc, _), r) in per {
        out.entry(sc).or_default().push(r);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| compare_rank(a, b, metric));
    }
    out
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

fn point_text(r: &CandidateRow) -> String {
    let c = r
        .workload
        .max_concurrency
        .map(|c| format!("conc {c}"))
        .unwrap_or_default();
    let q = r
        .workload
        .request_rate
        .map(|q| format!("{q:.2} req/s"))
        .unwrap_or_else(|| "inf".into());
    format!("{c} @ {q}").trim().to_string()
}

pub(crate) fn write_all(
    paths: &CampaignPaths,
    plan: &Plan,
    rows: &[CandidateRow],
) -> Result<ArtifactPaths> {
    let bench = paths.benchmark_dir();
    let metric = plan.config.benchmark.ranking_metric;
    let win = winners(rows, metric);
    let rel = |p: &std::path::Path| crate::preflight::rel(&paths.root, p);
    let mut out = ArtifactPaths {
        candidates: rel(&paths.candidates()),
        summary: rel(&bench.join("summary.md")),
        winning_commands: rel(&bench.join("winning-commands.md")),
        plots: BTreeMap::new(),
        profiler_handoff: rel(&bench.join("profiler-handoff.json")),
        plan: rel(&bench.join("plan.json")),
        interop_export: rel(&bench.join(crate::interop::EXPORT_FILE)),
    };
    fsx::write_text(
        &bench.join(crate::interop::EXPORT_FILE),
        &crate::interop::export_jsonl(rows, &plan.config.model.name),
    )?;
    fsx::write_text(&bench.join("summary.md"), &summary_md(plan, rows, &win))?;
    fsx::write_text(&bench.join("winning-commands.md"), &winning_md(plan, &win))?;
    for sc in &plan.scenarios {
        let svg = scenario_svg(paths, plan, rows, &sc.name);
        let p = bench.join("plots").join(format!("{}.svg", sc.name));
        fsx::write_text(&p, &svg)?;
        out.plots.insert(sc.name.clone(), rel(&p));
    }
    fsx::write_json(
        &bench.join("profiler-handoff.json"),
        &profiler_handoff(plan, &win),
    )?;
    Ok(out)
}

fn summary_md(
    plan: &Plan,
    rows: &[CandidateRow],
    win: &BTreeMap<String, Vec<CandidateRow>>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# fair_benchmark summary\n");
    summary_setup(&mut s, plan, rows);
    for sc in &plan.scenarios {
        summary_scenario(&mut s, sc, win.get(&sc.name));
    }
    summary_bad_rows(&mut s, rows);
    summary_preflight(&mut s, plan);
    s
}

/// The run's setup: workload label, model, hardware, workload, SLA, ranking rule, rows.
fn summary_setup(s: &mut String, plan: &Plan, rows: &[CandidateRow]) {
    let cfg = &plan.config;
    if let Some(label) = &cfg.dataset.label {
        let _ = writeln!(
            s,
            "> Workload label: **{label}** (reduced workload, not the campaign's real one).\n"
        );
    }
    let _ = writeln!(
        s,
        "- Model: `{}` ({}{})",
        cfg.model.name,
        cfg.model.precision,
        cfg.model
            .quantization
            .as_ref()
            .map(|q| format!(", {q}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "- Hardware: {} GPU(s) {:?}{}",
        cfg.hardware.gpu_count,
        cfg.hardware.gpu_ids(),
        cfg.hardware
            .gpu_model
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "- Workload: {} prompts per run, endpoint `{}`, concurrency sweep {:?}{}",
        cfg.dataset.num_prompts,
        cfg.benchmark.endpoint,
        cfg.benchmark.max_concurrency,
        cfg.benchmark
            .qps
            .as_ref()
            .map(|q| format!(
                ", QPS search {}..{} (≤{} rounds)",
                q.lower, q.upper, q.max_rounds
            ))
            .unwrap_or_default()
    );
    let sla = &cfg.benchmark.sla;
    let _ = writeln!(
        s,
        "- SLA: p50 TTFT ≤ {} ms, p50 TPOT ≤ {} ms, success rate ≥ {}",
        f(sla.max_p50_ttft_ms, 0),
        f(sla.max_p50_tpot_ms, 1),
        f(sla.min_success_rate, 3)
    );
    let _ = writeln!(
        s,
        "- Ranking rule: SLA passed, {}, then the other throughput, p50 TTFT, p50 TPOT, GPU count",
        match cfg.benchmark.ranking_metric {
            RankingMetric::RequestThroughput => "request throughput",
            RankingMetric::OutputThroughput => "output throughput",
        }
    );
    let _ = writeln!(
        s,
        "- Rows: {} in `benchmark/candidates.jsonl`\n",
        rows.len()
    );
}

/// One scenario's ranking table of the frameworks' winners.
fn summary_scenario(s: &mut String, sc: &Scenario, winners: Option<&Vec<CandidateRow>>) {
    let _ = writeln!(
        s,
        "## Scenario `{}` ({} → {} tokens)\n",
        sc.name, sc.input_len, sc.output_len
    );
    match winners {
        Some(list) if !list.is_empty() => {
            let mut t = md::Table::new(&[
                ("rank", Align::Right),
                ("framework", Align::Left),
                ("candidate", Align::Left),
                ("SLA", Align::Left),
                ("req/s", Align::Right),
                ("output tok/s", Align::Right),
                ("p50 TTFT ms", Align::Right),
                ("p50 TPOT ms", Align::Right),
                ("GPUs", Align::Right),
                ("point", Align::Left),
            ]);
            for (i, r) in list.iter().enumerate() {
                let m = r.metrics.as_ref();
                t.row(&[
                    (i + 1).to_string(),
                    r.framework.clone(),
                    format!("`{}`", r.candidate_id),
                    match r.sla.passed {
                        Some(true) => "pass",
                        Some(false) => "FAIL",
                        None => "—",
                    }
                    .to_string(),
                    f(r.request_throughput(), 3),
                    f(r.output_throughput(), 1),
                    f(m.and_then(|m| m.p50_ttft_ms()), 1),
                    f(m.and_then(|m| m.p50_tpot_ms()), 2),
                    r.hardware.gpu_count.to_string(),
                    point_text(r),
                ]);
            }
            s.push_str(&t.render());
            let _ = writeln!(s);
        }
        _ => {
            let _ = writeln!(s, "No framework produced a successful run.\n");
        }
    }
}

/// Every row that is not ok or did not pass the SLA, with its reason.
fn summary_bad_rows(s: &mut String, rows: &[CandidateRow]) {
    let _ = writeln!(s, "## Failed, rejected or SLA-failing candidates\n");
    let bad: Vec<&CandidateRow> = rows
        .iter()
        .filter(|r| r.status != RunStatus::Ok || r.sla.passed != Some(true))
        .collect();
    if bad.is_empty() {
        let _ = writeln!(s, "None.\n");
        return;
    }
    let mut t = md::Table::new(&[
        ("framework", Align::Left),
        ("candidate", Align::Left),
        ("scenario", Align::Left),
        ("status", Align::Left),
        ("reason", Align::Left),
    ]);
    for r in bad {
        let reason = r
            .failure_reason
            .clone()
            .unwrap_or_else(|| r.sla.reasons.join("; "));
        t.row(&[
            r.framework.clone(),
            format!("`{}`", r.candidate_id),
            r.scenario.clone(),
            format!("{:?}", r.status).to_lowercase(),
            reason,
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(s);
}

/// What preflight decided: excluded knobs, environment gaps, per-framework notes, GPU check.
fn summary_preflight(s: &mut String, plan: &Plan) {
    if !plan.excluded.is_empty() {
        let _ = writeln!(s, "## Kept out of the default pass\n");
        for x in &plan.excluded {
            let _ = writeln!(
                s,
                "- {}: `{}` — {}",
                x.framework,
                x.flag.clone().unwrap_or_default(),
                x.reason
            );
        }
        let _ = writeln!(s);
    }
    if !plan.environment_gaps.is_empty() {
        let _ = writeln!(
            s,
            "## Environment gaps (not installed here; not \"unsupported\")\n"
        );
        for g in &plan.environment_gaps {
            let _ = writeln!(s, "- {}: {}", g.framework, g.reason);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Preflight notes\n");
    for fp in &plan.frameworks {
        let _ = writeln!(
            s,
            "- {} ({:?}): {} candidate(s); help `{}`{}",
            fp.framework,
            fp.status,
            fp.candidates.len(),
            fp.help_file.clone().unwrap_or_else(|| "—".into()),
            if fp.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", fp.notes.join("; "))
            }
        );
    }
    let _ = writeln!(
        s,
        "- GPU check: {} ({})",
        plan.gpu_check.status, plan.gpu_check.detail
    );
}

fn winning_md(plan: &Plan, win: &BTreeMap<String, Vec<CandidateRow>>) -> String {
    let mut s = String::from(
        "# Winning commands\n\nExact launch and benchmark commands of the best candidate per framework and scenario (ranking rule in summary.md). The port is the one used in the run.\n\n",
    );
    for sc in &plan.scenarios {
        let _ = writeln!(
            s,
            "## Scenario `{}` ({} → {} tokens)\n",
            sc.name, sc.input_len, sc.output_len
        );
        let Some(list) = win.get(&sc.name) else {
            let _ = writeln!(s, "No winner: no successful run.\n");
            continue;
        };
        for (i, r) in list.iter().enumerate() {
            let _ = writeln!(
                s,
                "### {}. {} `{}` ({:.3} req/s, SLA {})\n",
                i + 1,
                r.framework,
                r.candidate_id,
                r.request_throughput().unwrap_or(0.0),
                if r.passed_sla() { "pass" } else { "fail" }
            );
            let _ = writeln!(
                s,
                "Launch:\n\n```sh\n{}\n```\n",
                display_argv(&r.server_command)
            );
            let _ = writeln!(
                s,
                "Benchmark (row `{}`):\n\n```sh\n{}\n```\n",
                r.row_id,
                display_argv(&r.benchmark_command)
            );
        }
    }
    s
}

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

use vllm_sota_core::md::html as escape;

/// A framework's plotted points: (p50 TPOT ms, output tok/s, SLA passed).
type Series = BTreeMap<String, Vec<(f64, f64, bool)>>;

/// Every measured point of every ok row of a scenario: output throughput (y) vs p50 TPOT (x).
fn scenario_svg(
    paths: &CampaignPaths,
    plan: &Plan,
    rows: &[CandidateRow],
    scenario: &str,
) -> String {
    let series = scenario_series(paths, rows, scenario);
    let sla_x = plan.config.benchmark.sla.max_p50_tpot_ms;
    let frame = Frame::fitting(&series, sla_x);
    let mut s = String::new();
    svg_axes(&mut s, &frame, scenario, sla_x);
    svg_points(&mut s, &frame, &series);
    s.push_str("</svg>\n");
    s
}

/// Per framework, the points of a scenario's ok rows: every sweep point when the sweep
/// file is readable, else the row's own metrics.
fn scenario_series(paths: &CampaignPaths, rows: &[CandidateRow], scenario: &str) -> Series {
    let mut series: Series = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.scenario == scenario && r.status == RunStatus::Ok)
    {
        let mut pts: Vec<Point> = vec![];
        if let Some(sweep) = r.artifacts.get("sweep")
            && let Ok(v) = fsx::read_json::<Value>(&paths.root.join(sweep))
        {
            pts = serde_json::from_value(v["points"].clone()).unwrap_or_default();
        }
        let entry = series.entry(r.framework.clone()).or_default();
        if pts.is_empty() {
            if let Some(m) = &r.metrics
                && let (Some(x), Some(y)) = (m.p50_tpot_ms(), m.output_throughput)
            {
                entry.push((x, y, r.sla.passed == Some(true)));
            }
        } else {
            for p in pts {
                if let (Some(x), Some(y)) = (p.metrics.p50_tpot_ms(), p.metrics.output_throughput) {
                    entry.push((x, y, p.passed()));
                }
            }
        }
    }
    series
}

/// The plot's size, margins and axis ranges.
#[derive(Clone, Copy)]
struct Frame {
    w: f64,
    h: f64,
    ml: f64,
    mr: f64,
    mt: f64,
    mb: f64,
    xmax: f64,
    ymax: f64,
}

impl Frame {
    /// Axes from zero to 10 % past the largest point (and the SLA line).
    fn fitting(series: &Series, sla_x: Option<f64>) -> Frame {
        let all: Vec<(f64, f64)> = series
            .values()
            .flatten()
            .map(|(x, y, _)| (*x, *y))
            .collect();
        let xmax = all
            .iter()
            .map(|p| p.0)
            .chain(sla_x)
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let ymax = all.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
        Frame {
            w: 720.0,
            h: 440.0,
            ml: 70.0,
            mr: 160.0,
            mt: 40.0,
            mb: 50.0,
            xmax,
            ymax,
        }
    }
    fn sx(&self, x: f64) -> f64 {
        self.ml + x / self.xmax * (self.w - self.ml - self.mr)
    }
    fn sy(&self, y: f64) -> f64 {
        self.h - self.mb - y / self.ymax * (self.h - self.mt - self.mb)
    }
}

/// The opening tag, title, axes with ticks and labels, and the SLA line.
fn svg_axes(s: &mut String, frame: &Frame, scenario: &str, sla_x: Option<f64>) {
    let Frame {
        w,
        h,
        ml,
        mr,
        mt,
        mb,
        xmax,
        ymax,
    } = *frame;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<title>{}: output throughput vs p50 TPOT per framework</title>"#,
        escape(scenario)
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">Scenario {}: output throughput vs p50 TPOT</text>"#,
        (w - mr + ml) / 2.0,
        escape(scenario)
    );
    let _ = writeln!(
        s,
        r#"<line x1="{ml}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        h - mb,
        w - mr,
        h - mb
    );
    let _ = writeln!(
        s,
        r#"<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{}" stroke="black"/>"#,
        h - mb
    );
    for i in 0..=4 {
        let xv = xmax * i as f64 / 4.0;
        let yv = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.1}</text>"#,
            frame.sx(xv),
            h - mb + 16.0,
            xv
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}</text>"#,
            ml - 6.0,
            frame.sy(yv) + 4.0,
            yv
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">p50 TPOT (ms)</text>"#,
        (w - mr + ml) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">output throughput (tok/s)</text>"#,
        h / 2.0,
        h / 2.0
    );
    if let Some(x) = sla_x {
        let _ = writeln!(
            s,
            r#"<line class="sla" x1="{:.1}" y1="{mt}" x2="{:.1}" y2="{}" stroke="gray" stroke-dasharray="6,4"/>"#,
            frame.sx(x),
            frame.sx(x),
            h - mb
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" fill="gray">SLA p50 TPOT ≤ {x} ms</text>"#,
            frame.sx(x) + 4.0,
            mt + 12.0
        );
    }
}

/// Each framework's points (hollow when the SLA failed) and legend entry; a note when
/// nothing ran.
fn svg_points(s: &mut String, frame: &Frame, series: &Series) {
    let Frame {
        w,
        h,
        ml,
        mr,
        mt,
        mb,
        ..
    } = *frame;
    for (i, (fw, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        for (x, y, passed) in pts {
            let fill = if *passed { color } else { "white" };
            let _ = writeln!(
                s,
                r#"<circle class="point" data-framework="{}" cx="{:.1}" cy="{:.1}" r="4" fill="{fill}" stroke="{color}"><title>{}: {:.1} tok/s at p50 TPOT {:.2} ms{}</title></circle>"#,
                escape(fw),
                frame.sx(*x),
                frame.sy(*y),
                escape(fw),
                y,
                x,
                if *passed { "" } else { " (SLA fail)" }
            );
        }
        let ly = mt + 20.0 + i as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<circle cx="{}" cy="{ly}" r="5" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            w - mr + 16.0,
            w - mr + 26.0,
            ly + 4.0,
            escape(fw)
        );
    }
    if series.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no successful run</text>"#,
            (w - mr + ml) / 2.0,
            h / 2.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="10" fill="gray">hollow = SLA fail</text>"#,
        w - mr + 16.0,
        h - mb
    );
}

/// The scenario where vLLM is furthest behind the leader, for the profiler.
fn profiler_handoff(plan: &Plan, win: &BTreeMap<String, Vec<CandidateRow>>) -> Value {
    let metric = plan.config.benchmark.ranking_metric;
    let val = |r: &CandidateRow| match metric {
        RankingMetric::RequestThroughput => r.request_throughput(),
        RankingMetric::OutputThroughput => r.output_throughput(),
    };
    let mut per_scenario = Vec::new();
    for sc in &plan.scenarios {
        let list = win.get(&sc.name).cloned().unwrap_or_default();
        let vllm = list.iter().find(|r| r.is_framework(Framework::Vllm));
        let leader = list.first();
        let ratio = match (vllm.and_then(val), leader.and_then(val)) {
            (Some(v), Some(l)) if l > 0.0 => Some(v / l),
            _ => None,
        };
        per_scenario.push(json!({
            "scenario": sc.name,
            "input_len": sc.input_len,
            "output_len": sc.output_len,
            "leader": leader.map(|r| json!({"framework": r.framework, "candidate_id": r.candidate_id, "value": val(r), "row_ref": RowRef { file: "benchmark/candidates.jsonl".into(), row_id: r.row_id.clone() }})),
            "vllm_best": vllm.map(|r| json!({"candidate_id": r.candidate_id, "value": val(r), "server_command": r.server_command, "max_concurrency": r.workload.max_concurrency, "request_rate": r.workload.request_rate, "row_ref": RowRef { file: "benchmark/candidates.jsonl".into(), row_id: r.row_id.clone() }})),
            "vllm_over_leader": ratio,
        }));
    }
    // Slowest = lowest vLLM/leader ratio; a scenario without a vLLM result ranks first (most to learn).
    let slow = per_scenario
        .iter()
        .min_by(|a, b| {
            let ra = a["vllm_over_leader"].as_f64().unwrap_or(-1.0);
            let rb = b["vllm_over_leader"].as_f64().unwrap_or(-1.0);
            ra.total_cmp(&rb)
        })
        .cloned();
    json!({
        "metric": format!("{metric:?}"),
        "slow_scenario": slow.as_ref().map(|s| s["scenario"].clone()),
        "input_len": slow.as_ref().map(|s| s["input_len"].clone()),
        "output_len": slow.as_ref().map(|s| s["output_len"].clone()),
        "vllm_server_command": slow.as_ref().map(|s| s["vllm_best"]["server_command"].clone()),
        "why": "the scenario where vLLM's best is furthest behind the best framework (lowest vllm_over_leader); profile vLLM there with these lengths",
        "scenarios": per_scenario,
    })
}
