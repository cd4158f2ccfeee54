//! Config parsing and preflight against the real `--help` fixtures (no server launched).

mod common;

use common::*;
use std::collections::BTreeMap;
use vllm_sota_core::Framework;
use vllm_sota_fairbench::{FrameworkStatus, PreflightOptions, preflight};
use vllm_sota_fairbench::{HelpFlags, load_framework_flags, resolve_flag};
use vllm_sota_fairbench::{load_config, parse_config_text};

fn help_texts() -> BTreeMap<Framework, String> {
    BTreeMap::from([
        (
            Framework::Vllm,
            std::fs::read_to_string(vllm_help()).unwrap(),
        ),
        (
            Framework::Sglang,
            std::fs::read_to_string(sglang_help()).unwrap(),
        ),
    ])
}

fn opts() -> PreflightOptions {
    PreflightOptions {
        help_texts: help_texts(),
        help_timeout: None,
        skip_gpu_check: true,
    }
}

#[test]
fn help_parsing_finds_real_flags_and_aliases() {
    let v = HelpFlags::parse(&std::fs::read_to_string(vllm_help()).unwrap());
    for f in [
        "--max-num-seqs",
        "--gpu-memory-utilization",
        "--tensor-parallel-size",
        "-tp",
        "--enforce-eager",
        "--no-enforce-eager",
        "--max-model-len",
        "--port",
        "--host",
        "-h",
        "--speculative-config",
        "-sc",
    ] {
        assert!(v.contains(f), "vLLM help lacks {f}");
    }
    // Dotted config fields are accepted when the config flag exists.
    assert!(v.contains("--compilation-config.mode"));
    // Words in descriptions (indented 24 columns) are not flags.
    assert!(!v.contains("--is-embedding"));
    let s = HelpFlags::parse(&std::fs::read_to_string(sglang_help()).unwrap());
    for f in [
        "--tp-size",
        "--tensor-parallel-size",
        "--mem-fraction-static",
        "--max-running-requests",
        "--context-length",
        "--model-path",
        "--model",
    ] {
        assert!(s.contains(f), "SGLang help lacks {f}");
    }
    // Only listed in the usage block (help suppressed), still accepted by argparse.
    assert!(s.contains("--cuda-graph-max-bs"));
    assert!(!s.contains("--max-num-seqs"));
    // The vLLM fixture lists 275 option lines; every one yields at least one name.
    assert!(v.flags.len() >= 275, "{}", v.flags.len());
}

#[test]
fn documented_aliases_translate_and_unknown_flags_are_named() {
    let facts = load_framework_flags().unwrap();
    let s = HelpFlags::parse(&std::fs::read_to_string(sglang_help()).unwrap());
    let sg = facts.facts(Framework::Sglang).unwrap();
    let r = resolve_flag("--max-num-seqs", sg, &s).unwrap();
    assert_eq!(
        (r.used.as_str(), r.how.as_str()),
        ("--max-running-requests", "translation")
    );
    let r = resolve_flag("tensor_parallel_size", sg, &s).unwrap();
    assert_eq!(
        (r.used.as_str(), r.how.as_str()),
        ("--tensor-parallel-size", "spelling")
    );
    let v = HelpFlags::parse(&std::fs::read_to_string(vllm_help()).unwrap());
    let vf = facts.facts(Framework::Vllm).unwrap();
    let r = resolve_flag("--max_num_seqs", vf, &v).unwrap();
    assert_eq!(
        (r.used.as_str(), r.how.as_str()),
        ("--max-num-seqs", "spelling")
    );
    assert_eq!(
        resolve_flag("--context-length", vf, &v).unwrap().used,
        "--max-model-len"
    );
    let err = resolve_flag("--bogus-knob", vf, &v).unwrap_err();
    assert!(
        err.contains("`--bogus-knob`") && err.contains("vLLM"),
        "{err}"
    );
}

