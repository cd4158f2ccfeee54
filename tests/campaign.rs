//! Issue 2 acceptance through the CLI: exact layout, idempotent init, gates, ledger
//! invariants, concurrent appenders, secret hygiene.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;

const EXPECTED_LAYOUT: &[&str] = &[
    "analysis/",
    "analysis/layer-pipeline.md",
    "analysis/root-cause.md",
    "benchmark/",
    "campaign.json",
    "final_report.md",
    "help/",
    "history/",
    "history/model-pr-history-notes.md",
    "humanize/",
    "humanize/attempt-ledger.md",
    "humanize/lineage.jsonl",
    "humanize/model-loop-checkpoint.md",
    "humanize/optimization-ledger.md",
    "humanize/source-idea-ledger.md",
    "kernel/",
    "kernel/ncu-digests/",
    "manifest.md",
    "patches/",
    "profiles/",
];

#[test]
fn init_creates_exactly_the_layout_and_is_idempotent() {
    let (root, dir) = new_campaign();
    let name = dir.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.ends_with("_dummy-llama-3.1-8b_sota_humanize")
            && name.len() == 8 + "_dummy-llama-3.1-8b_sota_humanize".len(),
        "{name}"
    );
    assert_eq!(dir.parent().unwrap(), root.path().join("runs"));
    assert_eq!(tree(&dir), EXPECTED_LAYOUT);

    let campaign: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(
        campaign["precision"], "bf16",
        "inferred from config.json torch_dtype"
    );
    assert_eq!(
        campaign["model_family"], "llama",
        "inferred from config.json model_type"
    );
    assert_eq!(
        campaign["frameworks"],
        json!(["vllm", "sglang", "tensorrt_llm"])
    );
    // Nothing is guessed: without nvidia-smi/vllm here, the record says so.
    let env = &campaign["environment"];
    for probe in [
        &env["framework_versions"]["vllm"],
        &env["framework_versions"]["sglang"],
        &env["framework_versions"]["tensorrt_llm"],
    ] {
        assert!(probe["value"].is_string(), "{probe}");
        if probe["value"] == "not available here" {
            assert!(probe["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }

    let before = all_bytes(&dir);
    let (ok, again, err) = cli(
        "campaign-init",
        &json!({"model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": root.path(), "gpu_ids": [0], "model_slug": "dummy-llama-3.1-8b"}),
    );
    assert!(ok, "{err}");
    assert_eq!(again["created"], false);
    assert_eq!(again["campaign_dir"], dir.display().to_string());
    assert_eq!(all_bytes(&dir), before, "a second init must change nothing");
}

#[test]
fn init_names_what_cannot_be_inferred() {
    let root = tempfile::tempdir().unwrap();
    // A hub id (no local config.json): precision cannot be inferred.
    let (ok, _, err) = cli(
        "campaign-init",
        &json!({"model": "meta-llama/Llama-3.1-8B-Instruct", "artifact_root": root.path(), "gpu_ids": [0]}),
    );
    assert!(!ok);
    assert!(err.contains("precision"), "{err}");
    // No GPU ids and no nvidia-smi on PATH: the GPU environment cannot be inferred.
    let (ok, _, err) = cli_env(
        "campaign-init",
        &json!({"model": "meta-llama/Llama-3.1-8B-Instruct", "precision": "bf16", "artifact_root": root.path()}),
        &[("PATH", "/nonexistent")],
    );
    assert!(!ok);
    assert!(err.contains("gpu_ids"), "{err}");
    // Unknown request fields are named.
    let (ok, _, err) = cli(
        "campaign-init",
        &json!({"model": "m", "precision": "bf16", "artifact_root": root.path(), "gpu_ids": [0], "gpus": 2}),
    );
    assert!(!ok);
    assert!(err.contains("gpus"), "{err}");
    assert!(
        !root.path().join("runs").exists()
            || std::fs::read_dir(root.path().join("runs")).unwrap().count() == 0
    );
}

fn gate<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == name)
        .unwrap_or_else(|| panic!("no gate {name}"))
}

#[test]
fn status_reflects_gates_from_disk() {
    let (_root, dir) = new_campaign();
    let status = |d: &Path| {
        let (ok, s, err) = cli("campaign-status", &json!({"campaign_dir": d}));
        assert!(ok, "{err}");
        s
    };
    let s = status(&dir);
    assert_eq!(gate(&s, "campaign_initialized")["state"], "done");
    assert_eq!(gate(&s, "history_notes_written")["state"], "pending");
    assert_eq!(gate(&s, "fixed_benchmark")["state"], "pending");
    assert!(s["next_step"].as_str().unwrap().contains("history_notes"));

    std::fs::write(
        dir.join("history/model-pr-history-notes.md"),
        "# Notes\n\nvLLM #1234 touched llama.py\n",
    )
    .unwrap();
    let rows = [
        candidate_row("vllm-c0-chat", "vllm", "chat", 1.0, 0),
        candidate_row("sglang-c0-chat", "sglang", "chat", 1.2, 0),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("benchmark/candidates.jsonl"), text).unwrap();
    std::fs::write(dir.join("benchmark/summary.md"), "# Summary\n").unwrap();
    std::fs::write(dir.join("humanize/lineage.jsonl"), format!("{}\n{}\n",
        json!({"kind": "start_rlcr", "round": 0, "at": "2026-11-29T00:00:00Z"}),
        json!({"kind": "gap_decision", "round": 1, "at": "2026-11-29T00:00:00Z", "overall_decision": "patch"}))).unwrap();
    std::fs::create_dir_all(dir.join("analysis/round-1")).unwrap();
    std::fs::write(
        dir.join("analysis/round-1/root-cause.md"),
        "# Root cause\n\nGEMM explains 1.2 ms\n",
    )
    .unwrap();

    let s = status(&dir);
    assert_eq!(gate(&s, "history_notes_written")["state"], "done");
    assert_eq!(
        gate(&s, "history_notes_written")["evidence"],
        "history/model-pr-history-notes.md"
    );
    assert_eq!(gate(&s, "fixed_benchmark")["state"], "done");
    assert!(
        gate(&s, "fixed_benchmark")["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 candidate rows")
    );
    assert_eq!(gate(&s, "rlcr_started")["state"], "done");
    let round = &s["rounds"][0];
    assert_eq!(round["round"], 1);
    assert_eq!(round["decision"], "patch");
    let states: Vec<(&str, &str)> = round["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gate"].as_str().unwrap(), g["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("gap_decided", "done"),
            ("root_cause_written", "done"),
            ("layer_pipeline_written", "pending"),
            ("patch_committed", "pending"),
            ("revalidated", "pending")
        ]
    );
    assert!(
        s["next_step"]
            .as_str()
            .unwrap()
            .contains("round-1 layer_pipeline_written: call layer_pipeline"),
        "{}",
        s["next_step"]
    );
}

