//! `campaign_init`: Phase 0. Creates the run directory and records the environment.

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use vllm_sota_core::fsx;
use vllm_sota_core::layout::{
    self, Campaign, CampaignPaths, LAYOUT_DIRS, LAYOUT_FILES, PLACEHOLDER_MARKER,
};
use vllm_sota_core::md::{self, Align};
use vllm_sota_core::{Tool, ToolContext};

use crate::{env, git, ledger};

use vllm_sota_core::Framework;

const DEFAULT_FRAMEWORKS: [Framework; 3] =
    [Framework::Vllm, Framework::Sglang, Framework::TensorrtLlm];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInitRequest {
    /// Hugging Face model id (e.g. `meta-llama/Llama-3.1-8B-Instruct`) or a local checkpoint directory.
    pub model: String,
    /// Tokenizer id or path. Default: the model.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Serving precision (bf16, fp16, fp8, ...). Default: `torch_dtype` / `dtype` of a local checkpoint's config.json.
    #[serde(default)]
    pub precision: Option<String>,
    /// Quantization method. Default: `quantization_config.quant_method` of a local checkpoint, else none.
    #[serde(default)]
    pub quantization: Option<String>,
    /// Whether frameworks may run the model's remote code. Default false.
    #[serde(default)]
    pub trust_remote_code: Option<bool>,
    /// Max context length every framework must serve. Default: unset (the benchmark config decides).
    #[serde(default)]
    pub max_model_len: Option<u64>,
    /// The vLLM git checkout that patches go into.
    #[serde(default)]
    pub vllm_checkout: Option<PathBuf>,
    /// GPU ids to use. Default: every GPU nvidia-smi lists; an error when none is visible.
    #[serde(default)]
    pub gpu_ids: Option<Vec<u32>>,
    /// Frameworks to compare: vllm, sglang, tensorrt_llm, tokenspeed. Default vllm, sglang, tensorrt_llm.
    #[serde(default)]
    pub frameworks: Option<Vec<String>>,
    /// Directory that holds `runs/`. The run directory is `<artifact_root>/runs/YYYYMMDD_<model_slug>_sota_humanize/`.
    pub artifact_root: PathBuf,
    /// Model family for the PR-history lookup (e.g. `llama`, `qwen`, `deepseek`). Default: inferred from the model id.
    #[serde(default)]
    pub model_family: Option<String>,
    /// Short model name for the run directory. Default: from the model id.
    #[serde(default)]
    pub model_slug: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CampaignInitReport {
    /// The run directory: pass it as `campaign_dir` to every other tool.
    pub campaign_dir: String,
    /// True when this call created the campaign; false when it already existed (nothing changed).
    pub created: bool,
    pub campaign: Campaign,
    /// Layout entries created by this call (empty when the campaign existed).
    pub created_paths: Vec<String>,
    /// Layout entries missing from an existing campaign (reported, not repaired).
    pub missing_paths: Vec<String>,
    /// What was inferred rather than given, with its source.
    pub inferred: Vec<String>,
}

pub struct CampaignInit;

fn read_local_config(model: &str) -> Option<serde_json::Value> {
    let path = Path::new(model).join("config.json");
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn infer_family(slug: &str, config: Option<&serde_json::Value>) -> String {
    // model_type from config.json is the most reliable ("llama", "qwen2_moe", "deepseek_v3").
    if let Some(mt) = config
        .and_then(|c| c.get("model_type"))
        .and_then(|v| v.as_str())
    {
        return mt.split('_').next().unwrap_or(mt).to_string();
    }
    let lead: String = slug
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if lead.is_empty() {
        slug.to_string()
    } else {
        lead
    }
}

fn find_existing(runs: &Path, slug: &str) -> Option<PathBuf> {
    let suffix = format!("_{slug}_sota_humanize");
    let mut hits: Vec<PathBuf> = std::fs::read_dir(runs)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 8 + suffix.len() && n.ends_with(&suffix))
        })
        .filter(|p| p.join(layout::CAMPAIGN_JSON).is_file())
        .collect();
    hits.sort();
    hits.pop()
}

fn placeholder(title: &str, what: &str) -> String {
    format!("{PLACEHOLDER_MARKER}\n# {title}\n\nNot written yet: {what}\n")
}

