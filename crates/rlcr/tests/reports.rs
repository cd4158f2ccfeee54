//! checkpoint and final_report on campaigns built by the tests (git2 checkouts,
//! rows, lineage from real gap decisions, ledgers' JSONL copies).

mod common;

use common::*;
use serde_json::json;
use std::path::PathBuf;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::{Checkpoint, Decision, FinalReport, GapDecision};

fn checkpoint(paths: &CampaignPaths) -> anyhow::Result<vllm_sota_rlcr::CheckpointReport> {
    Checkpoint::run(
        serde_json::from_value(json!({"campaign_dir": paths.root})).unwrap(),
        &ToolContext::new(),
    )
}

fn final_report(paths: &CampaignPaths) -> anyhow::Result<<FinalReport as Tool>::Report> {
    FinalReport::run(
        serde_json::from_value(json!({"campaign_dir": paths.root})).unwrap(),
        &ToolContext::new(),
    )
}

struct Built {
    _dir: tempfile::TempDir,
    paths: CampaignPaths,
    checkout: PathBuf,
    base: String,
}

/// A campaign through one patch round: baseline (vLLM 10 % behind), round-1 patch decision,
/// profiles, layer pipeline, NCU digest, a committed vLLM patch, round-1 revalidation
/// (vLLM 5 % ahead), ledgers, and the round-2 stop_beats decision.
fn build_complete() -> Built {
    let dir = tempfile::tempdir().unwrap();
    let Scratch {
        repo,
        checkout,
        base,
        paths,
    } = scratch_campaign(dir.path());
    write_baseline_vllm_behind(&paths);
    let gap = |round: u32, files: &[&str]| {
        GapDecision::run(
            serde_json::from_value(
                json!({"campaign_dir": paths.root, "round": round, "current_files": files}),
            )
            .unwrap(),
            &ToolContext::new(),
        )
        .unwrap()
    };
    assert_eq!(gap(1, &[]).decision, Decision::Patch);
    write_written(
        &paths
            .profile_stage_dir(1, "vllm", "decode")
            .join("tables.md"),
        "# Kernel table (vllm, decode)\n\n| Kernel | Category | GPU time % |\n|---|---|---|\n| nvjet_tst_128x64 | gemm | 30.1 |\n| flash::FlashAttnFwdSm90 | attention | 15.2 |\n| _topk_topp_kernel | sampling | 6.3 |\n",
    );
    write_written(
        &paths
            .profile_stage_dir(1, "sglang", "decode")
            .join("tables.md"),
        "| Kernel | GPU time % |\n|---|---|\n| fused_add_rmsnorm | 3.0 |\n",
    );
    write_written(
        &paths.layer_pipeline(),
        "# Layer pipeline (round 1)\n\nChosen forward pass: decode step 12 (batch 64).\nRepresentative layer: 7.\n",
    );
    write_written(
        &paths.ncu_digests_dir().join("rmsnorm-v1/digest.md"),
        "# NCU digest: rmsnorm\n\nNext edit: fuse the residual add.\n",
    );
    write_written(
        &paths.patches_dir().join("round-1-fused-rmsnorm.patch"),
        "--- a/vllm/model_executor/models/llama.py\n",
    );
    // The patch, committed in the checkout.
    std::fs::write(
        checkout.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    y = x\n    return fused(y)\n",
    )
    .unwrap();
    let head = commit_all(&repo, "Fuse the residual add into RMSNorm");
    // As revalidate writes them: the checkout's commit and the greedy probe's outcome.
    let mut reval = repeats("r1", "vllm", "vllm-best", "chat", &[10.5, 10.52, 10.48]);
    for r in &mut reval {
        r.round = 1;
        r.vllm_commit = Some(head.clone());
        r.correctness = Some(passed_probe());
    }
    write_rows(&paths.revalidation(1), &reval);
    let ledger = |md: PathBuf, rows: Vec<serde_json::Value>| {
        for r in rows {
            fsx::append_jsonl(&md.with_extension("jsonl"), &r).unwrap();
        }
    };
    // Ledger rows as ledger_append writes them (attempt: hypothesis/target/change/status;
    // optimization: improvement_pct recomputed from the rows; source idea: idea/status).
    ledger(
        paths.attempt_ledger(),
        vec![
            json!({"attempt_id": "a1", "round": 1, "hypothesis": "the residual add costs a kernel launch per layer", "target": "vllm/model_executor/models/llama.py", "change": "Fuse residual add into RMSNorm", "status": "kept", "patch_path": "patches/round-1-fused-rmsnorm.patch", "tests": ["pytest tests/kernels/test_layernorm.py"]}),
            json!({"attempt_id": "a2", "round": 1, "hypothesis": "more graph capture sizes", "target": "vllm/config.py", "change": "Bigger CUDA graph batch sizes", "status": "rejected", "notes": "flag-only, no gain"}),
            json!({"attempt_id": "a3", "round": 2, "hypothesis": "sampling kernels are 6 % of decode", "target": "vllm/v1/sample/ops/topk_topp_sampler.py", "change": "Fuse top-k/top-p sampling", "status": "planned"}),
        ],
    );
    ledger(
        paths.optimization_ledger(),
        vec![
            json!({"round": 1, "attempt_id": "a1", "summary": "Fused residual RMSNorm", "metric": "request_throughput", "value": 10.5, "prior_best_value": 9.0, "improvement_pct": 16.7, "row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-0"}}),
            // A row written before the field name was unified still reads.
            json!({"round": 1, "summary": "Older row", "measured_improvement_pct": 2.5}),
        ],
    );
    ledger(
        paths.source_idea_ledger(),
        vec![
            json!({"ledger_row_id": "source_idea-1", "round": 1, "idea": "Port SGLang's sampler", "provenance": "sglang", "status": "rejected", "status_reason": "different numerics"}),
        ],
    );
    assert_eq!(
        gap(2, &["benchmark/revalidation/round-1.jsonl"]).decision,
        Decision::StopBeats
    );
    Built {
        _dir: dir,
        paths,
        checkout,
        base,
    }
}

