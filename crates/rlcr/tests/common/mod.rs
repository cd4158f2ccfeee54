//! Shared test helpers: campaign directories, benchmark rows, git repositories (git2)
//! and the real Humanize runtime ([`humanize`]).
#![allow(dead_code)]

pub mod git;
pub mod humanize;

pub use git::{commit_all, init_main};

use git2::Repository;
use std::path::{Path, PathBuf};
use vllm_sota_core::fsx;
use vllm_sota_core::layout::{
    Campaign, CampaignPaths, LAYOUT_DIRS, LAYOUT_FILES, PLACEHOLDER_MARKER,
};
use vllm_sota_core::results::*;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn campaign_record(
    checkout: Option<&Path>,
    base_commit: Option<String>,
    frameworks: &[&str],
) -> Campaign {
    Campaign {
        schema_version: 1,
        model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        model_slug: "llama-3.1-8b-instruct".into(),
        model_family: "llama".into(),
        tokenizer: "meta-llama/Llama-3.1-8B-Instruct".into(),
        precision: "bf16".into(),
        quantization: None,
        trust_remote_code: false,
        max_model_len: Some(10240),
        vllm_checkout: checkout.map(Path::to_path_buf),
        vllm_base_commit: base_commit,
        vllm_base_branch: Some("main".into()),
        gpu_ids: vec![0],
        frameworks: frameworks.iter().map(|s| s.to_string()).collect(),
        created_at: "2026-11-29T13:00:00Z".into(),
        environment: serde_json::json!({"gpu": "NVIDIA H200"}),
    }
}

/// A campaign directory as campaign_init leaves it: layout dirs, placeholder files, campaign.json.
pub fn make_campaign(dir: &Path, campaign: &Campaign) -> CampaignPaths {
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
    fsx::write_json(&dir.join("campaign.json"), campaign).unwrap();
    CampaignPaths::open(dir).unwrap()
}

pub fn sla() -> Sla {
    Sla {
        max_p50_ttft_ms: Some(5000.0),
        max_p50_tpot_ms: Some(50.0),
        min_success_rate: Some(0.99),
    }
}

/// A row with request throughput `rps`; SLA verdict recomputed from the metrics.
pub fn row(id: &str, fw: &str, cand: &str, scenario: &str, rps: f64, tpot_ms: f64) -> CandidateRow {
    let (isl, osl) = if scenario == "summ" {
        (8000, 1000)
    } else {
        (1000, 1000)
    };
    let metrics = MetricsRow {
        num_requests: 80,
        completed: Some(80),
        failed: Some(0),
        success_rate: Some(1.0),
        request_throughput: Some(rps),
        output_throughput: Some(rps * osl as f64),
        ttft_ms: Some(Percentiles {
            p50: Some(300.0),
            ..Default::default()
        }),
        tpot_ms: Some(Percentiles {
            p50: Some(tpot_ms),
            ..Default::default()
        }),
        provenance: Provenance {
            client: "vllm-sota".into(),
            token_count_source: "usage".into(),
            itl_granularity: "per_chunk".into(),
            duration_definition: "first send → last byte".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    CandidateRow {
        candidate_id: cand.into(),
        hardware: Hardware {
            gpu_count: 1,
            gpu_model: Some("NVIDIA H200".into()),
            gpu_ids: vec![0],
            multi_node: false,
        },
        workload: Workload {
            dataset: "random".into(),
            scenario: scenario.into(),
            input_len: isl,
            output_len: osl,
            num_prompts: 80,
            max_concurrency: Some(80),
            endpoint: "/v1/completions".into(),
            seed: Some(0),
            ..Default::default()
        },
        server_command: vec![
            format!("{fw}-serve"),
            "--model".into(),
            "/models/llama".into(),
            format!("--tag={cand}"),
        ],
        benchmark_command: vec![
            "vllm-sota".into(),
            "bench".into(),
            "--scenario".into(),
            scenario.into(),
        ],
        ..CandidateRow::measured(id, fw, scenario, metrics, &sla())
    }
}

/// Repeats of one command: one row per value, ids `<prefix>-<i>`.
pub fn repeats(
    prefix: &str,
    fw: &str,
    cand: &str,
    scenario: &str,
    values: &[f64],
) -> Vec<CandidateRow> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = row(&format!("{prefix}-{i}"), fw, cand, scenario, *v, 12.0);
            r.repeat = i as u32;
            r
        })
        .collect()
}

