//! The campaign run directory: the single source of truth of a campaign.
//!
//! Every tool reads and writes through these paths, so a crashed agent or server
//! resumes from disk. `campaign_init` creates exactly [`LAYOUT_FILES`] and
//! [`LAYOUT_DIRS`] plus `campaign.json`; later tools add files under them.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Directories `campaign_init` creates (relative to the run directory).
pub const LAYOUT_DIRS: &[&str] = &[
    "help",
    "benchmark",
    "profiles",
    "analysis",
    "history",
    "kernel",
    "kernel/ncu-digests",
    "patches",
    "humanize",
];

/// Files `campaign_init` creates (relative to the run directory), besides `campaign.json`.
pub const LAYOUT_FILES: &[&str] = &[
    "manifest.md",
    "analysis/root-cause.md",
    "analysis/layer-pipeline.md",
    "history/model-pr-history-notes.md",
    "humanize/model-loop-checkpoint.md",
    "humanize/attempt-ledger.md",
    "humanize/optimization-ledger.md",
    "humanize/source-idea-ledger.md",
    "humanize/lineage.jsonl",
    "final_report.md",
];

pub const CAMPAIGN_JSON: &str = "campaign.json";

/// Marker a placeholder artifact starts with; a gate counts a file as written only
/// once this marker is gone.
pub const PLACEHOLDER_MARKER: &str = "<!-- vllm-sota:placeholder -->";

/// The machine record of a campaign (`campaign.json`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Campaign {
    pub schema_version: u32,
    /// Hugging Face id or checkpoint path.
    pub model: String,
    /// Short model name used in the run directory, e.g. `llama-3.1-8b`.
    pub model_slug: String,
    /// Model family for the PR-history lookup, e.g. `llama`.
    pub model_family: String,
    pub tokenizer: String,
    /// bf16 / fp16 / fp8 / ...
    pub precision: String,
    pub quantization: Option<String>,
    pub trust_remote_code: bool,
    pub max_model_len: Option<u64>,
    pub vllm_checkout: Option<PathBuf>,
    /// Commit of the vLLM checkout at init: the base every patch diff is taken against.
    pub vllm_base_commit: Option<String>,
    pub vllm_base_branch: Option<String>,
    pub gpu_ids: Vec<u32>,
    /// `vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`.
    pub frameworks: Vec<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// What campaign_init saw of the environment; absent things say "not available here".
    #[schemars(schema_with = "crate::schema::json_object")]
    pub environment: serde_json::Value,
}

/// Paths inside one campaign run directory.
#[derive(Debug, Clone)]
pub struct CampaignPaths {
    pub root: PathBuf,
}

/// `path` relative to `root` when it is inside it, else as given (for records and reports).
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

pub fn round_label(round: u32) -> String {
    format!("round-{round}")
}

