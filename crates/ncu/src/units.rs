//! Unit normalisation for ncu CSV values.
//!
//! ncu prints units in two spelling families (`us` / `usecond`, `byte/s` /
//! `Gbyte/second`, `Ghz` / `cycle/nsecond`) and, without `--print-units base`,
//! auto-scales with decimal prefixes (checked on the H200 fixtures:
//! `launch__shared_mem_per_block` = `1.024 Kbyte/block` on the raw page and
//! `1,024 byte/block` on the base-unit details page). Everything is normalised to:
//! time in `ns`, sizes in `byte`, frequencies in `hz`, rates per second (`byte/s`,
//! `sector/s`), counts unscaled.

/// Nanoseconds per unit for a time spelling, or None.
fn time_ns(unit: &str) -> Option<f64> {
    Some(match unit {
        "s" | "second" | "seconds" | "sec" => 1e9,
        "ms" | "msecond" | "mseconds" => 1e6,
        "us" | "usecond" | "useconds" | "µs" => 1e3,
        "ns" | "nsecond" | "nseconds" => 1.0,
        _ => return None,
    })
}

/// Round to 12 significant digits: scaling a printed value (at most 7 significant
/// digits when auto-scaled) must not leave binary noise such as 46335.99999999999.
fn clean(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let d = 11 - x.abs().log10().floor() as i32;
    if d >= 0 {
        let m = 10f64.powi(d);
        (x * m).round() / m
    } else {
        let m = 10f64.powi(-d);
        (x / m).round() * m
    }
}

fn decimal_prefix(prefix: &str) -> Option<f64> {
    Some(match prefix {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        _ => return None,
    })
}

/// Count units ncu may auto-scale with a prefix (`Kinst`, `Msector`).
const COUNT_UNITS: &[&str] = &[
    "inst", "cycle", "sector", "sectors", "request", "warp", "thread", "block", "sample", "pass",
    "byte",
];

/// One term without a `/`: (factor to the base unit, base unit name).
fn term(unit: &str) -> (f64, String) {
    if let Some(ns) = time_ns(unit) {
        return (ns, "ns".into());
    }
    let lower = unit.to_ascii_lowercase();
    if lower.ends_with("hz") {
        let prefix = &unit[..unit.len() - 2];
        if let Some(f) = decimal_prefix(prefix) {
            return (f, "hz".into());
        }
    }
    for base in COUNT_UNITS {
        if let Some(prefix) = unit.strip_suffix(base)
            && !prefix.is_empty()
            && let Some(f) = decimal_prefix(prefix)
        {
            return (f, (*base).to_string());
        }
    }
    (1.0, unit.to_string())
}

fn scale(value: f64, factor: f64) -> f64 {
    if factor == 1.0 {
        value
    } else {
        clean(value * factor)
    }
}

/// Normalise `value` printed in `unit`: returns (value in the base unit, base unit).
pub(crate) fn normalise(value: f64, unit: &str) -> (f64, String) {
    let unit = unit.trim();
    if unit.is_empty() || unit == "%" {
        return (value, unit.to_string());
    }
    if let Some((num, den)) = unit.split_once('/') {
        let (fnum, unum) = term(num);
        if let Some(ns) = time_ns(den) {
            // A rate: express per second. `cycle/second` is a frequency.
            let factor = fnum * 1e9 / ns;
            let base = if unum == "cycle" {
                "hz".to_string()
            } else {
                format!("{unum}/s")
            };
            return (scale(value, factor), base);
        }
        let (fden, uden) = term(den);
        return (scale(value, fnum / fden), format!("{unum}/{uden}"));
    }
    let (f, base) = term(unit);
    (scale(value, f), base)
}

/// Parse an ncu number: trims, strips `,` thousands separators; `n/a`, `nan`, `-`
/// and empty are absent (never 0). A value with two or more `.` (a European
/// grouping such as `27.595.520`) is refused rather than guessed.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("n/a") || t.eq_ignore_ascii_case("nan") || t == "-" {
        return None;
    }
    if t.matches('.').count() > 1 {
        return None;
    }
    let cleaned: String = t.chars().filter(|c| *c != ',').collect();
    let v: f64 = cleaned.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Half a unit in the last printed decimal place, in the base unit: how far a
/// rounded display may sit from the exact value.
pub(crate) fn display_tolerance(text: &str, unit: &str) -> f64 {
    let t = text.trim();
    let decimals = t
        .split_once('.')
        .map(|(_, frac)| frac.chars().take_while(|c| c.is_ascii_digit()).count())
        .unwrap_or(0);
    let half_ulp = 0.5 * 10f64.powi(-(decimals as i32));
    normalise(half_ulp, unit).0.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_quantity_normalise_to_the_same_base() {
        assert_eq!(normalise(46.336, "us"), (46336.0, "ns".to_string()));
        let (v, u) = normalise(46.336, "usecond");
        assert!((v - 46336.0).abs() < 1e-6 && u == "ns");
        assert_eq!(
            normalise(1.024, "Kbyte/block"),
            (1024.0, "byte/block".to_string())
        );
        let (v, u) = normalise(3.113989, "Tbyte/s");
        assert!((v - 3.113989e12).abs() < 1.0 && u == "byte/s", "{v} {u}");
        let (v, u) = normalise(3.113989, "Tbyte/second");
        assert!((v - 3.113989e12).abs() < 1.0 && u == "byte/s");
        let (v, u) = normalise(1.97, "Ghz");
        assert!((v - 1.97e9).abs() < 1.0 && u == "hz");
        let (v, u) = normalise(1.97, "cycle/nsecond");
        assert!((v - 1.97e9).abs() < 1.0 && u == "hz", "{v} {u}");
        assert_eq!(normalise(2.0, "sector/ns"), (2e9, "sector/s".to_string()));
        assert_eq!(
            normalise(1.5, "Kbyte/cycle"),
            (1500.0, "byte/cycle".to_string())
        );
        assert_eq!(
            normalise(42.0, "register/thread"),
            (42.0, "register/thread".to_string())
        );
        assert_eq!(normalise(3.0, "SM"), (3.0, "SM".to_string()));
        assert_eq!(normalise(64.75, "%"), (64.75, "%".to_string()));
    }

    #[test]
    fn numbers_with_grouping_and_absent_markers() {
        assert_eq!(parse_number("3,113,988,950,276.24"), Some(3113988950276.24));
        assert_eq!(parse_number(" 46,336 "), Some(46336.0));
        assert_eq!(parse_number("n/a"), None);
        assert_eq!(parse_number("N/A"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("nan"), None);
        assert_eq!(parse_number("PolicySpread"), None);
        assert_eq!(parse_number("27.595.520"), None);
        assert!((display_tolerance("64.75", "%") - 0.005).abs() < 1e-12);
        assert!((display_tolerance("46.34", "us") - 5.0).abs() < 1e-9);
    }
}
