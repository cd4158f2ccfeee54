//! The simulator's calibrated cost-model profiles (`references/sim-cost-profiles.json`)
//! reproduce the real H200 figures they cite: each measured workload is replayed against
//! sim-serve with the profile of the framework it impersonates, through the real bench
//! client, and request throughput, p50 TTFT and p50 TPOT must land within 10% of the
//! real ones. One test function: the runs are timed, so they go one after another.

mod common;
use common::{Sim, tokenizer};
use std::path::Path;
use std::time::{Duration, Instant};
use vllm_sota_bench::sim::calibration::{self, MeasuredScenario};
use vllm_sota_bench::sim::{SimConfig, parse_framework};
use vllm_sota_bench::{
    Endpoint, LoadConfig, RandomDatasetConfig, random_workload, run_load_blocking,
};

const TOLERANCE: f64 = 0.10;

/// Replays one measured workload; returns (req/s, p50 TTFT ms, p50 TPOT ms) as the client saw them.
fn replay(cfg: SimConfig, m: &MeasuredScenario, seed: u64) -> (f64, f64, f64) {
    let w = &m.workload;
    assert_eq!(w.dataset, "random");
    let workload = random_workload(
        &RandomDatasetConfig {
            num_prompts: w.num_prompts,
            input_len: w.input_len,
            output_len: w.output_len,
            range_ratio: 0.0,
            prefix_len: 0,
            seed,
            chat: false,
        },
        &tokenizer(),
    )
    .unwrap();
    let sim = Sim::start(cfg).unwrap();
    let prompts: Vec<_> = workload.requests.iter().map(|r| r.prompt.clone()).collect();
    sim.server
        .as_ref()
        .unwrap()
        .precount_prompts(&prompts)
        .unwrap();
    let mut lc = LoadConfig::new(sim.url(), "sim-llama", workload);
    lc.endpoint = Endpoint::parse(&w.endpoint).unwrap();
    lc.max_concurrency = Some(w.max_concurrency);
    lc.warmup_requests = w.warmup_requests;
    lc.request_timeout = Duration::from_secs(120);
    let rep = run_load_blocking(lc, 2).unwrap();
    let row = &rep.summary.row;
    assert_eq!(
        row.completed,
        Some(w.num_prompts as u64),
        "{:?}",
        rep.summary.errors
    );
    (
        row.request_throughput.unwrap(),
        row.ttft_ms.as_ref().unwrap().p50.unwrap(),
        row.tpot_ms.as_ref().unwrap().p50.unwrap(),
    )
}

#[test]
fn calibrated_profiles_reproduce_the_real_h200_figures_within_10_percent() {
    let profiles = calibration::load().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for (fw_name, profile_name) in &profiles.default_by_framework {
        parse_framework(fw_name).unwrap();
        let profile = &profiles.profiles[profile_name];
        for (scenario, m) in &profile.measured {
            // The cited files exist (the docs in the repository; fixtures beside it).
            let cited = m.source.split_whitespace().next().unwrap();
            let path = match cited.strip_prefix("shared/fixtures/") {
                Some(rest) => vllm_sota_core::refs::fixtures_dir().join(rest),
                None => repo.join(cited),
            };
            assert!(
                path.is_file(),
                "{profile_name}.{scenario}: {}",
                path.display()
            );

            // The simulator picks the profile from the framework it impersonates.
            let mut cfg = SimConfig::from_args(&[
                "--framework".to_string(),
                fw_name.clone(),
                "--port".into(),
                "0".into(),
                "--served-model-name".into(),
                "sim-llama".into(),
            ])
            .unwrap();
            assert_eq!(cfg.cost_profile.as_deref(), Some(profile_name.as_str()));
            cfg.max_model_len = 10240;
            // The engine's own clock: a debug build formatting 80 streams on a loaded
            // machine must not stretch the simulated steps.
            cfg.virtual_clock = true;
            let t0 = Instant::now();
            let (rps, ttft, tpot) = replay(cfg, m, 7);
            let took = t0.elapsed().as_secs_f64();
            for (what, sim, real) in [
                ("req/s", rps, m.request_throughput),
                ("p50 TTFT ms", ttft, m.p50_ttft_ms),
                ("p50 TPOT ms", tpot, m.p50_tpot_ms),
            ] {
                let dev = sim / real - 1.0;
                report.push(format!(
                    "{profile_name} {scenario}: {what} sim {sim:.3} real {real:.3} ({:+.1}%)",
                    dev * 100.0
                ));
                if dev.abs() > TOLERANCE {
                    bad.push(report.last().unwrap().clone());
                }
            }
            report.push(format!("{profile_name} {scenario}: ran {took:.1} s"));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(bad.is_empty(), "outside 10%:\n{}", bad.join("\n"));
}