#[test]
fn final_report_refuses_an_incomplete_campaign_listing_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let e = final_report(&paths).unwrap_err().to_string();
    for needle in [
        "final_report refused",
        "benchmark/candidates.jsonl",
        "benchmark/revalidation/round-N.jsonl",
        "history/model-pr-history-notes.md",
        "no gap_decision recorded",
        "campaign.json has no vllm_checkout",
        "tests run",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in: {e}");
    }
    // The placeholder final_report.md is left as it was.
    assert!(!CampaignPaths::is_written(&paths.final_report()));
}

#[test]
fn final_report_refuses_while_the_loop_still_says_patch() {
    let b = build_complete();
    // Drop the stop decision: the latest decision is round 1's patch.
    let lines: Vec<String> = std::fs::read_to_string(b.paths.lineage())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    std::fs::write(b.paths.lineage(), format!("{}\n", lines[0])).unwrap();
    let run = |extra: serde_json::Value| {
        let mut req = json!({"campaign_dir": b.paths.root});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        FinalReport::run(serde_json::from_value(req).unwrap(), &ToolContext::new())
    };
    let e = run(json!({})).unwrap_err().to_string();
    assert!(
        e.contains("latest gap_decision (round 1) is `patch`"),
        "{e}"
    );
    // Without the profile and layer-pipeline evidence a patch round needs, those are listed too.
    std::fs::remove_dir_all(b.paths.profiles_dir().join("round-1")).unwrap();
    std::fs::write(
        b.paths.layer_pipeline(),
        format!("{}\n", vllm_sota_core::layout::PLACEHOLDER_MARKER),
    )
    .unwrap();
    let e = run(json!({})).unwrap_err().to_string();
    assert!(
        e.contains("profile tables") && e.contains("layer-pipeline report"),
        "{e}"
    );
    // allow_unfinished only lifts the stop requirement.
    assert!(
        run(json!({"allow_unfinished": true}))
            .unwrap_err()
            .to_string()
            .contains("profile tables")
    );
}

