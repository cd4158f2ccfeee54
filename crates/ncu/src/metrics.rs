//! From one profiled launch to the numbers the digest compares.
//!
//! Each headline quantity names its raw-page metric ID and its details-page
//! (section, label); the raw page wins when both exist (it has more digits).
//! [`cross_check`] compares the two where both exist, so a parser or unit bug
//! shows up as a warning instead of a silently wrong digest.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::csvpage::{LaunchData, RuleRow};

const SOL: &str = "GPU Speed Of Light Throughput";
const MWA: &str = "Memory Workload Analysis";
const OCC: &str = "Occupancy";
const LS: &str = "Launch Statistics";
const SCHED: &str = "Scheduler Statistics";
const WSS: &str = "Warp State Statistics";

/// One headline quantity: key in the facts map, raw metric IDs (first found wins),
/// details (section, label).
pub(crate) struct MetricDef {
    pub key: &'static str,
    pub raw: &'static [&'static str],
    pub details: Option<(&'static str, &'static str)>,
}

/// The quantities read directly from the report.
pub(crate) const METRICS: &[MetricDef] = &[
    MetricDef {
        key: "duration_ns",
        raw: &["gpu__time_duration.sum"],
        details: Some((SOL, "Duration")),
    },
    MetricDef {
        key: "sm_pct",
        raw: &["sm__throughput.avg.pct_of_peak_sustained_elapsed"],
        details: Some((SOL, "Compute (SM) Throughput")),
    },
    MetricDef {
        key: "mem_pct",
        raw: &["gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"],
        details: Some((SOL, "Memory Throughput")),
    },
    MetricDef {
        key: "dram_pct",
        raw: &[
            "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
            "dram__throughput.avg.pct_of_peak_sustained_elapsed",
        ],
        details: Some((SOL, "DRAM Throughput")),
    },
    MetricDef {
        key: "l1tex_pct",
        raw: &["l1tex__throughput.avg.pct_of_peak_sustained_active"],
        details: Some((SOL, "L1/TEX Cache Throughput")),
    },
    MetricDef {
        key: "l2_pct",
        raw: &["lts__throughput.avg.pct_of_peak_sustained_elapsed"],
        details: Some((SOL, "L2 Cache Throughput")),
    },
    MetricDef {
        key: "dram_bytes_per_s",
        raw: &["dram__bytes.sum.per_second"],
        details: Some((MWA, "Memory Throughput")),
    },
    MetricDef {
        key: "dram_bytes_total",
        raw: &["dram__bytes.sum"],
        details: None,
    },
    MetricDef {
        key: "dram_bytes_read",
        raw: &["dram__bytes_read.sum"],
        details: None,
    },
    MetricDef {
        key: "dram_bytes_write",
        raw: &["dram__bytes_write.sum"],
        details: None,
    },
    MetricDef {
        key: "dram_peak_bytes_per_cycle",
        raw: &["dram__bytes.sum.peak_sustained"],
        details: None,
    },
    MetricDef {
        key: "dram_hz",
        raw: &["dram__cycles_elapsed.avg.per_second"],
        details: Some((SOL, "DRAM Frequency")),
    },
    MetricDef {
        key: "sm_hz",
        raw: &["gpc__cycles_elapsed.avg.per_second"],
        details: Some((SOL, "SM Frequency")),
    },
    MetricDef {
        key: "achieved_occupancy_pct",
        raw: &["sm__warps_active.avg.pct_of_peak_sustained_active"],
        details: Some((OCC, "Achieved Occupancy")),
    },
    MetricDef {
        key: "theoretical_occupancy_pct",
        raw: &["sm__maximum_warps_per_active_cycle_pct"],
        details: Some((OCC, "Theoretical Occupancy")),
    },
    MetricDef {
        key: "waves_per_sm",
        raw: &["launch__waves_per_multiprocessor"],
        details: Some((LS, "Waves Per SM")),
    },
    MetricDef {
        key: "l1_hit_pct",
        raw: &["l1tex__t_sector_hit_rate.pct"],
        details: Some((MWA, "L1/TEX Hit Rate")),
    },
    MetricDef {
        key: "l2_hit_pct",
        raw: &["lts__t_sector_hit_rate.pct"],
        details: Some((MWA, "L2 Hit Rate")),
    },
    MetricDef {
        key: "issue_active_pct",
        raw: &["smsp__issue_active.avg.pct_of_peak_sustained_active"],
        details: Some((SCHED, "One or More Eligible")),
    },
    MetricDef {
        key: "eligible_warps",
        raw: &["smsp__warps_eligible.avg.per_cycle_active"],
        details: Some((SCHED, "Eligible Warps Per Scheduler")),
    },
    MetricDef {
        key: "active_warps",
        raw: &["smsp__warps_active.avg.per_cycle_active"],
        details: Some((SCHED, "Active Warps Per Scheduler")),
    },
    MetricDef {
        key: "cpi",
        raw: &["smsp__average_warp_latency_per_inst_issued.ratio"],
        details: Some((WSS, "Warp Cycles Per Issued Instruction")),
    },
    MetricDef {
        key: "threads_per_warp",
        raw: &["smsp__thread_inst_executed_per_inst_executed.ratio"],
        details: Some((WSS, "Avg. Active Threads Per Warp")),
    },
    MetricDef {
        key: "tensor_pipe_pct",
        raw: &["sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_elapsed"],
        details: None,
    },
    MetricDef {
        key: "gmma_pipe_pct",
        raw: &["sm__inst_executed_pipe_tensor_op_gmma.avg.pct_of_peak_sustained_active"],
        details: None,
    },
    MetricDef {
        key: "fma_pipe_pct",
        raw: &["sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active"],
        details: None,
    },
    MetricDef {
        key: "registers_per_thread",
        raw: &["launch__registers_per_thread"],
        details: Some((LS, "Registers Per Thread")),
    },
    MetricDef {
        key: "block_size",
        raw: &["launch__block_size"],
        details: Some((LS, "Block Size")),
    },
    MetricDef {
        key: "grid_blocks",
        raw: &["launch__grid_size"],
        details: Some((LS, "Grid Size")),
    },
    MetricDef {
        key: "smem_static_bytes",
        raw: &["launch__shared_mem_per_block_static"],
        details: Some((LS, "Static Shared Memory Per Block")),
    },
    MetricDef {
        key: "smem_dynamic_bytes",
        raw: &["launch__shared_mem_per_block_dynamic"],
        details: Some((LS, "Dynamic Shared Memory Per Block")),
    },
    MetricDef {
        key: "sm_count",
        raw: &["launch__sm_count", "device__attribute_multiprocessor_count"],
        details: Some((LS, "# SMs")),
    },
    MetricDef {
        key: "max_warps_per_sm",
        raw: &["device__attribute_max_warps_per_multiprocessor"],
        details: None,
    },
    MetricDef {
        key: "l2_cache_bytes",
        raw: &["device__attribute_l2_cache_size"],
        details: None,
    },
    MetricDef {
        key: "spill_requests",
        raw: &["derived__local_spilling_requests"],
        details: Some((MWA, "Local Memory Spilling Requests")),
    },
    MetricDef {
        key: "spill_overhead_pct",
        raw: &["derived__local_spilling_requests_pct"],
        details: Some((MWA, "Local Memory Spilling Request Overhead")),
    },
    MetricDef {
        key: "local_ld_inst",
        raw: &["smsp__sass_inst_executed_op_local_ld.sum"],
        details: None,
    },
    MetricDef {
        key: "local_st_inst",
        raw: &["smsp__sass_inst_executed_op_local_st.sum"],
        details: None,
    },
    MetricDef {
        key: "ld_bytes_per_sector",
        raw: &["smsp__sass_average_data_bytes_per_sector_mem_global_op_ld.ratio"],
        details: None,
    },
    MetricDef {
        key: "st_bytes_per_sector",
        raw: &["smsp__sass_average_data_bytes_per_sector_mem_global_op_st.ratio"],
        details: None,
    },
    MetricDef {
        key: "ld_sectors",
        raw: &["l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum"],
        details: None,
    },
    MetricDef {
        key: "st_sectors",
        raw: &["l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum"],
        details: None,
    },
    MetricDef {
        key: "ld_requests",
        raw: &["l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum"],
        details: None,
    },
    MetricDef {
        key: "st_requests",
        raw: &["l1tex__t_requests_pipe_lsu_mem_global_op_st.sum"],
        details: None,
    },
    MetricDef {
        key: "tma_ld_inst",
        raw: &[
            "smsp__sass_inst_executed_op_tma_ld.sum",
            "smsp__inst_executed_op_tma_ld.sum",
        ],
        details: None,
    },
    MetricDef {
        key: "smem_conflicts_ld",
        raw: &["l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum"],
        details: None,
    },
    MetricDef {
        key: "smem_conflicts_st",
        raw: &["l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum"],
        details: None,
    },
    MetricDef {
        key: "smem_wavefronts_ld",
        raw: &["l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum"],
        details: None,
    },
    MetricDef {
        key: "smem_wavefronts_st",
        raw: &["l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum"],
        details: None,
    },
    MetricDef {
        key: "limit_registers",
        raw: &["launch__occupancy_limit_registers"],
        details: Some((OCC, "Block Limit Registers")),
    },
    MetricDef {
        key: "limit_shared_mem",
        raw: &["launch__occupancy_limit_shared_mem"],
        details: Some((OCC, "Block Limit Shared Mem")),
    },
    MetricDef {
        key: "limit_warps",
        raw: &["launch__occupancy_limit_warps"],
        details: Some((OCC, "Block Limit Warps")),
    },
    MetricDef {
        key: "limit_blocks",
        raw: &["launch__occupancy_limit_blocks"],
        details: Some((OCC, "Block Limit SM")),
    },
    MetricDef {
        key: "limit_barriers",
        raw: &["launch__occupancy_limit_barriers"],
        details: Some((OCC, "Block Limit Barriers")),
    },
];

