//! Rewrite the golden table outputs (`crates/trace/tests/golden/*.json`) from the fixtures:
//! `cargo run -p vllm-sota-trace --example golden [-- <fixtures dir>]`. Run it only after a
//! change whose output difference is intended, and review the diff before committing.
use vllm_sota_trace::{CASES, golden_dir, render_golden};

fn main() -> anyhow::Result<()> {
    let fixtures = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(vllm_sota_core::refs::fixtures_dir);
    std::fs::create_dir_all(golden_dir())?;
    for case in CASES {
        let text = render_golden(case, &fixtures)?;
        let path = golden_dir().join(format!("{}.json", case.name));
        std::fs::write(&path, text)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