impl CampaignPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Open an existing campaign; the error says how to create one.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let paths = Self::new(root);
        if !paths.campaign_json().is_file() {
            anyhow::bail!(
                "campaign_dir {}: not a campaign run directory (no campaign.json); run campaign_init first",
                paths.root.display()
            );
        }
        Ok(paths)
    }

    /// `path` relative to the campaign directory when it is inside it, else as given.
    pub fn rel(&self, path: &Path) -> String {
        relative(&self.root, path)
    }

    pub fn campaign(&self) -> Result<Campaign> {
        crate::fsx::read_json(&self.campaign_json()).context("campaign.json is unreadable")
    }

    fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    pub fn campaign_json(&self) -> PathBuf {
        self.join(CAMPAIGN_JSON)
    }
    pub fn manifest(&self) -> PathBuf {
        self.join("manifest.md")
    }
    pub fn log_file(&self) -> PathBuf {
        self.join("humanize/tool-calls.log")
    }
    pub fn help_dir(&self) -> PathBuf {
        self.join("help")
    }
    pub fn benchmark_dir(&self) -> PathBuf {
        self.join("benchmark")
    }
    pub fn candidates(&self) -> PathBuf {
        self.join("benchmark/candidates.jsonl")
    }
    pub fn benchmark_job(&self) -> PathBuf {
        self.join("benchmark/job.json")
    }
    pub fn revalidation(&self, round: u32) -> PathBuf {
        self.join(format!(
            "benchmark/revalidation/{}.jsonl",
            round_label(round)
        ))
    }
    pub fn profiles_dir(&self) -> PathBuf {
        self.join("profiles")
    }
    pub fn profile_stage_dir(&self, round: u32, framework: &str, stage: &str) -> PathBuf {
        self.join(format!(
            "profiles/{}/{framework}/{stage}",
            round_label(round)
        ))
    }
    pub fn analysis_dir(&self) -> PathBuf {
        self.join("analysis")
    }
    pub fn root_cause(&self) -> PathBuf {
        self.join("analysis/root-cause.md")
    }
    pub fn round_root_cause(&self, round: u32) -> PathBuf {
        self.join(format!("analysis/{}/root-cause.md", round_label(round)))
    }
    pub fn layer_pipeline(&self) -> PathBuf {
        self.join("analysis/layer-pipeline.md")
    }
    pub fn round_layer_pipeline(&self, round: u32) -> PathBuf {
        self.join(format!("analysis/{}/layer-pipeline.md", round_label(round)))
    }
    pub fn history_notes(&self) -> PathBuf {
        self.join("history/model-pr-history-notes.md")
    }
    pub fn ncu_digests_dir(&self) -> PathBuf {
        self.join("kernel/ncu-digests")
    }
    pub fn patches_dir(&self) -> PathBuf {
        self.join("patches")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.join("humanize/model-loop-checkpoint.md")
    }
    pub fn attempt_ledger(&self) -> PathBuf {
        self.join("humanize/attempt-ledger.md")
    }
    pub fn optimization_ledger(&self) -> PathBuf {
        self.join("humanize/optimization-ledger.md")
    }
    pub fn source_idea_ledger(&self) -> PathBuf {
        self.join("humanize/source-idea-ledger.md")
    }
    pub fn lineage(&self) -> PathBuf {
        self.join("humanize/lineage.jsonl")
    }
    pub fn final_report(&self) -> PathBuf {
        self.join("final_report.md")
    }

    /// True when `path` exists and holds more than the init placeholder.
    pub fn is_written(path: &Path) -> bool {
        match std::fs::read_to_string(path) {
            Ok(text) => !text.trim().is_empty() && !text.contains(PLACEHOLDER_MARKER),
            Err(_) => false,
        }
    }
}

/// Lowercase, `[a-z0-9.-]` only: `meta-llama/Llama-3.1-8B-Instruct` → `llama-3.1-8b-instruct`.
pub fn slugify(model: &str) -> String {
    let base = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model);
    let mut slug = String::with_capacity(base.len());
    for c in base.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_string()
}

/// Now, RFC 3339 UTC with seconds (`2026-11-29T13:52:00Z`), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339_from_unix(secs)
}

/// Civil-from-days (Howard Hinnant's algorithm).
pub fn rfc3339_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch of a UTC timestamp `YYYY-MM-DDTHH:MM:SS[.frac]Z` (the form
/// [`rfc3339_from_unix`] writes; fractions are dropped). `None` for any other form.
pub fn unix_from_rfc3339(t: &str) -> Option<i64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut h = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of the one above.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for secs in [0, 951_782_400, 1_796_337_000, 4_107_542_399] {
            assert_eq!(unix_from_rfc3339(&rfc3339_from_unix(secs)), Some(secs));
        }
        assert_eq!(
            unix_from_rfc3339("2026-12-03T20:58:31Z").unwrap()
                - unix_from_rfc3339("2026-12-03T20:56:33Z").unwrap(),
            118
        );
        assert_eq!(unix_from_rfc3339("2026-12-03 20:58:31"), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("meta-llama/Llama-3.1-8B-Instruct"),
            "llama-3.1-8b-instruct"
        );
        assert_eq!(slugify("/models/Qwen2_MoE/"), "qwen2-moe");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_795_960_320), "2026-11-29T13:52:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
    }
}