/// Aggregate stall reasons (`smsp__average_warps_issue_stalled_<r>_per_issue_active.ratio`).
pub(crate) const STALL_REASONS: &[&str] = &[
    "long_scoreboard",
    "short_scoreboard",
    "wait",
    "barrier",
    "membar",
    "math_pipe_throttle",
    "mio_throttle",
    "lg_throttle",
    "tex_throttle",
    "not_selected",
    "selected",
    "no_instruction",
    "dispatch_stall",
    "drain",
    "branch_resolving",
    "sleeping",
    "misc",
    "imc_miss",
    "gmma",
];

/// One stall reason: cycles per issued instruction and its share of the CPI.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Stall {
    pub reason: String,
    /// Cycles per issued instruction spent in this stall.
    pub cycles: f64,
    /// Share of the warp cycles per issued instruction (0..1).
    pub share: f64,
}

/// The numbers of one selected launch, as the digest uses them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KernelSummary {
    /// Launch ID (ncu's result index) of the selected launch.
    pub launch_id: u64,
    /// IDs of every launch that matched the kernel regex, and their durations (ns).
    pub matched_launches: Vec<(u64, Option<f64>)>,
    pub kernel_name: String,
    /// `<Process ID>@<Host Name>` of the profiled process, when the page has them: with
    /// the launch ID it identifies one measurement.
    pub process: Option<String>,
    pub block: Option<String>,
    pub grid: Option<String>,
    pub device_name: Option<String>,
    pub compute_capability: Option<String>,
    /// Named quantities (see `METRICS` keys plus derived ones), in base units.
    pub facts: BTreeMap<String, f64>,
    /// Stall reasons, largest first (`selected` excluded: it is issuing, not stalling).
    pub stalls: Vec<Stall>,
    /// NCU rule-engine results.
    pub rules: Vec<RuleRow>,
    /// `file:line` where this launch was read.
    pub origin: Vec<String>,
    /// Quantities read but not applicable (a ratio of zero events, e.g. bytes per sector
    /// of a kernel that issues no global loads): dropped from the facts, with why.
    pub not_applicable: Vec<String>,
}

