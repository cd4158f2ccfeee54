//! The request of `ncu_digest`: the JSON an MCP client sends (`capture` or `import`
//! as two optional keys, so the wire format stays flat) and the typed form the tool
//! runs on, where the source is an [`enum Source`](Source) and the candidate is optional.

use anyhow::{Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Request of `ncu_digest`, typed: exactly one [`Source`]; the rest as on the wire.
/// Its JSON Schema is the wire form's.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "NcuDigestRequestWire")]
pub struct NcuDigestRequest {
    pub version: String,
    pub kernel_regex: String,
    pub launch: Option<String>,
    /// Where the counters come from.
    pub source: Source,
    pub baseline_harness: Option<HarnessResult>,
    pub candidate_harness: Option<HarnessResult>,
    pub gpu: Option<String>,
    pub measured_peaks: Option<MeasuredPeaks>,
    pub problem: Option<ProblemSpec>,
    pub kernel_language: Option<String>,
    pub campaign_dir: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub kernel_table_json: Option<PathBuf>,
    pub kernel_share_pct: Option<f64>,
    pub gap_pct: Option<f64>,
    pub ncu_path: Option<PathBuf>,
}

impl JsonSchema for NcuDigestRequest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        NcuDigestRequestWire::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        NcuDigestRequestWire::json_schema(generator)
    }
}

/// Where the counters come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Run the harness command(s) under ncu.
    Capture(CaptureSpec),
    /// Read existing reports or their CSV pages.
    Import(ImportSpec),
}

impl Source {
    /// `capture` or `import`, as in the report.
    pub fn mode(&self) -> Mode {
        match self {
            Source::Capture(_) => Mode::Capture,
            Source::Import(_) => Mode::Import,
        }
    }

    /// Whether a candidate is given (else: single-report mode, the baseline alone).
    pub fn has_candidate(&self) -> bool {
        match self {
            Source::Capture(c) => c.candidate_argv.is_some(),
            Source::Import(i) => i.candidate.is_some(),
        }
    }
}

/// How the counters were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Capture,
    Import,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Capture => "capture",
            Mode::Import => "import",
        }
    }
}

/// Request of `ncu_digest` as sent. Give exactly one of `capture` or `import`; leave the
/// candidate out for a digest of one report (no delta, no regression gate).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "NcuDigestRequest")]
pub struct NcuDigestRequestWire {
    /// Label of this comparison, e.g. `rmsnorm-onepass-v2` (letters, digits, `.`, `_`, `-`).
    /// The digest goes to `<campaign_dir>/kernel/ncu-digests/<version>/digest.md` (+ `digest.json`).
    pub version: String,
    /// Regex on the kernel name (ncu's function name, e.g. `rms_` or `fused_add_rms_norm`).
    /// Used for `ncu -k regex:` in capture mode and to select launches in both modes, so keep it
    /// to syntax both ncu and Rust's `regex` accept (literals, `^`, `|`, `.*`, classes).
    pub kernel_regex: String,
    /// Which matching launch to digest per side: `median` (by duration, default), `first`,
    /// `last`, a 0-based index among the matching launches (`"2"`), or `id:N` (ncu's ID column).
    #[serde(default)]
    pub launch: Option<String>,
    /// Capture mode: run the harness command(s) under ncu (needs `ncu`).
    #[serde(default)]
    pub capture: Option<CaptureSpec>,
    /// Import mode: existing reports (`.ncu-rep`, exported with ncu when present) or CSV pages.
    #[serde(default)]
    pub import: Option<ImportSpec>,
    /// Harness timing and correctness of the baseline, when measured outside this tool.
    #[serde(default)]
    pub baseline_harness: Option<HarnessResult>,
    /// Harness timing and correctness of the candidate. The harness decides faster/slower; ncu explains.
    #[serde(default)]
    pub candidate_harness: Option<HarnessResult>,
    /// GPU name for the roofline peaks (`references/gpu-specs.json`); default: the report's device name.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Measured peaks that replace the datasheet ones in the roofline.
    #[serde(default)]
    pub measured_peaks: Option<MeasuredPeaks>,
    /// Problem size, the same for both sides: enables arithmetic intensity and the DRAM-excess estimate.
    #[serde(default)]
    pub problem: Option<ProblemSpec>,
    /// `triton`, `cuda`, `generic` or `auto` (default). Picks the wording of the next edit.
    /// A kernel whose name matches a closed-source library (`library_kernels` in
    /// references/ncu-rules.json: cuBLAS/nvjet, cuDNN, CUTLASS builds, FlashAttention, ...)
    /// always gets call-site edits, whatever this says. `auto`: a name with `(`, `<` or
    /// `void ` is CUDA C++, else Triton.
    #[serde(default)]
    pub kernel_language: Option<String>,
    /// Campaign run directory: output goes to `kernel/ncu-digests/<version>/`.
    #[serde(default)]
    pub campaign_dir: Option<PathBuf>,
    /// Output directory when not in a campaign (the digest files go directly in it).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    /// Latest kernel table JSON (profile_tables' `profiles/round-N/<framework>/<stage>/tables.json`):
    /// the share of rows matching `kernel_regex` feeds the eligibility gate.
    #[serde(default)]
    pub kernel_table_json: Option<PathBuf>,
    /// The kernel (family) share of the stage's GPU time in percent, when no table is given.
    #[serde(default)]
    pub kernel_share_pct: Option<f64>,
    /// Gap in percent between vLLM and the best framework on the scenario (> 1 to be eligible).
    #[serde(default)]
    pub gap_pct: Option<f64>,
    /// Path to the `ncu` executable (default: `$PATH`, then /opt/nvidia/nsight-compute/*/).
    #[serde(default)]
    pub ncu_path: Option<PathBuf>,
}

