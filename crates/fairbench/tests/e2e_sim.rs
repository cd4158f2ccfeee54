//! End-to-end: sim-serve (real child processes) standing in for vLLM, SGLang,
//! TensorRT-LLM and a hanging TokenSpeed; full two-scenario search, artifacts, schema
//! validation, revalidation with the correctness probe, and kill -9 then resume.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vllm_sota_core::jobs::{self, JobStatus};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::results::{CandidateRow, RunStatus};
use vllm_sota_core::{ToolContext, fsx};
use vllm_sota_fairbench::PreflightOptions;
use vllm_sota_fairbench::{
    FairBenchmarkReport, FairBenchmarkRequest, RevalidateRequest, start_fair_benchmark,
};

/// The e2e config. Each framework is sim-serve with its own flag family and a different
/// batch capacity, so the simulator predicts the order: vLLM c01 (16 seqs) > SGLang (8) >
/// vLLM baseline (4) > TensorRT-LLM (2) at concurrency 16, on the simulator's uncalibrated
/// cost model (`--sim-cost-profile none`: the calibrated profiles have their own test in
/// the bench crate).
fn config_yaml(dir: &Path, with_all: bool) -> String {
    let sim = q(&example("sim_serve"));
    let checkout = q(&dir.join("vllm-checkout-0.0.0+sim"));
    let model = q(&model_dir());
    let tok = q(&model_dir().join("tokenizer.json"));
    let vh = q(&vllm_help());
    let sh = q(&sglang_help());
    let th = q(&trt_help(dir));
    let mut y = format!(
        r#"schema_version: 1
model:
  name: {model}
  tokenizer: {tok}
hardware: {{gpu_count: 1, check_gpus_free: false}}
dataset:
  num_prompts: 16
  scenario_names: [chat, summarization]
  input_len: [64, 256]
  output_len: [48, 48]
  label: sim-e2e
benchmark:
  max_concurrency: [16]
  qps: {{lower: 5, upper: 5000, max_rounds: 2}}
  sla: {{max_p50_tpot_ms: 5000, min_success_rate: 0.99}}
  warmup_prompts: 2
  request_timeout_s: 60
search: {{tier: 1, max_candidates_per_framework: 4}}
launch: {{startup_timeout_s: 120, readiness_poll_s: 0.1, shutdown_grace_s: 3}}
frameworks:
  vllm:
    server_command: [{sim}, --framework, vllm, "{{model}}", --sim-cost-profile, none]
    help_command: [cat, {vh}]
    python_command: [python3]
    env: {{PYTHONPATH: {checkout}}}
    base_server_flags: {{--max-num-seqs: 4, --gpu-memory-utilization: 0.9}}
    search_space:
      --max-num-seqs: [16, 0]
      --bogus-flag: [1]
"#
    );
    if with_all {
        y.push_str(&format!(
            r#"  sglang:
    server_command: [{sim}, --framework, sglang, --model-path, "{{model}}", --sim-cost-profile, none]
    help_command: [cat, {sh}]
    base_server_flags: {{--max-running-requests: 8, --mem-fraction-static: 0.88}}
    search_space:
      --chunked-prefill-size: [1048576]
  tensorrt_llm:
    server_command: [{sim}, --framework, trtllm, "{{model}}", --sim-cost-profile, none]
    help_command: [cat, {th}]
    base_server_flags: {{--max_batch_size: 2}}
    search_space:
      --backend: [tensorrt]
    search_skipped_reason: "its one knob (a non-PyTorch backend) is refused at preflight"
  tokenspeed:
    server_command: [{sim}, --framework, vllm, "{{model}}", --sim-cost-profile, none, --fault-slow-start-s, "1000"]
    help_command: [cat, {vh}]
    startup_timeout_s: 4
    search_skipped_reason: "hangs at start-up in this test"
"#
        ));
    }
    y
}

/// The e2e config written beside the campaign as `bench.yaml`.
fn write_config(dir: &Path, with_all: bool) -> PathBuf {
    let path = dir.join("bench.yaml");
    std::fs::write(&path, config_yaml(dir, with_all)).unwrap();
    path
}

fn request(
    root: &Path,
    config_path: String,
    dry_run: bool,
    wait_s: Option<f64>,
) -> FairBenchmarkRequest {
    FairBenchmarkRequest {
        campaign_dir: root.display().to_string(),
        config_path: Some(config_path),
        config: None,
        dry_run,
        wait_s,
    }
}

/// fair_benchmark as the tool starts it, with `exe` as the job process.
fn start(req: FairBenchmarkRequest, exe: &Path) -> FairBenchmarkReport {
    start_fair_benchmark(
        req,
        &ToolContext::default(),
        exe,
        &PreflightOptions::default(),
    )
    .unwrap()
}

