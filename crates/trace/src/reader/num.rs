//! Number readers: microseconds to exact nanoseconds, integers, dim3 triples.

use super::*;

/// Largest time or duration the store takes (just under 2^62 ns, about 146 years): the sum
/// or difference of any two (an event's end, a gap) then cannot overflow. Larger values
/// are not timestamps.
pub(super) const MAX_ABS_NS: i64 = (1 << 62) - 1;

#[inline(always)]
pub(super) fn within_time_range(ns: i64) -> Option<i64> {
    (-MAX_ABS_NS..=MAX_ABS_NS).contains(&ns).then_some(ns)
}

/// Parse a JSON number of microseconds into integer nanoseconds (exact for up to 3
/// decimals; rounds beyond). Falls back to f64 for exponents. `None` beyond
/// [`MAX_ABS_NS`].
pub(super) fn us_to_ns(s: &[u8]) -> Option<i64> {
    let (decimal, end) = DecimalMicros::scan(s, 0)?;
    if end == s.len() {
        return decimal.to_ns();
    }
    // exponent or junk: slow path
    let text = std::str::from_utf8(s).ok()?;
    let v = text.parse::<f64>().ok()? * 1000.0;
    if !v.is_finite() || v.abs() > MAX_ABS_NS as f64 {
        return None;
    }
    within_time_range(v.round() as i64)
}

/// `-?[0-9]+(\.[0-9]+)?` microseconds as scanned; the text that follows is the caller's.
pub(super) struct DecimalMicros {
    pub(super) neg: bool,
    pub(super) int: i64,
    /// The first 3 decimals as an integer (padded), and whether the 4th rounds up.
    pub(super) frac: i64,
    pub(super) round_up: bool,
}

impl DecimalMicros {
    /// The number at `b[j..]` and the index past it; `None` when there is none or its
    /// integer part overflows.
    #[inline(always)]
    pub(super) fn scan(b: &[u8], j: usize) -> Option<(Self, usize)> {
        let neg = b.get(j) == Some(&b'-');
        let start = j + neg as usize;
        let (int, n) = digits_at(b, start)?;
        if n == 0 {
            return None;
        }
        let mut k = start + n;
        let mut frac: i64 = 0;
        let mut digits = 0;
        let mut round_up = false;
        if b.get(k) == Some(&b'.') {
            k += 1;
            let frac_start = k;
            while let Some(&c) = b.get(k) {
                if !c.is_ascii_digit() {
                    break;
                }
                if digits < 3 {
                    frac = frac * 10 + (c - b'0') as i64;
                    digits += 1;
                } else if digits == 3 {
                    round_up = c >= b'5';
                    digits += 1;
                }
                k += 1;
            }
            if k == frac_start {
                return None;
            }
        }
        while digits < 3 {
            frac *= 10;
            digits += 1;
        }
        let decimal = DecimalMicros {
            neg,
            int,
            frac,
            round_up,
        };
        Some((decimal, k))
    }

    /// Nanoseconds; `None` on overflow or beyond [`MAX_ABS_NS`].
    #[inline(always)]
    pub(super) fn to_ns(&self) -> Option<i64> {
        let mut ns = self.int.checked_mul(1000)?.checked_add(self.frac)?;
        if self.round_up {
            ns = ns.checked_add(1)?;
        }
        within_time_range(if self.neg { -ns } else { ns })
    }
}

