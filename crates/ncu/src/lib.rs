//! `ncu_digest`: Nsight Compute evidence for one kernel (a baseline alone, or a
//! baseline and a candidate side by side), ending in exactly one `Next edit:` line.
//!
//! Parts:
//! - [`request`]: the wire request and its typed form (`Source::Capture` / `Source::Import`,
//!   the candidate optional).
//! - [`csvpage`]: parsers for ncu's CSV pages (long `details`, wide `raw` with a
//!   units row); columns by header name, errors name file and line.
//! - [`units`]: number and unit normalisation (`us`/`usecond`, `Gbyte/s`, `n/a`, `1,234`).
//! - [`metrics`]: one launch → the headline quantities (raw page first, details
//!   page as fallback), stall shares, derived facts, degenerate ratios dropped,
//!   details-vs-raw cross-check.
//! - [`roofs`]: which hardware unit is saturated (the `roofs` of the rules file).
//! - [`library`]: closed-source library kernels, recognised by name (call-site edits only).
//! - [`rules`]: `references/ncu-rules.json` (thresholds, bound classes, findings,
//!   edit templates) and the deterministic procedure documented in
//!   `references/ncu-next-edit-rule.md`; [`decide`] applies its gates first.
//! - [`capture`]: ncu and harness child processes (own log files, `LC_ALL=C`, timeouts);
//!   [`acquire`] turns each side into CSV pages or a blocker.
//! - [`select`]: which matching launch each side digests.
//! - [`roofline`], [`eligibility`] (the ≥1% kernel share / >1% gap gate), [`digest`] (the markdown).
//! - [`run`]: the tool end to end → `kernel/ncu-digests/<version>/digest.{md,json}`.

#![warn(unreachable_pub)]

mod acquire;
mod capture;
mod csvpage;
mod decide;
mod digest;
mod eligibility;
mod library;
mod metrics;
mod report;
mod request;
mod roofline;
mod roofs;
mod rules;
mod run;
mod select;
mod units;

// The API: what the binary, the other crates, the tests and the examples use.
pub use csvpage::{LaunchData, PageKind, merge_pages, read_page};
pub use metrics::{cross_check, summarize};
pub use rules::{Context, add_rule_facts, choose, classify, load_rules};

use anyhow::Result;

use vllm_sota_core::{Tool, ToolContext};

pub use decide::pick_limiter;
pub use report::{HeadlineRow, NcuDigestReport, Roofline, SideReport};
pub use request::{
    CaptureSpec, HarnessResult, ImportSpec, MeasuredPeaks, Mode, NcuDigestRequest, ProblemSpec,
    SideFiles, Source, TimingSpec,
};

/// The `ncu_digest` tool.
pub struct NcuDigest;

impl Tool for NcuDigest {
    const NAME: &'static str = "ncu_digest";
    const DESCRIPTION: &'static str = "Nsight Compute evidence for one kernel edit: profiles (capture mode: runs the harness commands under `ncu --set full --clock-control none`) or imports (`.ncu-rep` or CSV pages) a baseline and a candidate (or a baseline alone: a single-report digest without delta; the same report on both sides is refused), selects the kernel by regex and launch, and writes `kernel/ncu-digests/<version>/digest.md` + `digest.json`: identity, a baseline/candidate/delta table (duration, SM/memory/DRAM % of peak, DRAM bandwidth, occupancy, waves, L1/L2 hit, bank conflicts, issue slots, tensor pipe), top warp stalls, NCU rule findings with estimated speedups, a roofline placement, a bound class (a unit at >= 80% of its peak is named as the roof: tensor pipe, shared memory, L1, L2, DRAM, and the edit then moves work off it), the harness's own timing and correctness (the harness decides; an ncu win alone is not success), the eligibility gate (kernel >= 1% of stage GPU time and gap > 1%), and exactly one `Next edit:` line chosen by the documented rule in references/ncu-next-edit-rule.md (closed-source library kernels such as cuBLAS/nvjet, cuDNN, CUTLASS builds and FlashAttention get call-site edits, never source-level advice). When ncu is missing or cannot read counters the digest records a Blocker and falls back to harness timing.";
    type Request = NcuDigestRequest;
    type Report = NcuDigestReport;

    fn run(request: Self::Request, ctx: &ToolContext) -> Result<Self::Report> {
        run::run_digest(request, ctx)
    }

    fn markdown(report: &Self::Report) -> String {
        let mut s = format!(
            "# ncu_digest {}\n\nDigest: {}\n\n{}\n\n",
            report.version,
            report.digest_md.display(),
            report.verdict
        );
        if let Some(b) = &report.blocker {
            s.push_str(&format!("Blocker: {b}\n\n"));
        }
        s.push_str(&format!("Eligibility: {}\n\n", report.eligibility.why));
        s.push_str(&report.next_edit);
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn request_and_report_schemas_are_objects_with_described_fields() {
        let req = serde_json::to_value(schemars::schema_for!(super::NcuDigestRequest)).unwrap();
        assert_eq!(req["type"], "object");
        let props = req["properties"].as_object().unwrap();
        for f in [
            "version",
            "kernel_regex",
            "capture",
            "import",
            "campaign_dir",
            "kernel_share_pct",
            "gap_pct",
        ] {
            assert!(props.contains_key(f), "missing {f}");
        }
        assert!(
            props["kernel_regex"]["description"]
                .as_str()
                .unwrap()
                .contains("regex")
        );
        assert_eq!(
            req["required"],
            serde_json::json!(["version", "kernel_regex"])
        );
        let rep = serde_json::to_value(schemars::schema_for!(super::NcuDigestReport)).unwrap();
        assert_eq!(rep["type"], "object");
        assert!(
            rep["properties"]["next_edit"]["description"]
                .as_str()
                .unwrap()
                .contains("Next edit:")
        );
    }
}
