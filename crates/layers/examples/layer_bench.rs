//! Benchmark: read a trace (and optional mapping trace) and analyze it `REPEAT` times;
//! prints the median read and analysis times and the peak RSS.
//! `cargo run --release -p vllm-sota-layers --example layer_bench -- REPEAT TRACE CONFIG [MAPPING]`
use std::path::Path;
use std::time::Instant;
use vllm_sota_layers::{Options, analyze, load_rules, load_trace_view, read_config};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeat: usize = args[0].parse()?;
    let rules = load_rules()?;
    let gpu = vllm_sota_core::gpu::find("H200")?;
    let (mut reads, mut analyses) = (vec![], vec![]);
    let mut layers = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        let view = load_trace_view(Path::new(&args[1]))?;
        let mapping = match args.get(3) {
            Some(p) => Some(load_trace_view(Path::new(p))?),
            None => None,
        };
        reads.push(t.elapsed().as_secs_f64());
        let cfg = read_config(Path::new(&args[2]), &rules)?;
        let t = Instant::now();
        let a = analyze(&view, mapping.as_ref(), cfg, &gpu, &Options::default())?;
        analyses.push(t.elapsed().as_secs_f64());
        layers = a.layers_found;
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "runs {repeat}: median read {:.3} s, median analyze {:.3} s, layers {layers}, {rss}",
        median(reads),
        median(analyses)
    );
    Ok(())
}
