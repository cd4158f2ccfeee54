//! Which vLLM does the server run? Revalidation asks the server's own Python (same
//! launcher, same environment) for `vllm.__file__` and `vllm.__version__` and refuses
//! unless the import comes from the campaign's checkout (and, when the checkout records
//! its built version in `vllm/_version.py`, the versions agree).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::BenchmarkConfig;
use crate::preflight::{FrameworkPlan, fill_template, template_vars};
use crate::{launch, procs};
use vllm_sota_core::proc;

const MARK: &str = "VLLM_SOTA_IMPORT ";
const SCRIPT: &str = "import json, vllm; print('VLLM_SOTA_IMPORT ' + json.dumps({'file': vllm.__file__, 'version': getattr(vllm, '__version__', None)}))";

/// What the server's Python imports, next to the campaign's checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VllmImport {
    pub file: String,
    pub version: Option<String>,
    pub checkout: String,
    /// `vllm/_version.py` of the checkout, when it has one (written by a build).
    pub checkout_version: Option<String>,
    pub python: Vec<String>,
}

/// The interpreter argv: `frameworks.vllm.python_command`, else the server command's own
/// (`python ... -m vllm...`, or the shebang of the server executable).
pub(crate) fn python_argv(cfg: &BenchmarkConfig, fp: &FrameworkPlan) -> Result<Vec<String>> {
    if let Some(p) = cfg
        .frameworks
        .get(&fp.framework)
        .and_then(|s| s.python_command.clone())
        .filter(|p| !p.is_empty())
    {
        return Ok(p);
    }
    let vars = template_vars(cfg, &cfg.launch.host, 0);
    let argv = fill_template(&fp.command_template, &vars);
    let first = argv.first().cloned().unwrap_or_default();
    let base = Path::new(&first)
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    if base.starts_with("python") {
        return Ok(vec![first]);
    }
    let exe = if first.contains('/') {
        Some(PathBuf::from(&first))
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&first))
                .find(|c| c.is_file())
        })
    };
    if fp.launcher.is_none()
        && let Some(exe) = exe
        && let Ok(bytes) = std::fs::read(&exe)
    {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_string();
        if let Some(line) = head.lines().next().and_then(|l| l.strip_prefix("#!")) {
            let parts: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if parts.iter().any(|p| p.contains("python")) {
                return Ok(parts);
            }
        }
    }
    bail!(
        "frameworks.{}.python_command: cannot tell which Python `{}` runs (not a python command, no python shebang); set python_command to the interpreter of the server's environment so revalidate can check which vllm it imports",
        fp.framework,
        first
    )
}

fn checkout_version(checkout: &Path) -> Option<String> {
    let text = std::fs::read_to_string(checkout.join("vllm/_version.py")).ok()?;
    let re = regex::Regex::new(
        r#"(?m)^(?:__version__|version)\s*(?::\s*str\s*)?=\s*(?:version\s*=\s*)?['"]([^'"]+)['"]"#,
    )
    .ok()?;
    re.captures(&text).map(|c| c[1].to_string())
}

/// Ask the server's Python which vllm it imports; refuse a mismatch, naming both.
pub(crate) fn check_vllm_import(
    cfg: &BenchmarkConfig,
    fp: &FrameworkPlan,
    checkout: Option<&Path>,
) -> Result<VllmImport> {
    let Some(checkout) = checkout else {
        bail!(
            "campaign.json has no vllm_checkout: revalidate cannot prove that the server runs the patched checkout (set it with campaign_init)"
        );
    };
    let python = python_argv(cfg, fp)?;
    let mut argv = python.clone();
    argv.push("-c".into());
    argv.push(SCRIPT.into());
    let full = procs::wrap_with_launcher(&argv, fp.launcher.as_deref());
    let env = launch::server_env(cfg, fp);
    let cap = proc::Cmd::from_argv(&full)
        .and_then(|c| {
            c.envs(&env)
                .merge_stderr()
                .run_capture(Duration::from_secs(180))
        })
        .with_context(|| format!("running {}", proc::shell_join(&full)))?;
    let line = cap.stdout.lines().find_map(|l| l.trim().strip_prefix(MARK));
    let Some(line) = line else {
        let last = cap.stdout.lines().rev().find(|l| !l.trim().is_empty());
        bail!(
            "the server's Python ({}) cannot import vllm (exit {:?}): {}",
            proc::shell_join(&python),
            cap.code,
            last.unwrap_or("no output").trim()
        );
    };
    #[derive(Deserialize)]
    struct Got {
        file: String,
        version: Option<String>,
    }
    let got: Got = serde_json::from_str(line).context("vllm import probe output")?;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let file = canon(Path::new(&got.file));
    let root = canon(checkout);
    let out = VllmImport {
        file: got.file.clone(),
        version: got.version.clone(),
        checkout: checkout.display().to_string(),
        checkout_version: checkout_version(checkout),
        python: python.clone(),
    };
    if !file.starts_with(&root) {
        bail!(
            "the server imports vllm from {} (version {}) but the campaign's checkout is {}: revalidation would measure other code than the patch; install the checkout into the server's environment (pip install -e) or point frameworks.vllm.python_command / env at it",
            got.file,
            got.version.as_deref().unwrap_or("unknown"),
            checkout.display()
        );
    }
    if let (Some(a), Some(b)) = (&out.version, &out.checkout_version)
        && a != b
    {
        bail!(
            "the server imports vllm {a} from {} but the checkout {} records version {b} (vllm/_version.py): a stale build; rebuild the checkout",
            got.file,
            checkout.display()
        );
    }
    Ok(out)
}