fn manifest(c: &Campaign) -> String {
    let mut t = md::Table::new(&[("key", Align::Left), ("value", Align::Left)]);
    let mut row = |k: &str, v: String| {
        t.row(&[k.to_string(), v]);
    };
    row("model", c.model.clone());
    row("model slug", c.model_slug.clone());
    row("model family", c.model_family.clone());
    row("tokenizer", c.tokenizer.clone());
    row("precision", c.precision.clone());
    row(
        "quantization",
        c.quantization.clone().unwrap_or_else(|| "none".into()),
    );
    row("trust remote code", c.trust_remote_code.to_string());
    row(
        "max model len",
        c.max_model_len
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unset".into()),
    );
    row("GPU ids", format!("{:?}", c.gpu_ids));
    row("frameworks", c.frameworks.join(", "));
    row(
        "vLLM checkout",
        c.vllm_checkout
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| env::NOT_AVAILABLE.into()),
    );
    row(
        "vLLM base branch",
        c.vllm_base_branch
            .clone()
            .unwrap_or_else(|| env::NOT_AVAILABLE.into()),
    );
    row(
        "vLLM base commit",
        c.vllm_base_commit
            .clone()
            .unwrap_or_else(|| env::NOT_AVAILABLE.into()),
    );
    row("created", c.created_at.clone());
    let mut s = String::from("# Campaign manifest\n\n");
    s += &t.render();
    s += "\n## Environment seen at init\n\n```json\n";
    s += &serde_json::to_string_pretty(&c.environment).unwrap_or_default();
    s += "\n```\n";
    s
}

/// The frameworks to compare: the request's list (each a known framework, vllm among
/// them) or the default set.
fn resolve_frameworks(req: &CampaignInitRequest) -> Result<Vec<String>> {
    let frameworks: Vec<String> = match &req.frameworks {
        Some(list) if list.is_empty() => {
            bail!("frameworks: empty; give at least vllm and one competitor")
        }
        Some(list) => list.clone(),
        None => DEFAULT_FRAMEWORKS
            .iter()
            .map(|f| f.id().to_string())
            .collect(),
    };
    for f in &frameworks {
        if let Err(e) = f.parse::<Framework>() {
            bail!("frameworks: {e}");
        }
    }
    if !frameworks.iter().any(|f| f == "vllm") {
        bail!("frameworks: must include vllm (the campaign optimizes vLLM)");
    }
    Ok(frameworks)
}

/// The serving precision: the request's, else the local checkpoint's `torch_dtype` /
/// `dtype` (recorded in `inferred`); an error when neither is there.
fn resolve_precision(
    req: &CampaignInitRequest,
    config: Option<&serde_json::Value>,
    inferred: &mut Vec<String>,
) -> Result<String> {
    Ok(match (&req.precision, config) {
        (Some(p), _) => p.clone(),
        (None, Some(cfg)) => {
            let dtype = cfg
                .get("torch_dtype")
                .or_else(|| cfg.get("dtype"))
                .and_then(|v| v.as_str());
            let dtype = dtype.with_context(|| {
                format!("precision: not given and {}/config.json has no torch_dtype; pass precision (bf16, fp16, fp8, ...)", req.model)
            })?;
            let p = match dtype {
                "bfloat16" => "bf16",
                "float16" => "fp16",
                "float32" => "fp32",
                other => other,
            }
            .to_string();
            inferred.push(format!("precision = {p} (config.json torch_dtype {dtype})"));
            p
        }
        (None, None) => bail!(
            "precision: cannot be inferred ({} is not a local checkpoint with a config.json); pass precision (bf16, fp16, fp8, ...)",
            req.model
        ),
    })
}

/// The GPU ids: the request's, else every GPU nvidia-smi lists (recorded in `inferred`).
fn resolve_gpu_ids(req: &CampaignInitRequest, inferred: &mut Vec<String>) -> Result<Vec<u32>> {
    Ok(match &req.gpu_ids {
        Some(ids) if ids.is_empty() => bail!("gpu_ids: empty"),
        Some(ids) => ids.clone(),
        None => {
            let gpus = env::gpus().map_err(|e| {
                anyhow::anyhow!("gpu_ids: not given and the GPU environment cannot be inferred ({e}); pass gpu_ids")
            })?;
            inferred.push(format!(
                "gpu_ids = all {} GPUs nvidia-smi lists",
                gpus.len()
            ));
            gpus.iter().map(|g| g.index).collect()
        }
    })
}

