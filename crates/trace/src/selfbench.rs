//! `selfbench`: time plain gzip decompression of a trace against the full three tables on it,
//! and report peak RSS. Wired by the lead as `vllm-sota selfbench profile <file>`.

use crate::classify::Classifier;
use crate::tables::*;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize, schemars::JsonSchema)]
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
    let fw = crate::discover::detect_framework(&store).0;
    let (kt, ot, ft) = stage_tables(&sk, &classifier, None, 1.0, &catalog, &fw);
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
