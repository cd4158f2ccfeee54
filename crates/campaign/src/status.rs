//! `campaign_status`: where a campaign stands, read from disk only.
//!
//! Each gate says its state, the tool that satisfies it and the file that proves it,
//! so an agent (or a person) knows the next step after any restart.

use anyhow::Result;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vllm_sota_core::fsx;
use vllm_sota_core::humanize::{self, LoopPhase, LoopState};
use vllm_sota_core::jobs::{self, JobStatus};
use vllm_sota_core::layout::{CampaignPaths, round_label};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::{Tool, ToolContext};

use crate::init::missing_layout;
use crate::ledger::read_ledger;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignStatusRequest {
    /// The campaign run directory (from campaign_init).
    pub campaign_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    Done,
    Pending,
    Running,
    Failed,
    /// The round stopped before this gate was due (e.g. gap_decision said stop).
    NotNeeded,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Gate {
    pub gate: String,
    pub state: GateState,
    /// The tool that satisfies this gate.
    pub tool: String,
    /// The file that proves it (relative to campaign_dir), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoundStatus {
    pub round: u32,
    pub gates: Vec<Gate>,
    /// The round's gap decision, when made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CampaignStatusReport {
    pub campaign_dir: String,
    pub model: String,
    pub gates: Vec<Gate>,
    pub rounds: Vec<RoundStatus>,
    /// The first gate not done, with the tool to call.
    pub next_step: String,
    /// Layout entries missing from the run directory.
    pub missing_layout: Vec<String>,
    /// Inconsistencies found (e.g. a patch file without an attempt row).
    pub warnings: Vec<String>,
    /// The Humanize loop in the vLLM checkout (the newest one), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlcr_loop: Option<RlcrLoop>,
}

/// The Humanize loop's phase, read from its state file's name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RlcrLoop {
    pub loop_dir: String,
    pub state_file: String,
    pub phase: LoopPhase,
    pub current_round: Option<u32>,
    /// The phase's next step (absent while rounds run: the round gates give it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

pub struct CampaignStatus;

fn gate(
    name: &str,
    tool: &str,
    state: GateState,
    evidence: Option<String>,
    detail: impl Into<String>,
) -> Gate {
    Gate {
        gate: name.into(),
        state,
        tool: tool.into(),
        evidence,
        detail: detail.into(),
    }
}

fn rel(paths: &CampaignPaths, p: &Path) -> String {
    paths.rel(p)
}

fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

fn written_gate(paths: &CampaignPaths, name: &str, tool: &str, path: &Path) -> Gate {
    if CampaignPaths::is_written(path) {
        gate(
            name,
            tool,
            GateState::Done,
            Some(rel(paths, path)),
            "written",
        )
    } else {
        gate(
            name,
            tool,
            GateState::Pending,
            None,
            format!("{} not written yet", rel(paths, path)),
        )
    }
}

fn benchmark_gate(paths: &CampaignPaths) -> Gate {
    let candidates = paths.candidates();
    let rows = count_lines(&candidates);
    let job_path = paths.benchmark_job();
    if job_path.exists() {
        match jobs::status(&job_path) {
            Ok(job) => {
                let progress = format!(
                    "{}/{} {}",
                    job.progress.done,
                    job.progress.total.unwrap_or(f64::NAN),
                    job.progress.message
                );
                return match job.status {
                    JobStatus::Succeeded => gate(
                        "fixed_benchmark",
                        "fair_benchmark",
                        GateState::Done,
                        Some(rel(paths, &candidates)),
                        format!("{rows} candidate rows; summary in benchmark/summary.md"),
                    ),
                    JobStatus::Running => gate(
                        "fixed_benchmark",
                        "job_status",
                        GateState::Running,
                        Some(rel(paths, &job_path)),
                        progress,
                    ),
                    other => gate(
                        "fixed_benchmark",
                        "fair_benchmark",
                        GateState::Failed,
                        Some(rel(paths, &job_path)),
                        format!(
                            "job {other:?}: {}; call fair_benchmark again to resume ({rows} rows kept)",
                            job.error.unwrap_or_default()
                        ),
                    ),
                };
            }
            Err(e) => {
                return gate(
                    "fixed_benchmark",
                    "fair_benchmark",
                    GateState::Failed,
                    None,
                    format!("{e:#}"),
                );
            }
        }
    }
    if rows > 0 && paths.benchmark_dir().join("summary.md").is_file() {
        return gate(
            "fixed_benchmark",
            "fair_benchmark",
            GateState::Done,
            Some(rel(paths, &candidates)),
            format!("{rows} candidate rows"),
        );
    }
    gate(
        "fixed_benchmark",
        "fair_benchmark",
        GateState::Pending,
        None,
        "no fixed benchmark yet",
    )
}

/// The last `start_rlcr` row of the lineage.
fn start_row(lineage: &[Value]) -> Option<&Value> {
    lineage
        .iter()
        .rev()
        .find(|r| r["kind"] == "start_rlcr" || r["kind"] == "rlcr_started")
}

/// The checkout the loop runs in: the one start_rlcr recorded, else campaign.json's.
fn loop_checkout(paths: &CampaignPaths, lineage: &[Value]) -> Option<PathBuf> {
    start_row(lineage)
        .and_then(|r| r["vllm_checkout"].as_str())
        .map(PathBuf::from)
        .or_else(|| paths.campaign().ok()?.vllm_checkout)
}

/// The campaign's Humanize loop: the newest `.humanize/rlcr/<timestamp>/` of its vLLM checkout.
fn rlcr_loop(checkout: Option<&Path>) -> Option<RlcrLoop> {
    let l = humanize::newest_loop(checkout?)?;
    let next_step = loop_next_step(&l);
    Some(RlcrLoop {
        loop_dir: l.dir.display().to_string(),
        state_file: l.state_file.display().to_string(),
        phase: l.phase,
        current_round: l.current_round,
        next_step,
    })
}

/// What the agent does next for a loop in `l`'s phase; None while rounds are running
/// (the round gates say it then). Never `start_rlcr`: a loop exists.
fn loop_next_step(l: &LoopState) -> Option<String> {
    let file = l
        .state_file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let round = l
        .current_round
        .map(|r| format!(", Humanize round {r}"))
        .unwrap_or_default();
    let dir = l.dir.display();
    Some(match l.phase {
        LoopPhase::Active => return None,
        LoopPhase::Finalize => format!(
            "the RLCR loop is in its finalize phase ({file}{round}): do the finalize work the runtime's prompt gives, write {dir}/finalize-summary.md, commit, and exit so the runtime completes the loop; then call final_report"
        ),
        LoopPhase::MethodologyAnalysis => format!(
            "the RLCR loop is in its methodology-analysis phase ({file}{round}): finish the analysis the runtime's prompt asks for and exit so the loop ends; then call final_report"
        ),
        LoopPhase::Complete => {
            format!("the RLCR loop is complete ({file}{round}): call final_report")
        }
        LoopPhase::Cancelled
        | LoopPhase::MaxIterations
        | LoopPhase::Stopped
        | LoopPhase::Unexpected
        | LoopPhase::EndedOther => format!(
            "the RLCR loop has ended ({file}{round}) without completing: call final_report (it lists what is missing); whether to run another loop is the user's decision"
        ),
    })
}

fn rlcr_gate(
    paths: &CampaignPaths,
    lineage: &[Value],
    checkout: Option<&Path>,
    lp: Option<&RlcrLoop>,
) -> Gate {
    if let Some(l) = lp {
        return gate(
            "rlcr_started",
            "start_rlcr",
            GateState::Done,
            Some(l.state_file.clone()),
            format!(
                "Humanize loop {:?}{} in {}",
                l.phase,
                l.current_round
                    .map(|r| format!(", round {r}"))
                    .unwrap_or_default(),
                l.loop_dir
            ),
        );
    }
    match (start_row(lineage), checkout) {
        (Some(_), Some(c)) => {
            return gate(
                "rlcr_started",
                "start_rlcr",
                GateState::Failed,
                Some(rel(paths, &paths.lineage())),
                format!(
                    "start_rlcr is recorded in the lineage but {} has no .humanize/rlcr/<timestamp>/ state file: the loop state was removed or the checkout moved; restore it before anything else (do not start a second loop)",
                    c.display()
                ),
            );
        }
        (Some(_), None) => {
            return gate(
                "rlcr_started",
                "start_rlcr",
                GateState::Done,
                Some(rel(paths, &paths.lineage())),
                "start_rlcr recorded in the lineage (no vLLM checkout known to read the loop from)",
            );
        }
        (None, _) => {}
    }
    gate(
        "rlcr_started",
        "start_rlcr",
        GateState::Pending,
        None,
        "no RLCR loop started",
    )
}

fn rounds_seen(paths: &CampaignPaths, lineage: &[Value], attempts: &[Value]) -> BTreeSet<u32> {
    let mut rounds: BTreeSet<u32> = lineage
        .iter()
        .chain(attempts)
        .filter_map(|r| r.get("round").and_then(|v| v.as_u64()))
        .filter(|&r| r >= 1)
        .map(|r| r as u32)
        .collect();
    for dir in [
        paths.analysis_dir(),
        paths.profiles_dir(),
        paths.benchmark_dir().join("revalidation"),
    ] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
                if let Some(n) = stem
                    .strip_prefix("round-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n >= 1)
                {
                    rounds.insert(n);
                }
            }
        }
    }
    rounds
}

