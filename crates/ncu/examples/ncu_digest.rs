//! Run the `ncu_digest` tool from a request JSON file, outside MCP.
//!
//! `cargo run -p vllm-sota-ncu --example ncu_digest -- request.json [report.json]`
//! prints the tool's markdown summary and writes its JSON report to `report.json`
//! when given. `-- --selfbench [N]` parses the H200 fixtures N times (default 200)
//! and prints the median parse+summary time.

use std::path::PathBuf;
use std::time::Instant;

use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_ncu::{NcuDigest, NcuDigestRequest, merge_pages, read_page, summarize};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--selfbench") {
        return selfbench(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200));
    }
    let Some(req_path) = args.first() else {
        anyhow::bail!("usage: ncu_digest <request.json> [report.json] | --selfbench [N]");
    };
    let req: NcuDigestRequest = vllm_sota_core::fsx::read_json(&PathBuf::from(req_path))?;
    let report = NcuDigest::run(req, &ToolContext::new())?;
    if let Some(out) = args.get(1) {
        vllm_sota_core::fsx::write_json(&PathBuf::from(out), &report)?;
    }
    println!("{}", NcuDigest::markdown(&report));
    Ok(())
}

fn selfbench(n: usize) -> anyhow::Result<()> {
    let dir = vllm_sota_core::refs::fixtures_dir().join("h200-ncu");
    let files = [
        "rms_base_details_base.csv",
        "rms_base_raw.csv",
        "rms_cand_details_base.csv",
        "rms_cand_raw.csv",
    ];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        for pair in files.chunks(2) {
            let pages = pair
                .iter()
                .map(|f| read_page(&dir.join(f)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let launches = merge_pages(pages)?;
            let l = launches.values().next().unwrap();
            std::hint::black_box(summarize(l, vec![]));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "parse+summarize 2 reports (details+raw, {} KB): median {:.3} ms, p90 {:.3} ms over {n} runs",
        bytes / 1024,
        times[n / 2],
        times[n * 9 / 10]
    );
    Ok(())
}
