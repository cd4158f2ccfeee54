//! Tests on the real ncu 2025.3.1 exports in `shared/fixtures/h200-ncu/`
//! (rms_base: two passes, 1 warp per row; rms_cand: one pass, 8 warps).
//! Expected numbers are the ones printed in those CSV files.

use std::path::{Path, PathBuf};

use vllm_sota_core::{Tool, ToolContext};
use vllm_sota_ncu::{
    LaunchData, NcuDigest, NcuDigestRequest, PageKind, cross_check, merge_pages, read_page,
    summarize,
};

fn fx(name: &str) -> PathBuf {
    vllm_sota_core::refs::fixtures_dir()
        .join("h200-ncu")
        .join(name)
}

fn launch(details: &str, raw: &str) -> LaunchData {
    let pages = vec![
        read_page(&fx(details)).unwrap(),
        read_page(&fx(raw)).unwrap(),
    ];
    let mut l = merge_pages(pages).unwrap();
    assert_eq!(l.len(), 1, "one launch per fixture report");
    l.remove(&0).unwrap()
}

fn detail(l: &LaunchData, sec: &str, name: &str) -> f64 {
    l.details[&(sec.to_string(), name.to_string())]
        .value
        .unwrap()
}

fn raw(l: &LaunchData, id: &str) -> f64 {
    l.raw[id].value.unwrap()
}

#[test]
fn both_kernels_parse_from_details_and_raw_with_matching_values() {
    let sol = "GPU Speed Of Light Throughput";
    for (details, raw_page, kernel, dur_ns, dram_pct, dram_raw, occ, occ_raw) in [
        (
            "rms_base_details_base.csv",
            "rms_base_raw.csv",
            "rms_base",
            46336.0,
            64.75,
            64.747877,
            42.97,
            42.966868,
        ),
        (
            "rms_cand_details_base.csv",
            "rms_cand_raw.csv",
            "rms_cand",
            31392.0,
            72.90,
            72.904398,
            89.95,
            89.954776,
        ),
    ] {
        let l = launch(details, raw_page);
        assert_eq!(l.kernel_name, kernel);
        assert_eq!(l.ident["CC"], "9.0");
        // details: "Duration","ns","46,336"; raw: gpu__time_duration.sum "us" 46.336000
        assert_eq!(detail(&l, sol, "Duration"), dur_ns);
        assert!((raw(&l, "gpu__time_duration.sum") - dur_ns).abs() < 1e-6);
        assert_eq!(detail(&l, sol, "DRAM Throughput"), dram_pct);
        assert_eq!(
            raw(&l, "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed"),
            dram_raw
        );
        assert_eq!(detail(&l, "Occupancy", "Achieved Occupancy"), occ);
        assert_eq!(
            raw(&l, "sm__warps_active.avg.pct_of_peak_sustained_active"),
            occ_raw
        );
        assert_eq!(l.raw["device__attribute_display_name"].text, "NVIDIA H200");
        // Every quantity present on both pages agrees within print rounding.
        let checks = cross_check(&l);
        assert!(checks.len() >= 25, "{} cross-checked", checks.len());
        let bad: Vec<_> = checks.iter().filter(|c| !c.agrees).collect();
        assert!(bad.is_empty(), "{bad:?}");
    }
}

