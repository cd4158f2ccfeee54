//! `cargo run --release --example selfbench -p vllm-sota-trace -- <trace.json.gz>`
fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: selfbench <trace.json[.gz]>"))?;
    let r = vllm_sota_trace::selfbench(std::path::Path::new(&path))?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
