//! The `layer_pipeline` tool: request, size-bounded report, markdown, artifacts.
//!
//! Artifacts: with `campaign_dir` + `round`, each (framework, stage) analysis is kept as
//! `analysis/round-N/layer-pipeline-<framework>-<stage>.{md,json}`; the round's
//! `analysis/round-N/layer-pipeline.md` (+ `.json`) is rebuilt from all of them and
//! copied to `analysis/layer-pipeline.md` (the latest round's). With `out_dir`:
//! `<out_dir>/layer-pipeline-<stage>.{md,json}`.

use crate::analyze::{self, Analysis, Options};
use crate::config::{self, ConfigLayers};
use crate::render::render;
use crate::source;
use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vllm_sota_core::layout::CampaignPaths;
use vllm_sota_core::tool::{Tool, ToolContext};
use vllm_sota_core::{Framework, fsx};

/// The `layer_pipeline` tool.
pub struct LayerPipeline;

/// Rows of the per-layer table kept in the MCP report (the artifact has all).
pub(crate) const MAX_LAYER_ROWS: usize = 128;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerPipelineRequest {
    /// Torch-profiler trace (`.json` or `.json.gz`) to analyze, or a directory holding it
    /// (the GPU worker's trace is picked: rank 0, newest; vLLM API-server `async_llm`
    /// traces are skipped because they have no kernels).
    pub trace: PathBuf,
    /// Optional mapping trace: an eager (CUDA graphs off) capture of the same workload.
    /// When `trace` is a CUDA-graph replay without per-layer scopes, its layer boundaries
    /// and launching-op shapes are carried over by aligning kernel sequences.
    #[serde(default)]
    pub mapping_trace: Option<PathBuf>,
    /// The served model's Hugging Face `config.json`: layer count and per-layer types
    /// (dense/MoE, full/sliding/linear attention, MTP). Without it layers are untyped.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Stage label of the trace: `prefill`, `decode` or `mixed` (used in file names).
    pub stage: String,
    /// Campaign run directory; with `round`, the report is written under `analysis/`.
    #[serde(default)]
    pub campaign_dir: Option<PathBuf>,
    /// Round number (1 = first optimization round, 0 = baseline); needs `campaign_dir`.
    #[serde(default)]
    pub round: Option<u32>,
    /// Framework that produced the trace: `vllm` (default), `sglang`, `tensorrt_llm`, ...
    #[serde(default)]
    pub framework: Option<Framework>,
    /// Output directory when not writing into a campaign.
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    /// GPU for the roofline column (name or nvidia-smi name; default `H200`).
    #[serde(default)]
    pub gpu: Option<String>,
    /// Analyze this pass (0-based index among the passes found) instead of the automatic choice.
    #[serde(default)]
    pub pass_index: Option<usize>,
    /// Override the layer count (else `num_hidden_layers` of the config).
    #[serde(default)]
    pub num_layers: Option<usize>,
    /// Hot kernels listed per representative layer (default 8, at most 32).
    #[serde(default)]
    pub top_kernels: Option<usize>,
    /// Element type assumed for the roofline when the trace does not record it (default `bf16`).
    #[serde(default)]
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LayerPipelineReport {
    pub stage: String,
    pub framework: Framework,
    /// Files written (markdown and JSON).
    pub artifacts: Vec<String>,
    /// Layer rows beyond the first 128 are only in the JSON artifact.
    pub layers_truncated: bool,
    pub analysis: Analysis,
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Rebuild the round's combined document from the per-(framework, stage) JSON files.
fn rebuild_round(dir: &Path, round: u32) -> Result<(String, serde_json::Value)> {
    let mut parts: Vec<(String, String, PathBuf)> = vec![];
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if let Some(stem) = name
            .strip_prefix("layer-pipeline-")
            .and_then(|n| n.strip_suffix(".json"))
        {
            let fw = stem.split('-').next().unwrap_or("").to_string();
            parts.push((
                // vLLM's sections first.
                if fw == Framework::Vllm.id() {
                    "0".into()
                } else {
                    fw
                },
                stem.to_string(),
                p,
            ));
        }
    }
    parts.sort();
    let mut md = format!(
        "# Layer pipeline: round {round}\n\nOne section per (framework, stage) analysis; JSON beside this file.\n\n"
    );
    let mut all = vec![];
    for (_, stem, p) in parts {
        let v: serde_json::Value = fsx::read_json(&p)?;
        if let Some(text) = v.get("markdown").and_then(|m| m.as_str()) {
            md.push_str(text);
            md.push('\n');
        }
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.remove("markdown");
            o.insert("part".into(), serde_json::Value::String(stem));
        }
        all.push(v);
    }
    Ok((md, serde_json::json!({"round": round, "analyses": all})))
}

