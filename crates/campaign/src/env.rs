//! What the environment says about itself. Every probe has a timeout, and an absent tool is
//! recorded as "not available here" with the reason: never a guess.

use serde::Serialize;
use std::time::Duration;
use vllm_sota_core::{Framework, proc};

pub(crate) const NOT_AVAILABLE: &str = "not available here";

/// One probed fact.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Probe {
    /// The value, or "not available here".
    pub value: String,
    /// The command that produced it (or failed).
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Probe {
    fn missing(source: &str, reason: impl Into<String>) -> Self {
        Probe {
            value: NOT_AVAILABLE.into(),
            source: source.into(),
            reason: Some(reason.into()),
        }
    }
}

/// Run `argv` with a timeout (through `core::proc`: own group, killed as a whole at the
/// deadline); stdout on success, else the last output line, redacted.
pub(crate) fn run_capture(argv: &[&str], timeout: Duration) -> Result<String, String> {
    let out = proc::Cmd::from_argv(argv)
        .and_then(|c| c.run_capture(timeout))
        .map_err(|e| format!("{e:#}"))?;
    if out.timed_out {
        return Err(format!("timed out after {}s", timeout.as_secs()));
    }
    if out.success() {
        return Ok(out.stdout);
    }
    let last = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    Err(format!(
        "exit {}: {}",
        out.code.unwrap_or(-1),
        vllm_sota_core::redact::redact(last)
    ))
}

fn probe(argv: &[&str], timeout_s: u64, extract: impl Fn(&str) -> Option<String>) -> Probe {
    let source = argv.join(" ");
    match run_capture(argv, Duration::from_secs(timeout_s)) {
        Ok(out) => match extract(&out) {
            Some(v) => Probe {
                value: v,
                source,
                reason: None,
            },
            None => Probe::missing(&source, "unrecognized output"),
        },
        Err(e) => Probe::missing(&source, e),
    }
}

fn last_nonempty_line(s: &str) -> Option<String> {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// One GPU as nvidia-smi lists it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Gpu {
    pub index: u32,
    pub name: String,
    pub driver: String,
    pub memory_total_mib: u64,
    pub memory_used_mib: u64,
}

/// Parse `nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv,noheader,nounits`.
pub(crate) fn parse_gpu_query(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 5 {
                return None;
            }
            Some(Gpu {
                index: f[0].parse().ok()?,
                name: f[1].to_string(),
                driver: f[2].to_string(),
                memory_total_mib: f[3].parse().ok()?,
                memory_used_mib: f[4].parse().ok()?,
            })
        })
        .collect()
}

/// GPUs visible here, or why none are.
pub(crate) fn gpus() -> Result<Vec<Gpu>, String> {
    let out = run_capture(
        &[
            "nvidia-smi",
            "--query-gpu=index,name,driver_version,memory.total,memory.used",
            "--format=csv,noheader,nounits",
        ],
        Duration::from_secs(20),
    )?;
    let gpus = parse_gpu_query(&out);
    if gpus.is_empty() {
        Err("nvidia-smi listed no GPU".into())
    } else {
        Ok(gpus)
    }
}

/// Everything campaign_init records, probed in parallel.
pub(crate) fn probe_environment(frameworks: &[String]) -> serde_json::Value {
    let wants = |f: &str| frameworks.iter().any(|x| x == f);
    type ProbeJob = Box<dyn FnOnce() -> Probe + Send>;
    let mut jobs: Vec<(&str, ProbeJob)> = vec![
        (
            "cuda_driver_version",
            Box::new(|| {
                probe(&["nvidia-smi"], 20, |o| {
                    o.split("CUDA Version:")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .map(str::to_string)
                })
            }),
        ),
        (
            "nvcc",
            Box::new(|| {
                probe(&["nvcc", "--version"], 20, |o| {
                    o.split("release ")
                        .nth(1)
                        .map(|r| r.split(',').next().unwrap_or(r).trim().to_string())
                })
            }),
        ),
        (
            "nccl",
            Box::new(|| {
                probe(
                    &[
                        "python3",
                        "-c",
                        "import torch; v=torch.cuda.nccl.version(); print('.'.join(map(str, v)) if isinstance(v, tuple) else v)",
                    ],
                    60,
                    last_nonempty_line,
                )
            }),
        ),
        (
            "torch",
            Box::new(|| {
                probe(
                    &["python3", "-c", "import torch; print(torch.__version__)"],
                    60,
                    last_nonempty_line,
                )
            }),
        ),
    ];
    for fw in Framework::ALL {
        if !wants(fw.id()) {
            continue;
        }
        let argv: &'static [&'static str] = match fw {
            Framework::Vllm => &["vllm", "--version"],
            Framework::Sglang => &["python3", "-c", "import sglang; print(sglang.__version__)"],
            Framework::TensorrtLlm => &["trtllm-serve", "--version"],
            Framework::Tokenspeed => &["tokenspeed", "--version"],
        };
        jobs.push((
            fw.id(),
            Box::new(move || probe(argv, 90, last_nonempty_line)),
        ));
    }
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(k, f)| (k, std::thread::spawn(f)))
        .collect();
    let mut map = serde_json::Map::new();
    let mut versions = serde_json::Map::new();
    for (k, h) in handles {
        let p = h
            .join()
            .unwrap_or_else(|_| Probe::missing(k, "probe panicked"));
        let v = serde_json::to_value(p).unwrap();
        if k.parse::<Framework>().is_ok() {
            versions.insert(k.to_string(), v);
        } else {
            map.insert(k.to_string(), v);
        }
    }
    map.insert(
        "framework_versions".into(),
        serde_json::Value::Object(versions),
    );
    match gpus() {
        Ok(g) => {
            map.insert("gpus".into(), serde_json::to_value(&g).unwrap());
        }
        Err(e) => {
            map.insert(
                "gpus".into(),
                serde_json::json!({"value": NOT_AVAILABLE, "source": "nvidia-smi", "reason": e}),
            );
        }
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_nvidia_smi_query() {
        let g = super::parse_gpu_query(
            "0, NVIDIA H200, 580.159.04, 143771, 4\n1, NVIDIA H200, 580.159.04, 143771, 120000\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[1].index, g[1].name.as_str(), g[1].memory_used_mib),
            (1, "NVIDIA H200", 120000)
        );
    }

    #[test]
    fn missing_tool_is_not_available_with_reason() {
        let p = super::probe(&["definitely-not-a-command-xyz"], 5, |o| {
            Some(o.to_string())
        });
        assert_eq!(p.value, super::NOT_AVAILABLE);
        assert!(p.reason.unwrap().contains("definitely-not-a-command-xyz"));
    }
}