fn round_status(
    paths: &CampaignPaths,
    round: u32,
    lineage: &[Value],
    attempts: &[Value],
) -> RoundStatus {
    let decision_row = lineage
        .iter()
        .rev()
        .find(|r| r["kind"] == "gap_decision" && r["round"] == round);
    let decision = decision_row.and_then(|r| {
        r.get("overall_decision")
            .or_else(|| r.get("decision"))
            .and_then(|d| {
                d.as_str().map(str::to_string).or_else(|| {
                    d.get("overall")
                        .and_then(|o| o.as_str())
                        .map(str::to_string)
                })
            })
    });
    // A blocked decision (no comparable competitor, reduced workload) asks for evidence, not a
    // patch: the round's later gates are not due until a new decision says patch.
    let stopped = decision
        .as_deref()
        .is_some_and(|d| d.starts_with("stop") || d.starts_with("blocked"));
    let mut gates = vec![match decision_row {
        Some(_) => gate(
            "gap_decided",
            "gap_decision",
            GateState::Done,
            Some("humanize/lineage.jsonl".into()),
            decision.clone().unwrap_or_else(|| "decided".into()),
        ),
        None => gate(
            "gap_decided",
            "gap_decision",
            GateState::Pending,
            None,
            "call gap_decision first in every round",
        ),
    }];
    let later = |g: Gate| {
        if stopped && g.state == GateState::Pending {
            Gate {
                state: GateState::NotNeeded,
                ..g
            }
        } else {
            g
        }
    };
    gates.push(later(written_gate(
        paths,
        "root_cause_written",
        "profile_tables",
        &paths.round_root_cause(round),
    )));
    gates.push(later(written_gate(
        paths,
        "layer_pipeline_written",
        "layer_pipeline",
        &paths.round_layer_pipeline(round),
    )));
    let patched = attempts.iter().filter(|a| a["round"] == round).find(|a| {
        a.get("patch_path").is_some_and(|p| !p.is_null())
            || a.get("commit").is_some_and(|c| !c.is_null())
    });
    gates.push(later(match patched {
        Some(a) => gate(
            "patch_committed",
            "ledger_append",
            GateState::Done,
            a["patch_path"]
                .as_str()
                .map(str::to_string)
                .or(Some("humanize/attempt-ledger.md".into())),
            format!("attempt {}", a["attempt_id"].as_str().unwrap_or("?")),
        ),
        None => gate(
            "patch_committed",
            "ledger_append",
            GateState::Pending,
            None,
            "no attempt row with a patch or commit in this round",
        ),
    }));
    let reval = paths.revalidation(round);
    let n = count_lines(&reval);
    gates.push(later(if n > 0 {
        gate(
            "revalidated",
            "revalidate",
            GateState::Done,
            Some(rel(paths, &reval)),
            format!("{n} rows"),
        )
    } else {
        gate(
            "revalidated",
            "revalidate",
            GateState::Pending,
            None,
            format!("no rows in {}", rel(paths, &reval)),
        )
    }));
    RoundStatus {
        round,
        gates,
        decision,
    }
}