/// The evidence an attempt of `round` needs first: the round's `patch` decision in the
/// lineage, its root cause and its layer-pipeline report.
fn open_round(dir: &Path, round: u32) {
    let line = json!({"kind": "gap_decision", "round": round, "at": "2026-11-29T00:00:00Z", "decision": "patch"});
    let lineage = dir.join("humanize/lineage.jsonl");
    let old = std::fs::read_to_string(&lineage).unwrap_or_default();
    std::fs::write(&lineage, format!("{old}{line}\n")).unwrap();
    let a = dir.join(format!("analysis/round-{round}"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(
        a.join("root-cause.md"),
        "# Root cause\n\nRMSNorm explains 0.4 ms\n",
    )
    .unwrap();
    std::fs::write(
        a.join("layer-pipeline.md"),
        "# Layer pipeline\n\nHot kernels: fused_add_rms_norm_kernel, nvjet_tst_128x64\n",
    )
    .unwrap();
}

#[test]
fn attempts_wait_for_the_rounds_evidence_and_the_kernel_gate() {
    let (_root, dir) = new_campaign();
    let attempt = json!({"ledger": "attempt", "round": 1, "hypothesis": "h", "target": "t", "change": "c", "status": "planned"});
    let (ok, _, err) = append_row(&dir, attempt.clone());
    assert!(!ok);
    for needle in [
        "no gap_decision for round 1",
        "analysis/round-1/root-cause.md",
        "analysis/round-1/layer-pipeline.md",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    open_round(&dir, 1);
    std::fs::remove_file(dir.join("analysis/round-1/layer-pipeline.md")).unwrap();
    let (ok, _, err) = append_row(&dir, attempt.clone());
    assert!(
        !ok && err.contains("analysis/round-1/layer-pipeline.md") && !err.contains("root-cause"),
        "{err}"
    );
    open_round(&dir, 1);
    let (ok, _, err) = append_row(&dir, attempt.clone());
    assert!(ok, "{err}");
    // A round whose decision is not patch takes no attempt.
    std::fs::write(
        dir.join("humanize/lineage.jsonl"),
        format!(
            "{}\n",
            json!({"kind": "gap_decision", "round": 1, "decision": "rerun"})
        ),
    )
    .unwrap();
    let (ok, _, err) = append_row(&dir, attempt.clone());
    assert!(!ok && err.contains("`rerun`, not `patch`"), "{err}");
    open_round(&dir, 1);
    // The kernel gate: four conditions, each named.
    let kernel = |k: Value| {
        let mut a = attempt.clone();
        a["kernel"] = k;
        append_row(&dir, a)
    };
    std::fs::create_dir_all(dir.join("kernel")).unwrap();
    std::fs::write(dir.join("kernel/rmsnorm_ref.py"), "def ref(x): return x\n").unwrap();
    let good = json!({"kernel": "fused_add_rms_norm_kernel", "correctness_reference": "kernel/rmsnorm_ref.py", "model_shapes": ["tokens=64 hidden=4096"], "wiring_path": "vllm/model_executor/layers/layernorm.py:42"});
    let mut k = good.clone();
    k["kernel"] = json!("flash_fwd_kernel");
    let (ok, _, err) = kernel(k);
    assert!(
        !ok && err.contains("kernel.kernel") && err.contains("does not name"),
        "{err}"
    );
    let mut k = good.clone();
    k["correctness_reference"] = json!("kernel/missing.py");
    let (ok, _, err) = kernel(k);
    assert!(!ok && err.contains("kernel.correctness_reference"), "{err}");
    let mut k = good.clone();
    k["model_shapes"] = json!([]);
    let (ok, _, err) = kernel(k);
    assert!(!ok && err.contains("kernel.model_shapes"), "{err}");
    let (ok, _, err) = kernel(good);
    assert!(
        !ok && err.contains("kernel.wiring_path"),
        "no checkout to wire into: {err}"
    );
    // After two flat rounds the attempt needs a code-first source idea of its round.
    std::fs::write(dir.join("humanize/lineage.jsonl"), format!("{}\n", json!({"kind": "gap_decision", "round": 1, "decision": "patch", "expand_research": true}))).unwrap();
    let (ok, _, err) = append_row(&dir, attempt.clone());
    assert!(!ok && err.contains("code-first provenance"), "{err}");
    std::fs::create_dir_all(dir.join("profiles/round-1/vllm/decode")).unwrap();
    std::fs::write(
        dir.join("profiles/round-1/vllm/decode/tables.md"),
        "| k |\n",
    )
    .unwrap();
    let idea = json!({"ledger": "source_idea", "round": 1, "idea": "NCU says the norm is memory bound", "provenance": "ncu",
        "profiler_rows": ["profiles/round-1/vllm/decode/tables.md"], "layer_pipeline_evidence": ["analysis/round-1/layer-pipeline.md"]});
    assert!(append_row(&dir, idea.clone()).0);
    assert!(
        !append_row(&dir, attempt.clone()).0,
        "an NCU-only idea is not code-first"
    );
    let mut idea = idea;
    idea["also_from"] = json!(["sglang"]);
    idea["status"] = json!("tried");
    assert!(append_row(&dir, idea).0);
    let (ok, _, err) = append_row(&dir, attempt);
    assert!(ok, "{err}");
}

#[test]
fn optimization_row_needs_measured_improvement_and_correctness() {
    let (_root, dir) = new_campaign();
    let baseline = candidate_row("vllm-c0-chat", "vllm", "chat", 1.0, 0);
    std::fs::write(
        dir.join("benchmark/candidates.jsonl"),
        format!("{baseline}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("benchmark/revalidation")).unwrap();
    // Revalidation rows as revalidate writes them: repeats of one command, each with its probe.
    let probe = |mut r: Value, passed: bool, cand: &str| {
        r["correctness"] = json!({"probes": 16, "matched": if passed { 16 } else { 3 }, "match_rate": if passed { 1.0 } else { 0.1875 }, "passed": passed});
        r["candidate_id"] = json!(cand);
        r
    };
    let rows = [
        probe(
            candidate_row("r1-vllm-chat-0", "vllm", "chat", 1.1, 1),
            true,
            "fast",
        ),
        probe(
            candidate_row("r1-vllm-chat-1", "vllm", "chat", 1.101, 1),
            true,
            "fast",
        ),
        probe(
            candidate_row("r1-vllm-chat-2", "vllm", "chat", 1.099, 1),
            true,
            "fast",
        ),
        probe(
            candidate_row("r1-slow-0", "vllm", "chat", 0.9, 1),
            true,
            "slow",
        ),
        probe(
            candidate_row("r1-lucky-0", "vllm", "chat", 1.2, 1),
            true,
            "lucky",
        ),
        probe(
            candidate_row("r1-noise-0", "vllm", "chat", 1.004, 1),
            true,
            "noise",
        ),
        probe(
            candidate_row("r1-noise-1", "vllm", "chat", 1.006, 1),
            true,
            "noise",
        ),
        probe(
            candidate_row("r1-noise-2", "vllm", "chat", 1.005, 1),
            true,
            "noise",
        ),
        probe(
            candidate_row("r1-wrong-0", "vllm", "chat", 2.0, 1),
            false,
            "wrong",
        ),
        probe(
            candidate_row("r1-wrong-1", "vllm", "chat", 2.0, 1),
            false,
            "wrong",
        ),
        probe(
            candidate_row("r1-wrong-2", "vllm", "chat", 2.0, 1),
            false,
            "wrong",
        ),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("benchmark/revalidation/round-1.jsonl"), text).unwrap();
    open_round(&dir, 1);

    let attempt = json!({"ledger": "attempt", "round": 1, "hypothesis": "fuse rmsnorm", "target": "vllm/model_executor/layers/layernorm.py", "change": "fused add+norm", "status": "kept"});
    let (ok, r, err) = append_row(&dir, attempt);
    assert!(ok, "{err}");
    assert_eq!(r["row_id"], "r1-a01");

    let opt = |extra: Value| {
        let mut row = json!({"ledger": "optimization", "round": 1, "attempt_id": "r1-a01", "summary": "fused add+norm", "correctness": {"passed": true, "detail": "greedy probe 16/16"}});
        row.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        append_row(&dir, row)
    };
    let (ok, _, err) = opt(json!({}));
    assert!(!ok);
    assert!(err.contains("measured_improvement"), "{err}");

    let (ok, _, err) = opt(
        json!({"measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-slow-0"}}}),
    );
    assert!(!ok, "a slower row is no improvement");
    assert!(
        err.contains("measured_improvement") && err.contains("not better"),
        "{err}"
    );

    let (ok, _, err) = opt(
        json!({"measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "nope"}}}),
    );
    assert!(!ok);
    assert!(err.contains("measured_improvement.row_ref.row_id"), "{err}");
    // One lucky row is not a measurement: the noise rule needs repeats.
    let (ok, _, err) = opt(
        json!({"measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-lucky-0"}}}),
    );
    assert!(!ok && err.contains("at least 3 repeats"), "{err}");
    // +0.5 % over three tight repeats sits inside the 1 % noise threshold.
    let (ok, _, err) = opt(
        json!({"measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-noise-0"}}}),
    );
    assert!(!ok && err.contains("noise threshold"), "{err}");
    // A patch that skips work: twice as fast, but the probe stored on its rows failed; the
    // caller's `passed: true` does not count.
    let (ok, _, err) = opt(
        json!({"measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-wrong-0"}}}),
    );
    assert!(!ok && err.contains("failed its correctness probe"), "{err}");

    let mut failing = json!({"ledger": "optimization", "round": 1, "attempt_id": "r1-a01", "summary": "x", "correctness": {"passed": false, "detail": "probe 3/16"},
        "measured_improvement": {"row_ref": {"file": "benchmark/revalidation/round-1.jsonl", "row_id": "r1-vllm-chat-0"}}});
    let (ok, _, err) = append_row(&dir, failing.clone());
    assert!(!ok);
    assert!(err.contains("correctness.passed"), "{err}");

    failing["correctness"] = json!({"passed": true, "detail": "greedy probe 16/16"});
    let (ok, r, err) = append_row(&dir, failing);
    assert!(ok, "{err}");
    let pct = r["improvement_pct"].as_f64().unwrap();
    assert!(
        (pct - 10.0).abs() < 1e-6,
        "mean 1.1 vs 1.0 req/s is +10%, got {pct}"
    );
    let md = std::fs::read_to_string(dir.join("humanize/optimization-ledger.md")).unwrap();
    assert!(md.contains("| 1 | r1-a01 | x |"), "{md}");
    // Source ideas need existing evidence paths.
    let (ok, _, err) = append_row(
        &dir,
        json!({"ledger": "source_idea", "round": 1, "idea": "port SGLang fused norm", "provenance": "sglang",
        "profiler_rows": ["profiles/round-1/vllm/decode/tables.json#norm"], "layer_pipeline_evidence": ["analysis/layer-pipeline.md"]}),
    );
    assert!(!ok);
    assert!(err.contains("profiler_rows[0]"), "{err}");
}