#[test]
fn the_three_cookbook_configs_validate_and_preflight_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cook = vllm_sota_core::refs::source_dir().join("cookbook");
    let mut names: Vec<_> = std::fs::read_dir(&cook)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let mut gpu_counts = vec![];
    for path in names {
        let cfg = load_config(&path).unwrap();
        gpu_counts.push(cfg.hardware.gpu_count);
        assert_eq!(cfg.dataset.scenarios().len(), 2);
        assert_eq!(cfg.dataset.max_total_len(), 9000);
        let root = dir.path().join(path.file_stem().unwrap());
        let plan = preflight(&cfg, &root, &opts()).unwrap();
        // Every vLLM and SGLang flag of the cookbook exists in the real help of vLLM 0.26 / SGLang 0.5.17.
        let bad: Vec<_> = plan
            .rejections
            .iter()
            .filter(|r| matches!(r.framework, Framework::Vllm | Framework::Sglang))
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", path.display());
        for fw in [Framework::Vllm, Framework::Sglang] {
            let fp = plan.framework(fw).unwrap();
            assert_eq!(
                fp.status,
                FrameworkStatus::Ready,
                "{fw} in {}",
                path.display()
            );
            assert!(fp.candidates[0].is_baseline);
            assert!(fp.candidates.len() <= cfg.search.max_candidates_per_framework as usize);
            // Memory knobs stay pinned: every candidate keeps the base value.
            let knob = if fw == Framework::Vllm {
                "--gpu-memory-utilization"
            } else {
                "--mem-fraction-static"
            };
            let base = fp.candidates[0].flags.get(knob).cloned();
            assert!(base.is_some());
            assert!(
                fp.candidates
                    .iter()
                    .all(|c| c.flags.get(knob) == base.as_ref())
            );
            assert!(root.join(format!("help/{fw}_serve_help.txt")).is_file());
        }
        // TensorRT-LLM is not installed on this host (no trtllm-serve): an environment gap, not "unsupported".
        if !vllm_sota_core::proc::on_path("trtllm-serve") {
            let t = plan.framework(Framework::TensorrtLlm).unwrap();
            assert_eq!(t.status, FrameworkStatus::EnvironmentGap);
            assert!(
                t.reason.as_ref().unwrap().contains("trtllm-serve"),
                "{:?}",
                t.reason
            );
            assert_eq!(plan.environment_gaps.len(), 1);
        }
    }
    gpu_counts.sort();
    assert_eq!(gpu_counts, vec![1, 2, 4]);
}

const MINIMAL: &str = "schema_version: 1\nmodel:\n  name: m\nframeworks:\n  vllm:\n    base_server_flags:\n      --max-num-seqs: 64\n";

#[test]
fn config_errors_name_the_key() {
    let err = |text: &str| format!("{:#}", parse_config_text(text, "cfg.yaml").unwrap_err());
    assert!(parse_config_text(MINIMAL, "cfg.yaml").is_ok());
    let e = err("");
    assert!(e.contains("cfg.yaml") && e.contains("empty"), "{e}");
    let e = err(&MINIMAL.replace("schema_version: 1", "schema_version: 2"));
    assert!(e.contains("schema_version"), "{e}");
    let e = err(&format!("{MINIMAL}search:\n  teir: 2\n"));
    assert!(e.contains("teir") && e.contains("search"), "{e}");
    let e = err(&format!(
        "{MINIMAL}dataset:\n  scenario_names: [a, b]\n  input_len: [1]\n  output_len: [1, 2]\n"
    ));
    assert!(
        e.contains("dataset.scenario_names") && e.contains("aligned"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}benchmark:\n  max_concurrency: eighty\n"));
    assert!(
        e.contains("benchmark.max_concurrency") || e.contains("max_concurrency"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}benchmark:\n  qps: {{lower: 1, upper: 8, max_rounds: 9}}\n"
    ));
    assert!(e.contains("benchmark.qps.max_rounds"), "{e}");
    let e = err(&MINIMAL.replace("vllm:", "vlm:"));
    assert!(
        e.contains("frameworks")
            && e.contains("unknown framework \"vlm\"")
            && e.contains("known: vllm, sglang, tensorrt_llm, tokenspeed"),
        "{e}"
    );
    let e = err("schema_version: 1\nmodel: [\n");
    assert!(e.contains("cfg.yaml"), "{e}");
    let e = err(&format!(
        "{MINIMAL}benchmark:\n  sla:\n    max_p50_tpot: 5\n"
    ));
    assert!(e.contains("max_p50_tpot"), "{e}");
    // JSON works too, with the same checks.
    let e = err(
        r#"{"schema_version": 1, "model": {"name": "m"}, "frameworks": {"vllm": {"enabled": "yes"}}}"#,
    );
    assert!(e.contains("enabled") || e.contains("frameworks"), "{e}");
}

