//! Run profile_tables from the shell: `profile <trace> [mapping] [competitor]`.
use vllm_sota_core::tool::{Tool, ToolContext};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let mut req = vllm_sota_trace::ProfileTablesRequest::for_trace(
        a[1].clone().into(),
        a.get(2).filter(|s| !s.is_empty()).map(Into::into),
    );
    req.competitor_trace = a.get(3).map(Into::into);
    req.top_rows = 12;
    req.out_dir = std::env::var("OUT").ok().map(Into::into);
    let t = std::time::Instant::now();
    let (r, tables) = vllm_sota_trace::run_tables(&req, &ToolContext::new())?;
    eprintln!("took {:?}", t.elapsed());
    if std::env::var("FULL").is_ok() {
        for t in &tables {
            println!("{}", vllm_sota_trace::render_stage_md(t, 1.0, 40));
        }
    } else {
        println!("{}", vllm_sota_trace::ProfileTables::markdown(&r));
    }
    Ok(())
}
