//! history_notes against the fixture knowledge root (laid out like BBuf's
//! model-pr-optimization-history).

mod common;

use common::*;
use serde_json::json;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::history::{HistoryNotes, HistoryNotesRequest};

fn knowledge_root() -> std::path::PathBuf {
    fixtures().join("knowledge-root")
}

fn run(
    paths: &CampaignPaths,
    extra: serde_json::Value,
) -> anyhow::Result<vllm_sota_rlcr::history::HistoryNotesReport> {
    let mut req = json!({"campaign_dir": paths.root, "knowledge_root": knowledge_root()});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    HistoryNotes::run(
        serde_json::from_value::<HistoryNotesRequest>(req).unwrap(),
        &ToolContext::new(),
    )
}

#[test]
fn llama_slug_matches_llama31_and_reads_vllm_and_sglang_history() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let r = run(&paths, json!({})).unwrap();
    assert_eq!(r.status, "written");
    assert_eq!(r.family.as_deref(), Some("llama31"));
    assert_eq!(r.match_method.as_deref(), Some("fuzzy"));
    let docs: Vec<&str> = r.docs_read.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        docs,
        vec!["vllm/llama31/README.en.md", "sglang/llama31/README.en.md"]
    );
    // vllm/llama31/README.en.md has four PR cards: #8343, #10164, #33731, #38373.
    assert_eq!(r.docs_read[0].pr_count, 4);
    assert_eq!(r.docs_read[1].pr_count, 2);
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(CampaignPaths::is_written(&paths.history_notes()));
    for needle in [
        "#### vllm-project/vllm#8343 — [Feature] Add support for Llama 3.1 and 3.2 tool use",
        "https://github.com/vllm-project/vllm/pull/38373",
        "`vllm/compilation/passes/fusion/sequence_parallelism.py`",
        "`SequenceParallelismPass`",
        "`test_resolve_content_format_hf_defined`",
        "#### sgl-project/sglang#13935 — [misc] add llama3.1 chat template",
        "- Decision it influences:",
        "## Paths read",
        "`vllm/llama31/README.en.md`",
    ] {
        assert!(notes.contains(needle), "missing {needle:?} in:\n{notes}");
    }
    // PR #8343 appears in the coverage table, the timeline, its card and its link line.
    let p8343 = r.top_prs.iter().find(|p| p.number == 8343).unwrap();
    assert!(p8343.mentions >= 3, "{p8343:?}");
    assert!(
        r.top_files
            .iter()
            .any(|f| f == "examples/tool_chat_template_llama3.1_json.jinja"),
        "{:?}",
        r.top_files
    );
    // Written notes are protected.
    let e = run(&paths, json!({})).unwrap_err().to_string();
    assert!(e.contains("overwrite"), "{e}");
    assert!(run(&paths, json!({"overwrite": true})).is_ok());
}

#[test]
fn sglang_history_is_skipped_when_sglang_is_neither_compared_nor_leading() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "tensorrt_llm"]),
    );
    write_rows(
        &paths.candidates(),
        &[
            row("t", "tensorrt_llm", "t", "chat", 11.0, 12.0),
            row("v", "vllm", "v", "chat", 10.0, 12.0),
        ],
    );
    let r = run(&paths, json!({})).unwrap();
    assert_eq!(r.docs_read.len(), 1);
    assert_eq!(r.docs_read[0].framework, "vllm");
    // ... and read when SGLang leads a scenario of the fixed baseline.
    let dir2 = tempfile::tempdir().unwrap();
    let paths2 = make_campaign(
        dir2.path(),
        &campaign_record(None, None, &["vllm", "tensorrt_llm"]),
    );
    write_rows(
        &paths2.candidates(),
        &[
            row("s", "sglang", "s", "chat", 12.0, 12.0),
            row("v", "vllm", "v", "chat", 10.0, 12.0),
        ],
    );
    assert_eq!(run(&paths2, json!({})).unwrap().docs_read.len(), 2);
}

#[test]
fn chinese_first_falls_back_per_framework() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let r = run(&paths, json!({"lang": "zh"})).unwrap();
    let docs: Vec<&str> = r.docs_read.iter().map(|d| d.path.as_str()).collect();
    // vLLM has README.zh.md; the SGLang folder only has README.en.md.
    assert_eq!(
        docs,
        vec!["vllm/llama31/README.zh.md", "sglang/llama31/README.en.md"]
    );
}

#[test]
fn missing_root_writes_the_blocker_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let req: HistoryNotesRequest = serde_json::from_value(
        json!({"campaign_dir": paths.root, "knowledge_root": dir.path().join("no-such-root")}),
    )
    .unwrap();
    let r = HistoryNotes::run(req, &ToolContext::new()).unwrap();
    assert_eq!(r.status, "blocked");
    assert!(r.blocker.as_deref().unwrap().contains("does not exist"));
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(
        notes.contains("## Blocker") && notes.contains("no-such-root"),
        "{notes}"
    );
    // The gate counts it as written (the blocker is the evidence).
    assert!(CampaignPaths::is_written(&paths.history_notes()));
}

#[test]
fn unmatched_family_is_a_blocker_and_an_explicit_family_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = campaign_record(None, None, &["vllm"]);
    c.model = "mistralai/Mistral-7B".into();
    c.model_slug = "mistral-7b".into();
    c.model_family = "mistral".into();
    let paths = make_campaign(dir.path(), &c);
    let r = run(&paths, json!({"use_query_script": false})).unwrap();
    assert_eq!(r.status, "blocked");
    assert!(r.blocker.unwrap().contains("no family folder matches"));
    let r = run(&paths, json!({"family": "qwen3-core", "overwrite": true})).unwrap();
    assert_eq!(r.family.as_deref(), Some("qwen3-core"));
    assert_eq!(r.match_method.as_deref(), Some("request"));
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(
        notes.contains("`vllm/model_executor/models/qwen3_moe.py`")
            && notes.contains("`Qwen3MoeForCausalLM`"),
        "{notes}"
    );
}

#[test]
fn query_script_is_used_when_slug_and_fuzzy_matching_fail() {
    if !vllm_sota_core::proc::on_path("python3") {
        eprintln!("python3 not on PATH: skipping the query.py path");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = campaign_record(None, None, &["vllm"]);
    // Neither "meta" nor "metallama318b" prefixes or equals a folder; query.py's term match finds llama31.
    c.model = "org/Meta-Llama-3-1-8B".into();
    c.model_slug = "meta-llama-3-1-8b".into();
    c.model_family = "meta".into();
    let paths = make_campaign(dir.path(), &c);
    let r = run(&paths, json!({})).unwrap();
    assert_eq!(r.match_method.as_deref(), Some("query.py"));
    assert_eq!(r.family.as_deref(), Some("llama31"));
}
