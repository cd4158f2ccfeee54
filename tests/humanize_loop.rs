//! The Humanize loop through the CLI, on the real runtime (vendored snapshot) in a
//! scratch checkout: no codex → `preconditions_failed` naming codex and a non-zero exit;
//! a stub codex → `started` with the plan's base branch; then campaign_status follows
//! the loop through every state-file name and never sends the agent back to start_rlcr.

mod common;
use common::humanize_runtime::real_runtime;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a tool through the CLI with `PATH`; returns (exit code, JSON report).
fn cli_path(tool: &str, request: &Value, path: &std::ffi::OsStr) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req.json");
    std::fs::write(&req, serde_json::to_vec(request).unwrap()).unwrap();
    let out = Command::new(bin())
        .arg(tool)
        .arg("--request")
        .arg(&req)
        .arg("--json")
        .env("PATH", path)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

fn status(campaign: &Path) -> Value {
    let (ok, s, err) = cli("campaign-status", &json!({"campaign_dir": campaign}));
    assert!(ok, "{err}");
    s
}

fn rlcr_gate(s: &Value) -> &Value {
    s["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "rlcr_started")
        .unwrap()
}

#[test]
fn the_loop_through_the_cli_on_the_real_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rt) = real_runtime(tmp.path()) else {
        return;
    };
    let checkout = tmp.path().join("vllm");
    std::fs::create_dir_all(checkout.join("vllm")).unwrap();
    let repo = common::git::init_main(&checkout);
    std::fs::write(checkout.join(".gitignore"), ".humanize*\n").unwrap();
    std::fs::write(checkout.join("vllm/model.py"), "x = 1\n").unwrap();
    common::git::commit_all(&repo, "base");
    let (ok, init, err) = cli(
        "campaign-init",
        &json!({
            "model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": tmp.path().join("artifacts"),
            "gpu_ids": [0], "vllm_checkout": checkout, "model_slug": "dummy-llama-3.1-8b",
        }),
    );
    assert!(ok, "{err}");
    let campaign = PathBuf::from(init["campaign_dir"].as_str().unwrap());
    let rows = [
        candidate_row("vllm-c0-chat", "vllm", "chat", 1.0, 0),
        candidate_row("sglang-c0-chat", "sglang", "chat", 1.2, 0),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(campaign.join("benchmark/candidates.jsonl"), text).unwrap();
    std::fs::write(campaign.join("benchmark/summary.md"), "# Summary\n").unwrap();
    std::fs::write(
        campaign.join("history/model-pr-history-notes.md"),
        "# Notes\n\nvLLM #1234 touched llama.py\n",
    )
    .unwrap();
    let req = json!({"campaign_dir": campaign, "runtime_root": rt.root, "base_branch": "main"});

    // No codex on PATH: a failed precondition naming codex, and a non-zero exit.
    let (code, r) = cli_path("start-rlcr", &req, &rt.path_without_codex());
    assert_eq!(code, 2, "{r}");
    assert_eq!(r["status"], "preconditions_failed");
    assert_eq!(r["failure"], "precondition(s) failed: codex");
    assert!(
        status(&campaign)["next_step"]
            .as_str()
            .unwrap()
            .contains("start_rlcr")
    );

    // A stub codex: started, with the plan's base branch in state.md.
    let (code, r) = cli_path("start-rlcr", &req, &rt.path_with_codex());
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["status"], "started");
    let state = PathBuf::from(r["state_path"].as_str().unwrap());
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.lines().any(|l| l == "base_branch: main"), "{text}");
    let plan = std::fs::read_to_string(checkout.join(".humanize/vllm-sota-agent/refined-plan.md"))
        .unwrap();
    assert!(plan.contains("review base branch `main`"));
    let tracker = std::fs::read_to_string(r["goal_tracker_path"].as_str().unwrap()).unwrap();
    for n in 1..=9 {
        assert!(plan.contains(&format!("- AC-{n}:")), "AC-{n} in the plan");
        assert!(
            tracker.contains(&format!("- AC-{n}:")),
            "AC-{n} in goal-tracker.md"
        );
    }
    let s = status(&campaign);
    assert_eq!(rlcr_gate(&s)["state"], "done");
    assert_eq!(s["rlcr_loop"]["phase"], "active");
    assert_eq!(s["rlcr_loop"]["current_round"], 0);
    assert!(
        s["next_step"]
            .as_str()
            .unwrap()
            .contains("call gap_decision"),
        "{}",
        s["next_step"]
    );

    // Every later state-file name: a phase, a next step, never start_rlcr.
    let dir = state.parent().unwrap().to_path_buf();
    let mut current = state.clone();
    for (file, phase, says) in [
        ("finalize-state.md", "finalize", "finalize-summary.md"),
        (
            "methodology-analysis-state.md",
            "methodology_analysis",
            "methodology-analysis phase",
        ),
        ("complete-state.md", "complete", "call final_report"),
        ("cancel-state.md", "cancelled", "has ended"),
        ("maxiter-state.md", "max_iterations", "has ended"),
        ("stop-state.md", "stopped", "has ended"),
        ("unexpected-state.md", "unexpected", "has ended"),
    ] {
        let next = dir.join(file);
        std::fs::rename(&current, &next).unwrap();
        current = next;
        let s = status(&campaign);
        let step = s["next_step"].as_str().unwrap();
        assert_eq!(rlcr_gate(&s)["state"], "done", "{file}");
        assert_eq!(s["rlcr_loop"]["phase"], phase, "{file}");
        assert!(step.contains(says), "{file}: {step}");
        assert!(!step.contains("start_rlcr"), "{file}: {step}");
    }

    // The loop state removed behind our back: status says so instead of "start again".
    std::fs::remove_dir_all(checkout.join(".humanize/rlcr")).unwrap();
    let s = status(&campaign);
    assert_eq!(rlcr_gate(&s)["state"], "failed");
    assert!(
        s["next_step"]
            .as_str()
            .unwrap()
            .contains("do not start a second loop")
    );
}