fn plan_for(yaml: &str) -> vllm_sota_fairbench::Plan {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.help_texts.insert(
        Framework::TensorrtLlm,
        std::fs::read_to_string(trt_help(dir.path())).unwrap(),
    );
    let cfg = parse_config_text(yaml, "t.yaml").unwrap();
    preflight(&cfg, dir.path(), &o).unwrap()
}

/// The plan of a config when no help text is given (each framework's help_command runs).
fn plan_without_help_texts(yaml: &str) -> vllm_sota_fairbench::Plan {
    let dir = tempfile::tempdir().unwrap();
    let cfg = parse_config_text(yaml, "t.yaml").unwrap();
    let o = PreflightOptions {
        skip_gpu_check: true,
        ..Default::default()
    };
    preflight(&cfg, dir.path(), &o).unwrap()
}

#[test]
fn fairness_rules_reject_exclude_and_pin() {
    let plan = plan_for(
        "schema_version: 1\nmodel: {name: m}\ndataset: {scenario_names: [a], input_len: [8000], output_len: [1000]}\nsearch: {max_candidates_per_framework: 20}\nframeworks:\n  vllm:\n    base_server_flags: {--gpu-memory-utilization: 0.9}\n    search_space:\n      --max-num-seqs: [128, 256]\n      --bogus-flag: [1]\n      --gpu-memory-utilization: [0.8, 0.95]\n      --speculative-config: ['{\"method\":\"ngram\"}']\n      --max-num-partial-prefills: [1, 4]\n      --max-model-len: [4096, 16384]\n  tensorrt_llm:\n    search_space:\n      --backend: [pytorch, tensorrt]\n      --max_batch_size: [64]\n",
    );
    let reasons: Vec<String> = plan
        .rejections
        .iter()
        .map(|r| format!("{:?} {}", r.flag, r.reason))
        .collect();
    let has = |needle: &str| reasons.iter().any(|r| r.contains(needle));
    assert!(has("unknown flag `--bogus-flag`"), "{reasons:#?}");
    assert!(
        has("memory-fraction knob `--gpu-memory-utilization` stays pinned"),
        "{reasons:#?}"
    );
    assert!(has("--backend tensorrt"), "{reasons:#?}");
    // A candidate whose max length cannot hold 8000 + 1000 tokens is rejected, naming the value.
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("--max-model-len") && r.contains("4096") && r.contains("9000")),
        "{reasons:#?}"
    );
    let excluded: Vec<String> = plan
        .excluded
        .iter()
        .map(|x| format!("{:?} {}", x.flag, x.reason))
        .collect();
    assert!(
        excluded
            .iter()
            .any(|x| x.contains("--speculative-config") && x.contains("speculative")),
        "{excluded:?}"
    );
    assert!(
        excluded
            .iter()
            .any(|x| x.contains("--max-num-partial-prefills 4")),
        "{excluded:?}"
    );
    let v = plan.framework(Framework::Vllm).unwrap();
    // partial prefill 1 stays searchable; 16384 max length is kept.
    assert!(
        v.candidates
            .iter()
            .any(|c| c.flags.get("--max-num-partial-prefills") == Some(&serde_json::json!(1)))
    );
    assert!(
        v.candidates
            .iter()
            .any(|c| c.flags.get("--max-model-len") == Some(&serde_json::json!(16384)))
    );
    assert!(
        v.candidates
            .iter()
            .all(|c| c.flags.get("--speculative-config").is_none()
                && c.flags.get("--bogus-flag").is_none())
    );
    let t = plan.framework(Framework::TensorrtLlm).unwrap();
    assert_eq!(t.status, FrameworkStatus::Ready);
    assert!(
        t.command_template
            .windows(2)
            .any(|w| w == ["--backend", "pytorch"])
    );
    assert!(
        t.candidates
            .iter()
            .all(|c| c.flags.get("--backend").is_none_or(|b| b == "pytorch"))
    );
    // TRT had no max length flag: preflight added max(input + output).
    assert_eq!(
        t.candidates[0].flags.get("--max_seq_len"),
        Some(&serde_json::json!(9000))
    );
}

