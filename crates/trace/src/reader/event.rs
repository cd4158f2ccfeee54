//! The general event scanner (any key order, any whitespace).

use super::*;

impl<'s> Parser<'s> {
    /// Scan one event object starting at `b[i] == '{'`.
    pub(super) fn scan_event<'a>(&self, b: &'a [u8], i: usize) -> SR<(Ev<'a>, usize)> {
        let mut ev = Ev::default();
        let mut j = skip_ws(b, i + 1)?;
        if b[j] == b'}' {
            return Ok((ev, j + 1));
        }
        loop {
            j = skip_ws(b, j)?;
            if b[j] != b'"' {
                return Err(ScanErr::Syntax(
                    j,
                    format!(
                        "expected a key in traceEvents[{}], found {}",
                        self.event_index,
                        show(b[j])
                    ),
                ));
            }
            let (ks, ke, _, n) = scan_string(b, j)?;
            let n = expect(b, n, b':')?;
            let key = &b[ks..ke];
            j = match key {
                b"ph" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.ph = s.first().copied().unwrap_or(0);
                    }
                    n
                }
                b"cat" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.cat = s;
                    }
                    n
                }
                b"name" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.name = Some(v);
                    n
                }
                b"pid" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.pid = Some(v);
                    n
                }
                b"tid" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.tid = Some(v);
                    n
                }
                b"ts" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.ts = Some(v);
                    n
                }
                b"dur" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.dur = Some(v);
                    n
                }
                b"id" => {
                    let (v, n) = scan_scalar(b, n)?;
                    ev.id = Some(v);
                    n
                }
                b"bp" => {
                    let (v, n) = scan_scalar(b, n)?;
                    if let Val::Str(s, _) = v {
                        ev.bp = s;
                    }
                    n
                }
                b"args" => self.scan_args(b, n, &mut ev)?,
                _ => skip_value(b, n)?,
            };
            j = skip_ws(b, j)?;
            match b[j] {
                b',' => j += 1,
                b'}' => return Ok((ev, j + 1)),
                c => {
                    return Err(ScanErr::Syntax(
                        j,
                        format!(
                            "expected ',' or '}}' in traceEvents[{}], found {}",
                            self.event_index,
                            show(c)
                        ),
                    ));
                }
            }
        }
    }

    pub(super) fn scan_args<'a>(&self, b: &'a [u8], i: usize, ev: &mut Ev<'a>) -> SR<usize> {
        scan_args_of(b, i, ev, self.event_index)
    }
}

/// The `args` object of an event (`event_index` only names the event in errors).
pub(super) fn scan_args_of<'a>(
    b: &'a [u8],
    i: usize,
    ev: &mut Ev<'a>,
    event_index: u64,
) -> SR<usize> {
    let mut j = skip_ws(b, i)?;
    if b[j] != b'{' {
        return skip_value(b, j);
    }
    j = skip_ws(b, j + 1)?;
    if b[j] == b'}' {
        return Ok(j + 1);
    }
    loop {
        j = skip_ws(b, j)?;
        if b[j] != b'"' {
            return Err(ScanErr::Syntax(
                j,
                format!(
                    "expected a key in args of traceEvents[{}], found {}",
                    event_index,
                    show(b[j])
                ),
            ));
        }
        let (ks, ke, _, n) = scan_string(b, j)?;
        let n = expect(b, n, b':')?;
        let key = &b[ks..ke];
        macro_rules! num {
            ($field:ident) => {{
                let (v, n) = scan_scalar(b, n)?;
                ev.$field = num_of(Some(v));
                n
            }};
        }
        j = match key {
            b"External id" => num!(external_id),
            b"correlation" => num!(correlation),
            b"stream" | b"cuda_stream" => num!(stream),
            b"device" => num!(device),
            b"Python id" => num!(python_id),
            b"Python parent id" => num!(python_parent),
            b"grid" | b"block" | b"Input Dims" => {
                let s = skip_ws(b, n)?;
                let e = skip_value(b, s)?;
                match key {
                    b"grid" => ev.grid = Some(&b[s..e]),
                    b"block" => ev.block = Some(&b[s..e]),
                    _ => ev.input_dims = Some(&b[s..e]),
                }
                e
            }
            b"name" => {
                let (v, n) = scan_scalar(b, n)?;
                ev.arg_name = Some(v);
                n
            }
            b"labels" => {
                let (v, n) = scan_scalar(b, n)?;
                ev.arg_labels = Some(v);
                n
            }
            _ => skip_value(b, n)?,
        };
        j = skip_ws(b, j)?;
        match b[j] {
            b',' => j += 1,
            b'}' => return Ok(j + 1),
            c => {
                return Err(ScanErr::Syntax(
                    j,
                    format!(
                        "expected ',' or '}}' in args of traceEvents[{}], found {}",
                        event_index,
                        show(c)
                    ),
                ));
            }
        }
    }
}
