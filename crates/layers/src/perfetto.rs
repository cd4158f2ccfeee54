//! Time ranges in the forms the Perfetto UI and trace processor accept.
//!
//! Facts this relies on (Perfetto's JSON importer and its deep-link docs):
//! - JSON `ts`/`dur` are microseconds whatever `displayTimeUnit` says (Perfetto fixed
//!   its old reading of `displayTimeUnit` as the ts unit in 2021; chrome://tracing does
//!   the same); Perfetto's trace clock is `ts × 1000` nanoseconds.
//! - `baseTimeNanoseconds` (Kineto) is not read by Perfetto; it maps `ts` to unix time
//!   (`base + ts·1000` ns), which is what logs and other hosts' traces line up with.
//! - The UI labels the timeline relative to the trace start (the earliest event), and
//!   opens a window with the URL query `?visStart=<ns>&visEnd=<ns>` (trace-clock ns);
//!   trace-processor SQL uses the same ns in `slice.ts`.

use serde::Serialize;

/// One range to open in Perfetto.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PerfettoRange {
    /// What the range is (pass, layer).
    pub label: String,
    /// Start/end on the trace clock in Perfetto's nanoseconds (the file's `ts` × 1000;
    /// divide by 1000 for the JSON's µs).
    pub start_ns: i64,
    pub end_ns: i64,
    /// Offset from the trace start as the Perfetto timeline shows it, e.g. `1.234567890 s`.
    pub ui_start: String,
    pub ui_end: String,
    /// Append to the UI URL to open this window: `?visStart=..&visEnd=..`.
    pub url_query: String,
    /// Trace-processor query listing the slices in the range.
    pub sql: String,
    /// Wall-clock start (UTC, RFC 3339 with ns) from `baseTimeNanoseconds`, when the file has it.
    pub wall_clock_start_utc: Option<String>,
    /// Duration in the file's `displayTimeUnit` (ms unless it says ns).
    pub duration: String,
}

/// Clock facts of one trace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TraceClock {
    pub trace_start_ns: i64,
    pub base_time_ns: Option<i64>,
    pub display_time_unit: Option<String>,
}

/// Seconds with 9 decimals from a nanosecond count, the Perfetto UI's precision.
pub(crate) fn seconds_label(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09} s", a / 1_000_000_000, a % 1_000_000_000)
}

/// Duration text in the trace's display unit.
pub(crate) fn duration_label(dur_ns: i64, display_time_unit: Option<&str>) -> String {
    match display_time_unit {
        Some("ns") => format!("{dur_ns} ns"),
        _ => format!("{:.3} ms", dur_ns as f64 / 1e6),
    }
}

/// Unix nanoseconds → `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (proleptic Gregorian, UTC).
pub(crate) fn rfc3339_utc_ns(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    // The seconds part comes from the one date routine of the workspace; only the fraction is added here.
    let whole = vllm_sota_core::layout::rfc3339_from_unix(secs);
    format!("{}.{nanos:09}Z", whole.trim_end_matches('Z'))
}

/// Build the range for `[start_ns, end_ns)` on the trace clock.
pub(crate) fn range(label: &str, start_ns: i64, end_ns: i64, clock: &TraceClock) -> PerfettoRange {
    let origin = clock.trace_start_ns;
    PerfettoRange {
        label: label.to_string(),
        start_ns,
        end_ns,
        ui_start: seconds_label(start_ns - origin),
        ui_end: seconds_label(end_ns - origin),
        url_query: format!("?visStart={start_ns}&visEnd={end_ns}"),
        sql: format!(
            "select ts, dur, name from slice where ts >= {start_ns} and ts < {end_ns} order by ts"
        ),
        wall_clock_start_utc: clock.base_time_ns.map(|b| rfc3339_utc_ns(b + start_ns)),
        duration: duration_label(end_ns - start_ns, clock.display_time_unit.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kineto_timestamp_maps_to_perfetto_ns_ui_offset_and_wall_clock() {
        // llama8b_decode: first kernel ts 5097444227028.756 us, baseTimeNanoseconds 1790857026000000000.
        let clock = TraceClock {
            trace_start_ns: 5_097_444_225_000_000,
            base_time_ns: Some(1_790_857_026_000_000_000),
            display_time_unit: Some("ms".into()),
        };
        let r = range("pass", 5_097_444_227_028_756, 5_097_444_378_586_129, &clock);
        assert_eq!(r.start_ns, 5_097_444_227_028_756);
        assert_eq!(
            r.url_query,
            "?visStart=5097444227028756&visEnd=5097444378586129"
        );
        assert_eq!(r.ui_start, "0.002028756 s");
        assert_eq!(r.duration, "151.557 ms");
        // base + ts·1000 = 1795954470227028756 ns: the capture day of the fixtures (python datetime agrees).
        assert_eq!(rfc3339_utc_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_utc_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            r.wall_clock_start_utc.as_deref(),
            Some("2026-11-29T12:14:30.227028756Z")
        );
        assert!(r.sql.contains("ts >= 5097444227028756"));
    }

    #[test]
    fn ns_display_unit_and_negative_offsets_format_cleanly() {
        assert_eq!(duration_label(1500, Some("ns")), "1500 ns");
        assert_eq!(seconds_label(-1_500_000_000), "-1.500000000 s");
    }
}