#[test]
fn auto_scaled_details_page_matches_the_base_unit_page() {
    // rms_base_details.csv prints Duration "us" "46.34" and DRAM Frequency "Ghz" "3.20".
    let auto = read_page(&fx("rms_base_details.csv")).unwrap();
    let base = read_page(&fx("rms_base_details_base.csv")).unwrap();
    assert_eq!(auto.kind, PageKind::Details);
    let (a, b) = (&auto.launches[&0], &base.launches[&0]);
    let key = |s: &str, n: &str| (s.to_string(), n.to_string());
    let d_auto = &a.details[&key("GPU Speed Of Light Throughput", "Duration")];
    assert_eq!((d_auto.unit.as_str(), d_auto.value), ("us", Some(46340.0)));
    assert!((d_auto.value.unwrap() - 46336.0).abs() <= d_auto.tolerance);
    let f = a.details[&key("GPU Speed Of Light Throughput", "DRAM Frequency")]
        .value
        .unwrap();
    assert!(
        (f - 3.20e9).abs() < 1.0
            && (f - b.details[&key("GPU Speed Of Light Throughput", "DRAM Frequency")]
                .value
                .unwrap())
            .abs()
                < 5e6
    );
    assert_eq!(a.rules.len(), b.rules.len());
    let lc = a
        .rules
        .iter()
        .find(|r| r.rule == "LaunchConfiguration")
        .unwrap();
    assert_eq!(
        (lc.speedup_type.as_str(), lc.speedup_pct),
        ("global", Some(50.0))
    );
    let raw = read_page(&fx("rms_cand_raw.csv")).unwrap();
    assert_eq!(raw.kind, PageKind::Raw);
    // raw page units row: "Tbyte/s" 3.505166 → bytes/s; details: 3,505,166,156,982.67 byte/s.
    assert!(
        (raw.launches[&0].raw["dram__bytes.sum.per_second"]
            .value
            .unwrap()
            - 3.505166e12)
            .abs()
            < 1e3
    );
    // "Kbyte/block" 1.056000 → 1056 byte/block.
    assert_eq!(
        raw.launches[&0].raw["launch__shared_mem_per_block"].value,
        Some(1056.0)
    );
}

fn import_request(out: &Path) -> serde_json::Value {
    serde_json::json!({
        "version": "rms-onepass",
        "kernel_regex": "^rms_",
        "out_dir": out,
        "import": {
            "baseline": {"details_csv": fx("rms_base_details_base.csv"), "raw_csv": fx("rms_base_raw.csv")},
            "candidate": {"details_csv": fx("rms_cand_details_base.csv"), "raw_csv": fx("rms_cand_raw.csv")}
        },
        // From rms_base.log / rms_cand.log (triton do_bench, outside ncu).
        "baseline_harness": {"time_us": 54.349, "correct": true, "note": "max abs err 0.015625"},
        "candidate_harness": {"time_us": 38.570, "correct": true, "note": "max abs err 0.03125"},
        "kernel_share_pct": 2.0,
        "gap_pct": 3.0
    })
}

fn run(v: serde_json::Value) -> vllm_sota_ncu::NcuDigestReport {
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    NcuDigest::run(req, &ToolContext::new()).unwrap()
}

const PINNED_NEXT_EDIT: &str = "Next edit: keep more bytes in flight in rms_cand: have each program handle 2+ rows (or tiles) in a tl.range loop with num_stages=2-3 so the next loads are issued before the current reduction, and issue every independent load (e.g. the weight vector) before the first reduction — because long-scoreboard stalls take 60.8% of the 35.9 cycles between issues while DRAM is at 72.9% of peak (ncu CPIStall, est. +27.1%).";