/// One revalidation round run in this process.
fn revalidate(root: &Path, req: RevalidateRequest) -> jobs::JobState {
    jobs::run_inline(
        &root.join(format!(
            "benchmark/revalidation/round-{}.job.json",
            req.round
        )),
        "revalidate",
        serde_json::to_value(req).unwrap(),
        vllm_sota_fairbench::run_revalidate_job,
    )
    .unwrap()
}

fn rows(root: &Path) -> Vec<CandidateRow> {
    fsx::read_jsonl(&root.join("benchmark/candidates.jsonl")).unwrap()
}

fn row<'a>(rows: &'a [CandidateRow], id: &str) -> &'a CandidateRow {
    rows.iter().find(|r| r.row_id == id).unwrap_or_else(|| {
        panic!(
            "no row {id}; have {:?}",
            rows.iter().map(|r| &r.row_id).collect::<Vec<_>>()
        )
    })
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        vllm_sota_core::refs::source_dir().join("candidate-row.schema.json"),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_rows_valid(path: &Path) {
    let v = validator();
    let text = std::fs::read_to_string(path).unwrap();
    for (i, line) in text.lines().enumerate() {
        let json: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}:{} does not match candidate-row.schema.json: {errors:?}",
            path.display(),
            i + 1
        );
    }
}

fn run_search_inline(root: &Path, cfg_path: &Path) -> Value {
    search::run_fair_benchmark_inline(
        root,
        request(root, cfg_path.display().to_string(), true, None),
    )
}