impl TryFrom<NcuDigestRequestWire> for NcuDigestRequest {
    type Error = anyhow::Error;

    fn try_from(w: NcuDigestRequestWire) -> Result<Self> {
        let source = match (w.capture, w.import) {
            (Some(c), None) => {
                if c.baseline_argv.is_empty() {
                    bail!("capture.baseline_argv is empty");
                }
                match &c.candidate_argv {
                    Some(a) if a.is_empty() => bail!(
                        "capture.candidate_argv is empty: leave it out for a digest of the baseline alone"
                    ),
                    Some(a) if *a == c.baseline_argv => bail!(
                        "capture.candidate_argv is the same command as capture.baseline_argv: both sides would measure the same code; leave candidate_argv out for a digest of one report"
                    ),
                    _ => {}
                }
                Source::Capture(c)
            }
            (None, Some(i)) => Source::Import(i),
            (Some(_), Some(_)) => bail!("give capture or import, not both"),
            (None, None) => {
                bail!(
                    "give capture (harness commands to profile) or import (.ncu-rep or CSV pages)"
                )
            }
        };
        Ok(NcuDigestRequest {
            version: w.version,
            kernel_regex: w.kernel_regex,
            launch: w.launch,
            source,
            baseline_harness: w.baseline_harness,
            candidate_harness: w.candidate_harness,
            gpu: w.gpu,
            measured_peaks: w.measured_peaks,
            problem: w.problem,
            kernel_language: w.kernel_language,
            campaign_dir: w.campaign_dir,
            out_dir: w.out_dir,
            kernel_table_json: w.kernel_table_json,
            kernel_share_pct: w.kernel_share_pct,
            gap_pct: w.gap_pct,
            ncu_path: w.ncu_path,
        })
    }
}

/// Capture mode settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Baseline harness argv, e.g. `["python3", "bench.py", "base"]`.
    pub baseline_argv: Vec<String>,
    /// Candidate harness argv; leave out to digest the baseline alone.
    #[serde(default)]
    pub candidate_argv: Option<Vec<String>>,
    /// Launches to profile per side (`ncu -c`), default 1.
    #[serde(default)]
    pub count: Option<u32>,
    /// Launches to skip first (`ncu --launch-skip`: warm-up and autotuning), default 0.
    #[serde(default)]
    pub launch_skip: Option<u32>,
    /// `function` (ncu's default), `demangled` or `mangled`: what `-k regex:` matches.
    #[serde(default)]
    pub kernel_name_base: Option<String>,
    /// Extra ncu flags, e.g. `["--section", "PmSampling"]`.
    #[serde(default)]
    pub extra_ncu_args: Vec<String>,
    /// Working directory of the harness.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Timeout per ncu run in seconds (default 900).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Also run each harness once without ncu and read its timing/correctness from its output.
    #[serde(default)]
    pub timing: Option<TimingSpec>,
}

/// How to read a harness's own output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    /// Regex whose group 1 is the kernel time, e.g. `ms ([0-9.eE+-]+)`; the last match counts.
    pub time_regex: String,
    /// Unit of that number: `s`, `ms`, `us` or `ns`.
    pub time_unit: String,
    /// Regex whose group 1 is an error measure (e.g. `max abs err ([0-9.eE+-]+)`).
    #[serde(default)]
    pub error_regex: Option<String>,
    /// The harness is correct when that error is <= this (and it exits 0).
    #[serde(default)]
    pub max_error: Option<f64>,
}

/// Import mode inputs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    pub baseline: SideFiles,
    /// Leave out to digest the baseline alone. Must not be the same report as the baseline.
    #[serde(default)]
    pub candidate: Option<SideFiles>,
}

/// One side's report: a `.ncu-rep` and/or its CSV pages.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideFiles {
    /// `.ncu-rep`: exported to CSV with `ncu --import` when ncu exists.
    #[serde(default)]
    pub ncu_rep: Option<PathBuf>,
    /// `ncu --import X --csv --page details [--print-units base]` output.
    #[serde(default)]
    pub details_csv: Option<PathBuf>,
    /// `ncu --import X --csv --page raw` output.
    #[serde(default)]
    pub raw_csv: Option<PathBuf>,
}

impl SideFiles {
    /// The given files, labelled by field name.
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        [
            ("ncu_rep", &self.ncu_rep),
            ("details_csv", &self.details_csv),
            ("raw_csv", &self.raw_csv),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
        .collect()
    }
}

/// A harness's own verdict for one side.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HarnessResult {
    /// Kernel time in microseconds (event timing / do_bench, not ncu).
    #[serde(default)]
    pub time_us: Option<f64>,
    /// Whether the output matched the reference.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Free text: how it was measured, the error value.
    #[serde(default)]
    pub note: Option<String>,
}

/// Measured ceilings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasuredPeaks {
    /// DRAM bandwidth in GB/s (1e9 bytes/s), e.g. 4300 for a measured H200 device copy.
    #[serde(default)]
    pub dram_gbps: Option<f64>,
    /// Math peak in TFLOP/s for `problem.dtype`.
    #[serde(default)]
    pub tflops: Option<f64>,
}

/// The problem's size, identical for baseline and candidate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemSpec {
    /// Useful floating-point operations of one launch (e.g. 2*M*N*K).
    #[serde(default)]
    pub flops: Option<f64>,
    /// Bytes one launch must move at least (inputs read once + outputs written once).
    #[serde(default)]
    pub ideal_bytes: Option<f64>,
    /// dtype of the math peak (`bf16`, `fp16`, `fp8`, `fp32`, ...), default `bf16`.
    #[serde(default)]
    pub dtype: Option<String>,
    /// Free text, e.g. "8192 x 4096 bf16".
    #[serde(default)]
    pub shape: Option<String>,
}
