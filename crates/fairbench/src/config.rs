//! The benchmark configuration (the seed's cookbook schema, `schema_version: 1`), read
//! from YAML or JSON, with defaults and validation. Every error names the key.

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use vllm_sota_core::Framework;
use vllm_sota_core::results::{RankingMetric, Sla};

pub(crate) const CONFIG_SCHEMA_VERSION: u32 = 1;

/// A map that keeps the order of its keys as written (knob order matters for tiers 1 and 2).
/// Keys are flag names, or [`Framework`]s for the `frameworks` section.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V, K = String>(pub Vec<(K, V)>);

impl<V, K> Default for OrderedMap<V, K> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V, K: PartialEq> OrderedMap<V, K> {
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: PartialEq<Q>,
        Q: ?Sized,
    {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Insert or replace, keeping the position of an existing key.
    pub fn insert(&mut self, key: K, value: V) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: PartialEq<Q>,
        Q: ?Sized,
    {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }
}

/// Keys are read as strings and parsed, so a bad key (an unknown framework) is an error that
/// names it and what is known.
impl<'de, V, K> Deserialize<'de> for OrderedMap<V, K>
where
    V: Deserialize<'de>,
    K: std::str::FromStr + PartialEq,
    K::Err: std::fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V_<V, K>(std::marker::PhantomData<(V, K)>);
        impl<'de, V, K> Visitor<'de> for V_<V, K>
        where
            V: Deserialize<'de>,
            K: std::str::FromStr + PartialEq,
            K::Err: std::fmt::Display,
        {
            type Value = OrderedMap<V, K>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out: Vec<(K, V)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let k: K = name
                        .parse()
                        .map_err(|e| serde::de::Error::custom(format!("key `{name}`: {e}")))?;
                    if out.iter().any(|(x, _)| *x == k) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{name}`")));
                    }
                    out.push((k, map.next_value::<V>()?));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

impl<V: Serialize, K: Serialize> Serialize for OrderedMap<V, K> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<V: JsonSchema> JsonSchema for OrderedMap<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OrderedMap_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let inner = generator.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": inner })
    }
}

/// Keyed by framework: one optional property per known framework, nothing else.
impl<V: JsonSchema> JsonSchema for OrderedMap<V, Framework> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("FrameworkMap_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let inner = serde_json::to_value(generator.subschema_for::<V>()).unwrap_or_default();
        let props: serde_json::Map<String, Value> = Framework::ALL
            .iter()
            .map(|f| (f.id().to_string(), inner.clone()))
            .collect();
        schemars::json_schema!({ "type": "object", "properties": props, "additionalProperties": false })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// Must be 1.
    pub schema_version: u32,
    pub model: ModelSection,
    #[serde(default)]
    pub hardware: HardwareSection,
    #[serde(default)]
    pub dataset: DatasetSection,
    #[serde(default)]
    pub benchmark: BenchmarkSection,
    #[serde(default)]
    pub search: SearchSection,
    #[serde(default)]
    pub launch: LaunchSection,
    /// `vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`.
    pub frameworks: OrderedMap<FrameworkSection, Framework>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Hugging Face id or checkpoint path; substituted for `{model}` in server commands.
    pub name: String,
    /// Tokenizer id or path (defaults to `name`); the client counts tokens with it.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// bf16 / fp16 / fp8 ...
    #[serde(default = "default_precision")]
    pub precision: String,
    #[serde(default)]
    pub quantization: Option<String>,
    #[serde(default)]
    pub trust_remote_code: bool,
    /// Name the servers serve the model under (`--served-model-name`); defaults to `name`.
    #[serde(default)]
    pub served_model_name: Option<String>,
}

fn default_precision() -> String {
    "bf16".into()
}

impl ModelSection {
    pub fn tokenizer(&self) -> &str {
        self.tokenizer.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HardwareSection {
    /// GPUs one deployment uses (all frameworks get the same count).
    #[serde(default = "one")]
    pub gpu_count: u32,
    #[serde(default)]
    pub multi_node: bool,
    /// Physical GPU ids (`CUDA_VISIBLE_DEVICES`); default `0..gpu_count`.
    #[serde(default)]
    pub gpu_ids: Vec<u32>,
    /// e.g. `H200`; recorded in rows.
    #[serde(default)]
    pub gpu_model: Option<String>,
    /// Check with `nvidia-smi` that the GPUs are free before launching (skipped when nvidia-smi is absent).
    #[serde(default = "yes")]
    pub check_gpus_free: bool,
}

impl Default for HardwareSection {
    fn default() -> Self {
        Self {
            gpu_count: 1,
            multi_node: false,
            gpu_ids: vec![],
            gpu_model: None,
            check_gpus_free: true,
        }
    }
}

impl HardwareSection {
    pub fn gpu_ids(&self) -> Vec<u32> {
        if self.gpu_ids.is_empty() {
            (0..self.gpu_count).collect()
        } else {
            self.gpu_ids.clone()
        }
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// `random` (token-exact random prompts) or `jsonl` (a production workload: one JSON
    /// object per line with `prompt` or `messages`, `output_len`, optional `input_len`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The JSONL file (`kind: jsonl`), absolute or relative to the campaign directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Measured prompts per run (warmup excluded).
    #[serde(default = "default_num_prompts")]
    pub num_prompts: u64,
    /// Scenario names, aligned with `input_len` and `output_len` (never a cartesian product).
    #[serde(default = "default_scenarios")]
    pub scenario_names: Vec<String>,
    #[serde(default = "default_input_len")]
    pub input_len: Vec<u64>,
    #[serde(default = "default_output_len")]
    pub output_len: Vec<u64>,
    /// Base seed; each candidate derives its own so prompts are unique per candidate.
    #[serde(default)]
    pub seed: u64,
    /// Set for a reduced workload (e.g. `flow-check`): recorded in every row.
    #[serde(default)]
    pub label: Option<String>,
}

fn default_kind() -> String {
    "random".into()
}
fn default_num_prompts() -> u64 {
    80
}
fn default_scenarios() -> Vec<String> {
    vec!["chat".into(), "summarization".into()]
}
fn default_input_len() -> Vec<u64> {
    vec![1000, 8000]
}
fn default_output_len() -> Vec<u64> {
    vec![1000, 1000]
}

impl Default for DatasetSection {
    fn default() -> Self {
        Self {
            kind: default_kind(),
            num_prompts: default_num_prompts(),
            scenario_names: default_scenarios(),
            input_len: default_input_len(),
            output_len: default_output_len(),
            seed: 0,
            label: None,
            path: None,
        }
    }
}

/// One scenario: a name and its lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scenario {
    pub name: String,
    pub input_len: u64,
    pub output_len: u64,
}

impl DatasetSection {
    pub fn is_jsonl(&self) -> bool {
        self.kind == "jsonl"
    }

    /// Scenarios: the aligned lists (random), or one scenario named by the single
    /// `scenario_names` entry (default `production`) whose lengths preflight fills from
    /// the file (jsonl).
    pub fn scenarios(&self) -> Vec<Scenario> {
        if self.is_jsonl() {
            let name = match self.scenario_names.as_slice() {
                [one] => one.clone(),
                _ => "production".to_string(),
            };
            return vec![Scenario {
                name,
                input_len: 0,
                output_len: 0,
            }];
        }
        self.scenario_names
            .iter()
            .zip(&self.input_len)
            .zip(&self.output_len)
            .map(|((n, &i), &o)| Scenario {
                name: n.clone(),
                input_len: i,
                output_len: o,
            })
            .collect()
    }
    pub fn max_total_len(&self) -> u64 {
        self.input_len
            .iter()
            .zip(&self.output_len)
            .map(|(i, o)| i + o)
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QpsSearch {
    /// Lowest request rate tried (req/s).
    pub lower: f64,
    /// Highest request rate tried (req/s).
    pub upper: f64,
    /// Stop when upper − lower ≤ tolerance × upper.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// At most 5.
    #[serde(default = "default_rounds")]
    pub max_rounds: u32,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_rounds() -> u32 {
    5
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkSection {
    /// `/v1/completions` or `/v1/chat/completions`, identical for every framework.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Concurrency sweep (closed loop, all requests at once, capped at each value).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: Vec<u64>,
    /// Optional QPS binary search, run at the largest `max_concurrency`.
    #[serde(default)]
    pub qps: Option<QpsSearch>,
    #[serde(default = "default_sla")]
    pub sla: Sla,
    /// Merged into every request body (e.g. `{"ignore_eos": true}`).
    #[serde(default)]
    pub extra_request_body: serde_json::Map<String, Value>,
    /// Warmup requests before each measured run (not counted).
    #[serde(default = "default_warmup")]
    pub warmup_prompts: u64,
    /// Measured repeats per candidate × scenario (rows get `repeat` 0..N).
    #[serde(default = "one")]
    pub repeats: u32,
    #[serde(default)]
    pub ranking_metric: RankingMetric,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: f64,
}

fn default_endpoint() -> String {
    "/v1/completions".into()
}
fn default_concurrency() -> Vec<u64> {
    vec![80]
}
fn default_sla() -> Sla {
    Sla {
        max_p50_ttft_ms: None,
        max_p50_tpot_ms: None,
        min_success_rate: Some(0.99),
    }
}
fn default_warmup() -> u64 {
    4
}
fn default_request_timeout() -> f64 {
    1800.0
}

impl Default for BenchmarkSection {
    fn default() -> Self {
        Self {
            endpoint: default_endpoint(),
            max_concurrency: default_concurrency(),
            qps: None,
            sla: default_sla(),
            extra_request_body: Default::default(),
            warmup_prompts: default_warmup(),
            repeats: 1,
            ranking_metric: RankingMetric::default(),
            request_timeout_s: default_request_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSection {
    /// 1: baseline + one knob at a time; 2: full product of the first 3 knobs + one at a time
    /// for the rest; 3: full product. Always baseline first, deduplicated, capped.
    #[serde(default = "one_u8")]
    pub tier: u8,
    /// Cap on candidates per framework, baseline included.
    #[serde(default = "default_max_candidates")]
    pub max_candidates_per_framework: u32,
    /// Let speculative decoding, DBO/TBO and partial-prefill > 1 into the search (off by default).
    #[serde(default)]
    pub include_excluded_features: bool,
}

fn one_u8() -> u8 {
    1
}
fn default_max_candidates() -> u32 {
    8
}

impl Default for SearchSection {
    fn default() -> Self {
        Self {
            tier: 1,
            max_candidates_per_framework: default_max_candidates(),
            include_excluded_features: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchSection {
    /// Host the servers bind and the client connects to.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port; absent = a free port picked per launch.
    #[serde(default)]
    pub port: Option<u16>,
    /// Seconds from spawn to a served 1-token request before the candidate is `timeout`.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_s: f64,
    /// Seconds between readiness polls.
    #[serde(default = "default_poll")]
    pub readiness_poll_s: f64,
    /// Seconds between SIGTERM and SIGKILL of the server's process group.
    #[serde(default = "default_grace")]
    pub shutdown_grace_s: f64,
    /// On GPU hosts, seconds to wait for GPU memory to be released after teardown.
    #[serde(default = "default_gpu_release")]
    pub gpu_release_timeout_s: f64,
    /// Run the correctness probe on every vLLM candidate (reference answers for revalidation).
    #[serde(default = "yes")]
    pub record_correctness_reference: bool,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_startup_timeout() -> f64 {
    1800.0
}
fn default_poll() -> f64 {
    2.0
}
fn default_grace() -> f64 {
    20.0
}
fn default_gpu_release() -> f64 {
    120.0
}

impl Default for LaunchSection {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: None,
            startup_timeout_s: default_startup_timeout(),
            readiness_poll_s: default_poll(),
            shutdown_grace_s: default_grace(),
            gpu_release_timeout_s: default_gpu_release(),
            record_correctness_reference: true,
        }
    }
}

/// One framework's deployment space.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameworkSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// argv template of the server; placeholders `{model}`, `{tokenizer}`, `{host}`, `{port}`.
    /// Default: the framework's command in `references/framework-flags.json`.
    #[serde(default)]
    pub server_command: Option<Vec<String>>,
    /// argv that prints the CLI help (default: server command + the framework's help args,
    /// e.g. `--help=all` for vLLM).
    #[serde(default)]
    pub help_command: Option<Vec<String>>,
    /// Flags every candidate gets (`--flag: value`; `true` = bare flag, `false` = `--no-flag` or omitted).
    #[serde(default)]
    pub base_server_flags: OrderedMap<Value>,
    /// Flag → values to search; order matters for tiers 1 and 2.
    #[serde(default)]
    pub search_space: OrderedMap<Vec<Value>>,
    /// Extra environment of the server (values never written to artifacts).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Wrap the command for a container or a remote host, e.g. `["docker","exec","-i","vllm","{argv}"]`
    /// (`{argv}` = the server argv spread) or `["ssh","gpu1","{command}"]` (`{command}` = one shell-quoted string).
    #[serde(default)]
    pub launcher: Option<Vec<String>>,
    /// argv run after the process group is killed (e.g. `docker exec vllm pkill -f 'vllm serve'` for a container).
    #[serde(default)]
    pub teardown_command: Option<Vec<String>>,
    /// Readiness route override (default from framework-flags.json: `/v1/models`).
    #[serde(default)]
    pub models_route: Option<String>,
    /// Start-up timeout override for this framework (default `launch.startup_timeout_s`).
    #[serde(default)]
    pub startup_timeout_s: Option<f64>,
    /// Why this framework runs its baseline only while another framework gets a search
    /// (recorded in every row). Without it, a tuned-vs-defaults comparison is refused.
    #[serde(default)]
    pub search_skipped_reason: Option<String>,
    /// argv of the Python the server runs (e.g. `["python3"]`, or through a container);
    /// revalidate asks it which `vllm` it imports. Default: the server command's own
    /// interpreter (`python -m ...`, or the shebang of the server executable).
    #[serde(default)]
    pub python_command: Option<Vec<String>>,
}

/// Where the config came from, for error messages.
pub fn parse_config_text(text: &str, origin: &str) -> Result<BenchmarkConfig> {
    if text.trim().is_empty() {
        bail!("{origin}: the benchmark config is empty");
    }
    let trimmed = text.trim_start();
    let cfg: BenchmarkConfig = if trimmed.starts_with('{') {
        let de = &mut serde_json::Deserializer::from_str(text);
        with_path(serde_path_to_error::deserialize(de))
            .with_context(|| format!("{origin}: invalid benchmark config"))?
    } else {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path(de).with_context(|| format!("{origin}: invalid benchmark config"))?
    };
    validate(&cfg).with_context(|| format!("{origin}: invalid benchmark config"))?;
    Ok(cfg)
}

/// `path.to.key: message` from a serde_path_to_error result.
fn with_path<T, E: std::fmt::Display>(
    r: std::result::Result<T, serde_path_to_error::Error<E>>,
) -> Result<T> {
    r.map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            anyhow::anyhow!("{}", e.inner())
        } else {
            anyhow::anyhow!("{path}: {}", e.inner())
        }
    })
}

/// Deserialize and prefix the error with the key path where serde's own message lacks it.
fn serde_path<'de, D>(de: D) -> Result<BenchmarkConfig>
where
    D: Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    BenchmarkConfig::deserialize(de).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn load_config(path: &Path) -> Result<BenchmarkConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read benchmark config {}", path.display()))?;
    parse_config_text(&text, &path.display().to_string())
}

pub(crate) fn config_from_value(value: &Value) -> Result<BenchmarkConfig> {
    let cfg: BenchmarkConfig = with_path(serde_path_to_error::deserialize(value.clone()))
        .context("config: invalid benchmark config")?;
    validate(&cfg).context("config: invalid benchmark config")?;
    Ok(cfg)
}

/// Semantic checks serde cannot express. Errors name the key.
pub(crate) fn validate(cfg: &BenchmarkConfig) -> Result<()> {
    if cfg.schema_version != CONFIG_SCHEMA_VERSION {
        bail!(
            "schema_version: {} is not supported (expected {CONFIG_SCHEMA_VERSION})",
            cfg.schema_version
        );
    }
    if cfg.model.name.trim().is_empty() {
        bail!("model.name: must not be empty");
    }
    let hw = &cfg.hardware;
    if hw.gpu_count == 0 {
        bail!("hardware.gpu_count: must be at least 1");
    }
    if !hw.gpu_ids.is_empty() && hw.gpu_ids.len() != hw.gpu_count as usize {
        bail!(
            "hardware.gpu_ids: {} ids listed but gpu_count is {}",
            hw.gpu_ids.len(),
            hw.gpu_count
        );
    }
    let ds = &cfg.dataset;
    match ds.kind.as_str() {
        "random" => {
            if ds.path.is_some() {
                bail!("dataset.path: only read with `kind: jsonl` (kind is `random`)");
            }
        }
        "jsonl" => {
            if ds.path.as_deref().is_none_or(|p| p.trim().is_empty()) {
                bail!("dataset.path: `kind: jsonl` needs the workload file");
            }
        }
        other => bail!("dataset.kind: `{other}` is not supported (`random` or `jsonl`)"),
    }
    if ds.num_prompts == 0 {
        bail!("dataset.num_prompts: must be at least 1");
    }
    if ds.is_jsonl() {
        // Lengths come from the file; only the scenario name is read from the lists.
        return validate_rest(cfg);
    }
    if ds.scenario_names.is_empty() {
        bail!("dataset.scenario_names: at least one scenario is needed");
    }
    if ds.input_len.len() != ds.scenario_names.len()
        || ds.output_len.len() != ds.scenario_names.len()
    {
        bail!(
            "dataset.scenario_names / input_len / output_len: lists must be aligned (same length; got {}, {}, {}); scenarios are never a cartesian product",
            ds.scenario_names.len(),
            ds.input_len.len(),
            ds.output_len.len()
        );
    }
    for (i, name) in ds.scenario_names.iter().enumerate() {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("dataset.scenario_names[{i}]: `{name}` must be non-empty [A-Za-z0-9_-]");
        }
        if ds.scenario_names[..i].contains(name) {
            bail!("dataset.scenario_names[{i}]: `{name}` is listed twice");
        }
        if ds.input_len[i] == 0 || ds.output_len[i] == 0 {
            bail!("dataset.input_len[{i}] / output_len[{i}]: lengths must be at least 1");
        }
    }
    validate_rest(cfg)
}

/// Checks of everything after `dataset`.
fn validate_rest(cfg: &BenchmarkConfig) -> Result<()> {
    let b = &cfg.benchmark;
    if b.endpoint != "/v1/completions" && b.endpoint != "/v1/chat/completions" {
        bail!(
            "benchmark.endpoint: `{}` must be /v1/completions or /v1/chat/completions",
            b.endpoint
        );
    }
    if b.max_concurrency.is_empty() && b.qps.is_none() {
        bail!("benchmark.max_concurrency: give at least one value (or benchmark.qps)");
    }
    if let Some(i) = b.max_concurrency.iter().position(|&c| c == 0) {
        bail!("benchmark.max_concurrency[{i}]: must be at least 1");
    }
    if let Some(q) = &b.qps {
        if !(q.lower > 0.0 && q.upper > q.lower && q.upper.is_finite()) {
            bail!(
                "benchmark.qps: need 0 < lower < upper (got lower {} upper {})",
                q.lower,
                q.upper
            );
        }
        if !(q.tolerance > 0.0 && q.tolerance < 1.0) {
            bail!("benchmark.qps.tolerance: {} must be in (0, 1)", q.tolerance);
        }
        if q.max_rounds == 0 || q.max_rounds > 5 {
            bail!("benchmark.qps.max_rounds: {} must be 1..=5", q.max_rounds);
        }
    }
    if let Some(r) = b.sla.min_success_rate
        && !(0.0..=1.0).contains(&r)
    {
        bail!("benchmark.sla.min_success_rate: {r} must be in [0, 1]");
    }
    for (k, v) in [
        ("max_p50_ttft_ms", b.sla.max_p50_ttft_ms),
        ("max_p50_tpot_ms", b.sla.max_p50_tpot_ms),
    ] {
        if let Some(v) = v
            && (v.is_nan() || v <= 0.0)
        {
            bail!("benchmark.sla.{k}: {v} must be > 0");
        }
    }
    if b.repeats == 0 {
        bail!("benchmark.repeats: must be at least 1");
    }
    let s = &cfg.search;
    if !(1..=3).contains(&s.tier) {
        bail!("search.tier: {} must be 1, 2 or 3", s.tier);
    }
    if s.max_candidates_per_framework == 0 {
        bail!("search.max_candidates_per_framework: must be at least 1 (the baseline)");
    }
    if cfg.launch.startup_timeout_s.is_nan() || cfg.launch.startup_timeout_s <= 0.0 {
        bail!("launch.startup_timeout_s: must be > 0");
    }
    if cfg.frameworks.is_empty() {
        bail!("frameworks: at least one framework is needed");
    }
    for (name, fw) in cfg.frameworks.iter() {
        if let Some(cmd) = &fw.server_command
            && cmd.is_empty()
        {
            bail!("frameworks.{name}.server_command: must not be empty");
        }
        for (flag, values) in fw.search_space.iter() {
            if values.is_empty() {
                bail!("frameworks.{name}.search_space.{flag}: give at least one value");
            }
        }
        if let Some(l) = &fw.launcher
            && !l.iter().any(|a| a == "{argv}" || a.contains("{command}"))
        {
            bail!("frameworks.{name}.launcher: must contain `{{argv}}` or `{{command}}`");
        }
    }
    if !cfg.frameworks.iter().any(|(_, f)| f.enabled) {
        bail!("frameworks: no framework is enabled");
    }
    Ok(())
}

/// Stable 64-bit FNV-1a hash (hex), for config identity across runs and Rust versions.
pub(crate) fn stable_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