impl Tool for LayerPipeline {
    const NAME: &'static str = "layer_pipeline";
    const DESCRIPTION: &'static str = "Layer-level analysis of one torch-profiler trace (one stage): finds the forward passes (vLLM execute_context_* steps, record_function steps, else idle gaps), picks a representative steady-state pass (dominant kind, no warm-up, no outliers, median GPU time) and says why; segments it into decoder layers (layers.N annotations, nn.Module scopes, an eager mapping trace for CUDA-graph replays, else the repeating kernel sequence checked against num_hidden_layers) keeping pre-layer, post-layer and between-layer work separate; types layers from the HF config (dense/MoE, full/sliding/linear attention, hybrid, MTP); gives per-type mean/median/p95 ms and share of the pass, the median layer of each type with its hot kernels (family, ms, share, roofline ideal time against the GPU's peak compute and bandwidth when shapes are known), and Perfetto ranges (timeline offsets and ?visStart=&visEnd= URL queries). Writes analysis/round-N/layer-pipeline.md (+ .json) and analysis/layer-pipeline.md in a campaign, or files in out_dir. Call after profiling a stage, before choosing what to patch.";
    type Request = LayerPipelineRequest;
    type Report = LayerPipelineReport;

    fn run(req: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        let stage = req.stage.trim().to_string();
        if stage.is_empty() {
            bail!("`stage` is empty: give prefill, decode or mixed");
        }
        let framework = req.framework.unwrap_or(Framework::Vllm);
        match (&req.campaign_dir, req.round, &req.out_dir) {
            (Some(_), None, _) => {
                bail!("`campaign_dir` needs `round` (0 = baseline, 1.. = optimization rounds)")
            }
            (None, Some(_), _) => bail!("`round` needs `campaign_dir`"),
            (None, None, None) => bail!(
                "give `campaign_dir` + `round` (writes analysis/round-N/layer-pipeline.md) or `out_dir`"
            ),
            _ => {}
        }
        let top = req.top_kernels.unwrap_or(8);
        if top == 0 || top > 32 {
            bail!("`top_kernels` must be 1..=32, got {top}");
        }
        let campaign = match &req.campaign_dir {
            Some(d) => Some(CampaignPaths::open(d)?),
            None => None,
        };
        let gpu = vllm_sota_core::gpu::find(req.gpu.as_deref().unwrap_or("H200"))?;
        crate::families::ensure_classifier()?;
        crate::names::ensure_loaded()?;
        let rules = config::load_rules()?;
        let cfg = match &req.config {
            Some(p) => config::read_config(p, &rules)?,
            None => ConfigLayers::absent(
                "no config.json given: layer count from the trace alone, layers untyped (pass `config`)",
            ),
        };
        ctx.progress(0.0, Some(3.0), "reading trace");
        let trace_file = source::pick_trace_file(&req.trace, &stage)?;
        let view = source::load(&trace_file)?;
        ctx.check_cancelled()?;
        // Without `mapping_trace`, the eager twin beside the trace (`<stage>-eager/`).
        let mapping_path = req
            .mapping_trace
            .clone()
            .or_else(|| vllm_sota_trace::eager_twin(&trace_file));
        let mapping = match &mapping_path {
            Some(p) => {
                ctx.progress(1.0, Some(3.0), "reading mapping trace");
                Some(source::load(&source::pick_trace_file(p, &stage)?)?)
            }
            None => None,
        };
        ctx.check_cancelled()?;
        ctx.progress(2.0, Some(3.0), "analyzing");
        let opts = Options {
            pass_index: req.pass_index,
            num_layers: req.num_layers,
            top_kernels: top,
            dtype: req.dtype.clone().unwrap_or_else(|| "bf16".into()),
            stage: Some(stage.clone()),
        };
        let mut analysis = analyze::analyze(&view, mapping.as_ref(), cfg, &gpu, &opts)?;
        let markdown = render(&analysis, &stage, framework.id(), false);
        let mut full = serde_json::to_value(&analysis)?;
        if let Some(o) = full.as_object_mut() {
            o.insert("stage".into(), stage.clone().into());
            o.insert("framework".into(), framework.id().into());
            o.insert("markdown".into(), markdown.clone().into());
        }
        let mut artifacts = vec![];
        let part = format!("layer-pipeline-{}-{}", slug(framework.id()), slug(&stage));
        match (campaign, req.round) {
            (Some(c), Some(round)) => {
                let round_md = c.round_layer_pipeline(round);
                let dir = round_md
                    .parent()
                    .context("round layer-pipeline path has no parent")?
                    .to_path_buf();
                let part_json = dir.join(format!("{part}.json"));
                let part_md = dir.join(format!("{part}.md"));
                fsx::write_json(&part_json, &full)?;
                fsx::write_text(&part_md, &markdown)?;
                let (md, json) = rebuild_round(&dir, round)?;
                fsx::write_text(&round_md, &md)?;
                let round_json = round_md.with_extension("json");
                fsx::write_json(&round_json, &json)?;
                fsx::write_text(&c.layer_pipeline(), &md)?;
                for p in [part_md, part_json, round_md, round_json, c.layer_pipeline()] {
                    artifacts.push(p.display().to_string());
                }
            }
            _ => {
                let dir = req.out_dir.clone().expect("checked above");
                let md_path = dir.join(format!("layer-pipeline-{}.md", slug(&stage)));
                let json_path = dir.join(format!("layer-pipeline-{}.json", slug(&stage)));
                fsx::write_text(&md_path, &markdown)?;
                fsx::write_json(&json_path, &full)?;
                artifacts.push(md_path.display().to_string());
                artifacts.push(json_path.display().to_string());
            }
        }
        ctx.progress(3.0, Some(3.0), "done");
        let layers_truncated = analysis.layers.len() > MAX_LAYER_ROWS;
        analysis.layers.truncate(MAX_LAYER_ROWS);
        analysis.notes.truncate(16);
        Ok(LayerPipelineReport {
            stage,
            framework,
            artifacts,
            layers_truncated,
            analysis,
        })
    }

    fn markdown(report: &Self::Report) -> String {
        let mut s = render(
            &report.analysis,
            &report.stage,
            report.framework.id(),
            report.layers_truncated,
        );
        if !report.artifacts.is_empty() {
            s.push_str("\nArtifacts:\n");
            for a in &report.artifacts {
                s.push_str(&format!("- `{a}`\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_report_schemas_are_objects_with_described_fields() {
        let req = serde_json::to_value(schemars::schema_for!(LayerPipelineRequest)).unwrap();
        assert_eq!(req["type"], "object");
        assert!(
            req["properties"]["mapping_trace"]["description"]
                .as_str()
                .unwrap()
                .contains("eager")
        );
        assert_eq!(req["required"], serde_json::json!(["trace", "stage"]));
        let rep = serde_json::to_value(schemars::schema_for!(LayerPipelineReport)).unwrap();
        assert_eq!(rep["type"], "object");
    }
}