#[test]
fn full_search_with_sim_serve_then_revalidation() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let cfg_path = write_config(dir.path(), true);

    // Preflight (dry run) reports the unknown flag by name and the non-pytorch backend.
    let report = start(
        request(&root, cfg_path.display().to_string(), true, None),
        Path::new("/nonexistent"),
    );
    let rej: Vec<String> = report
        .preflight_rejections
        .iter()
        .map(|r| r.reason.clone())
        .collect();
    assert!(
        rej.iter()
            .any(|r| r.contains("unknown flag `--bogus-flag`")),
        "{rej:?}"
    );
    assert!(
        rej.iter().any(|r| r.contains("`--backend pytorch`")),
        "{rej:?}"
    );
    // vLLM: baseline, max-num-seqs=16, max-num-seqs=0; SGLang: baseline + OOM; TRT: baseline; TokenSpeed: baseline.
    assert_eq!(report.candidates_planned, 3 + 2 + 1 + 1);

    let t0 = Instant::now();
    let result = run_search_inline(&root, &cfg_path);
    eprintln!("full search took {:.1} s", t0.elapsed().as_secs_f64());
    let rows = rows(&root);
    let ids: HashSet<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "duplicate row ids");
    // 7 candidates × 2 scenarios + 2 preflight rejection rows.
    assert_eq!(rows.len(), 7 * 2 + 2, "{result}");

    // Failure classification, and the search went on after each.
    let crash = row(&rows, "vllm/c02-max-num-seqs=0/chat/r0");
    assert_eq!(crash.status, RunStatus::Failed);
    assert_eq!(
        crash.failure_reason.as_deref(),
        Some("exited with code 1: Error: max running sequences must be >= 1")
    );
    let oom = row(
        &rows,
        "sglang/c01-chunked-prefill-size=1048576/summarization/r0",
    );
    assert_eq!(oom.status, RunStatus::Oom);
    assert!(
        oom.failure_reason
            .as_ref()
            .unwrap()
            .contains("CUDA out of memory"),
        "{:?}",
        oom.failure_reason
    );
    let hang = row(&rows, "tokenspeed/c00-baseline/chat/r0");
    assert_eq!(hang.status, RunStatus::Timeout);
    assert!(
        hang.failure_reason
            .as_ref()
            .unwrap()
            .starts_with("not ready within 4 s"),
        "{:?}",
        hang.failure_reason
    );
    assert!(hang.artifacts.contains_key("server_log"));
    let rejected: Vec<_> = rows
        .iter()
        .filter(|r| r.status == RunStatus::Rejected)
        .collect();
    assert_eq!(rejected.len(), 2);

    // Winners: what the simulator's capacity model predicts, in both scenarios.
    let winners = vllm_sota_fairbench::winners(&rows, Default::default());
    for sc in ["chat", "summarization"] {
        let order: Vec<String> = winners[sc]
            .iter()
            .map(|r| format!("{}/{}", r.framework, r.candidate_id))
            .collect();
        assert_eq!(
            order,
            vec![
                "vllm/c01-max-num-seqs=16",
                "sglang/c00-baseline",
                "tensorrt_llm/c00-baseline"
            ],
            "{sc}"
        );
        let tp = |id: &str| {
            row(&rows, &format!("{id}/{sc}/r0"))
                .request_throughput()
                .unwrap()
        };
        for id in [
            "vllm/c01-max-num-seqs=16",
            "sglang/c00-baseline",
            "vllm/c00-baseline",
            "tensorrt_llm/c00-baseline",
        ] {
            let r = row(&rows, &format!("{id}/{sc}/r0"));
            let m = r.metrics.as_ref().unwrap();
            eprintln!(
                "{sc} {id}: {:.2} req/s, p50 TTFT {:?} ms, p50 TPOT {:?} ms, point {:?}/{:?}",
                tp(id),
                m.p50_ttft_ms(),
                m.p50_tpot_ms(),
                r.workload.max_concurrency,
                r.workload.request_rate
            );
        }
        // 16 vs 4 sequences: the searched vLLM candidate beats its own baseline by > 2x.
        assert!(
            tp("vllm/c01-max-num-seqs=16") > 2.0 * tp("vllm/c00-baseline"),
            "{sc}"
        );
        assert!(tp("sglang/c00-baseline") > tp("vllm/c00-baseline"), "{sc}");
        assert!(
            tp("vllm/c00-baseline") > tp("tensorrt_llm/c00-baseline"),
            "{sc}"
        );
        let w = row(&rows, &format!("vllm/c01-max-num-seqs=16/{sc}/r0"));
        assert_eq!(w.sla.passed, Some(true));
        assert_eq!(w.metrics.as_ref().unwrap().completed, Some(16));
        assert!(
            w.server_command
                .windows(2)
                .any(|p| p == ["--max-num-seqs", "16"])
        );
        assert!(
            w.server_command
                .windows(2)
                .any(|p| p == ["--max-model-len", "304"]),
            "max length added: {:?}",
            w.server_command
        );
        assert!(w.benchmark_command.starts_with(&[
            "vllm-sota".to_string(),
            "bench".into(),
            "load".into()
        ]));
        assert_eq!(w.workload.label.as_deref(), Some("sim-e2e"));
        assert!(
            w.validated_cli_flags
                .contains(&"--max-num-seqs".to_string())
        );
    }
    let trt = row(&rows, "tensorrt_llm/c00-baseline/chat/r0");
    assert!(
        trt.server_command
            .windows(2)
            .any(|p| p == ["--backend", "pytorch"])
    );

    // Artifacts.
    let b = root.join("benchmark");
    let summary = std::fs::read_to_string(b.join("summary.md")).unwrap();
    assert!(
        summary.contains("| 1 | vllm | `c01-max-num-seqs=16` | pass |"),
        "{summary}"
    );
    assert!(summary.contains("max running sequences must be >= 1"));
    assert!(summary.contains("sim-e2e"));
    let winning = std::fs::read_to_string(b.join("winning-commands.md")).unwrap();
    assert!(
        winning.contains("--max-num-seqs 16") && winning.contains("vllm-sota bench load"),
        "{winning}"
    );
    for sc in ["chat", "summarization"] {
        let svg = std::fs::read_to_string(b.join(format!("plots/{sc}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("class=\"sla\"")
                && svg.contains("data-framework=\"sglang\""),
            "{sc}"
        );
    }
    let handoff: Value = fsx::read_json(&b.join("profiler-handoff.json")).unwrap();
    assert!(["chat", "summarization"].contains(&handoff["slow_scenario"].as_str().unwrap()));
    assert_eq!(handoff["output_len"], 48);
    assert!(handoff["vllm_server_command"].as_array().is_some());
    assert!(root.join("help/vllm_serve_help.txt").is_file());
    assert!(
        b.join("correctness/vllm/c01-max-num-seqs=16.json")
            .is_file()
    );
    assert_rows_valid(&root.join("benchmark/candidates.jsonl"));
    assert_eq!(result["rows_total"], 16);

    // Resume of a finished search writes nothing new.
    let again = run_search_inline(&root, &cfg_path);
    assert_eq!(again["rows_written_this_run"], 0);
    assert_eq!(again["rows_skipped_as_done"], 16);
    assert_eq!(rows_len(&root), 16);

    // Revalidation round 1: vLLM's winner and the leader (vLLM itself here), 2 repeats, probe passes.
    let paths = CampaignPaths::new(&root);
    let rv = |round: u32| RevalidateRequest {
        campaign_dir: root.display().to_string(),
        round,
        repeats: 2,
        include_leader: true,
        scenarios: Some(vec!["chat".into()]),
        vllm_commit: Some("feedbeef".into()),
        correctness: true,
        min_match_rate: 1.0,
        wait_s: None,
    };
    let st = revalidate(&root, rv(1));
    assert_eq!(st.status, JobStatus::Succeeded, "{:?}", st.error);
    let res = st.result.unwrap();
    assert_eq!(res["patch_correct"], true, "{res}");
    let rrows: Vec<CandidateRow> = fsx::read_jsonl(&paths.revalidation(1)).unwrap();
    assert_eq!(rrows.len(), 2);
    for r in &rrows {
        assert_eq!(
            (r.round, r.vllm_commit.as_deref(), r.status),
            (1, Some("feedbeef"), RunStatus::Ok)
        );
        let c = r.correctness.as_ref().unwrap();
        assert_eq!((c.probes, c.matched, c.passed), (8, 8, true));
        assert_eq!(
            r.workload.max_concurrency,
            row(&rows, "vllm/c01-max-num-seqs=16/chat/r0")
                .workload
                .max_concurrency
        );
    }
    assert_rows_valid(&paths.revalidation(1));
    assert_eq!(
        rows_len(&root),
        16,
        "revalidation never writes into the fixed baseline"
    );

    // The measured server's vllm import was checked against the campaign's checkout, and
    // every row states its warm-up protocol and fairness inputs.
    for r in &rrows {
        let imp = &r.normalization["vllm_import"];
        assert!(
            imp["file"]
                .as_str()
                .unwrap()
                .contains("vllm-checkout-0.0.0+sim"),
            "{imp}"
        );
        assert_eq!(imp["version"], "0.0.0+sim");
        assert!(r.warmup.as_ref().unwrap().protocol.contains("2 requests"));
        assert_eq!(
            r.normalization["fairness"]["precision"],
            "`--dtype bfloat16`"
        );
    }

    // A patched build whose answers differ (the simulator's broken-patch mode: same
    // prompts, other tokens and logprobs from the third token on) fails the probe end to
    // end, through the real probe requests.
    let plan_file = root.join("benchmark/plan.json");
    let original_plan: Value = fsx::read_json(&plan_file).unwrap();
    let mut broken = original_plan.clone();
    for fw in broken["frameworks"].as_array_mut().unwrap() {
        if fw["framework"] == "vllm" {
            fw["command_template"]
                .as_array_mut()
                .unwrap()
                .push(Value::String("--sim-broken-patch".into()));
        }
    }
    fsx::write_json(&plan_file, &broken).unwrap();
    let st = revalidate(&root, rv(2));
    let res = st.result.unwrap();
    assert_eq!(res["patch_correct"], false, "{res}");
    let r2: Vec<CandidateRow> = fsx::read_jsonl(&paths.revalidation(2)).unwrap();
    let c2 = r2[0].correctness.as_ref().unwrap();
    assert_eq!((c2.probes, c2.matched, c2.passed), (8, 0, false), "{c2:?}");
    let md = std::fs::read_to_string(root.join("benchmark/revalidation/round-2.md")).unwrap();
    assert!(md.contains("patch is marked incorrect"), "{md}");

    // With the probe switched off, the same broken build is "not checked", never correct.
    let mut off = rv(3);
    off.correctness = false;
    let st = revalidate(&root, off);
    let res = st.result.unwrap();
    assert!(res["patch_correct"].is_null(), "{res}");
    assert!(
        res["correctness_check"]
            .as_str()
            .unwrap()
            .starts_with("not checked"),
        "{res}"
    );
    let md = std::fs::read_to_string(root.join("benchmark/revalidation/round-3.md")).unwrap();
    assert!(md.contains("not checked"), "{md}");
    fsx::write_json(&plan_file, &original_plan).unwrap();

    // A server that imports vllm from elsewhere than the campaign's checkout is refused,
    // naming both, before anything is measured.
    let other = fake_checkout(dir.path(), "9.9.9");
    let cj = root.join("campaign.json");
    let mut c: Value = fsx::read_json(&cj).unwrap();
    c["vllm_checkout"] = Value::String(other.display().to_string());
    fsx::write_json(&cj, &c).unwrap();
    let st = revalidate(&root, rv(4));
    assert_eq!(st.status, JobStatus::Failed);
    let e = st.error.unwrap();
    assert!(
        e.contains("vllm-checkout-0.0.0+sim") && e.contains("vllm-checkout-9.9.9"),
        "{e}"
    );
    assert!(!paths.revalidation(4).exists());
    if let Ok(keep) = std::env::var("FAIRBENCH_KEEP_RUN") {
        // For people: copy the run directory out to look at the artifacts.
        let _ = std::process::Command::new("cp")
            .arg("-r")
            .arg(&root)
            .arg(keep)
            .status();
    }
}

