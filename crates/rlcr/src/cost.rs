//! What the campaign cost in GPU time, per phase, from its own records: server start-ups
//! and benchmark runs from the rows of `benchmark/candidates.jsonl` and
//! `benchmark/revalidation/round-N.jsonl` (rows measured on one server share its log and
//! its launch time; `normalization.server_ready_s` is the start-up), profiling from the
//! `profile_launch` job states (`profiles/round-N/<framework>/launch-job.json`).
//! GPU-minutes are wall minutes × the GPUs the rows (or campaign.json) name. A phase with
//! no timed record is absent, never 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use vllm_sota_core::jobs::JobState;
use vllm_sota_core::layout::{CampaignPaths, unix_from_rfc3339};
use vllm_sota_core::results::CandidateRow;

/// GPU time of one phase.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PhaseCost {
    pub(crate) phase: &'static str,
    /// Records it was summed from (servers, or jobs).
    pub(crate) count: usize,
    pub(crate) wall_s: f64,
    pub(crate) gpu_minutes: f64,
}

/// Start-up and benchmark seconds of each server launch (keyed by its log and launch
/// time), with its GPU count.
fn server_spans(rows: &[CandidateRow]) -> Vec<(f64, f64, u32)> {
    let mut servers: BTreeMap<(String, String), (i64, i64, f64, u32)> = BTreeMap::new();
    for r in rows {
        let (Some(log), Some(start), Some(end)) = (
            r.artifacts.get("server_log"),
            unix_from_rfc3339(&r.started_at),
            unix_from_rfc3339(&r.finished_at),
        ) else {
            continue;
        };
        let ready = r
            .normalization
            .get("server_ready_s")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let e = servers
            .entry((log.clone(), r.started_at.clone()))
            .or_insert((start, end, ready, r.hardware.gpu_count.max(1)));
        e.1 = e.1.max(end);
        e.2 = e.2.max(ready);
    }
    servers
        .values()
        .map(|&(start, end, ready, gpus)| {
            let span = (end - start).max(0) as f64;
            (ready.min(span), (span - ready).max(0.0), gpus)
        })
        .collect()
}

/// Wall seconds of every `profile_launch` job of the campaign.
fn profile_jobs(paths: &CampaignPaths) -> Vec<f64> {
    let mut out = Vec::new();
    let rounds = std::fs::read_dir(paths.profiles_dir())
        .into_iter()
        .flatten();
    for round in rounds.flatten() {
        for fw in std::fs::read_dir(round.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let state = fw.path().join("launch-job.json");
            let Ok(text) = std::fs::read_to_string(&state) else {
                continue;
            };
            let Ok(job) = serde_json::from_str::<JobState>(&text) else {
                continue;
            };
            let end = job.finished_at.as_deref().unwrap_or(&job.updated_at);
            if let (Some(a), Some(b)) = (unix_from_rfc3339(&job.started_at), unix_from_rfc3339(end))
            {
                out.push((b - a).max(0) as f64);
            }
        }
    }
    out
}

/// GPU time per phase: server start-ups, benchmark runs (fixed benchmark and
/// revalidations), profiling. `gpus` is the campaign's GPU count (for the jobs).
pub(crate) fn phase_costs(
    paths: &CampaignPaths,
    rows: &[CandidateRow],
    gpus: u32,
) -> Vec<PhaseCost> {
    let servers = server_spans(rows);
    let mut out = Vec::new();
    let mut push = |phase, count, wall_s: f64, gpu_s: f64| {
        if count > 0 {
            out.push(PhaseCost {
                phase,
                count,
                wall_s,
                gpu_minutes: gpu_s / 60.0,
            });
        }
    };
    push(
        "server start-ups",
        servers.len(),
        servers.iter().map(|s| s.0).sum(),
        servers.iter().map(|s| s.0 * s.2 as f64).sum(),
    );
    push(
        "benchmark runs",
        servers.len(),
        servers.iter().map(|s| s.1).sum(),
        servers.iter().map(|s| s.1 * s.2 as f64).sum(),
    );
    let jobs = profile_jobs(paths);
    let wall: f64 = jobs.iter().sum();
    push(
        "profiling (profile_launch)",
        jobs.len(),
        wall,
        wall * gpus.max(1) as f64,
    );
    out
}