#[test]
fn digest_of_the_fixture_pair_classifies_reports_and_pins_one_next_edit() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(import_request(dir.path()));
    let b = r.baseline.as_ref().unwrap();
    let c = r.candidate.as_ref().unwrap();
    assert_eq!(
        (b.bound_class.class.as_str(), c.bound_class.class.as_str()),
        ("memory", "memory")
    );
    // Deltas agree with the CSVs: 46.336 → 31.392 us, DRAM 64.747877 → 72.904398 %, occupancy 42.966868 → 89.954776 %.
    let row = |label: &str| {
        r.headline
            .iter()
            .find(|h| h.label == label)
            .unwrap()
            .clone()
    };
    let d = row("Duration");
    assert_eq!((d.baseline, d.candidate), (Some(46.336), Some(31.392)));
    assert!((d.delta_pct.unwrap() - (31.392 - 46.336) / 46.336 * 100.0).abs() < 1e-9);
    let dram = row("DRAM throughput");
    assert_eq!(
        (dram.baseline, dram.candidate),
        (Some(64.747877), Some(72.904398))
    );
    let occ = row("Achieved occupancy");
    assert_eq!(
        (occ.baseline, occ.candidate),
        (Some(42.966868), Some(89.954776))
    );
    let bytes = row("DRAM bytes (read + write)");
    assert!((bytes.baseline.unwrap() - (98.307840 + 45.981952)).abs() < 1e-9);
    // The candidate's shorter duration and the harness speedup are reported.
    assert!(
        r.verdict
            .contains("ncu duration: 46.3 → 31.4 us (-32.3%, candidate faster"),
        "{}",
        r.verdict
    );
    assert!(
        r.verdict
            .contains("Harness time: 54.3 → 38.6 us (-29.0%, candidate faster, 1.41x)"),
        "{}",
        r.verdict
    );
    // Exactly one next edit, chosen by the documented rule: memory class → eligible findings
    // {memory_bytes (no estimate), long_scoreboard (CPIStall 27.1)}; MemoryL2Compression (29.92) is not a kernel edit.
    assert_eq!(r.chosen_by, "finding:long_scoreboard");
    assert_eq!(r.next_edit, PINNED_NEXT_EDIT);
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert_eq!(md.matches("Next edit:").count(), 1, "{md}");
    assert_eq!(
        md.lines().filter(|l| l.starts_with("Next edit:")).count(),
        1
    );
    assert!(md.trim_end().ends_with(PINNED_NEXT_EDIT));
    assert!(md.contains("| candidate | **memory** |") && md.contains("| baseline | **memory** |"));
    assert!(
        md.contains("| Duration | us | 46.3 | 31.4 | -32.3% |"),
        "{md}"
    );
    assert!(md.contains("MemoryL2Compression (OPT, est. global 29.9%"));
    assert!(md.contains("gate met: share 2.00% >= 1% and gap 3.00% > 1%"));
    assert_eq!(r.eligibility.status, "met");
    // digest.json carries every fact.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&r.digest_json).unwrap()).unwrap();
    assert_eq!(json["candidate_facts"]["grid_blocks"], 8192.0);
    assert_eq!(json["next_edit"], PINNED_NEXT_EDIT);
    // Stall table: long_scoreboard 22.889393 of 25.162521 cycles (91.0%) in the baseline.
    assert_eq!(b.top_stalls[0].reason, "long_scoreboard");
    assert!((b.top_stalls[0].share - 22.889393 / 25.162521).abs() < 1e-12);
}

#[test]
fn the_edit_does_not_depend_on_harness_timing_when_it_is_absent_or_on_the_details_unit_style() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = import_request(dir.path());
    v.as_object_mut().unwrap().remove("baseline_harness");
    v.as_object_mut().unwrap().remove("candidate_harness");
    v["import"]["baseline"]["details_csv"] = serde_json::json!(fx("rms_base_details.csv"));
    v["import"]["candidate"]["details_csv"] = serde_json::json!(fx("rms_cand_details.csv"));
    let r = run(v);
    assert_eq!(r.next_edit, PINNED_NEXT_EDIT);
    assert!(
        r.verdict.starts_with("Harness time: not given"),
        "{}",
        r.verdict
    );
    // Details-only import still yields class and rules; stalls need the raw page.
    let dir2 = tempfile::tempdir().unwrap();
    let mut v = import_request(dir2.path());
    v["import"]["baseline"] = serde_json::json!({"details_csv": fx("rms_base_details_base.csv")});
    v["import"]["candidate"] = serde_json::json!({"details_csv": fx("rms_cand_details_base.csv")});
    let r = run(v);
    assert_eq!(r.candidate.as_ref().unwrap().bound_class.class, "memory");
    assert!(r.candidate.as_ref().unwrap().top_stalls.is_empty());
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert_eq!(md.matches("Next edit:").count(), 1);
    assert!(md.contains("n/a (not collected)"));
}