/// The vLLM checkout's (commit, branch) when one is given.
fn checkout_base(req: &CampaignInitRequest) -> Result<(Option<String>, Option<String>)> {
    let Some(checkout) = &req.vllm_checkout else {
        return Ok((None, None));
    };
    let info = git::checkout_info(checkout)?;
    Ok((info.commit, info.branch))
}

impl CampaignInit {
    fn build_campaign(req: &CampaignInitRequest, inferred: &mut Vec<String>) -> Result<Campaign> {
        if req.model.trim().is_empty() {
            bail!("model: required (a Hugging Face id or a checkpoint directory)");
        }
        let config = read_local_config(&req.model);
        let frameworks = resolve_frameworks(req)?;
        let precision = resolve_precision(req, config.as_ref(), inferred)?;
        let quantization = req.quantization.clone().or_else(|| {
            let q = config
                .as_ref()?
                .get("quantization_config")?
                .get("quant_method")?
                .as_str()?
                .to_string();
            inferred.push(format!(
                "quantization = {q} (config.json quantization_config)"
            ));
            Some(q)
        });
        let gpu_ids = resolve_gpu_ids(req, inferred)?;
        let model_slug = req
            .model_slug
            .clone()
            .unwrap_or_else(|| layout::slugify(&req.model));
        if model_slug.is_empty() {
            bail!(
                "model_slug: cannot be derived from model '{}'; pass model_slug",
                req.model
            );
        }
        let model_family = req.model_family.clone().unwrap_or_else(|| {
            let f = infer_family(&model_slug, config.as_ref());
            inferred.push(format!("model_family = {f}"));
            f
        });
        let tokenizer = req.tokenizer.clone().unwrap_or_else(|| req.model.clone());
        let (base_commit, base_branch) = checkout_base(req)?;
        let mut environment = env::probe_environment(&frameworks);
        if let Some(checkout) = &req.vllm_checkout {
            environment["vllm_checkout"] = serde_json::json!({
                "path": checkout.display().to_string(),
                "branch": base_branch.clone().unwrap_or_else(|| "detached HEAD".into()),
                "commit": base_commit.clone().unwrap_or_else(|| "no commit yet".into()),
            });
        }
        Ok(Campaign {
            schema_version: 1,
            model: req.model.clone(),
            model_slug,
            model_family,
            tokenizer,
            precision,
            quantization,
            trust_remote_code: req.trust_remote_code.unwrap_or(false),
            max_model_len: req.max_model_len,
            vllm_checkout: req.vllm_checkout.clone(),
            vllm_base_commit: base_commit,
            vllm_base_branch: base_branch,
            gpu_ids,
            frameworks,
            created_at: layout::now_rfc3339(),
            environment,
        })
    }
}

/// Create every layout entry that is missing; returns what it created.
fn create_layout(paths: &CampaignPaths, campaign: &Campaign) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for dir in LAYOUT_DIRS {
        let p = paths.root.join(dir);
        if !p.is_dir() {
            std::fs::create_dir_all(&p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            created.push(format!("{dir}/"));
        }
    }
    for file in LAYOUT_FILES {
        let content = match *file {
            "manifest.md" => manifest(campaign),
            "analysis/root-cause.md" => placeholder(
                "Root cause",
                "written by profile_tables when vLLM and the leader are compared",
            ),
            "analysis/layer-pipeline.md" => {
                placeholder("Layer pipeline", "written by layer_pipeline")
            }
            "history/model-pr-history-notes.md" => placeholder(
                "Model PR history notes",
                "written by history_notes (Phase 0.5)",
            ),
            "humanize/model-loop-checkpoint.md" => {
                placeholder("Model loop checkpoint", "written by checkpoint")
            }
            "final_report.md" => placeholder("Final report", "written by final_report"),
            "humanize/lineage.jsonl" => String::new(),
            other => ledger::empty_ledger_markdown(other).unwrap_or_default(),
        };
        if fsx::write_text_if_absent(&paths.root.join(file), &content)? {
            created.push(file.to_string());
        }
    }
    Ok(created)
}

