//! Reference data (catalogs, GPU specs, schemas, templates) lives under `references/`
//! as data files. The binary embeds the copies it was built with, so an installed
//! binary works anywhere; `VLLM_SOTA_REFERENCES=<dir>` (or a request field, where a
//! tool offers one) overrides them with files on disk, so users can extend catalogs
//! without rebuilding.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The repository's `references/` directory at build time.
pub fn source_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../references"))
}

/// Load `references/<name>`: from `$VLLM_SOTA_REFERENCES/<name>` when set and present,
/// else from the embedded copy passed by the caller (`include_str!`), else from the
/// source tree.
pub fn load(name: &str, embedded: Option<&'static str>) -> Result<(String, String)> {
    if let Ok(dir) = std::env::var("VLLM_SOTA_REFERENCES") {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return Ok((text, path.display().to_string()));
        }
    }
    if let Some(text) = embedded {
        return Ok((text.to_string(), format!("references/{name} (embedded)")));
    }
    let path = source_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read reference file {}", path.display()))?;
    Ok((text, path.display().to_string()))
}

/// The shared fixtures directory (`<repo>/../shared/fixtures`, as laid out for
/// developers and CI), or `$VLLM_SOTA_FIXTURES`. Tests use this.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VLLM_SOTA_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
}
