//! history_notes against the fixture knowledge root (laid out like BBuf's
//! model-pr-optimization-history).

mod common;

use common::*;
use serde_json::json;
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_rlcr::{HistoryNotes, HistoryNotesRequest};

fn knowledge_root() -> std::path::PathBuf {
    fixtures().join("knowledge-root")
}

fn run(
    paths: &CampaignPaths,
    extra: serde_json::Value,
) -> anyhow::Result<vllm_sota_rlcr::HistoryNotesReport> {
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
    // A re-run over written notes merges (nothing filled in yet: nothing kept, nothing lost).
    let again = run(&paths, json!({})).unwrap();
    let m = again
        .merged
        .expect("a re-run over written notes is a merge");
    assert_eq!(m.kept_decision_count, 0);
    assert!(
        m.no_longer_in_source.is_empty() && m.kept_sections.is_empty(),
        "{m:?}"
    );
    let notes2 = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert_eq!(
        notes2.matches("#### vllm-project/vllm#8343 ").count(),
        1,
        "{notes2}"
    );
    assert!(
        run(&paths, json!({"overwrite": true}))
            .unwrap()
            .merged
            .is_none()
    );
}

/// Copy a directory tree (the fixture knowledge root, so a test can edit its documents).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// The lines of the notes from `heading` up to the next heading of the same or a higher level.
fn block<'a>(notes: &'a str, heading: &str) -> &'a str {
    let start = notes
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{notes}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let rest = &notes[start + heading.len()..];
    let end = rest
        .lines()
        .scan(0usize, |off, l| {
            let here = *off;
            *off += l.len() + 1;
            Some((here, l))
        })
        .find(|(_, l)| {
            let n = l.chars().take_while(|c| *c == '#').count();
            n > 0 && n <= level && l.chars().nth(n) == Some(' ')
        })
        .map_or(rest.len(), |(o, _)| o);
    &notes[start..start + heading.len() + end]
}