/// A greedy correctness probe that matched every answer.
pub fn passed_probe() -> Correctness {
    Correctness {
        probes: 8,
        matched: 8,
        match_rate: 1.0,
        passed: true,
        detail: None,
    }
}

pub fn write_rows(path: &Path, rows: &[CandidateRow]) {
    let text: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub fn write_written(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A repository on branch `main` with one commit (README, a source file and, optionally, `.humanize*` ignored).
pub fn make_repo(dir: &Path, ignore_humanize: bool) -> (Repository, String) {
    let repo = init_main(dir);
    std::fs::write(dir.join("README.md"), "# vLLM (test checkout)\n").unwrap();
    std::fs::create_dir_all(dir.join("vllm/model_executor/models")).unwrap();
    std::fs::write(
        dir.join("vllm/model_executor/models/llama.py"),
        "def forward(x):\n    return x\n",
    )
    .unwrap();
    if ignore_humanize {
        std::fs::write(dir.join(".gitignore"), "__pycache__/\n.humanize*\n").unwrap();
    } else {
        std::fs::write(dir.join(".gitignore"), "__pycache__/\n").unwrap();
    }
    let head = commit_all(&repo, "initial");
    (repo, head)
}

/// A scratch campaign under `dir`: a vLLM checkout `<dir>/vllm` (one commit, `.humanize*`
/// ignored) and the campaign `<dir>/run` on that commit, comparing vLLM and SGLang.
pub struct Scratch {
    pub repo: Repository,
    pub checkout: PathBuf,
    pub base: String,
    pub paths: CampaignPaths,
}

pub fn scratch_campaign(dir: &Path) -> Scratch {
    let checkout = dir.join("vllm");
    std::fs::create_dir_all(&checkout).unwrap();
    let (repo, base) = make_repo(&checkout, true);
    let paths = make_campaign(
        &dir.join("run"),
        &campaign_record(Some(&checkout), Some(base.clone()), &["vllm", "sglang"]),
    );
    Scratch {
        repo,
        checkout,
        base,
        paths,
    }
}

/// History notes as `history_notes` leaves them when the vLLM document was read.
pub const HISTORY_NOTES: &str =
    "# Model PR history notes\n\n## Paths read\n\n- `vllm/llama31/README.en.md`\n";

/// The fixed baseline the loop tests share (SGLang at 10 req/s, vLLM 10 % behind, three
/// repeats each) and written history notes.
pub fn write_baseline_vllm_behind(paths: &CampaignPaths) {
    let mut rows = repeats("sg", "sglang", "sglang-best", "chat", &[10.0, 10.02, 9.98]);
    rows.extend(repeats(
        "vl",
        "vllm",
        "vllm-best",
        "chat",
        &[9.0, 9.01, 8.99],
    ));
    write_rows(&paths.candidates(), &rows);
    write_written(&paths.history_notes(), HISTORY_NOTES);
}

/// A campaign ready for `start_rlcr`: a clean checkout with `.humanize*` ignored, the
/// fixed baseline, history notes, and the real Humanize runtime.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub paths: CampaignPaths,
    pub checkout: PathBuf,
    pub rt: humanize::RealRuntime,
}

/// [`Setup`], or None when the vendored runtime is missing (skipped loudly).
pub fn setup() -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let rt = humanize::real_runtime(dir.path())?;
    let Scratch {
        checkout, paths, ..
    } = scratch_campaign(dir.path());
    write_baseline_vllm_behind(&paths);
    Some(Setup {
        dir,
        paths,
        checkout,
        rt,
    })
}