/// What a `blocked_*` gap decision asks for before the loop can go on (None for any other decision).
fn blocked_step(decision: &str) -> Option<String> {
    let step = match decision {
        "blocked_competitor_unavailable" => {
            "no competitor has measured rows: install and benchmark one (fair_benchmark), then call gap_decision again; or call gap_decision with the user's competitor_waiver (stop_external, never a win)"
        }
        "blocked_not_comparable" => {
            "no competitor was measured on vLLM's machine and workload: re-run them like for like (fair_benchmark), then call gap_decision again"
        }
        "blocked_reduced_workload" => {
            "only reduced (flow-check) rows exist: benchmark the campaign's full workload (fair_benchmark, revalidate), then call gap_decision again"
        }
        d if d.starts_with("blocked") => {
            "the decision is blocked on missing evidence (see its reason in analysis/round-N/gap-decision.md): provide it, then call gap_decision again"
        }
        _ => return None,
    };
    Some(step.to_string())
}

impl Tool for CampaignStatus {
    const NAME: &'static str = "campaign_status";
    const DESCRIPTION: &'static str = "Where the campaign stands, read from its run directory only: every gate of the skill (campaign initialized, history notes written, fixed benchmark done or its job's progress, RLCR started, and per round: gap decided, root cause written, layer pipeline written, patch committed, revalidated; final report) with its state, the tool that satisfies it and the evidence path, plus the next step. Call it first after any restart.";
    type Request = CampaignStatusRequest;
    type Report = CampaignStatusReport;

    fn run(req: CampaignStatusRequest, _ctx: &ToolContext) -> Result<CampaignStatusReport> {
        let paths = CampaignPaths::open(&req.campaign_dir)?;
        let campaign = paths.campaign()?;
        let lineage: Vec<Value> = fsx::read_jsonl(&paths.lineage())?;
        let attempts = read_ledger(&paths, "attempt")?;
        let checkout = loop_checkout(&paths, &lineage);
        let rlcr = rlcr_loop(checkout.as_deref());
        let mut gates = vec![
            gate(
                "campaign_initialized",
                "campaign_init",
                GateState::Done,
                Some("campaign.json".into()),
                "initialized",
            ),
            written_gate(
                &paths,
                "history_notes_written",
                "history_notes",
                &paths.history_notes(),
            ),
            benchmark_gate(&paths),
            rlcr_gate(&paths, &lineage, checkout.as_deref(), rlcr.as_ref()),
        ];
        let rounds: Vec<RoundStatus> = rounds_seen(&paths, &lineage, &attempts)
            .into_iter()
            .map(|r| round_status(&paths, r, &lineage, &attempts))
            .collect();
        gates.push(written_gate(
            &paths,
            "final_report_written",
            "final_report",
            &paths.final_report(),
        ));

        let mut warnings = Vec::new();
        if let Ok(entries) = std::fs::read_dir(paths.patches_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(id) = name.strip_suffix(".diff")
                    && !attempts.iter().any(|a| a["attempt_id"] == id)
                {
                    warnings.push(format!("patches/{name} has no attempt row: every patch attempt needs one (ledger_append attempt)"));
                }
            }
        }
        let final_done = gates.last().is_some_and(|g| g.state == GateState::Done);
        let next_step = if final_done {
            "campaign finished: final_report.md is written".to_string()
        } else {
            let phase = gates[..gates.len() - 1]
                .iter()
                .find(|g| g.state != GateState::Done);
            let round = rounds.iter().rev().find_map(|r| {
                r.gates
                    .iter()
                    .find(|g| {
                        matches!(
                            g.state,
                            GateState::Pending | GateState::Failed | GateState::Running
                        )
                    })
                    .map(|g| (r.round, g))
            });
            let loop_step = rlcr.as_ref().and_then(|l| l.next_step.clone());
            match (phase, loop_step, round, rounds.last()) {
                // A loop exists but its state is gone: never "call start_rlcr" then.
                (Some(g), _, _, _) if g.gate == "rlcr_started" && g.state == GateState::Failed => {
                    format!("{}: {}", g.gate, g.detail)
                }
                (Some(g), _, _, _) => format!("{}: call {} ({})", g.gate, g.tool, g.detail),
                (None, Some(step), _, _) => step,
                (None, None, Some((n, g)), _) => format!(
                    "{} {}: call {} ({})",
                    round_label(n),
                    g.gate,
                    g.tool,
                    g.detail
                ),
                (None, None, None, Some(last))
                    if let Some(step) = last.decision.as_deref().and_then(blocked_step) =>
                {
                    format!(
                        "{} gap decision `{}`: {step}",
                        round_label(last.round),
                        last.decision.as_deref().unwrap_or("?")
                    )
                }
                (None, None, None, Some(last))
                    if last
                        .decision
                        .as_deref()
                        .is_some_and(|d| d.starts_with("stop")) =>
                {
                    "the last gap decision says stop: call final_report".to_string()
                }
                (None, None, None, last) => {
                    format!(
                        "{}: call gap_decision to open it",
                        round_label(last.map(|r| r.round + 1).unwrap_or(1))
                    )
                }
            }
        };
        Ok(CampaignStatusReport {
            campaign_dir: paths.root.display().to_string(),
            model: campaign.model,
            gates,
            rounds,
            next_step,
            missing_layout: missing_layout(&paths),
            warnings,
            rlcr_loop: rlcr,
        })
    }

    fn markdown(r: &CampaignStatusReport) -> String {
        let table = |gates: &[Gate]| {
            let mut t = md::Table::new(&[
                ("gate", Align::Left),
                ("state", Align::Left),
                ("tool", Align::Left),
                ("evidence", Align::Left),
                ("detail", Align::Left),
            ]);
            for g in gates {
                t.row(&[
                    g.gate.clone(),
                    format!("{:?}", g.state),
                    g.tool.clone(),
                    g.evidence.clone().unwrap_or_default(),
                    g.detail.clone(),
                ]);
            }
            t.render()
        };
        let mut s = format!(
            "# Campaign status: {}\n\n`{}`\n\n{}",
            r.model,
            r.campaign_dir,
            table(&r.gates)
        );
        for round in &r.rounds {
            s += &format!(
                "\n## {}{}\n\n{}",
                round_label(round.round),
                round
                    .decision
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                table(&round.gates)
            );
        }
        if let Some(l) = &r.rlcr_loop {
            s += &format!(
                "\nHumanize loop: {:?}{} (`{}`)\n",
                l.phase,
                l.current_round
                    .map(|n| format!(", round {n}"))
                    .unwrap_or_default(),
                l.state_file
            );
        }
        s += &format!("\n**Next step:** {}\n", r.next_step);
        for w in &r.warnings {
            s += &format!("\n- warning: {w}");
        }
        s
    }
}