/// 8 processes append 200 attempt rows each through the ledger library, at once.
/// The test re-runs its own binary as the child processes (env CHILD_* set).
#[test]
fn eight_concurrent_appenders_lose_nothing() {
    use vllm_sota_campaign::LedgerAppend;
    use vllm_sota_core::{Tool, ToolContext};
    if let (Ok(dir), Ok(w)) = (
        std::env::var("CHILD_CAMPAIGN"),
        std::env::var("CHILD_WRITER"),
    ) {
        for i in 1..=200 {
            let req = serde_json::from_value(json!({"campaign_dir": dir, "entry": {"ledger": "attempt", "round": 1,
                "attempt_id": format!("w{w}-{i}"), "hypothesis": format!("writer {w} row {i} | with a pipe"), "target": "t", "change": "c", "status": "planned"}}))
                .unwrap();
            LedgerAppend::run(req, &ToolContext::new()).unwrap();
        }
        return;
    }
    let (_root, dir) = new_campaign();
    open_round(&dir, 1);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|w| {
            std::process::Command::new(&exe)
                .args([
                    "eight_concurrent_appenders_lose_nothing",
                    "--exact",
                    "--test-threads=1",
                ])
                .env("CHILD_CAMPAIGN", &dir)
                .env("CHILD_WRITER", w.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let jsonl = std::fs::read_to_string(dir.join("humanize/attempt-ledger.jsonl")).unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("intact row"))
        .collect();
    assert_eq!(rows.len(), 1600);
    let mut ids: Vec<&str> = rows
        .iter()
        .map(|r| r["attempt_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1600);
    let md = std::fs::read_to_string(dir.join("humanize/attempt-ledger.md")).unwrap();
    let table_rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| w")).collect();
    assert_eq!(table_rows.len(), 1600);
    assert!(
        table_rows
            .iter()
            .all(|l| l.contains("\\| with a pipe") && l.matches(" | ").count() == 10),
        "{}",
        table_rows[0]
    );
    let lineage = std::fs::read_to_string(dir.join("humanize/lineage.jsonl")).unwrap();
    assert_eq!(
        lineage
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .count(),
        1601,
        "1600 appends and the round's gap decision"
    );
}

#[test]
fn planted_secrets_never_reach_a_file() {
    let secret_env = "s3cr3t-value-from-env-9f8e7d";
    let secret_token = "hf_ZYXWVUTSRQPONMLKJIHGFEDCBA123456";
    let root = tempfile::tempdir().unwrap();
    let env = [
        ("HF_TOKEN", secret_env),
        ("OPENAI_API_KEY", "sk-proj-AAAABBBBCCCCDDDDEEEEFFFF"),
    ];
    let (ok, report, err) = cli_env(
        "campaign-init",
        &json!({"model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": root.path(), "gpu_ids": [0], "model_slug": "dummy"}),
        &env,
    );
    assert!(ok, "{err}");
    let dir = report["campaign_dir"].as_str().unwrap().to_string();
    open_round(Path::new(&dir), 1);
    let entry = json!({"campaign_dir": dir, "entry": {"ledger": "attempt", "round": 1, "hypothesis": format!("token was {secret_env}"),
        "target": "t", "change": format!("vllm serve m --hf-token {secret_token} HF_TOKEN={secret_env}"), "status": "planned"}});
    let (ok, _, err) = cli_env("ledger-append", &entry, &env);
    assert!(ok, "{err}");
    // An error path too: the secret in a rejected request must not be logged.
    let _ = cli_env(
        "ledger-append",
        &json!({"campaign_dir": dir, "entry": {"ledger": "attempt", "round": 0, "hypothesis": secret_token, "target": "t", "change": "c", "status": "planned"}}),
        &env,
    );
    let files = all_bytes(Path::new(&dir));
    assert!(files.iter().any(|(p, _)| p == "humanize/tool-calls.log"));
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        for s in [secret_env, secret_token, "sk-proj-AAAABBBB"] {
            assert!(!text.contains(s), "{path} contains a secret");
        }
    }
}

#[test]
fn attempt_can_attach_the_checkout_diff() {
    let root = tempfile::tempdir().unwrap();
    let checkout = root.path().join("vllm");
    std::fs::create_dir_all(checkout.join("vllm")).unwrap();
    let repo = git2::Repository::init(&checkout).unwrap();
    std::fs::write(
        checkout.join("vllm/layernorm.py"),
        "def rms_norm(x):\n    return x\n",
    )
    .unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("vllm/layernorm.py")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "base", &tree, &[])
        .unwrap();

    let (ok, report, err) = cli(
        "campaign-init",
        &json!({"model": fixtures().join("dummy-llama-3.1-8b"), "artifact_root": root.path(), "gpu_ids": [0], "vllm_checkout": checkout}),
    );
    assert!(ok, "{err}");
    assert_eq!(
        report["campaign"]["vllm_base_commit"]
            .as_str()
            .unwrap()
            .len(),
        40
    );
    let dir = report["campaign_dir"].as_str().unwrap().to_string();
    std::fs::write(
        checkout.join("vllm/layernorm.py"),
        "def rms_norm(x):\n    return fused(x)\n",
    )
    .unwrap();
    open_round(Path::new(&dir), 1);
    let (ok, r, err) = append_row(
        Path::new(&dir),
        json!({"ledger": "attempt", "round": 1, "hypothesis": "h", "target": "vllm/layernorm.py", "change": "fuse", "status": "applied", "attach_patch": true}),
    );
    assert!(ok, "{err}");
    assert_eq!(r["patch_path"], "patches/r1-a01.diff");
    let diff = std::fs::read_to_string(Path::new(&dir).join("patches/r1-a01.diff")).unwrap();
    assert!(
        diff.contains("-    return x") && diff.contains("+    return fused(x)"),
        "{diff}"
    );
    let (ok, s, _) = cli("campaign-status", &json!({"campaign_dir": dir}));
    assert!(ok);
    assert_eq!(s["rounds"][0]["gates"][3]["state"], "done");
    assert_eq!(
        s["rounds"][0]["gates"][3]["evidence"],
        "patches/r1-a01.diff"
    );
}

#[test]
fn job_tools_name_an_unknown_job_and_a_missing_round() {
    let (_root, campaign) = new_campaign();
    let (ok, _, err) = cli(
        "job-status",
        &json!({"campaign_dir": campaign, "job": "nope"}),
    );
    assert!(!ok);
    assert!(
        err.contains(
            "job: unknown job 'nope' (known: fair_benchmark, revalidate, profile_launch:<framework>)"
        ),
        "{err}"
    );
    let (ok, _, err) = cli(
        "job-cancel",
        &json!({"campaign_dir": campaign, "job": "revalidate"}),
    );
    assert!(!ok);
    assert!(
        err.contains("round: required for a revalidate job"),
        "{err}"
    );
}