#[test]
fn non_pytorch_trt_backend_rejects_the_framework() {
    let plan = plan_for(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  tensorrt_llm:\n    server_command: [trtllm-serve, serve, '{model}', --backend, tensorrt]\n",
    );
    let t = plan.framework(Framework::TensorrtLlm).unwrap();
    assert_eq!(t.status, FrameworkStatus::Rejected);
    assert!(
        t.reason.as_ref().unwrap().contains("`--backend tensorrt`")
            && t.reason.as_ref().unwrap().contains("--backend pytorch"),
        "{:?}",
        t.reason
    );
    let plan = plan_for(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  tensorrt_llm:\n    base_server_flags: {--backend: _autodeploy}\n",
    );
    assert_eq!(
        plan.framework(Framework::TensorrtLlm).unwrap().status,
        FrameworkStatus::Rejected
    );
    // An unknown base flag rejects the whole framework with the flag's name.
    let plan = plan_for(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  sglang:\n    base_server_flags: {--max-num-seqs-typo: 3}\n",
    );
    let s = plan.framework(Framework::Sglang).unwrap();
    assert_eq!(s.status, FrameworkStatus::Rejected);
    assert!(
        s.reason.as_ref().unwrap().contains("`--max-num-seqs-typo`"),
        "{:?}",
        s.reason
    );
    // An excluded feature in the base flags is refused too.
    let plan = plan_for(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  sglang:\n    base_server_flags: {--enable-two-batch-overlap: true}\n",
    );
    assert!(
        plan.framework(Framework::Sglang)
            .unwrap()
            .reason
            .as_ref()
            .unwrap()
            .contains("two-batch overlap")
    );
}

#[test]
fn a_missing_framework_is_an_environment_gap() {
    let plan = plan_without_help_texts(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  tokenspeed:\n    server_command: [definitely-not-installed-tokenspeed, serve, '{model}']\n",
    );
    assert_eq!(plan.environment_gaps.len(), 1);
    assert!(
        plan.environment_gaps[0]
            .reason
            .contains("definitely-not-installed-tokenspeed")
    );
    assert!(plan.environment_gaps[0].reason.contains("environment gap"));
    assert_eq!(plan.candidates_planned(), 0);
}

#[test]
fn nvidia_smi_compute_apps_are_matched_to_requested_gpus() {
    let uuids = BTreeMap::from([("GPU-aaa".to_string(), 0u32), ("GPU-bbb".to_string(), 1u32)]);
    let apps = "1234, GPU-bbb, 70000\n999, GPU-aaa, 500\n";
    let busy = vllm_sota_fairbench::parse_compute_apps(apps, &uuids, &[1]);
    assert_eq!(busy, vec!["GPU 1: pid 1234 (70000 MiB)".to_string()]);
    assert!(vllm_sota_fairbench::parse_compute_apps("", &uuids, &[0, 1]).is_empty());
}

#[test]
fn an_unreadable_help_text_rejects_instead_of_guessing() {
    let plan = plan_without_help_texts(
        "schema_version: 1\nmodel: {name: m}\nframeworks:\n  vllm:\n    server_command: [echo, serve]\n    help_command: [echo, 'no flags here']\n",
    );
    let v = plan.framework(Framework::Vllm).unwrap();
    assert_eq!(v.status, FrameworkStatus::Rejected);
    assert!(
        v.reason
            .as_ref()
            .unwrap()
            .contains("frameworks.vllm.help_command"),
        "{:?}",
        v.reason
    );
    assert!(plan.environment_gaps.is_empty());
}
