//! Fast paths for events in exactly the layout torch's Kineto writer emits; any deviation
//! returns `None` and the general scanner reads the event from the same byte.

use super::*;

/// Literal runs of Kineto's `ChromeTraceLogger` layout (see [`scan_event_kineto`]).
mod layout {
    pub(super) const HEAD_X: &[u8] = b"{\n    \"ph\": \"X\", \"cat\": \"";
    pub(super) const HEAD_PYTHON: &[u8] =
        b"{\n    \"ph\": \"X\", \"cat\": \"python_function\", \"name\": \"";
    pub(super) const NAME: &[u8] = b"\", \"name\": \"";
    pub(super) const PID: &[u8] = b"\", \"pid\": ";
    pub(super) const TID: &[u8] = b", \"tid\": ";
    pub(super) const TS: &[u8] = b",\n    \"ts\": ";
    pub(super) const DUR: &[u8] = b", \"dur\": ";
    pub(super) const ARGS: &[u8] = b",\n    \"args\": ";
    pub(super) const PY_PARENT: &[u8] = b"{\n      \"Python parent id\": ";
    pub(super) const PY_ID: &[u8] = b", \"Python id\": ";
    pub(super) const EV_IDX: &[u8] = b", \"Ev Idx\": ";
    /// Closes the args object and the event.
    pub(super) const ARGS_TAIL: &[u8] = b"\n    }\n  }";
    // Kernel args (the other bulky event: long names, a dozen args).
    pub(super) const K_EXTERNAL: &[u8] = b"{\n      \"External id\": ";
    pub(super) const K_QUEUED: &[u8] = b",      \"queued\": ";
    pub(super) const K_DEVICE: &[u8] = b", \"device\": ";
    pub(super) const K_CONTEXT: &[u8] = b", \"context\": ";
    pub(super) const K_STREAM: &[u8] = b",      \"stream\": ";
    pub(super) const K_CORRELATION: &[u8] = b", \"correlation\": ";
    pub(super) const K_REGISTERS: &[u8] = b",      \"registers per thread\": ";
    pub(super) const K_SHARED: &[u8] = b",      \"shared memory\": ";
    pub(super) const K_BLOCKS_SM: &[u8] = b",      \"blocks per SM\": ";
    pub(super) const K_WARPS_SM: &[u8] = b",      \"warps per SM\": ";
    pub(super) const K_GRID: &[u8] = b",      \"grid\": ";
    pub(super) const K_BLOCK: &[u8] = b",      \"block\": ";
    pub(super) const K_OCCUPANCY: &[u8] = b",      \"est. achieved occupancy %\": ";
    // Flow events (`s`/`f`, cat `ac2g`).
    pub(super) const FLOW_ID: &[u8] = b"\", \"id\": ";
    pub(super) const FLOW_PID: &[u8] = b", \"pid\": ";
    pub(super) const FLOW_TS: &[u8] = b", \"ts\": ";
    pub(super) const FLOW_CAT: &[u8] = b",\n    \"cat\": \"";
    pub(super) const FLOW_BP: &[u8] = b"\", \"bp\": \"";
    pub(super) const EVENT_TAIL: &[u8] = b"\n  }";
}

/// `b[j..]` starts with `l`: the index after it. Compared eight bytes at a time (the
/// literals are constants, so this unrolls into a few loads and compares instead of a
/// `bcmp` call per literal, about ten per event).
#[inline(always)]
pub(super) fn lit(b: &[u8], j: usize, l: &[u8]) -> Option<usize> {
    let s = b.get(j..j + l.len())?;
    let word = |x: &[u8], at: usize| u64::from_le_bytes(x[at..at + 8].try_into().unwrap());
    if l.len() < 8 {
        return (s == l).then_some(j + l.len());
    }
    let mut at = 0;
    while at + 8 <= l.len() {
        if word(s, at) != word(l, at) {
            return None;
        }
        at += 8;
    }
    // The last (overlapping) word covers the tail.
    let last = l.len() - 8;
    (word(s, last) == word(l, last)).then_some(j + l.len())
}

/// The closing quote of a string without escapes, from just past its opening quote;
/// `None` at a backslash (escaped strings go to the general path) or at the buffer end.
#[inline(always)]
pub(super) fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads b[i..i + 16],
        // inside the slice by the loop condition.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
                let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    let k = i + mask.trailing_zeros() as usize;
                    return (b[k] == b'"').then_some(k);
                }
                i += 16;
            }
        }
    }
    let k = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
    (b[k] == b'"').then_some(k)
}

