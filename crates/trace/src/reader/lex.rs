//! The resumable JSON scanner: whitespace, strings, skipped values, scalars, unescaping.

/// Scanner result: `Incomplete` = need more bytes (the caller refills and retries from
/// the last committed position).
#[derive(Debug)]
pub(super) enum ScanErr {
    Incomplete,
    Syntax(usize, String),
}
pub(super) type SR<T> = std::result::Result<T, ScanErr>;

pub(super) fn count_nl(b: &[u8]) -> u64 {
    // SWAR: 8 bytes per step, per-byte-lane counters summed every 255 words.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut total = 0u64;
    let mut acc = 0u64;
    let mut n = 0;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap()) ^ (ONES * b'\n' as u64);
        // High bit of each lane set iff the lane is zero (exact, no carries between lanes).
        let zero = !(((x & LOW7) + LOW7) | x) & HIGH;
        acc += zero >> 7;
        n += 1;
        if n == 255 {
            total += lane_sum(acc);
            acc = 0;
            n = 0;
        }
    }
    total += lane_sum(acc);
    total + words.remainder().iter().filter(|&&c| c == b'\n').count() as u64
}

#[inline]
pub(super) fn lane_sum(acc: u64) -> u64 {
    const PAIRS: u64 = 0x00ff_00ff_00ff_00ff;
    let x = (acc & PAIRS) + ((acc >> 8) & PAIRS);
    x.wrapping_mul(0x0001_0001_0001_0001) >> 48
}

#[inline]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> SR<usize> {
    while i < b.len() {
        match b[i] {
            b' ' | b'\n' | b'\r' | b'\t' => i += 1,
            _ => return Ok(i),
        }
    }
    Err(ScanErr::Incomplete)
}

#[inline]
pub(super) fn expect(b: &[u8], i: usize, c: u8) -> SR<usize> {
    let i = skip_ws(b, i)?;
    if b[i] == c {
        Ok(i + 1)
    } else {
        Err(ScanErr::Syntax(
            i,
            format!("expected '{}', found {}", c as char, show(b[i])),
        ))
    }
}

pub(super) fn show(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// A string starting at `b[i] == '"'`: returns (content start, content end, has escapes, next index).
#[inline]
pub(super) fn scan_string(b: &[u8], i: usize) -> SR<(usize, usize, bool, usize)> {
    debug_assert!(b[i] == b'"');
    let start = i + 1;
    let mut j = start;
    let mut esc = false;
    // Most strings (keys, categories, names) are short: test 8 bytes at a time for '"' or
    // '\\' (SWAR, exact per byte) before paying memchr's setup.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let fast_end = (start + 64).min(b.len());
    while j + 8 <= fast_end {
        let w = u64::from_le_bytes(b[j..j + 8].try_into().unwrap());
        let q = w ^ (ONES * b'"' as u64);
        let s = w ^ (ONES * b'\\' as u64);
        let hits = (!(((q & LOW7) + LOW7) | q) | !(((s & LOW7) + LOW7) | s)) & HIGH;
        if hits != 0 {
            let k = j + (hits.trailing_zeros() / 8) as usize;
            if b[k] == b'"' {
                return Ok((start, k, false, k + 1));
            }
            // A backslash first: the loop below handles escapes from here.
            break;
        }
        j += 8;
    }
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j..]) {
            None => return Err(ScanErr::Incomplete),
            Some(off) => {
                let k = j + off;
                if b[k] == b'"' {
                    return Ok((start, k, esc, k + 1));
                }
                esc = true;
                if k + 1 >= b.len() {
                    return Err(ScanErr::Incomplete);
                }
                j = k + 2;
            }
        }
    }
}

/// Skip any JSON value starting at the first non-space byte from `i`.
pub(super) fn skip_value(b: &[u8], i: usize) -> SR<usize> {
    let i = skip_ws(b, i)?;
    match b[i] {
        b'"' => Ok(scan_string(b, i)?.3),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                if j >= b.len() {
                    return Err(ScanErr::Incomplete);
                }
                match b[j] {
                    b'"' => {
                        j = scan_string(b, j)?.3;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut j = i;
            while j < b.len()
                && matches!(b[j], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
            {
                j += 1;
            }
            if j >= b.len() {
                return Err(ScanErr::Incomplete);
            }
            let tok = &b[i..j];
            if tok[0].is_ascii_alphabetic() && !matches!(tok, b"true" | b"false" | b"null") {
                return Err(ScanErr::Syntax(
                    i,
                    format!("invalid literal '{}'", String::from_utf8_lossy(tok)),
                ));
            }
            Ok(j)
        }
        c => Err(ScanErr::Syntax(
            i,
            format!("expected a value, found {}", show(c)),
        )),
    }
}

/// The bytes a number's run is made of, as the scanner takes it (the fast paths take the
/// same run, so both read a number the same way).
#[inline(always)]
pub(super) fn is_number_byte(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// A borrowed scalar value.
#[derive(Clone, Copy, Debug)]
pub(super) enum Val<'a> {
    Str(&'a [u8], bool),
    Num(&'a [u8]),
    Null,
    Other,
}

#[inline]
pub(super) fn scan_scalar(b: &[u8], i: usize) -> SR<(Val<'_>, usize)> {
    let i = skip_ws(b, i)?;
    match b[i] {
        b'"' => {
            let (s, e, esc, n) = scan_string(b, i)?;
            Ok((Val::Str(&b[s..e], esc), n))
        }
        b'-' | b'0'..=b'9' => {
            let mut j = i;
            while j < b.len() && is_number_byte(b[j]) {
                j += 1;
            }
            if j >= b.len() {
                return Err(ScanErr::Incomplete);
            }
            Ok((Val::Num(&b[i..j]), j))
        }
        b'n' => {
            let j = skip_value(b, i)?;
            Ok((Val::Null, j))
        }
        _ => {
            let j = skip_value(b, i)?;
            Ok((Val::Other, j))
        }
    }
}

/// Decode a JSON string body (between the quotes) into `out`.
pub(super) fn unescape(raw: &[u8], out: &mut String) -> std::result::Result<(), String> {
    out.clear();
    let mut bytes: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            bytes.push(c);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1).ok_or("dangling backslash in string")?;
        i += 2;
        match e {
            b'"' => bytes.push(b'"'),
            b'\\' => bytes.push(b'\\'),
            b'/' => bytes.push(b'/'),
            b'b' => bytes.push(8),
            b'f' => bytes.push(12),
            b'n' => bytes.push(b'\n'),
            b'r' => bytes.push(b'\r'),
            b't' => bytes.push(b'\t'),
            b'u' => {
                let hex = |at: usize| -> std::result::Result<u32, String> {
                    let h = raw.get(at..at + 4).ok_or("short \\u escape")?;
                    u32::from_str_radix(std::str::from_utf8(h).map_err(|_| "bad \\u escape")?, 16)
                        .map_err(|_| "bad \\u escape".to_string())
                };
                let mut cp = hex(i)?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp)
                    && raw.get(i) == Some(&b'\\')
                    && raw.get(i + 1) == Some(&b'u')
                {
                    let lo = hex(i + 2)?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut tmp = [0u8; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            other => return Err(format!("invalid escape '\\{}'", other as char)),
        }
    }
    let s = String::from_utf8(bytes).map_err(|_| "string is not valid UTF-8".to_string())?;
    out.push_str(&s);
    Ok(())
}