/// Ratios that mean nothing when their denominator counted no events: (ratio fact,
/// denominator fact, what the zero means). A ratio of zero is also dropped: a real
/// access uses at least one byte of a sector.
const RATIO_GUARDS: &[(&str, &str, &str)] = &[
    (
        "ld_bytes_per_sector",
        "ld_sectors",
        "no global load goes through L1 (0 sectors, 0 requests): the kernel loads by other paths (TMA, cp.async.bulk) or not at all",
    ),
    (
        "st_bytes_per_sector",
        "st_sectors",
        "no global store goes through L1 (0 sectors): the kernel stores by other paths (TMA) or not at all",
    ),
];

/// Drop degenerate ratios from `facts`; return one line per dropped ratio.
fn drop_degenerate(f: &mut BTreeMap<String, f64>) -> Vec<String> {
    let mut out = Vec::new();
    for (ratio, denom, why) in RATIO_GUARDS {
        let Some(v) = f.get(*ratio).copied() else {
            continue;
        };
        let d = f.get(*denom).copied();
        if d == Some(0.0) || v == 0.0 {
            f.remove(*ratio);
            out.push(format!(
                "{ratio}: not applicable, 0 of 0 ({}): {why}",
                match d {
                    Some(d) => format!("{denom} = {}", crate::rules::fmt_num(d)),
                    None => format!("{ratio} = 0 with {denom} not in the report"),
                }
            ));
        }
    }
    out
}

/// Look a definition up in a launch: raw first, then details.
pub(crate) fn lookup(l: &LaunchData, def: &MetricDef) -> Option<f64> {
    def.raw
        .iter()
        .find_map(|id| l.raw.get(*id).and_then(|m| m.value))
        .or_else(|| {
            def.details.and_then(|(s, n)| {
                l.details
                    .get(&(s.to_string(), n.to_string()))
                    .and_then(|m| m.value)
            })
        })
}

