//! The parallel pass over `traceEvents`.

use super::*;

// ---------------------------------------------------------------------------------------
// Parallel pass over `traceEvents`.
//
// The calling thread cuts the decompressed stream into batches (about one chunk each) at
// candidate event boundaries (`}` ws `,` ws `{`, found by a short backwards search from
// the chunk's end; the unfinished event goes into the next chunk's head room) and hands them to
// worker threads; each worker parses its batch into a partial store with its own
// interner and thread table, and the calling thread merges the partial stores in file
// order, remapping name and thread ids. Merging in order with first-appearance local ids
// gives exactly the ids, rows and order a sequential pass gives. A cut is proven to be a
// real boundary when the batch before it parses into whole events ending at it (by
// induction from the array start); otherwise the caller reruns the sequential pass.

pub(super) struct Batch {
    pub(super) seq: u64,
    /// The batch is `buf[range]`.
    pub(super) buf: Vec<u8>,
    pub(super) range: std::ops::Range<usize>,
    /// First batch starts right after `[`, the others at the `,` before an event.
    pub(super) first: bool,
    /// The last batch runs to the end of the document.
    pub(super) last: bool,
}

pub(super) struct Partial {
    pub(super) store: TraceStore,
    pub(super) log: BatchLog,
    pub(super) saw_events: bool,
}

/// Parse one batch; `None` when it is not a run of whole events (or needs the sequential pass).
pub(super) fn parse_batch(batch: &Batch, top_is_array: bool, fast: bool) -> Option<Partial> {
    let mut store = TraceStore::default();
    // Room for as many Python frames as the batch could hold (Kineto writes at least
    // ~200 bytes per frame): the columns do not regrow, and memory only gets touched
    // where rows land.
    let frames = batch.range.len() / 200;
    let f = &mut store.frames;
    f.name.reserve(frames);
    f.ts_ns.reserve(frames);
    f.dur_ns.reserve(frames);
    f.thread.reserve(frames);
    f.python_id.reserve(frames);
    f.parent_python_id.reserve(frames);
    let state = if batch.first {
        State::EventsFirst
    } else {
        State::EventsNext
    };
    let mut p = Parser::new(&mut store, state, top_is_array, fast);
    p.log = Some(BatchLog::default());
    let b = &batch.buf[batch.range.clone()];
    let mut pos = 0;
    while p.state != State::Done {
        match p.step(b, pos) {
            Ok(n) => pos = n,
            Err(ScanErr::Incomplete) => break,
            Err(ScanErr::Syntax(..)) => return None,
        }
    }
    if !b[pos..].iter().all(|c| b" \t\r\n".contains(c)) {
        return None;
    }
    let ok_end = if batch.last {
        p.state == State::Done
    } else {
        p.state == State::EventsNext
    };
    // Text pids/tids get numbers in order of appearance across the file: sequential only.
    if !ok_end || !p.text_ids.is_empty() {
        return None;
    }
    let log = p.log.take().unwrap_or_default();
    let saw_events = p.saw_events;
    Some(Partial {
        store,
        log,
        saw_events,
    })
}

/// Last candidate event boundary in `b` at or after `from`: the index of the `,` in
/// `}` ws `,` ws `{`.
pub(super) fn last_boundary(b: &[u8], from: usize) -> Option<usize> {
    let ws = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t');
    let mut end = b.len();
    while let Some(open) = memchr::memrchr(b'{', &b[from..end]).map(|i| i + from) {
        end = open;
        let mut i = open;
        while i > from && ws(b[i - 1]) {
            i -= 1;
        }
        if i == from || b[i - 1] != b',' {
            continue;
        }
        let comma = i - 1;
        let mut k = comma;
        while k > from && ws(b[k - 1]) {
            k -= 1;
        }
        if k > from && b[k - 1] == b'}' {
            return Some(comma);
        }
    }
    None
}