#[test]
fn gates_come_before_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = import_request(dir.path());
    v["candidate_harness"]["correct"] = serde_json::json!(false);
    let r = run(v);
    assert_eq!(r.chosen_by, "gate:correctness");
    assert!(
        r.next_edit
            .starts_with("Next edit: fix rms_cand's correctness")
    );
    let mut v = import_request(dir.path());
    v["candidate_harness"]["time_us"] = serde_json::json!(60.0);
    let r = run(v);
    assert_eq!(r.chosen_by, "gate:regression");
    assert!(
        r.next_edit
            .contains("harness says it is slower: 54.3 → 60 us (+10.4%)"),
        "{}",
        r.next_edit
    );
    assert!(r.verdict.contains("candidate SLOWER"));
    let mut v = import_request(dir.path());
    v["candidate_harness"]["time_us"] = serde_json::json!(55.0); // +1.2%: inside the noise band
    let r = run(v);
    assert_eq!(r.chosen_by, "finding:long_scoreboard");
    assert!(
        r.verdict.contains("within the ±2% noise band"),
        "{}",
        r.verdict
    );
    let mut v = import_request(dir.path());
    v["kernel_share_pct"] = serde_json::json!(0.5);
    let r = run(v);
    assert_eq!(r.eligibility.status, "not_met");
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert!(
        md.contains("gate not met: kernel share 0.50% of stage GPU time is below 1%"),
        "{md}"
    );
}

#[test]
fn ncu_rep_without_ncu_is_a_blocker_with_harness_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = import_request(dir.path());
    v["import"]["baseline"] = serde_json::json!({"ncu_rep": fx("rms_base.ncu-rep")});
    v["import"]["candidate"] = serde_json::json!({"ncu_rep": fx("rms_cand.ncu-rep")});
    v["ncu_path"] = serde_json::json!("/nonexistent/ncu");
    let r = run(v);
    assert_eq!(r.chosen_by, "gate:blocker");
    assert!(
        r.blocker
            .as_ref()
            .unwrap()
            .contains("cannot be exported: pass its CSV pages")
    );
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert!(md.contains("## Blocker"));
    assert!(md.contains("Harness time: 54.3 → 38.6 us"));
    assert_eq!(md.matches("Next edit:").count(), 1);
}

#[cfg(unix)]
fn fake_ncu(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("ncu");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Capture mode end to end with a stand-in `ncu` that writes a report file and
/// exports the fixture CSVs: checks the commands, the artifacts and the harness timing.
#[cfg(unix)]
#[test]
fn capture_mode_runs_ncu_exports_pages_and_times_the_harness() {
    let dir = tempfile::tempdir().unwrap();
    let fxdir = vllm_sota_core::refs::fixtures_dir().join("h200-ncu");
    let script = format!(
        r#"
case "$*" in
  *--import*base*details*) cat "{f}/rms_base_details_base.csv" ;;
  *--import*base*raw*) cat "{f}/rms_base_raw.csv" ;;
  *--import*cand*details*) cat "{f}/rms_cand_details_base.csv" ;;
  *--import*cand*raw*) cat "{f}/rms_cand_raw.csv" ;;
  *)
    while [ $# -gt 0 ]; do if [ "$1" = "-o" ]; then shift; out="$1"; fi; shift; done
    case "$out" in *baseline) cp "{f}/rms_base.ncu-rep" "$out.ncu-rep" ;; *) cp "{f}/rms_cand.ncu-rep" "$out.ncu-rep" ;; esac
    echo "==PROF== Report: $out.ncu-rep" ;;
