//! Writes `references/candidate-row.schema.json` from `CandidateRow` (run after changing
//! the row; the schema test then checks the file equals the generated schema).

fn main() -> anyhow::Result<()> {
    let schema = schemars::schema_for!(vllm_sota_core::results::CandidateRow);
    let path = vllm_sota_core::refs::source_dir().join("candidate-row.schema.json");
    std::fs::write(&path, serde_json::to_string_pretty(&schema)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}
