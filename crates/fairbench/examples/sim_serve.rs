//! Test-only stand-in for `vllm-sota sim-serve` (the root binary owns the real subcommand):
//! `sim_serve [--framework vllm|sglang|trtllm] [MODEL] [FLAGS...]`.
fn main() {
    if let Err(e) = vllm_sota_bench::sim_serve_cli(std::env::args().skip(1).collect()) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}