/// The duration of a launch in ns, for launch selection.
pub(crate) fn duration_ns(l: &LaunchData) -> Option<f64> {
    lookup(l, &METRICS[0])
}

/// Build the summary of one launch.
pub fn summarize(l: &LaunchData, matched: Vec<(u64, Option<f64>)>) -> KernelSummary {
    let mut facts = BTreeMap::new();
    for def in METRICS {
        if let Some(v) = lookup(l, def) {
            facts.insert(def.key.to_string(), v);
        }
    }
    let not_applicable = drop_degenerate(&mut facts);
    derive_facts(&mut facts);
    let cpi = facts.get("cpi").copied().filter(|c| *c > 0.0);
    let mut stalls = Vec::new();
    for r in STALL_REASONS {
        let id = format!("smsp__average_warps_issue_stalled_{r}_per_issue_active.ratio");
        // A stall share needs a CPI: without one the reason is not measured, not 0.
        if let (Some(cycles), Some(c)) = (l.raw.get(&id).and_then(|m| m.value), cpi) {
            let share = cycles / c;
            facts.insert(format!("stall_{r}_share"), share);
            facts.insert(format!("stall_{r}_pct"), share * 100.0);
            facts.insert(format!("stall_{r}_cycles"), cycles);
            if *r != "selected" {
                stalls.push(Stall {
                    reason: r.to_string(),
                    cycles,
                    share,
                });
            }
        }
    }
    stalls.sort_by(|a, b| b.cycles.total_cmp(&a.cycles).then(a.reason.cmp(&b.reason)));
    let device_name = l
        .raw
        .get("device__attribute_display_name")
        .map(|m| m.text.clone())
        .filter(|s| !s.is_empty());
    let cc = l
        .ident
        .get("CC")
        .cloned()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let major = l
                .raw
                .get("device__attribute_compute_capability_major")?
                .value?;
            let minor = l
                .raw
                .get("device__attribute_compute_capability_minor")?
                .value?;
            Some(format!("{major}.{minor}"))
        });
    KernelSummary {
        launch_id: l.id,
        matched_launches: matched,
        kernel_name: l.kernel_name.clone(),
        process: l
            .ident
            .get("Process ID")
            .filter(|p| !p.is_empty())
            .map(|p| {
                format!(
                    "{p}@{}",
                    l.ident.get("Host Name").map(String::as_str).unwrap_or("")
                )
            }),
        block: l.ident.get("Block Size").cloned(),
        grid: l.ident.get("Grid Size").cloned(),
        device_name,
        compute_capability: cc,
        facts,
        stalls,
        rules: l.rules.clone(),
        origin: l.origin.clone(),
        not_applicable,
    }
}