/// Feed batches to the workers and merge their results in file order. Longer than 120 lines
/// for a reason: the feed loop, the bound on batches in flight and the final drain share
/// the same channels and counters inside one thread scope.
pub(super) fn parallel_events(
    p: &mut Parser<'_>,
    mut carry: Vec<u8>,
    rx: &Receiver<Msg>,
    recycle: &SyncSender<Vec<u8>>,
    workers: usize,
) -> Result<(), ReadError> {
    use std::sync::{Arc, Mutex, mpsc};
    let top_is_array = p.top_is_array;
    let fast = p.fast;
    let (job_tx, job_rx) = sync_channel::<Batch>(workers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = mpsc::channel::<(u64, Option<Partial>)>();
    let mut merger = Merger::default();
    for (i, t) in p.store.threads.iter().enumerate() {
        merger.thread_map.insert((t.pid, t.tid), i as u32);
    }
    if !p.text_ids.is_empty() {
        return Err(ReadError::NeedSequential);
    }
    std::thread::scope(|scope| -> Result<(), ReadError> {
        for w in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            let recycle = recycle.clone();
            std::thread::Builder::new()
                .name(format!("trace-parse-{w}"))
                .spawn_scoped(scope, move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(batch) = job else { return };
                        let part = parse_batch(&batch, top_is_array, fast);
                        let _ = recycle.try_send(batch.buf);
                        if res_tx.send((batch.seq, part)).is_err() {
                            return;
                        }
                    }
                })
                .context("cannot start a parse thread")?;
        }
        drop(res_tx);
        // Results arrive out of order: merge them in sequence.
        let max_in_flight = 2 * workers as u64 + 1;
        let mut ready: std::collections::BTreeMap<u64, Option<Partial>> = Default::default();
        let mut sent = 0u64;
        let mut merged = 0u64;
        let mut failed = false;
        let mut merge_ready = |ready: &mut std::collections::BTreeMap<u64, Option<Partial>>,
                               merged: &mut u64,
                               p: &mut Parser<'_>|
         -> bool {
            while let Some(part) = ready.remove(merged) {
                match part {
                    Some(part) => {
                        merger.merge(p, part);
                        *merged += 1;
                    }
                    None => return false,
                }
            }
            true
        };
        let mut eof = false;
        while !eof && !failed {
            // `work[start..]` = the unfinished event carried over + the new chunk.
            let (work, start) = match rx.recv() {
                Ok(Msg::Data(mut chunk)) => {
                    p.store.counts.json_bytes += (chunk.len() - HEAD) as u64;
                    if carry.len() <= HEAD {
                        let start = HEAD - carry.len();
                        chunk[start..HEAD].copy_from_slice(&carry);
                        carry.clear();
                        (chunk, start)
                    } else {
                        // An event longer than HEAD: grow the carry instead.
                        carry.extend_from_slice(&chunk[HEAD..]);
                        let _ = recycle.try_send(chunk);
                        (std::mem::take(&mut carry), 0)
                    }
                }
                Ok(Msg::Eof) | Err(_) => {
                    eof = true;
                    (std::mem::take(&mut carry), 0)
                }
                Ok(Msg::Err(_)) => {
                    failed = true;
                    break;
                }
            };
            let cut = if eof {
                Some(work.len())
            } else {
                last_boundary(&work, start)
            };
            let Some(cut) = cut else {
                // No boundary yet (a huge event): keep accumulating.
                carry = if start == 0 {
                    work
                } else {
                    work[start..].to_vec()
                };
                continue;
            };
            carry.extend_from_slice(&work[cut..]);
            let batch = Batch {
                seq: sent,
                buf: work,
                range: start..cut,
                first: sent == 0,
                last: eof,
            };
            sent += 1;
            if job_tx.send(batch).is_err() {
                failed = true;
                break;
            }
            // Bound the batches in flight (memory) and merge what is ready.
            loop {
                while let Ok((seq, part)) = res_rx.try_recv() {
                    ready.insert(seq, part);
                }
                if !merge_ready(&mut ready, &mut merged, p) {
                    failed = true;
                    break;
                }
                if sent - merged < max_in_flight {
                    break;
                }
                match res_rx.recv() {
                    Ok((seq, part)) => {
                        ready.insert(seq, part);
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        drop(job_tx);
        while !failed && merged < sent {
            match res_rx.recv() {
                Ok((seq, part)) => {
                    ready.insert(seq, part);
                    if !merge_ready(&mut ready, &mut merged, p) {
                        failed = true;
                    }
                }
                Err(_) => failed = true,
            }
        }
        if failed || !eof {
            return Err(ReadError::NeedSequential);
        }
        Ok(())
    })
}

#[derive(Default)]
pub(super) struct Merger {
    pub(super) thread_map: FxHashMap<(i64, i64), u32>,
}

impl Merger {
    pub(super) fn merge(&mut self, p: &mut Parser<'_>, part: Partial) {
        let Partial {
            store: local,
            log,
            saw_events,
        } = part;
        p.saw_events |= saw_events;
        let g = &mut *p.store;
        let names: Vec<NameId> = (0..local.names.len() as NameId)
            .map(|id| g.names.intern(local.names.get(id)))
            .collect();
        let rn = |id: NameId| if id == NONE { NONE } else { names[id as usize] };
        let threads: Vec<u32> = local
            .threads
            .iter()
            .map(|t| {
                *self.thread_map.entry((t.pid, t.tid)).or_insert_with(|| {
                    g.threads.push(ThreadInfo {
                        pid: t.pid,
                        tid: t.tid,
                        ..Default::default()
                    });
                    (g.threads.len() - 1) as u32
                })
            })
            .collect();
        let rt = |t: u32| threads[t as usize];
        for (t, label) in log.thread_names {
            g.threads[rt(t) as usize].thread_name = label;
        }
        for (key, raw) in log.top_values {
            apply_top_value(&mut g.meta, &key, &raw);
        }
        g.process_names.extend(local.process_names);
        g.process_labels.extend(local.process_labels);

        let (k, lk) = (&mut g.kernels, local.kernels);
        k.name.extend(lk.name.iter().map(|&n| rn(n)));
        k.ts_ns.extend(lk.ts_ns);
        k.dur_ns.extend(lk.dur_ns);
        k.thread.extend(lk.thread.iter().map(|&t| rt(t)));
        k.device.extend(lk.device);
        k.stream.extend(lk.stream);
        k.correlation.extend(lk.correlation);
        k.external_id.extend(lk.external_id);
        k.kind.extend(lk.kind);
        k.grid.extend(lk.grid);
        k.block.extend(lk.block);

        let (c, lc) = (&mut g.cpu_ops, local.cpu_ops);
        c.name.extend(lc.name.iter().map(|&n| rn(n)));
        c.ts_ns.extend(lc.ts_ns);
        c.dur_ns.extend(lc.dur_ns);
        c.thread.extend(lc.thread.iter().map(|&t| rt(t)));
        c.external_id.extend(lc.external_id);
        c.input_dims.extend(lc.input_dims.iter().map(|&n| rn(n)));

        let (a, la) = (&mut g.annotations, local.annotations);
        a.name.extend(la.name.iter().map(|&n| rn(n)));
        a.ts_ns.extend(la.ts_ns);
        a.dur_ns.extend(la.dur_ns);
        a.thread.extend(la.thread.iter().map(|&t| rt(t)));
        a.external_id.extend(la.external_id);
        a.on_gpu.extend(la.on_gpu);

        let (l, ll) = (&mut g.launches, local.launches);
        l.name.extend(ll.name.iter().map(|&n| rn(n)));
        l.ts_ns.extend(ll.ts_ns);
        l.dur_ns.extend(ll.dur_ns);
        l.thread.extend(ll.thread.iter().map(|&t| rt(t)));
        l.correlation.extend(ll.correlation);
        l.external_id.extend(ll.external_id);
        l.is_driver.extend(ll.is_driver);

        let (f, lf) = (&mut g.flows, local.flows);
        f.id.extend(lf.id);
        f.ts_ns.extend(lf.ts_ns);
        f.thread.extend(lf.thread.iter().map(|&t| rt(t)));
        f.phase.extend(lf.phase);
        f.cat.extend(lf.cat.iter().map(|&n| rn(n)));

        let (f, lf) = (&mut g.frames, local.frames);
        f.name.extend(lf.name.iter().map(|&n| rn(n)));
        f.ts_ns.extend(lf.ts_ns);
        f.dur_ns.extend(lf.dur_ns);
        f.thread.extend(lf.thread.iter().map(|&t| rt(t)));
        f.python_id.extend(lf.python_id);
        f.parent_python_id.extend(lf.parent_python_id);

        let (c, lc) = (&mut g.counts, local.counts);
        c.total += lc.total;
        c.kernels += lc.kernels;
        c.memcpy += lc.memcpy;
        c.memset += lc.memset;
        c.cpu_ops += lc.cpu_ops;
        c.user_annotations += lc.user_annotations;
        c.gpu_user_annotations += lc.gpu_user_annotations;
        c.runtime += lc.runtime;
        c.driver += lc.driver;
        c.python_functions += lc.python_functions;
        c.flows += lc.flows;
        c.metadata += lc.metadata;
        c.other += lc.other;
        p.event_index += lc.total;
    }
}
