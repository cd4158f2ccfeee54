//! `selfbench`: time plain gzip decompression of a trace against the full three tables on it,
//! and report peak RSS. Wired by the lead as `vllm-sota selfbench profile <file>`.

use crate::classify::Classifier;
use crate::tables::*;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SelfbenchReport {
    pub file: String,
    pub compressed_mb: f64,
    pub json_mb: f64,
    pub events: u64,
    pub kernels: u64,
    /// Plain decompression of the file to a sink (one thread).
    pub gunzip_ms: f64,
    pub gunzip_cpu_ms: f64,
    /// Read into the store + kernel, overlap and fuse tables.
    pub tables_ms: f64,
    pub tables_cpu_ms: f64,
    /// Of which: reading into the store.
    pub read_ms: f64,
    pub json_mb_per_s: f64,
    /// tables_ms / gunzip_ms (target ≤ 2).
    pub ratio: f64,
    /// VmHWM before the tables ran (process baseline incl. the decompression pass).
    pub baseline_rss_mb: f64,
    /// VmHWM after the tables.
    pub peak_rss_mb: f64,
    pub note: String,
}

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        (ru.ru_utime.tv_sec as f64 + ru.ru_stime.tv_sec as f64) * 1e3
            + (ru.ru_utime.tv_usec as f64 + ru.ru_stime.tv_usec as f64) / 1e3
    }
}

pub fn selfbench(path: &Path) -> Result<SelfbenchReport> {
    let compressed = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    // 1. plain decompression to a sink
    let c0 = cpu_ms();
    let t0 = Instant::now();
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut json_bytes = 0u64;
    if path.extension().map(|e| e == "gz").unwrap_or(false) {
        let mut d =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, f));
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = d
                .read(&mut buf)
                .with_context(|| format!("decompressing {}", path.display()))?;
            if n == 0 {
                break;
            }
            json_bytes += n as u64;
        }
    } else {
        json_bytes = std::io::copy(&mut std::io::BufReader::new(f), &mut std::io::sink())?;
    }
    let gunzip_ms = t0.elapsed().as_secs_f64() * 1e3;
    let gunzip_cpu = cpu_ms() - c0;
    let baseline = vm_hwm_kb().unwrap_or(0);
    // 2. the full three tables
    let classifier = Classifier::load()?;
    let catalog = FuseCatalog::load(&classifier)?;
    let c1 = cpu_ms();
    let t1 = Instant::now();
    let store = crate::reader::read_trace(path)?;
    let read_ms = t1.elapsed().as_secs_f64() * 1e3;
    let sk = StageKernels::heaviest_device(&store);
    let fw = crate::discover::framework_label(crate::discover::detect_framework(&store).0);
    let (kt, ot, ft) = stage_tables(&sk, &classifier, None, 1.0, &catalog, fw);
    let tables_ms = t1.elapsed().as_secs_f64() * 1e3;
    let tables_cpu = cpu_ms() - c1;
    let peak = vm_hwm_kb().unwrap_or(0);
    let _ = (kt.rows.len(), ot.rows.len(), ft.rows.len());
    Ok(SelfbenchReport {
        file: path.display().to_string(),
        compressed_mb: compressed as f64 / 1e6,
        json_mb: json_bytes as f64 / 1e6,
        events: store.counts.total,
        kernels: store.kernels.len() as u64,
        gunzip_ms,
        gunzip_cpu_ms: gunzip_cpu,
        tables_ms,
        tables_cpu_ms: tables_cpu,
        read_ms,
        json_mb_per_s: json_bytes as f64 / 1e6 / (tables_ms / 1e3),
        ratio: tables_ms / gunzip_ms,
        baseline_rss_mb: baseline as f64 / 1024.0,
        peak_rss_mb: peak as f64 / 1024.0,
        note: "decompression runs on a helper thread while the scanner parses; RSS is VmHWM (process peak), baseline = peak before the tables".into(),
    })
}

/// Several [`selfbench`] runs, each in a fresh process (so each pays what a one-shot
/// `profile_tables` pays: cold allocator, first-touch page faults), summarised by medians:
/// machines are noisy, and one run's ratio can be off by a fifth either way.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SelfbenchSummary {
    pub file: String,
    pub runs: usize,
    pub json_mb: f64,
    pub median_gunzip_ms: f64,
    pub median_tables_ms: f64,
    pub median_read_ms: f64,
    pub median_json_mb_per_s: f64,
    /// Median of the per-run ratios tables/gunzip (each pair measured in one process).
    pub median_ratio: f64,
    pub min_ratio: f64,
    pub max_ratio: f64,
    /// Highest VmHWM of all runs.
    pub peak_rss_mb: f64,
    pub each: Vec<SelfbenchReport>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl SelfbenchSummary {
    pub fn from_runs(each: Vec<SelfbenchReport>) -> Result<Self> {
        let first = each
            .first()
            .ok_or_else(|| anyhow::anyhow!("selfbench: no runs to summarise"))?;
        let of = |f: fn(&SelfbenchReport) -> f64| median(each.iter().map(f).collect());
        let ratios = each.iter().map(|r| r.ratio);
        Ok(SelfbenchSummary {
            file: first.file.clone(),
            runs: each.len(),
            json_mb: first.json_mb,
            median_gunzip_ms: of(|r| r.gunzip_ms),
            median_tables_ms: of(|r| r.tables_ms),
            median_read_ms: of(|r| r.read_ms),
            median_json_mb_per_s: of(|r| r.json_mb_per_s),
            median_ratio: of(|r| r.ratio),
            min_ratio: ratios.clone().fold(f64::INFINITY, f64::min),
            max_ratio: ratios.fold(f64::NEG_INFINITY, f64::max),
            peak_rss_mb: each.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
            each,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(gunzip_ms: f64, tables_ms: f64, rss: f64) -> SelfbenchReport {
        SelfbenchReport {
            file: "t.json.gz".into(),
            compressed_mb: 1.0,
            json_mb: 10.0,
            events: 1,
            kernels: 1,
            gunzip_ms,
            gunzip_cpu_ms: gunzip_ms,
            tables_ms,
            tables_cpu_ms: tables_ms,
            read_ms: tables_ms - 1.0,
            json_mb_per_s: 10.0 / (tables_ms / 1e3),
            ratio: tables_ms / gunzip_ms,
            baseline_rss_mb: 1.0,
            peak_rss_mb: rss,
            note: String::new(),
        }
    }

    #[test]
    fn summaries_take_medians_of_runs_and_the_highest_rss() {
        let s = SelfbenchSummary::from_runs(vec![
            run(200.0, 400.0, 70.0),
            run(100.0, 300.0, 75.0),
            run(250.0, 250.0, 72.0),
        ])
        .unwrap();
        assert_eq!(s.runs, 3);
        assert_eq!(s.median_gunzip_ms, 200.0);
        assert_eq!(s.median_tables_ms, 300.0);
        // Per-run ratios 2.0, 3.0, 1.0: the median of ratios, not the ratio of medians.
        assert_eq!((s.median_ratio, s.min_ratio, s.max_ratio), (2.0, 1.0, 3.0));
        assert_eq!(s.peak_rss_mb, 75.0);
        let even =
            SelfbenchSummary::from_runs(vec![run(100.0, 150.0, 1.0), run(100.0, 250.0, 1.0)])
                .unwrap();
        assert_eq!(even.median_ratio, 2.0);
        assert!(SelfbenchSummary::from_runs(vec![]).is_err());
    }
}
