//! Run the layer pipeline on a trace and print the analysis summary and timing.
//! `cargo run -p vllm-sota-layers --example layer_demo -- TRACE [CONFIG] [MAPPING]`
use std::path::Path;
use std::time::Instant;
use vllm_sota_layers::{ConfigLayers, Options, analyze, load_rules, load_trace_view, read_config};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t0 = Instant::now();
    let view = load_trace_view(Path::new(&args[0]))?;
    let t_load = t0.elapsed();
    let rules = load_rules()?;
    let cfg = match args.get(1).filter(|s| !s.is_empty() && *s != "-") {
        Some(p) => read_config(Path::new(p), &rules)?,
        None => ConfigLayers::absent("no config given"),
    };
    let mapping = match args.get(2) {
        Some(p) => Some(load_trace_view(Path::new(p))?),
        None => None,
    };
    let t1 = Instant::now();
    let gpu = vllm_sota_core::gpu::find("H200")?;
    let a = analyze(&view, mapping.as_ref(), cfg, &gpu, &Options::default())?;
    let t_an = t1.elapsed();
    let mut v = serde_json::to_value(&a)?;
    v.as_object_mut().unwrap().remove("layers");
    println!("{}", serde_json::to_string_pretty(&v)?);
    eprintln!(
        "load {:?} analyze {:?} kernels {}",
        t_load,
        t_an,
        view.kernels.len()
    );
    Ok(())
}
