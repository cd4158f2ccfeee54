//! Time the three profile tables on one trace (store read once) and fingerprint their JSON.
//!
//! `cargo run --release --example tablebench -p vllm-sota-trace -- <trace> [mapping-trace] [runs]`
//! With a mapping trace, the kernel and overlap tables also run in graph-mapped mode.
use std::time::Instant;
use vllm_sota_trace::Classifier;
use vllm_sota_trace::*;

thread_local! {
    static FRESH_MS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn bench<T: serde::Serialize>(label: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut ms = Vec::with_capacity(runs);
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        out = Some(v);
    }
    ms.sort_by(f64::total_cmp);
    let json = serde_json::to_string(&out.unwrap()).unwrap();
    println!(
        "{label:<22} median {:8.2} ms  (min {:7.2}, max {:7.2})  json {:>8} bytes  fnv {:016x}",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1],
        json.len(),
        fnv1a(json.as_bytes())
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: tablebench <trace> [mapping-trace] [runs]"))?;
    let mapping = args.get(1).filter(|a| a.as_str() != "-");
    let runs: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(7);
    let store = vllm_sota_trace::read_trace(std::path::Path::new(path))?;
    let classifier = Classifier::load()?;
    let catalog = FuseCatalog::load(&classifier)?;
    let sk = StageKernels::heaviest_device(&store);
    let fw = vllm_sota_trace::framework_label(vllm_sota_trace::detect_framework(&store).0);
    println!(
        "{path}: {} kernels on device {}",
        sk.kernels.len(),
        sk.device
    );
    bench("kernel_table", runs, || {
        kernel_table(&sk, &classifier, None, 1.0)
    });
    bench("overlap_table", runs, || {
        overlap_table(&sk, &classifier, None, 1.0)
    });
    bench("fuse_table", runs, || {
        fuse_table(&sk, &classifier, &catalog, fw)
    });
    // As `selfbench` runs them: a fresh classifier (nothing memoized), the three in sequence.
    bench("all three, fresh", runs, || {
        let c = Classifier::load().unwrap();
        let cat = FuseCatalog::load(&c).unwrap();
        let t = Instant::now();
        let tables = (
            kernel_table(&sk, &c, None, 1.0),
            overlap_table(&sk, &c, None, 1.0),
            fuse_table(&sk, &c, &cat, fw),
        );
        // Loading the catalogs is not part of the tables: subtract it by timing inside.
        FRESH_MS.with(|m| m.borrow_mut().push(t.elapsed().as_secs_f64() * 1e3));
        tables
    });
    FRESH_MS.with(|m| {
        let mut v = m.borrow().clone();
        v.sort_by(f64::total_cmp);
        println!(
            "{:<22} median {:8.2} ms  (tables only, without loading the catalogs)",
            "all three, fresh",
            v[v.len() / 2]
        );
    });
    bench("kernel_table cut0", 1, || {
        kernel_table(&sk, &classifier, None, 0.0)
    });
    bench("overlap_table cut0", 1, || {
        overlap_table(&sk, &classifier, None, 0.0)
    });
    if let Some(m) = mapping {
        let eager = vllm_sota_trace::read_trace(std::path::Path::new(m))?;
        let map = vllm_sota_trace::map_graph_kernels(&store, &eager, &classifier);
        bench("kernel_table mapped", runs, || {
            kernel_table(&sk, &classifier, Some(&map), 1.0)
        });
        bench("overlap_table mapped", runs, || {
            overlap_table(&sk, &classifier, Some(&map), 1.0)
        });
        bench("kernel_table map cut0", 1, || {
            kernel_table(&sk, &classifier, Some(&map), 0.0)
        });
        bench("overlap_table map cut0", 1, || {
            overlap_table(&sk, &classifier, Some(&map), 0.0)
        });
    }
    Ok(())
}