/// Fast path for a complete event in exactly the layout torch's Kineto writer emits
/// (`ChromeTraceLogger`: fixed key order and whitespace, see the fixtures):
///
/// ```text
/// {
///     "ph": "X", "cat": "…", "name": "…", "pid": N, "tid": N,
///     "ts": T, "dur": D,
///     "args": {
///       …
///     }
///   }
/// ```
///
/// Literal runs are compared instead of scanned key by key, and kernel args are matched as
/// one template (`python_function` frames have their own path, `Parser::python_frame_kineto`;
/// one it declines comes here and gets the general args scanner). Any deviation (other
/// whitespace or key order, text pids, a missing field, the buffer ending mid-event)
/// returns `None` and the general scanner reads the same event from the same byte, so
/// the fields found, and hence the store, are the same either way.
#[inline]
pub(super) fn scan_event_kineto(b: &[u8], i: usize) -> Option<(Ev<'_>, usize)> {
    use layout::*;
    let mut j = lit(b, i, HEAD_X)?;
    let e = plain_string_end(b, j)?;
    let cat = &b[j..e];
    j = lit(b, e, NAME)?;
    let e = plain_string_end(b, j)?;
    let name = &b[j..e];
    j = lit(b, e, PID)?;
    let (pid, e) = num_at(b, j)?;
    j = lit(b, e, TID)?;
    let (tid, e) = num_at(b, j)?;
    j = lit(b, e, TS)?;
    let (ts, e) = num_at(b, j)?;
    j = lit(b, e, DUR)?;
    let (dur, e) = num_at(b, j)?;
    j = lit(b, e, ARGS)?;
    let mut ev = Ev {
        ph: b'X',
        cat,
        name: Some(Val::Str(name, false)),
        pid: Some(Val::Num(pid)),
        tid: Some(Val::Num(tid)),
        ts: Some(Val::Num(ts)),
        dur: Some(Val::Num(dur)),
        ..Default::default()
    };
    if cat == b"kernel"
        && let Some((args, k)) = kernel_args_kineto(b, j)
    {
        ev.external_id = Some(args.external_id);
        ev.device = Some(args.device);
        ev.stream = Some(args.stream);
        ev.correlation = Some(args.correlation);
        ev.grid = Some(args.grid);
        ev.block = Some(args.block);
        return Some((ev, k));
    }
    // Other args: the general args scanner, then the event's closing brace.
    let k = scan_args_of(b, j, &mut ev, 0).ok()?;
    let k = skip_ws(b, k).ok()?;
    (b[k] == b'}').then_some((ev, k + 1))
}

/// The args of a kernel event that the store keeps.
pub(super) struct KernelArgs<'a> {
    pub(super) external_id: &'a [u8],
    pub(super) device: &'a [u8],
    pub(super) stream: &'a [u8],
    pub(super) correlation: &'a [u8],
    pub(super) grid: &'a [u8],
    pub(super) block: &'a [u8],
}

/// A kernel's args object and the event's end in Kineto's layout (from the `{` of args to
/// past the event's `}`); `None` on any deviation.
#[inline]
pub(super) fn kernel_args_kineto(b: &[u8], j: usize) -> Option<(KernelArgs<'_>, usize)> {
    use layout::*;
    // `[1, 1, 1]`: digits, commas and spaces only (anything else: general path).
    let dims = |j: usize| -> Option<(&[u8], usize)> {
        if b.get(j) != Some(&b'[') {
            return None;
        }
        let close = j + memchr::memchr(b']', b.get(j..(j + 64).min(b.len()))?)?;
        b[j + 1..close]
            .iter()
            .all(|c| c.is_ascii_digit() || *c == b',' || *c == b' ')
            .then(|| (&b[j..close + 1], close + 1))
    };
    let j = lit(b, j, K_EXTERNAL)?;
    let (external_id, j) = num_at(b, j)?;
    let j = lit(b, j, K_QUEUED)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_DEVICE)?;
    let (device, j) = num_at(b, j)?;
    let j = lit(b, j, K_CONTEXT)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_STREAM)?;
    let (stream, j) = num_at(b, j)?;
    let j = lit(b, j, K_CORRELATION)?;
    let (correlation, j) = num_at(b, j)?;
    let j = lit(b, j, K_REGISTERS)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_SHARED)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_BLOCKS_SM)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_WARPS_SM)?;
    let (_, j) = num_at(b, j)?;
    let j = lit(b, j, K_GRID)?;
    let (grid, j) = dims(j)?;
    let j = lit(b, j, K_BLOCK)?;
    let (block, j) = dims(j)?;
    let j = lit(b, j, K_OCCUPANCY)?;
    let (_, j) = num_at(b, j)?;
    let end = lit(b, j, ARGS_TAIL)?;
    Some((
        KernelArgs {
            external_id,
            device,
            stream,
            correlation,
            grid,
            block,
        },
        end,
    ))
}