fn rows_len(root: &Path) -> usize {
    rows(root).len()
}

fn wait_for(mut f: impl FnMut() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn kill_dash_9_mid_search_then_resume_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    write_config(dir.path(), false);
    let exe = example("fairbench_job");
    let req = request(&root, "../bench.yaml".into(), false, Some(0.5));
    let report = start(req.clone(), &exe);
    assert!(!report.resumed);
    let state = root.join("benchmark/job.json");
    // Wait for the first measured row, then kill the job process with SIGKILL.
    let first_ok = wait_for(
        || {
            rows(&root).iter().any(|r| r.status == RunStatus::Ok)
                || jobs::status(&state).unwrap().status != JobStatus::Running
        },
        Duration::from_secs(240),
    ) && rows(&root).iter().any(|r| r.status == RunStatus::Ok);
    let st = jobs::status(&state).unwrap();
    assert!(
        first_ok,
        "no measured row; job state {st:?}; log:\n{}",
        std::fs::read_to_string(&st.log_path).unwrap_or_default()
    );
    let pid = st.pid.unwrap();
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    assert!(wait_for(
        || jobs::status(&state).unwrap().status == JobStatus::Interrupted,
        Duration::from_secs(10)
    ));
    let before = rows_len(&root);
    let planned: Vec<String> = {
        let plan: vllm_sota_fairbench::Plan =
            fsx::read_json(&root.join("benchmark/plan.json")).unwrap();
        vllm_sota_fairbench::planned_row_ids(&plan)
    };
    assert!(
        before < planned.len(),
        "killed too late to test resume ({before} of {})",
        planned.len()
    );

    // Resume: same request; completes the rest.
    let report = start(req, &exe);
    assert!(report.resumed);
    assert_eq!(report.attempts, 2);
    assert!(report.rows_already_done >= before.min(report.rows_planned));
    assert!(wait_for(
        || jobs::status(&state).unwrap().status.is_final(),
        Duration::from_secs(300)
    ));
    let st = jobs::status(&state).unwrap();
    assert_eq!(
        st.status,
        JobStatus::Succeeded,
        "{:?}\n{}",
        st.error,
        std::fs::read_to_string(&st.log_path).unwrap_or_default()
    );
    let rows = rows(&root);
    let ids: Vec<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates after resume: {ids:?}");
    let want: HashSet<&str> = planned.iter().map(String::as_str).collect();
    assert_eq!(unique, want, "missing or extra rows after resume");
    assert_eq!(
        st.result.as_ref().unwrap()["rows_skipped_as_done"]
            .as_u64()
            .unwrap() as usize,
        before
    );
    let counts: BTreeMap<String, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(format!("{:?}", r.status)).or_default() += 1;
        m
    });
    assert_eq!(counts.get("Ok"), Some(&4), "{counts:?}");
    assert_rows_valid(&root.join("benchmark/candidates.jsonl"));
}