#[test]
fn final_report_on_a_complete_campaign() {
    let b = build_complete();
    let r = FinalReport::run(
        serde_json::from_value(
            json!({"campaign_dir": b.paths.root, "tests_run": ["cargo test -p vllm-sota-rlcr"]}),
        )
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    assert!(r.reached_sota, "{}", r.verdict);
    assert!(r.verdict.contains("beats"), "{}", r.verdict);
    assert_eq!(r.post_patch_round, 1);
    assert_eq!(r.changed_files, 1);
    let c = &r.changed_files_top[0];
    assert_eq!(
        (
            c.path.as_str(),
            c.status.as_str(),
            c.insertions,
            c.deletions
        ),
        ("vllm/model_executor/models/llama.py", "modified", 2, 1)
    );
    assert_eq!((r.profile_tables, r.ncu_digests, r.tests_run), (2, 1, 2));
    let text = std::fs::read_to_string(b.paths.final_report()).unwrap();
    for needle in [
        "**vLLM reached SOTA in the target environment**",
        "## Fixed benchmark (round 0)",
        "| chat | sglang | `sglang-best` | 0 | 0 | Ok | pass | 10.000 |",
        "## Post-patch results (benchmark/revalidation/round-1.jsonl)",
        "| chat | vllm | `vllm-best` | 1 | 0 | Ok | pass | 10.500 |",
        "server: `sglang-serve --model /models/llama --tag=sglang-best`",
        "- round 1: `patch`",
        "- round 2: `stop_beats`, geomean improvement +16.67%",
        "`profiles/round-1/vllm/decode/tables.md`",
        "Layer pipeline: `analysis/layer-pipeline.md`",
        "NCU digest: `kernel/ncu-digests/rmsnorm-v1/digest.md`",
        "Model PR history notes: `history/model-pr-history-notes.md`",
        "| `vllm/model_executor/models/llama.py` | modified | 2 | 1 |",
        "- `pytest tests/kernels/test_layernorm.py`",
        "- `cargo test -p vllm-sota-rlcr`",
        "round 1: Fused residual RMSNorm (+16.70%, row r1-0)",
        "round 1: Older row (+2.50%)",
    ] {
        assert!(
            text.contains(needle),
            "final_report.md lacks {needle:?}:\n{text}"
        );
    }
    assert!(text.contains(&b.base), "base commit named");
}

#[test]
fn checkpoint_is_rebuilt_from_the_records() {
    let b = build_complete();
    let r = checkpoint(&b.paths).unwrap();
    assert_eq!(r.vllm_branch.as_deref(), Some("main"));
    let head = git2::Repository::open(&b.checkout)
        .unwrap()
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    assert_eq!(r.vllm_commit.as_deref(), Some(head.as_str()));
    assert_eq!(r.changed_files, Some(1));
    assert_eq!(r.latest_gap_decision.as_deref(), Some("round 2 stop_beats"));
    assert_eq!(
        r.profile_tables,
        vec![
            "profiles/round-1/sglang/decode/tables.md",
            "profiles/round-1/vllm/decode/tables.md"
        ]
    );
    assert_eq!(
        r.ncu_digests,
        vec!["kernel/ncu-digests/rmsnorm-v1/digest.md"]
    );
    assert_eq!(r.rejected_ideas, 2);
    assert_eq!(
        r.next_planned_patch.as_deref(),
        Some("Fuse top-k/top-p sampling (target: vllm/v1/sample/ops/topk_topp_sampler.py)")
    );
    assert!(r.not_yet_available.is_empty(), "{:?}", r.not_yet_available);
    let text = std::fs::read_to_string(b.paths.checkpoint()).unwrap();
    assert!(CampaignPaths::is_written(&b.paths.checkpoint()));
    for needle in [
        "- Model: `meta-llama/Llama-3.1-8B-Instruct`",
        "- Tokenizer: `meta-llama/Llama-3.1-8B-Instruct`",
        "- Precision: bf16; quantization: none",
        "- Hardware: 1 × NVIDIA H200",
        "| chat | random | 1000 | 1000 | 80 | 80 | inf | /v1/completions |",
        "SLA: p50 TTFT ≤ 5000 ms, p50 TPOT ≤ 50 ms, success rate ≥ 0.99",
        "server: `vllm-serve --model /models/llama --tag=vllm-best`",
        "- Branch: main; commit: ",
        "`patches/round-1-fused-rmsnorm.patch`",
        "- `pytest tests/kernels/test_layernorm.py`",
        "From `benchmark/revalidation/round-1.jsonl`",
        "Round 2 decision `stop_beats`",
        "| nvjet_tst_128x64 | gemm | 30.1 |",
        "`history/model-pr-history-notes.md` (written)",
        "> Chosen forward pass: decode step 12 (batch 64).",
        "- `kernel/ncu-digests/rmsnorm-v1/digest.md`",
        "attempt a2 (round 1, rejected): Bigger CUDA graph batch sizes — flag-only, no gain",
        "source idea source_idea-1 (round 1, rejected): Port SGLang's sampler — different numerics",
        "## Next planned patch\n\nFuse top-k/top-p sampling (target: vllm/v1/sample/ops/topk_topp_sampler.py)",
        "- optimization: round 1: Fused residual RMSNorm (+16.70%, row r1-0)",
    ] {
        assert!(
            text.contains(needle),
            "checkpoint lacks {needle:?}:\n{text}"
        );
    }
    // An explicit next patch wins.
    let r = Checkpoint::run(
        serde_json::from_value(
            json!({"campaign_dir": b.paths.root, "next_planned_patch": "Overlap the all-reduce"}),
        )
        .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    assert_eq!(
        r.next_planned_patch.as_deref(),
        Some("Overlap the all-reduce")
    );
}

#[test]
fn checkpoint_on_a_fresh_campaign_says_what_is_not_there_yet() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(dir.path(), &campaign_record(None, None, &["vllm"]));
    let r = checkpoint(&paths).unwrap();
    assert!(
        r.not_yet_available
            .iter()
            .any(|m| m.contains("vllm_checkout")),
        "{:?}",
        r.not_yet_available
    );
    assert!(r.not_yet_available.iter().any(|m| m == "gap_decision"));
    let text = std::fs::read_to_string(paths.checkpoint()).unwrap();
    assert!(
        text.contains("(no gap_decision recorded yet)")
            && text.contains("`history/model-pr-history-notes.md` (NOT written)"),
        "{text}"
    );
}

#[test]
fn bad_ledger_line_is_an_error_naming_file_and_line() {
    let b = build_complete();
    let p = b.paths.attempt_ledger().with_extension("jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{text}[1, 2]\n")).unwrap();
    let e = format!("{:#}", checkpoint(&b.paths).unwrap_err());
    assert!(
        e.contains("attempt-ledger.jsonl") && e.contains("row 4 is not a JSON object"),
        "{e}"
    );
    std::fs::write(&p, format!("{text}{{not json\n{{\"a\": 1}}\n")).unwrap();
    let e = format!("{:#}", checkpoint(&b.paths).unwrap_err());
    assert!(e.contains("attempt-ledger.jsonl:4"), "{e}");
}