fn derive_facts(f: &mut BTreeMap<String, f64>) {
    let get = |f: &BTreeMap<String, f64>, k: &str| f.get(k).copied();
    if let Some(d) = get(f, "duration_ns") {
        f.insert("duration_us".into(), d / 1e3);
    }
    if get(f, "dram_bytes_total").is_none()
        && let (Some(r), Some(w)) = (get(f, "dram_bytes_read"), get(f, "dram_bytes_write"))
    {
        f.insert("dram_bytes_total".into(), r + w);
    }
    if let (Some(s), Some(m)) = (get(f, "sm_pct"), get(f, "mem_pct")) {
        f.insert("max_sol_pct".into(), s.max(m));
        f.insert("min_sol_pct".into(), s.min(m));
        f.insert("mem_minus_sm".into(), m - s);
        f.insert("sm_minus_mem".into(), s - m);
    }
    if let (Some(t), Some(a)) = (
        get(f, "theoretical_occupancy_pct"),
        get(f, "achieved_occupancy_pct"),
    ) {
        f.insert("occupancy_gap_pct".into(), t - a);
    }
    if let Some(i) = get(f, "issue_active_pct") {
        f.insert("issue_active".into(), i / 100.0);
    }
    if let Some(b) = get(f, "block_size") {
        f.insert("warps_per_block".into(), (b / 32.0).ceil());
    }
    let smem =
        get(f, "smem_static_bytes").unwrap_or(0.0) + get(f, "smem_dynamic_bytes").unwrap_or(0.0);
    if get(f, "smem_static_bytes").is_some() || get(f, "smem_dynamic_bytes").is_some() {
        f.insert("smem_per_block_bytes".into(), smem);
    }
    let conflicts =
        get(f, "smem_conflicts_ld").unwrap_or(0.0) + get(f, "smem_conflicts_st").unwrap_or(0.0);
    let wavefronts =
        get(f, "smem_wavefronts_ld").unwrap_or(0.0) + get(f, "smem_wavefronts_st").unwrap_or(0.0);
    // No shared-memory wavefronts: conflicts are 0 of 0, not "0%".
    if wavefronts > 0.0 {
        f.insert("smem_conflict_pct".into(), conflicts / wavefronts * 100.0);
    }
    if get(f, "ld_sectors").is_some() || get(f, "st_sectors").is_some() {
        f.insert(
            "lsu_global_sectors".into(),
            get(f, "ld_sectors").unwrap_or(0.0) + get(f, "st_sectors").unwrap_or(0.0),
        );
    }
    if let (Some(g), Some(s)) = (get(f, "grid_blocks"), get(f, "sm_count")) {
        f.insert(
            "small_grid_est_pct".into(),
            if g < s { (s - g) / s * 100.0 } else { 0.0 },
        );
    }
    if let (Some(p), Some(hz)) = (get(f, "dram_peak_bytes_per_cycle"), get(f, "dram_hz")) {
        f.insert("ncu_dram_peak_bytes_per_s".into(), p * hz);
    }
    let local = get(f, "local_ld_inst").unwrap_or(0.0) + get(f, "local_st_inst").unwrap_or(0.0);
    if get(f, "local_ld_inst").is_some() || get(f, "local_st_inst").is_some() {
        f.insert("local_inst".into(), local);
    }
    // The tightest occupancy limiter, in blocks per SM.
    let limits = [
        "limit_registers",
        "limit_shared_mem",
        "limit_warps",
        "limit_blocks",
        "limit_barriers",
    ];
    if let Some(min) = limits
        .iter()
        .filter_map(|k| get(f, k))
        .min_by(|a, b| a.total_cmp(b))
    {
        f.insert("blocks_per_sm".into(), min);
        if let Some(w) = get(f, "warps_per_block") {
            f.insert("warps_per_sm_theoretical".into(), min * w);
        }
        // Warps per block needed to fill the SM at the block-count limit, as a power of two in [4, 32].
        if let (Some(maxw), Some(lb)) = (
            get(f, "max_warps_per_sm").or(Some(64.0)),
            get(f, "limit_blocks"),
        ) && lb > 0.0
        {
            let need = (maxw / lb).ceil().clamp(4.0, 32.0);
            f.insert(
                "target_warps_per_block".into(),
                2f64.powi(need.log2().ceil() as i32),
            );
        }
    }
}

/// The binding occupancy limiter(s), by name, e.g. "blocks per SM".
pub(crate) fn limiter_names(f: &BTreeMap<String, f64>) -> Vec<&'static str> {
    let named = [
        ("limit_registers", "registers"),
        ("limit_shared_mem", "shared memory"),
        ("limit_warps", "warps"),
        ("limit_blocks", "blocks per SM"),
        ("limit_barriers", "barriers"),
    ];
    let Some(min) = f.get("blocks_per_sm").copied() else {
        return Vec::new();
    };
    named
        .iter()
        .filter(|(k, _)| f.get(*k).copied() == Some(min))
        .map(|(_, n)| *n)
        .collect()
}

/// A disagreement between the details and the raw page of the same launch.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CrossCheck {
    pub key: String,
    pub details: f64,
    pub raw: f64,
    pub agrees: bool,
}

/// Compare every headline quantity present on both pages; agreement allows for the
/// rounding of the printed values (half a unit in the last printed place of each).
pub fn cross_check(l: &LaunchData) -> Vec<CrossCheck> {
    let mut out = Vec::new();
    for def in METRICS {
        let Some((s, n)) = def.details else { continue };
        let Some(d) = l.details.get(&(s.to_string(), n.to_string())) else {
            continue;
        };
        let Some(r) = def.raw.iter().find_map(|id| l.raw.get(*id)) else {
            continue;
        };
        let (Some(dv), Some(rv)) = (d.value, r.value) else {
            continue;
        };
        if d.base_unit != r.base_unit && !(d.base_unit.is_empty() || r.base_unit.is_empty()) {
            out.push(CrossCheck {
                key: def.key.into(),
                details: dv,
                raw: rv,
                agrees: false,
            });
            continue;
        }
        let tol = d.tolerance + r.tolerance + 1e-9 * dv.abs().max(rv.abs());
        out.push(CrossCheck {
            key: def.key.into(),
            details: dv,
            raw: rv,
            agrees: (dv - rv).abs() <= tol,
        });
    }
    out
}