esac"#,
        f = fxdir.display()
    );
    let ncu = fake_ncu(dir.path(), &script);
    let out = dir.path().join("out");
    let v = serde_json::json!({
        "version": "cap-1", "kernel_regex": "^rms_", "out_dir": out, "ncu_path": ncu,
        "capture": {
            "baseline_argv": ["sh", "-c", "echo 'base max abs err 0.015625'; echo 'base ms 0.0543'"],
            "candidate_argv": ["sh", "-c", "echo 'cand max abs err 0.03125'; echo 'cand ms 0.0386'"],
            "count": 1,
            "timing": {"time_regex": "ms ([0-9.eE+-]+)", "time_unit": "ms", "error_regex": "max abs err ([0-9.eE+-]+)", "max_error": 0.05}
        }
    });
    let r = run(v);
    assert_eq!(r.mode, vllm_sota_ncu::Mode::Capture);
    assert!(r.blocker.is_none(), "{:?}", r.blocker);
    assert_eq!(r.next_edit, PINNED_NEXT_EDIT);
    assert_eq!(r.baseline_harness.as_ref().unwrap().time_us, Some(54.3));
    assert_eq!(r.candidate_harness.as_ref().unwrap().correct, Some(true));
    assert!(
        r.commands[0].contains(
            "--set full --clock-control none --target-processes all -k 'regex:^rms_' -c 1 -f -o"
        ),
        "{}",
        r.commands[0]
    );
    assert!(
        r.commands
            .iter()
            .any(|c| c.contains("--import") && c.contains("--page raw --print-units base"))
    );
    assert!(out.join("baseline.ncu-rep").is_file() && out.join("candidate_details.csv").is_file());
    assert!(out.join("digest.md").is_file() && out.join("digest.json").is_file());
}

#[cfg(unix)]
#[test]
fn counters_unavailable_is_a_blocker_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ncu = fake_ncu(
        dir.path(),
        "echo '==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance Counters on the target device 0.'; exit 1",
    );
    let v = serde_json::json!({
        "version": "perm", "kernel_regex": "rms", "out_dir": dir.path().join("out"), "ncu_path": ncu,
        "capture": {"baseline_argv": ["sh", "-c", "echo ms 0.05"], "candidate_argv": ["sh", "-c", "echo ms 0.04"],
                    "timing": {"time_regex": "ms ([0-9.]+)", "time_unit": "ms"}}
    });
    let r = run(v);
    assert_eq!(r.chosen_by, "gate:blocker");
    assert!(
        r.blocker.as_ref().unwrap().contains("ERR_NVGPUCTRPERM"),
        "{:?}",
        r.blocker
    );
    assert!(
        r.verdict
            .contains("Harness time: 50 → 40 us (-20%, candidate faster"),
        "{}",
        r.verdict
    );
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert!(md.contains("## Blocker") && md.matches("Next edit:").count() == 1);
}

#[test]
fn malformed_fixture_derived_csvs_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // Truncated: the candidate details page cut in the middle of line 40.
    let text = std::fs::read_to_string(fx("rms_cand_details_base.csv")).unwrap();
    let cut_at = text.match_indices('\n').nth(38).unwrap().0 + 30;
    let p = dir.path().join("cut_details.csv");
    std::fs::write(&p, &text[..cut_at]).unwrap();
    let err = read_page(&p).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:40: ", p.display())), "{err}");
    // Truncated raw page: header and units row only, the launch row cut.
    let raw = std::fs::read_to_string(fx("rms_base_raw.csv")).unwrap();
    let third = raw.match_indices('\n').nth(1).unwrap().0 + 1;
    let p = dir.path().join("cut_raw.csv");
    std::fs::write(
        &p,
        format!("{}\n", &raw[..third + 500].trim_end_matches(|c| c != ',')),
    )
    .unwrap();
    let err = read_page(&p).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3: row has", p.display())),
        "{err}"
    );
    // Wrong columns: the source page is not a details/raw page.
    let err = read_page(&fx("rms_base_source_sass.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rms_base_source_sass.csv: no ncu CSV header found"),
        "{err}"
    );
    // Empty.
    let p = dir.path().join("empty.csv");
    std::fs::write(&p, "").unwrap();
    let err = read_page(&p).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: empty file", p.display())),
        "{err}"
    );
    // Through the tool: the error names the file.
    let mut v = import_request(&dir.path().join("o"));
    v["import"]["candidate"]["details_csv"] = serde_json::json!(dir.path().join("cut_details.csv"));
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = NcuDigest::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut_details.csv:40"), "{err}");
}