/// A flow event (`s`/`f`) in Kineto's layout:
/// `{"ph": "f", "id": N, "pid": N, "tid": N, "ts": T, "cat": "…", "name": "…"[, "bp": "…"]}`
/// with its line breaks; `None` on any deviation.
#[inline]
pub(super) fn scan_flow_kineto(b: &[u8], i: usize) -> Option<(Ev<'_>, usize)> {
    use layout::*;
    let j = lit(b, i, b"{\n    \"ph\": \"")?;
    let ph = *b.get(j)?;
    if ph != b's' && ph != b'f' {
        return None;
    }
    let j = lit(b, j + 1, FLOW_ID)?;
    let (id, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_PID)?;
    let (pid, j) = num_at(b, j)?;
    let j = lit(b, j, TID)?;
    let (tid, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_TS)?;
    let (ts, j) = num_at(b, j)?;
    let j = lit(b, j, FLOW_CAT)?;
    let e = plain_string_end(b, j)?;
    let cat = &b[j..e];
    let j = lit(b, e, NAME)?;
    let e = plain_string_end(b, j)?;
    let name = &b[j..e];
    let mut ev = Ev {
        ph,
        cat,
        name: Some(Val::Str(name, false)),
        pid: Some(Val::Num(pid)),
        tid: Some(Val::Num(tid)),
        ts: Some(Val::Num(ts)),
        id: Some(Val::Num(id)),
        ..Default::default()
    };
    let j = match lit(b, e, FLOW_BP) {
        Some(j) => {
            let e = plain_string_end(b, j)?;
            ev.bp = &b[j..e];
            e
        }
        None => e,
    };
    let end = lit(b, j, b"\"")?;
    let end = lit(b, end, EVENT_TAIL)?;
    Some((ev, end))
}

impl<'s> Parser<'s> {
    /// A `python_function` event in Kineto's layout, parsed and stored in one go (they are
    /// nine in ten events of a `with_stack` trace). `None` (nothing stored) on any
    /// deviation, including values the general path would read differently or reject
    /// (escaped names, non-integer ids): the general path then reads the event.
    #[inline]
    pub(super) fn python_frame_kineto(&mut self, b: &[u8], i: usize) -> Option<usize> {
        use layout::*;
        let j = lit(b, i, HEAD_PYTHON)?;
        let e = plain_string_end(b, j)?;
        let name = &b[j..e];
        let j = lit(b, e, PID)?;
        let (pid, j) = int_at(b, j)?;
        let j = lit(b, j, TID)?;
        let (tid, j) = int_at(b, j)?;
        let j = lit(b, j, TS)?;
        let (ts, j) = micros_at(b, j)?;
        let j = lit(b, j, DUR)?;
        let (dur, j) = micros_at(b, j)?;
        let j = lit(b, j, ARGS)?;
        let j = lit(b, j, PY_PARENT)?;
        let (parent, j) = match lit(b, j, b"null") {
            Some(j) => (-1, j),
            None => int_at(b, j)?,
        };
        let j = lit(b, j, PY_ID)?;
        let (python_id, j) = int_at(b, j)?;
        let j = lit(b, j, EV_IDX)?;
        let (_, j) = int_at(b, j)?;
        let end = lit(b, j, ARGS_TAIL)?;
        // Past this point nothing can fail except invalid UTF-8, checked before storing.
        let name = self.intern_cached(name)?;
        let thread = self.numeric_thread(pid, tid);
        let f = &mut self.store.frames;
        f.push_span(name, ts, dur, thread);
        f.python_id.push(python_id);
        f.parent_python_id.push(parent);
        self.store.counts.python_functions += 1;
        Some(end)
    }
}