/// The report section.
pub(crate) fn render(costs: &[PhaseCost]) -> String {
    let mut s = String::from("## GPU time per phase\n\n");
    if costs.is_empty() {
        s.push_str("No timed record (rows without launch times, no profile_launch job).\n");
        return s;
    }
    s.push_str("| phase | records | wall (min) | GPU-minutes |\n| --- | ---: | ---: | ---: |\n");
    for c in costs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} |",
            c.phase,
            c.count,
            c.wall_s / 60.0,
            c.gpu_minutes
        );
    }
    let total: f64 = costs.iter().map(|c| c.gpu_minutes).sum();
    let _ = writeln!(
        s,
        "\nTotal {total:.1} GPU-minutes. From the rows' launch and finish times and `server_ready_s`, and the profile_launch job states; attach-mode captures and Nsight Compute runs keep no job record and are not counted.\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(log: &str, started: &str, finished: &str, ready: f64, gpus: u32) -> CandidateRow {
        let mut r: CandidateRow = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "row_id": "x", "framework": "vllm", "candidate_id": "c",
            "is_baseline": true, "scenario": "chat", "round": 0, "repeat": 0, "status": "ok",
            "hardware": {"gpu_count": gpus, "gpu_ids": [0], "multi_node": false},
            "workload": {"dataset": "random", "scenario": "chat", "input_len": 1, "output_len": 1,
                         "num_prompts": 1, "endpoint": "/v1/completions"},
            "sla": {"thresholds": {}, "reasons": []}
        }))
        .unwrap();
        r.artifacts.insert("server_log".into(), log.into());
        r.started_at = started.into();
        r.finished_at = finished.into();
        r.normalization
            .insert("server_ready_s".into(), serde_json::json!(ready));
        r
    }

    #[test]
    fn rows_of_one_server_count_its_start_up_once() {
        // The H200 campaign's two baselines: vLLM ready after 98 s, measured until 118 s;
        // SGLang ready after 136 s, measured until 154 s. A second scenario on the vLLM
        // server extends its span; it does not add a start-up.
        let rows = vec![
            row(
                "logs/vllm.log",
                "2026-12-03T20:56:33Z",
                "2026-12-03T20:58:31Z",
                98.061,
                1,
            ),
            row(
                "logs/vllm.log",
                "2026-12-03T20:56:33Z",
                "2026-12-03T20:59:31Z",
                98.061,
                1,
            ),
            row(
                "logs/sglang.log",
                "2026-12-03T20:58:33Z",
                "2026-12-03T21:01:07Z",
                136.093,
                2,
            ),
        ];
        let d = tempfile::tempdir().unwrap();
        let c = phase_costs(&CampaignPaths::new(d.path()), &rows, 1);
        assert_eq!(c.len(), 2, "no profile job, no profiling phase: {c:?}");
        assert_eq!(c[0].phase, "server start-ups");
        assert_eq!(c[0].count, 2);
        assert!((c[0].wall_s - 234.154).abs() < 1e-6, "{c:?}");
        // SGLang ran on 2 GPUs: its start-up counts twice.
        assert!((c[0].gpu_minutes - (98.061 + 2.0 * 136.093) / 60.0).abs() < 1e-9);
        assert!((c[1].wall_s - ((178.0 - 98.061) + (154.0 - 136.093))).abs() < 1e-6);
        let md = render(&c);
        assert!(md.contains("| server start-ups | 2 | 3.9 | 6.2 |"), "{md}");
    }

    #[test]
    fn rows_without_times_are_not_counted_as_zero() {
        let mut r = row("logs/vllm.log", "", "", 10.0, 1);
        r.started_at.clear();
        let d = tempfile::tempdir().unwrap();
        assert!(phase_costs(&CampaignPaths::new(d.path()), &[r], 1).is_empty());
        assert!(render(&[]).contains("No timed record"));
    }
}