pub(super) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, d) = if s.first() == Some(&b'-') {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if d.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            // floats such as 7.0: take the integer part
            let f: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
            return Some(f as i64);
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// A number as the general scanner takes it (a `-` or a digit, then the run of number
/// bytes); it must be followed by a byte (so a number cut by the buffer end goes to the
/// general path).
#[inline(always)]
pub(super) fn num_at(b: &[u8], j: usize) -> Option<(&[u8], usize)> {
    if !matches!(b.get(j)?, b'0'..=b'9' | b'-') {
        return None;
    }
    let mut k = j;
    while k < b.len() && is_number_byte(b[k]) {
        k += 1;
    }
    (k > j && k < b.len()).then(|| (&b[j..k], k))
}

/// The byte after a number: it must end the number the general scanner would take
/// (which also accepts `-+.eE` anywhere in the run).
#[inline(always)]
pub(super) fn ends_number(b: &[u8], k: usize) -> Option<()> {
    (!is_number_byte(*b.get(k)?)).then_some(())
}

/// The run of ASCII digits at `b[k..]`: (its value, its length); `None` on `i64`
/// overflow. Eight digits per step (SWAR), the way a 13-digit timestamp is mostly read.
#[inline(always)]
pub(super) fn digits_at(b: &[u8], k: usize) -> Option<(i64, usize)> {
    const POW10: [i64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    let mut k = k;
    let start = k;
    let mut v: i64 = 0;
    while let Some(word) = b.get(k..k + 8) {
        // Lane values 0..=9 exactly for '0'..='9'; the first lane >= 10 ends the run
        // (carries only move toward later lanes, so the lowest flagged lane is exact).
        let t = u64::from_le_bytes(word.try_into().unwrap()) ^ 0x3030_3030_3030_3030;
        let not_digit = (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080;
        let n = if not_digit == 0 {
            8
        } else {
            (not_digit.trailing_zeros() / 8) as usize
        };
        if n > 0 {
            // Keep the n digits as the top lanes (zeros below act as leading zeros),
            // then combine pairs, quads and octets.
            let mut d = t << (8 * (8 - n));
            d = d.wrapping_mul(10 * 256 + 1) >> 8;
            d = (d & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 * 65_536 + 1) >> 16;
            d = (d & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 * (1 << 32) + 1) >> 32;
            v = v
                .checked_mul(POW10[n])?
                .checked_add((d & 0xFFFF_FFFF) as i64)?;
            k += n;
        }
        if n < 8 {
            return Some((v, k - start));
        }
    }
    while let Some(&c) = b.get(k) {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
        k += 1;
    }
    Some((v, k - start))
}

/// `-?[0-9]+` at `j`, scanned and converted in one pass: the value [`parse_i64`] gives
/// for the same text. `None` for anything else (the general path then decides).
#[inline(always)]
pub(super) fn int_at(b: &[u8], j: usize) -> Option<(i64, usize)> {
    let neg = b.get(j) == Some(&b'-');
    let start = j + neg as usize;
    let (v, n) = digits_at(b, start)?;
    if n == 0 {
        return None;
    }
    let k = start + n;
    ends_number(b, k)?;
    Some((if neg { -v } else { v }, k))
}

/// Microseconds at `j` as nanoseconds, in one pass: the value [`us_to_ns`] gives for the
/// same text when it ends the number. `None` for anything else (exponents...).
#[inline(always)]
pub(super) fn micros_at(b: &[u8], j: usize) -> Option<(i64, usize)> {
    let (decimal, k) = DecimalMicros::scan(b, j)?;
    ends_number(b, k)?;
    Some((decimal.to_ns()?, k))
}

/// `ts`/`dur` value: None when absent or null; Some(None) when not a number.
pub(super) fn time_of(v: Option<Val<'_>>) -> Option<Option<i64>> {
    match v {
        None | Some(Val::Null) => None,
        Some(Val::Num(n)) => Some(us_to_ns(n)),
        // Some writers quote numbers.
        Some(Val::Str(s, _)) => Some(us_to_ns(s)),
        Some(Val::Other) => Some(None),
    }
}

pub(super) fn dim3(raw: Option<&[u8]>) -> [u32; 3] {
    let mut out = [0u32; 3];
    if let Some(r) = raw {
        let mut k = 0;
        let mut cur: Option<u32> = None;
        for &c in r {
            if c.is_ascii_digit() {
                cur = Some(
                    cur.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add((c - b'0') as u32),
                );
            } else if let Some(v) = cur.take() {
                if k < 3 {
                    out[k] = v;
                }
                k += 1;
            }
        }
    }
    out
}