#[test]
fn secrets_in_recorded_commands_never_reach_the_documents() {
    let b = build_complete();
    let mut rows: Vec<vllm_sota_core::results::CandidateRow> =
        fsx::read_jsonl(&b.paths.candidates()).unwrap();
    for r in &mut rows {
        r.server_command.extend([
            "--hf-token".to_string(),
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456".to_string(),
        ]);
    }
    write_rows(&b.paths.candidates(), &rows);
    checkpoint(&b.paths).unwrap();
    final_report(&b.paths).unwrap();
    for p in [b.paths.checkpoint(), b.paths.final_report()] {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("--hf-token"),
            "the flag itself stays visible in {}",
            p.display()
        );
        assert!(
            !text.contains("hf_AbCdEfGhIjKlMnOpQrStUvWxYz123456"),
            "secret leaked into {}",
            p.display()
        );
    }
}

/// Run final_report (allow_unfinished) and return (reached_sota, verdict, final_report.md).
fn final_verdict(b: &Built) -> (bool, String, String) {
    let r = FinalReport::run(
        serde_json::from_value(json!({"campaign_dir": b.paths.root, "allow_unfinished": true}))
            .unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    let text = std::fs::read_to_string(b.paths.final_report()).unwrap();
    (r.reached_sota, r.verdict, text)
}

/// The real round-2 decision row with the overall and every scenario decision replaced.
fn append_decision(b: &Built, decision: &str, reason: &str) {
    let rows: Vec<serde_json::Value> = fsx::read_jsonl(&b.paths.lineage()).unwrap();
    let mut d = rows
        .iter()
        .rev()
        .find(|r| r["kind"] == "gap_decision")
        .unwrap()
        .clone();
    d["round"] = json!(3);
    d["decision"] = json!(decision);
    d["reason"] = json!(reason);
    for s in d["scenarios"].as_array_mut().unwrap() {
        s["decision"] = json!(decision);
    }
    fsx::append_jsonl(&b.paths.lineage(), &d).unwrap();
}

#[test]
fn final_report_writes_each_verdict_and_claims_sota_only_for_a_supported_win() {
    let b = build_complete();
    let (sota, verdict, text) = final_verdict(&b);
    assert!(sota, "{verdict}");
    assert!(
        verdict.starts_with("vLLM beats the best measured competitor on 1 × NVIDIA H200"),
        "{verdict}"
    );
    assert!(text.contains("**vLLM reached SOTA in the target environment**"));
    for (decision, sota, start) in [
        (
            "stop_tied",
            true,
            "vLLM is tied with the best measured competitor within the noise threshold",
        ),
        (
            "stop_external",
            false,
            "not reached: the remaining gap is external to vLLM",
        ),
        (
            "stop_at_limit",
            false,
            "not reached: the hot path is at the hardware/algorithmic limit",
        ),
        (
            "blocked_competitor_unavailable",
            false,
            "not reached: no competitor has measured rows here, and a missing competitor is not a win",
        ),
        (
            "blocked_not_comparable",
            false,
            "not reached: no competitor was measured on vLLM's machine and workload",
        ),
        (
            "blocked_reduced_workload",
            false,
            "not reached: only reduced-workload rows decided the last round",
        ),
        (
            "rerun",
            false,
            "not reached: the loop stopped unfinished (latest decision `rerun`)",
        ),
        (
            "patch",
            false,
            "not reached: the loop stopped unfinished (latest decision `patch`)",
        ),
    ] {
        append_decision(&b, decision, "the recorded reason");
        let (got, verdict, text) = final_verdict(&b);
        assert_eq!(got, sota, "{decision}: {verdict}");
        assert!(verdict.starts_with(start), "{decision}: {verdict}");
        assert!(
            verdict.ends_with("the recorded reason"),
            "{decision}: {verdict}"
        );
        assert_eq!(
            text.contains("**vLLM reached SOTA in the target environment**"),
            sota,
            "{decision}"
        );
        assert_eq!(
            text.contains("**vLLM did not reach SOTA in the target environment**"),
            !sota,
            "{decision}"
        );
    }
}

#[test]
fn final_report_refuses_a_win_the_records_do_not_support() {
    // A stop_beats decision row without a measured competitor (as an older tool wrote it).
    let b = build_complete();
    append_decision(
        &b,
        "stop_beats",
        "vLLM passes the SLA and no competitor does",
    );
    let rows: Vec<serde_json::Value> = fsx::read_jsonl(&b.paths.lineage()).unwrap();
    let mut last = rows.last().unwrap().clone();
    for s in last["scenarios"].as_array_mut().unwrap() {
        s["leader_framework"] = json!(null);
        s["leader_mean"] = json!(null);
    }
    fsx::append_jsonl(&b.paths.lineage(), &last).unwrap();
    let (sota, verdict, _) = final_verdict(&b);
    assert!(!sota);
    assert!(
        verdict.contains("names no measured competitor: a missing competitor is not a win"),
        "{verdict}"
    );

    // Post-patch rows whose probe failed, or that measured other code than the checkout.
    for (edit, needle) in [
        (
            0,
            "post-patch row r1-0 fails the correctness probe (3/8 matched)",
        ),
        (1, "post-patch row r1-0 measured vLLM commit "),
        (2, "names no vLLM commit"),
    ] {
        let b = build_complete();
        let mut rows: Vec<vllm_sota_core::results::CandidateRow> =
            fsx::read_jsonl(&b.paths.revalidation(1)).unwrap();
        match edit {
            0 => {
                let c = rows[0].correctness.as_mut().unwrap();
                c.matched = 3;
                c.match_rate = 3.0 / 8.0;
                c.passed = false;
            }
            1 => rows[0].vllm_commit = Some(b.base.clone()),
            _ => rows[0].vllm_commit = None,
        }
        write_rows(&b.paths.revalidation(1), &rows);
        let (sota, verdict, text) = final_verdict(&b);
        assert!(!sota, "{verdict}");
        assert!(verdict.contains(needle), "{needle}: {verdict}");
        assert!(text.contains("**vLLM did not reach SOTA in the target environment**"));
    }

    // A reduced (flow-check) workload in the rows: named in the verdict line, never a win.
    let b = build_complete();
    let mut rows: Vec<vllm_sota_core::results::CandidateRow> =
        fsx::read_jsonl(&b.paths.revalidation(1)).unwrap();
    for r in &mut rows {
        r.workload.label = Some("flow-check".into());
    }
    write_rows(&b.paths.revalidation(1), &rows);
    let (sota, verdict, _) = final_verdict(&b);
    assert!(!sota);
    assert!(
        verdict.contains("rows from a reduced workload (flow-check) inform but cannot decide"),
        "{verdict}"
    );
}