#[test]
fn request_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = import_request(dir.path());
    v["kernel_regx"] = serde_json::json!("x");
    let err = serde_json::from_value::<NcuDigestRequest>(v)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `kernel_regx`"), "{err}");
    let mut v = import_request(dir.path());
    v["version"] = serde_json::json!("../up");
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    assert!(
        NcuDigest::run(req, &ToolContext::new())
            .unwrap_err()
            .to_string()
            .contains("version '../up'")
    );
    let mut v = import_request(dir.path());
    v["kernel_regex"] = serde_json::json!("^gemm");
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = NcuDigest::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "baseline: no launch matches kernel_regex '^gemm'; the report holds: rms_base"
        ),
        "{err}"
    );
    let mut v = import_request(dir.path());
    v.as_object_mut().unwrap().remove("out_dir");
    v["campaign_dir"] = serde_json::json!(dir.path());
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = format!(
        "{:#}",
        NcuDigest::run(req, &ToolContext::new()).unwrap_err()
    );
    assert!(err.contains("campaign"), "{err}");
}

#[test]
fn baseline_alone_gets_the_tail_edit_and_the_limiter_wording_follows_its_blocks() {
    // rms_base alone (single-report mode): class memory; NCU LaunchConfiguration says the
    // partial wave (1 full wave + 3968 blocks) may cost 50%: the largest eligible estimate.
    let dir = tempfile::tempdir().unwrap();
    let mut v = import_request(dir.path());
    v["import"].as_object_mut().unwrap().remove("candidate");
    v.as_object_mut().unwrap().remove("candidate_harness");
    let r = run(v);
    assert!(r.single_report);
    assert!(r.candidate.is_none());
    assert_eq!(r.chosen_by, "finding:tail");
    assert_eq!(
        r.next_edit,
        "Next edit: remove rms_base's partial wave (1.94 waves of 132 x 32 programs now): make it persistent (grid = 132 x 32 programs, each looping over rows or tiles with tl.range), or change the rows/tiles per program so the grid is a whole number of waves — because the partial last wave may cost up to 50% of the runtime (ncu LaunchConfiguration, est. +50%)."
    );
    assert!(
        r.verdict.starts_with("Single report (no candidate)")
            && r.verdict.contains("harness time 54.3 us"),
        "{}",
        r.verdict
    );
    // Headline: baseline values, no candidate, no delta.
    let d = r.headline.iter().find(|h| h.label == "Duration").unwrap();
    assert_eq!(
        (d.baseline, d.candidate, d.delta_pct),
        (Some(46.336), None, None)
    );
    let md = std::fs::read_to_string(&r.digest_md).unwrap();
    assert!(
        md.contains("Candidate: none (single-report digest of the baseline)"),
        "{md}"
    );
    assert_eq!(md.matches("Next edit:").count(), 1);
    // Without the tail finding, the occupancy limiter (TheoreticalOccupancy 35.25, tied with
    // CPIStall 35.25) wins the tie by precedence; 1-warp blocks → the blocks-per-SM wording.
    let l = launch("rms_base_details_base.csv", "rms_base_raw.csv");
    let mut s = summarize(&l, vec![]);
    let rules = vllm_sota_ncu::load_rules().unwrap();
    s.rules.retain(|r| r.rule != "LaunchConfiguration");
    vllm_sota_ncu::add_rule_facts(&rules, &s.rules, &mut s.facts);
    let class = vllm_sota_ncu::classify(&rules, &s.facts);
    assert_eq!(class.class, "memory");
    let limiter = vllm_sota_ncu::pick_limiter(&s.facts);
    assert_eq!(limiter, Some("blocks per SM"));
    let cx = vllm_sota_ncu::Context {
        kernel: "rms_base",
        language: "triton",
        limiter,
        library: None,
    };
    let d = vllm_sota_ncu::choose(&rules, &class, &s.facts, None, &s.rules, &cx);
    assert_eq!(d.chosen_by, "finding:occupancy_limiter");
    assert!(
        d.line.starts_with("Next edit: raise rms_base's num_warps from 1 to 4: at 32 programs per SM only 32 of 64 warps can be resident"),
        "{}",
        d.line
    );
}

