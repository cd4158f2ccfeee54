//! Run the `layer_pipeline` tool from a JSON request and print its markdown, e.g.
//! `cargo run -p vllm-sota-layers --example layer_pipeline -- '{"trace": "...", "stage": "decode", "out_dir": "/tmp/lp"}'`
use vllm_sota_core::tool::{Tool, ToolContext};
use vllm_sota_layers::LayerPipeline;

fn main() -> anyhow::Result<()> {
    let arg = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: layer_pipeline '<request JSON>'"))?;
    let req = serde_json::from_str(&arg)?;
    let t = std::time::Instant::now();
    let report = LayerPipeline::run(req, &ToolContext::new())?;
    print!("{}", LayerPipeline::markdown(&report));
    eprintln!(
        "layer_pipeline took {:?}; report {} bytes of JSON",
        t.elapsed(),
        serde_json::to_string(&report)?.len()
    );
    Ok(())
}