#[test]
fn cancel_stops_the_job_and_its_server_group() {
    let dir = tempfile::tempdir().unwrap();
    let root = campaign(dir.path());
    let cfg_path = write_config(dir.path(), false);
    let exe = example("fairbench_job");
    start(
        request(&root, cfg_path.display().to_string(), false, None),
        &exe,
    );
    let state = root.join("benchmark/job.json");
    let live = root.join("benchmark/servers/live.json");
    // Cancel while a server is up (being measured).
    assert!(wait_for(
        || jobs::status(&state)
            .unwrap()
            .progress
            .message
            .starts_with("measuring"),
        Duration::from_secs(240)
    ));
    let server: Value = fsx::read_json(&live).unwrap();
    let pgid = server["pgid"].as_i64().unwrap() as i32;
    let st = jobs::cancel(&state).unwrap();
    assert_eq!(st.status, JobStatus::Cancelled, "{st:?}");
    assert!(
        st.error.as_deref().unwrap_or("").contains("cancel"),
        "{:?}",
        st.error
    );
    // The job tore the server's process group down before exiting.
    assert!(
        wait_for(
            || unsafe { libc::kill(-pgid, 0) } != 0,
            Duration::from_secs(20)
        ),
        "server group {pgid} still alive"
    );
    assert!(!live.exists());
    // Whatever rows were written are whole and valid.
    assert_rows_valid(&root.join("benchmark/candidates.jsonl"));
}