#[test]
fn a_single_report_is_digested_without_a_candidate_field_at_all() {
    // The wire request of a first look: baseline only, no candidate key anywhere.
    let dir = tempfile::tempdir().unwrap();
    let v = serde_json::json!({
        "version": "first-look", "kernel_regex": "^rms_", "out_dir": dir.path(),
        "import": {"baseline": {"details_csv": fx("rms_cand_details_base.csv"), "raw_csv": fx("rms_cand_raw.csv")}}
    });
    let r = run(v);
    assert!(r.single_report && r.candidate.is_none() && r.blocker.is_none());
    assert_eq!(r.baseline.as_ref().unwrap().bound_class.class, "memory");
    // The same finding as the pinned pair digest (the candidate report is the subject there).
    assert_eq!(r.chosen_by, "finding:long_scoreboard");
    assert!(
        r.next_edit
            .starts_with("Next edit: keep more bytes in flight in rms_cand")
    );
}

#[test]
fn the_same_report_on_both_sides_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    // 1. The same files.
    let mut v = import_request(&out);
    v["import"]["candidate"] = v["import"]["baseline"].clone();
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = NcuDigest::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("import.candidate.details_csv")
            && err.contains("is the same file as import.baseline.details_csv")
            && err.contains("leave import.candidate out"),
        "{err}"
    );
    // 2. A byte-for-byte copy under another name.
    let copy = dir.path().join("copy_raw.csv");
    std::fs::copy(fx("rms_base_raw.csv"), &copy).unwrap();
    let mut v = import_request(&out);
    v["import"]["candidate"] = serde_json::json!({"raw_csv": copy});
    v["import"]["baseline"] = serde_json::json!({"raw_csv": fx("rms_base_raw.csv")});
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = NcuDigest::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("byte-for-byte identical"), "{err}");
    // 3. One report exported in two unit styles: different bytes, identical counters.
    let mut v = import_request(&out);
    v["import"]["baseline"] = serde_json::json!({"details_csv": fx("rms_base_details_base.csv")});
    v["import"]["candidate"] = serde_json::json!({"details_csv": fx("rms_base_details.csv")});
    let req: NcuDigestRequest = serde_json::from_value(v).unwrap();
    let err = NcuDigest::run(req, &ToolContext::new())
        .unwrap_err()
        .to_string();
    // Both pages say: launch ID 0 of process 462 on host 127.0.0.1 (kernel rms_base).
    assert!(
        err.contains("the same measurement given twice") && err.contains("'rms_base'"),
        "{err}"
    );
    // 4. Capture mode: the same command twice.
    let v = serde_json::json!({
        "version": "same", "kernel_regex": "rms", "out_dir": out,
        "capture": {"baseline_argv": ["python3", "b.py"], "candidate_argv": ["python3", "b.py"]}
    });
    let err = serde_json::from_value::<NcuDigestRequest>(v)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("capture.candidate_argv is the same command as capture.baseline_argv"),
        "{err}"
    );
}
