//! `references/candidate-row.schema.json` is the JSON Schema of a candidates.jsonl row,
//! generated from `vllm_sota_core::results::CandidateRow`; `benchmark-config.schema.md`
//! documents every config key.

use vllm_sota_core::results::CandidateRow;

fn references() -> std::path::PathBuf {
    vllm_sota_core::refs::source_dir()
}

#[test]
fn candidate_row_schema_file_is_the_generated_schema() {
    let generated = serde_json::to_value(schemars::schema_for!(CandidateRow)).unwrap();
    let path = references().join("candidate-row.schema.json");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        generated,
        "{} is stale: regenerate with cargo run -p vllm-sota-fairbench --example write_row_schema",
        path.display()
    );
    // The statuses the issue asks for are all in the schema.
    let text = on_disk.to_string();
    for s in [
        "\"ok\"",
        "\"failed\"",
        "\"oom\"",
        "\"timeout\"",
        "\"skipped\"",
        "\"rejected\"",
    ] {
        assert!(text.contains(s), "{s}");
    }
    // A row missing a required field is invalid.
    let v = jsonschema::validator_for(&on_disk).unwrap();
    assert!(!v.is_valid(&serde_json::json!({"schema_version": 1, "row_id": "x"})));
}

fn field_names(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            for x in m.values() {
                field_names(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| field_names(x, out)),
        _ => {}
    }
}

#[test]
fn config_doc_documents_every_key() {
    let schema =
        serde_json::to_value(schemars::schema_for!(vllm_sota_fairbench::BenchmarkConfig)).unwrap();
    let mut names = std::collections::BTreeSet::new();
    field_names(&schema, &mut names);
    assert!(names.len() > 40, "{names:?}");
    let doc = std::fs::read_to_string(references().join("benchmark-config.schema.md")).unwrap();
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "benchmark-config.schema.md does not document {missing:?}"
    );
}