fn edit(path: &std::path::Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

const TODO_DECISION: &str = "- Decision it influences: _to fill in";

#[test]
fn rerun_merges_filled_in_decisions_notes_and_sections_and_keeps_vanished_cards() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kr");
    copy_tree(&knowledge_root(), &root);
    let paths = make_campaign(
        &dir.path().join("c"),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let go = |extra: serde_json::Value| {
        let mut req = json!({"campaign_dir": paths.root, "knowledge_root": root});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        HistoryNotes::run(
            serde_json::from_value::<HistoryNotesRequest>(req).unwrap(),
            &ToolContext::new(),
        )
        .unwrap()
    };
    assert!(go(json!({})).merged.is_none());
    // The agent fills in two decisions, a validation plan, a note under a card, a table row
    // and a section of its own.
    edit(&paths.history_notes(), |t| {
        let mut out = String::new();
        let mut card = String::new();
        for line in t.lines() {
            if line.starts_with("#### ") {
                card = line.to_string();
            } else if line.starts_with("## ") {
                card.clear();
            }
            let in_risks = out.contains("## Validation risks");
            if line.starts_with(TODO_DECISION) && card.contains("vllm#8343 ") {
                out.push_str("- Decision it influences: rules out the tool-call template as a cause (round 1)\n");
            } else if line.starts_with(TODO_DECISION) && card.contains("vllm#38373 ") {
                out.push_str("- Decision it influences: keep SP off in the piecewise baseline\n  (it changes which fusion passes run)\n");
            } else if line.starts_with(TODO_DECISION) && card.contains("vllm#10164 ") {
                out.push_str(line);
                out.push_str("\nAgent: checked the chat template diff, no perf effect.\n");
            } else if line.starts_with("- How we will validate:")
                && in_risks
                && card.contains("vllm#38373 ")
            {
                out.push_str("- How we will validate: greedy probe plus a gsm8k smoke on the patched build\n");
            } else if line == "| | | |" {
                out.push_str("| vllm#38373 | SP stays off | 1 |\n");
            } else if line == "## Decisions influenced" {
                out.push_str(
                    "## Our reading\n\nThe tool-use PRs do not touch the decode path.\n\n",
                );
                out.push_str(line);
                out.push('\n');
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    });
    // The history changes: #10164's card and row disappear, a new card #40000 appears.
    edit(&root.join("vllm/llama31/README.en.md"), |t| {
        let start = t.find("### PR #10164").unwrap();
        let end = t.find("### PR #33731").unwrap();
        let t = format!("{}{}", &t[..start], &t[end..]);
        let t: String = t
            .lines()
            .filter(|l| !l.contains("#10164"))
            .map(|l| format!("{l}\n"))
            .collect();
        t + "\n### PR #40000 - [Perf] Fuse RMSNorm into the QKV GEMM epilogue\n\n- Link: https://github.com/vllm-project/vllm/pull/40000\n- Key implementation: `vllm/model_executor/layers/layernorm.py` modified.\n"
    });
    let r = go(json!({}));
    let m = r.merged.clone().expect("merged");
    assert_eq!(m.kept_decision_count, 2, "{m:?}");
    assert_eq!(
        m.kept_decisions,
        vec!["vllm-project/vllm#8343", "vllm-project/vllm#38373"]
    );
    assert_eq!(m.kept_validation_plans, vec!["vllm-project/vllm#38373"]);
    // The decision's continuation line and the line under #10164 are notes under a card.
    assert_eq!(
        m.kept_card_notes,
        vec!["vllm-project/vllm#38373", "vllm-project/vllm#10164"]
    );
    assert_eq!(m.no_longer_in_source, vec!["vllm-project/vllm#10164"]);
    assert_eq!(m.kept_table_rows, 1);
    assert_eq!(m.kept_sections, vec!["## Our reading"]);
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    // The scaffold is regenerated: the new PR has a card, the vanished one is no longer listed
    // under the vLLM history.
    let vllm = block(&notes, "## vLLM history: `vllm/llama31/README.en.md`");
    assert!(
        vllm.contains("#### vllm-project/vllm#40000 — [Perf] Fuse RMSNorm"),
        "{vllm}"
    );
    assert!(!vllm.contains("vllm#10164"), "{vllm}");
    let c8343 = block(&notes, "#### vllm-project/vllm#8343 ");
    assert!(
        c8343.contains(
            "- Decision it influences: rules out the tool-call template as a cause (round 1)"
        ),
        "{c8343}"
    );
    assert!(
        c8343.contains("- Link: https://github.com/vllm-project/vllm/pull/8343"),
        "{c8343}"
    );
    let c38373 = block(&notes, "#### vllm-project/vllm#38373 ");
    assert!(
        c38373.contains("- Decision it influences: keep SP off in the piecewise baseline\n  (it changes which fusion passes run)"),
        "{c38373}"
    );
    // The vanished card keeps its lines and the agent's note, marked.
    let gone = block(&notes, "## PR cards no longer in the source");
    let c10164 = block(gone, "#### vllm-project/vllm#10164 ");
    for needle in [
        "- Link: https://github.com/vllm-project/vllm/pull/10164",
        "- Source status: not in the history documents read",
        "Agent: checked the chat template diff, no perf effect.",
        TODO_DECISION,
    ] {
        assert!(c10164.contains(needle), "missing {needle:?} in {c10164}");
    }
    let risks = block(&notes, "## Validation risks");
    assert!(
        risks.contains(
            "- How we will validate: greedy probe plus a gsm8k smoke on the patched build"
        ),
        "{risks}"
    );
    assert!(block(&notes, "## Our reading").contains("do not touch the decode path"));
    assert!(
        block(&notes, "## Decisions influenced").contains("| vllm#38373 | SP stays off | 1 |"),
        "{notes}"
    );
    // Merging again is stable: every kept item appears once.
    let m2 = go(json!({})).merged.unwrap();
    assert_eq!(m2.kept_decisions, m.kept_decisions);
    assert_eq!(m2.no_longer_in_source, m.no_longer_in_source);
    let notes2 = std::fs::read_to_string(paths.history_notes()).unwrap();
    for once in [
        "rules out the tool-call template",
        "Agent: checked the chat template diff",
        "## Our reading",
        "| vllm#38373 | SP stays off | 1 |",
        "greedy probe plus a gsm8k smoke",
        "#### vllm-project/vllm#10164 ",
    ] {
        assert_eq!(notes2.matches(once).count(), 1, "{once:?} in:\n{notes2}");
    }
    // overwrite: true is a clean regeneration.
    assert!(go(json!({"overwrite": true})).merged.is_none());
    let clean = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(
        !clean.contains("rules out the tool-call template") && !clean.contains("## Our reading")
    );
    assert!(!clean.contains("vllm#10164"), "{clean}");
}

#[test]
fn a_blocked_rerun_keeps_the_filled_in_cards() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    run(&paths, json!({})).unwrap();
    edit(&paths.history_notes(), |t| {
        t.replacen(
            &format!("{TODO_DECISION} (profile row, patch target or ruling this PR informs, or \"none\")_"),
            "- Decision it influences: the SP ruling of round 2",
            1,
        )
    });
    let req: HistoryNotesRequest = serde_json::from_value(
        json!({"campaign_dir": paths.root, "knowledge_root": dir.path().join("gone")}),
    )
    .unwrap();
    let r = HistoryNotes::run(req, &ToolContext::new()).unwrap();
    assert_eq!(r.status, "blocked");
    let m = r.merged.unwrap();
    assert_eq!(m.kept_decision_count, 1);
    // Every card of the earlier notes is kept, marked, none dropped.
    assert_eq!(m.no_longer_in_source.len(), 6, "{m:?}");
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(
        notes.contains("## Blocker")
            && notes.contains("- Decision it influences: the SP ruling of round 2"),
        "{notes}"
    );
}

#[test]
fn validation_risks_name_the_sentence_and_document_per_pr_card() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "sglang"]),
    );
    let r = run(&paths, json!({})).unwrap();
    let got: Vec<(&str, &str, Vec<&str>)> = r
        .validation_risks
        .iter()
        .map(|v| {
            (
                v.pr.as_str(),
                v.doc.as_str(),
                v.categories.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    // Two sentences of vllm/llama31 name a risk; the hardware and dtype check inside the
    // fenced diff of #33731 is code, not a sentence of the history.
    assert_eq!(
        got,
        vec![
            (
                "vllm-project/vllm#33731",
                "vllm/llama31/README.en.md",
                vec!["regression"]
            ),
            (
                "vllm-project/vllm#38373",
                "vllm/llama31/README.en.md",
                vec!["accuracy"]
            ),
        ]
    );
    assert_eq!(
        r.validation_risks[1].sentence,
        "future changes in this area should rerun those tests plus a minimal launch or accuracy smoke."
    );
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    let risks = block(&notes, "## Validation risks");
    let card = block(risks, "#### vllm-project/vllm#38373 ");
    assert!(
        card.contains("- Risk (accuracy; accuracy): \"future changes in this area should rerun those tests plus a minimal launch or accuracy smoke.\" — `vllm/llama31/README.en.md`"),
        "{card}"
    );
    assert!(
        card.contains("- How we will validate: _to fill in"),
        "{card}"
    );
    // PRs whose history names no risk get no risk card.
    assert!(!risks.contains("vllm#8343"), "{risks}");
    assert!(
        !risks.contains("float8") && !risks.contains("device_capability"),
        "{risks}"
    );
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

#[test]
fn sglang_history_added_when_sglang_starts_leading_keeps_the_vllm_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_campaign(
        dir.path(),
        &campaign_record(None, None, &["vllm", "tensorrt_llm"]),
    );
    assert_eq!(run(&paths, json!({})).unwrap().docs_read.len(), 1);
    edit(&paths.history_notes(), |t| {
        t.replacen(
            &format!(
                "{TODO_DECISION} (profile row, patch target or ruling this PR informs, or \"none\")_"
            ),
            "- Decision it influences: tool-call template ruled out in round 1",
            1,
        )
    });
    // SGLang now leads the fixed baseline: the re-run adds its history without `overwrite`.
    write_rows(
        &paths.candidates(),
        &[
            row("s", "sglang", "s", "chat", 12.0, 12.0),
            row("v", "vllm", "v", "chat", 10.0, 12.0),
        ],
    );
    let r = run(&paths, json!({})).unwrap();
    assert_eq!(r.docs_read.len(), 2);
    let m = r.merged.unwrap();
    assert_eq!(m.kept_decisions, vec!["vllm-project/vllm#8343"]);
    assert!(m.no_longer_in_source.is_empty(), "{m:?}");
    let notes = std::fs::read_to_string(paths.history_notes()).unwrap();
    assert!(notes.contains("## SGLang history: `sglang/llama31/README.en.md`"));
    assert!(
        block(&notes, "#### vllm-project/vllm#8343 ")
            .contains("- Decision it influences: tool-call template ruled out in round 1")
    );
}
