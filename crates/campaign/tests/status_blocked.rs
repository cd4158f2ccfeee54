//! campaign_status after a `blocked_*` gap decision: the next step asks for the missing
//! evidence (a competitor, like-for-like rows, the full workload), not for a patch round.

use serde_json::json;
use vllm_sota_campaign::CampaignStatus;
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{CampaignPaths, LAYOUT_DIRS, LAYOUT_FILES, PLACEHOLDER_MARKER};
use vllm_sota_core::{Tool, ToolContext};

/// A campaign past Phase 0 and the fixed benchmark, with start_rlcr recorded (no checkout),
/// and round 1's gap decision `decision`.
fn campaign_with_decision(dir: &std::path::Path, decision: &str) -> CampaignPaths {
    for d in LAYOUT_DIRS {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for f in LAYOUT_FILES {
        let text = if f.ends_with(".jsonl") {
            String::new()
        } else {
            format!("{PLACEHOLDER_MARKER}\n# {f}\n")
        };
        std::fs::write(dir.join(f), text).unwrap();
    }
    let campaign = json!({
        "schema_version": 1, "model": "meta-llama/Llama-3.1-8B-Instruct",
        "model_slug": "llama-3.1-8b-instruct", "model_family": "llama",
        "tokenizer": "meta-llama/Llama-3.1-8B-Instruct", "precision": "bf16",
        "quantization": null, "trust_remote_code": false, "max_model_len": 10240,
        "vllm_checkout": null, "vllm_base_commit": null, "vllm_base_branch": null,
        "gpu_ids": [0], "frameworks": ["vllm", "sglang"],
        "created_at": "2026-11-29T13:00:00Z", "environment": {}
    });
    fsx::write_json(&dir.join("campaign.json"), &campaign).unwrap();
    let paths = CampaignPaths::open(dir).unwrap();
    fsx::write_text(&paths.history_notes(), "# Model PR history notes\n\nread\n").unwrap();
    fsx::write_text(&paths.candidates(), "{\"row_id\": \"vl-0\"}\n").unwrap();
    fsx::write_text(&paths.benchmark_dir().join("summary.md"), "# Summary\n").unwrap();
    fsx::append_jsonl(
        &paths.lineage(),
        &json!({"kind": "start_rlcr", "at": "2026-11-29T13:10:00Z"}),
    )
    .unwrap();
    fsx::append_jsonl(
        &paths.lineage(),
        &json!({"kind": "gap_decision", "round": 1, "decision": decision, "reason": "r", "scenarios": []}),
    )
    .unwrap();
    paths
}

#[test]
fn blocked_decisions_name_the_missing_evidence_as_the_next_step() {
    for (decision, needle) in [
        (
            "blocked_competitor_unavailable",
            "install and benchmark one (fair_benchmark)",
        ),
        ("blocked_not_comparable", "re-run them like for like"),
        ("blocked_reduced_workload", "the campaign's full workload"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let paths = campaign_with_decision(dir.path(), decision);
        let r = CampaignStatus::run(
            serde_json::from_value(json!({"campaign_dir": paths.root})).unwrap(),
            &ToolContext::new(),
        )
        .unwrap();
        assert!(
            r.next_step.contains(decision) && r.next_step.contains(needle),
            "{decision}: {}",
            r.next_step
        );
        assert!(
            r.next_step.contains("gap_decision"),
            "{decision}: {}",
            r.next_step
        );
        // Not a patch round: no profiling or patch gate is asked for.
        assert!(!r.next_step.contains("profile_tables"), "{}", r.next_step);
        assert!(!r.next_step.contains("final_report"), "{}", r.next_step);
    }
    // A patch decision still walks the round's gates.
    let dir = tempfile::tempdir().unwrap();
    let paths = campaign_with_decision(dir.path(), "patch");
    let r = CampaignStatus::run(
        serde_json::from_value(json!({"campaign_dir": paths.root})).unwrap(),
        &ToolContext::new(),
    )
    .unwrap();
    assert!(r.next_step.contains("profile_tables"), "{}", r.next_step);
}