/// Layout entries missing from a campaign directory.
pub(crate) fn missing_layout(paths: &CampaignPaths) -> Vec<String> {
    let mut missing: Vec<String> = LAYOUT_DIRS
        .iter()
        .filter(|d| !paths.root.join(d).is_dir())
        .map(|d| format!("{d}/"))
        .collect();
    missing.extend(
        LAYOUT_FILES
            .iter()
            .filter(|f| !paths.root.join(f).is_file())
            .map(|f| f.to_string()),
    );
    missing
}

impl Tool for CampaignInit {
    const NAME: &'static str = "campaign_init";
    const DESCRIPTION: &'static str = "Phase 0: create the campaign run directory <artifact_root>/runs/YYYYMMDD_<model_slug>_sota_humanize/ with its fixed layout (manifest, help/, benchmark/, profiles/, analysis/, history/, kernel/ncu-digests/, patches/, humanize/ ledgers and lineage, final_report.md, campaign.json) and record the environment it can see (vLLM checkout branch and commit, GPUs and driver, CUDA, NCCL, framework versions; absent ones marked 'not available here'). Idempotent: on an existing campaign for the same model it reports what is there and changes nothing. Fails naming the field when model, GPU environment or precision cannot be inferred. Returns campaign_dir, which every other tool takes.";
    type Request = CampaignInitRequest;
    type Report = CampaignInitReport;

    fn run(req: CampaignInitRequest, ctx: &ToolContext) -> Result<CampaignInitReport> {
        let runs = req.artifact_root.join("runs");
        let slug = req
            .model_slug
            .clone()
            .unwrap_or_else(|| layout::slugify(&req.model));
        if let Some(existing) = find_existing(&runs, &slug) {
            let paths = CampaignPaths::open(&existing)?;
            let campaign = paths.campaign()?;
            if campaign.model != req.model {
                bail!(
                    "model: {} already holds a campaign for '{}', not '{}'; pass another model_slug",
                    existing.display(),
                    campaign.model,
                    req.model
                );
            }
            return Ok(CampaignInitReport {
                campaign_dir: existing.display().to_string(),
                created: false,
                missing_paths: missing_layout(&paths),
                campaign,
                created_paths: vec![],
                inferred: vec![],
            });
        }
        ctx.progress(0.0, Some(2.0), "probing the environment");
        let mut inferred = Vec::new();
        let campaign = Self::build_campaign(&req, &mut inferred)?;
        let date: String = campaign.created_at[..10].replace('-', "");
        let root = runs.join(format!("{date}_{}_sota_humanize", campaign.model_slug));
        let paths = CampaignPaths::new(&root);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("artifact_root: cannot create {}", root.display()))?;
        ctx.progress(1.0, Some(2.0), "creating the layout");
        let created_paths = create_layout(&paths, &campaign)?;
        // campaign.json last: its presence marks a complete init (a crash before it is re-run cleanly).
        fsx::write_json(&paths.campaign_json(), &campaign)?;
        Ok(CampaignInitReport {
            campaign_dir: root.display().to_string(),
            created: true,
            campaign,
            created_paths,
            missing_paths: vec![],
            inferred,
        })
    }

    fn markdown(r: &CampaignInitReport) -> String {
        let mut s = format!(
            "# campaign_init\n\n{} `{}`\n\n- model: {}\n- precision: {}\n- GPUs: {:?}\n- frameworks: {}\n",
            if r.created {
                "Created"
            } else {
                "Already exists (nothing changed):"
            },
            r.campaign_dir,
            r.campaign.model,
            r.campaign.precision,
            r.campaign.gpu_ids,
            r.campaign.frameworks.join(", ")
        );
        for i in &r.inferred {
            s += &format!("- inferred: {i}\n");
        }
        if !r.missing_paths.is_empty() {
            s += &format!("\nMissing layout entries: {}\n", r.missing_paths.join(", "));
        }
        s
    }
}
