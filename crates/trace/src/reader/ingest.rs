//! Storing one scanned event into the columnar store.

use super::*;

impl<'s> Parser<'s> {
    pub(super) fn text_of(
        &mut self,
        v: Option<Val<'_>>,
    ) -> std::result::Result<Option<String>, String> {
        match v {
            Some(Val::Str(s, esc)) => {
                if esc {
                    let mut out = String::new();
                    unescape(s, &mut out)?;
                    Ok(Some(out))
                } else {
                    Ok(Some(
                        std::str::from_utf8(s)
                            .map_err(|_| "string is not valid UTF-8")?
                            .to_string(),
                    ))
                }
            }
            Some(Val::Num(n)) => Ok(Some(String::from_utf8_lossy(n).into_owned())),
            _ => Ok(None),
        }
    }

    pub(super) fn intern_val(&mut self, v: Option<Val<'_>>) -> std::result::Result<NameId, String> {
        match v {
            Some(Val::Str(s, false)) => self
                .store
                .names
                .intern_bytes(s)
                .ok_or_else(|| "name is not valid UTF-8".to_string()),
            Some(Val::Str(s, true)) => {
                let mut tmp = std::mem::take(&mut self.scratch);
                unescape(s, &mut tmp)?;
                let id = self.store.names.intern(&tmp);
                self.scratch = tmp;
                Ok(id)
            }
            Some(Val::Num(n)) => Ok(self.store.names.intern(&String::from_utf8_lossy(n))),
            _ => Ok(self.store.names.intern("")),
        }
    }

    pub(super) fn id_of(
        &mut self,
        v: Option<Val<'_>>,
    ) -> std::result::Result<(i64, Option<String>), String> {
        match v {
            Some(Val::Num(n)) => Ok((parse_i64(n).ok_or("pid/tid is not an integer")?, None)),
            Some(Val::Str(..)) => {
                let t = self.text_of(v)?.unwrap_or_default();
                if let Ok(n) = t.parse::<i64>() {
                    return Ok((n, None));
                }
                let next = -(self.text_ids.len() as i64) - 1_000_000;
                let id = *self.text_ids.entry(t.clone()).or_insert(next);
                Ok((id, Some(t)))
            }
            _ => Ok((-1, None)),
        }
    }

    /// [`Interner::intern_bytes`] through the name cache (same ids, fewer hash probes).
    #[inline]
    pub(super) fn intern_cached(&mut self, name: &[u8]) -> Option<NameId> {
        let key = name_cache_key(name);
        let slot = (key >> (64 - NAME_CACHE_SLOTS.trailing_zeros())) as usize;
        let (k, id) = self.name_cache[slot];
        if k == key && self.store.names.get(id).as_bytes() == name {
            return Some(id);
        }
        let id = self.store.names.intern_bytes(name)?;
        self.name_cache[slot] = (key, id);
        Some(id)
    }

    /// The thread table index of numeric (pid, tid).
    #[inline]
    pub(super) fn numeric_thread(&mut self, pid: i64, tid: i64) -> u32 {
        if self.last_thread.0 == (pid, tid) {
            return self.last_thread.1;
        }
        self.thread_index(pid, tid, None, None)
    }

    pub(super) fn thread_of(&mut self, ev: &Ev<'_>) -> std::result::Result<u32, String> {
        let (pid, pid_text) = self.id_of(ev.pid)?;
        let (tid, tid_text) = self.id_of(ev.tid)?;
        Ok(self.thread_index(pid, tid, pid_text, tid_text))
    }

    pub(super) fn thread_index(
        &mut self,
        pid: i64,
        tid: i64,
        pid_text: Option<String>,
        tid_text: Option<String>,
    ) -> u32 {
        let key = (pid, tid);
        if self.last_thread.0 == key {
            return self.last_thread.1;
        }
        let idx = match self.thread_map.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.store.threads.len() as u32;
                self.store.threads.push(ThreadInfo {
                    pid,
                    tid,
                    pid_text,
                    tid_text,
                    thread_name: None,
                });
                self.thread_map.insert(key, i);
                i
            }
        };
        self.last_thread = (key, idx);
        idx
    }

    /// Store one event by its phase.
    pub(super) fn ingest(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        match ev.ph {
            b'X' => self.ingest_complete(ev)?,
            b's' | b'f' | b't' => self.ingest_flow(ev)?,
            b'M' => self.ingest_metadata(ev)?,
            _ => self.store.counts.other += 1,
        }
        Ok(())
    }

    /// The name and thread of a complete event (interned, looked up).
    #[inline]
    fn name_and_thread(&mut self, ev: &Ev<'_>) -> std::result::Result<(NameId, u32), String> {
        Ok((self.intern_val(ev.name)?, self.thread_of(ev)?))
    }

    /// A complete event (`ph` `X`): a GPU activity, Python frame, CPU op, annotation or CUDA
    /// API call by its category; other categories are only counted.
    #[inline]
    fn ingest_complete(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        let opt_i = |s: Option<&[u8]>| s.and_then(parse_i64).unwrap_or(-1);
        let ts = match time_of(ev.ts) {
            Some(t) => t.ok_or("field \"ts\" is not a number of microseconds")?,
            None => {
                self.store.counts.other += 1;
                return Ok(());
            }
        };
        let dur = match time_of(ev.dur) {
            Some(d) => d.ok_or("field \"dur\" is not a number of microseconds")?,
            None => 0,
        };
        let cat = ev.cat;
        let gpu_kind = match cat {
            b"kernel" => Some(GpuKind::Kernel),
            b"gpu_memcpy" | b"Memcpy" => Some(GpuKind::Memcpy),
            b"gpu_memset" | b"Memset" => Some(GpuKind::Memset),
            b"" if ev.stream.is_some() => Some(GpuKind::Kernel),
            _ => None,
        };
        let table = match (gpu_kind, cat) {
            (Some(kind), _) => Table::Gpu(kind),
            (None, b"python_function") => Table::Frames,
            (None, b"cpu_op") => Table::CpuOps,
            (None, b"user_annotation") => Table::Annotations { on_gpu: false },
            (None, b"gpu_user_annotation") => Table::Annotations { on_gpu: true },
            (None, b"cuda_runtime") => Table::Launches { is_driver: false },
            (None, b"cuda_driver") => Table::Launches { is_driver: true },
            _ => {
                self.store.counts.other += 1;
                return Ok(());
            }
        };
        let (name, thread) = self.name_and_thread(&ev)?;
        let store = &mut self.store;
        let counts = &mut store.counts;
        match table {
            Table::Gpu(kind) => {
                let k = &mut store.kernels;
                k.push_span(name, ts, dur, thread);
                k.device.push(opt_i(ev.device) as i32);
                k.stream.push(opt_i(ev.stream));
                k.correlation.push(opt_i(ev.correlation));
                k.external_id.push(opt_i(ev.external_id));
                k.kind.push(kind);
                k.grid.push(dim3(ev.grid));
                k.block.push(dim3(ev.block));
                *match kind {
                    GpuKind::Kernel => &mut counts.kernels,
                    GpuKind::Memcpy => &mut counts.memcpy,
                    GpuKind::Memset => &mut counts.memset,
                } += 1;
            }
            Table::Frames => {
                let f = &mut store.frames;
                f.push_span(name, ts, dur, thread);
                f.python_id.push(opt_i(ev.python_id));
                f.parent_python_id.push(opt_i(ev.python_parent));
                counts.python_functions += 1;
            }
            Table::CpuOps => {
                let dims = match ev.input_dims {
                    Some(raw) => {
                        let s = std::str::from_utf8(raw).map_err(|_| "Input Dims is not UTF-8")?;
                        store.names.intern(s)
                    }
                    None => NONE,
                };
                let c = &mut store.cpu_ops;
                c.push_span(name, ts, dur, thread);
                c.external_id.push(opt_i(ev.external_id));
                c.input_dims.push(dims);
                counts.cpu_ops += 1;
            }
            Table::Annotations { on_gpu } => {
                let a = &mut store.annotations;
                a.push_span(name, ts, dur, thread);
                a.external_id.push(opt_i(ev.external_id));
                a.on_gpu.push(on_gpu);
                *if on_gpu {
                    &mut counts.gpu_user_annotations
                } else {
                    &mut counts.user_annotations
                } += 1;
            }
            Table::Launches { is_driver } => {
                let l = &mut store.launches;
                l.push_span(name, ts, dur, thread);
                l.correlation.push(opt_i(ev.correlation));
                l.external_id.push(opt_i(ev.external_id));
                l.is_driver.push(is_driver);
                *if is_driver {
                    &mut counts.driver
                } else {
                    &mut counts.runtime
                } += 1;
            }
        }
        Ok(())
    }

    /// A flow event (`ph` `s`/`t`/`f`).
    #[inline]
    fn ingest_flow(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        let ts = time_of(ev.ts).flatten().unwrap_or(0);
        let id = match ev.id {
            Some(Val::Num(n)) => parse_i64(n).unwrap_or(-1),
            Some(Val::Str(s, _)) => parse_i64(s).unwrap_or(-1),
            _ => -1,
        };
        let thread = self.thread_of(&ev)?;
        let cat = if ev.cat.is_empty() {
            NONE
        } else {
            self.store
                .names
                .intern(std::str::from_utf8(ev.cat).unwrap_or("?"))
        };
        let f = &mut self.store.flows;
        f.id.push(id);
        f.ts_ns.push(ts);
        f.thread.push(thread);
        f.phase.push(ev.ph);
        f.cat.push(cat);
        self.store.counts.flows += 1;
        Ok(())
    }

    /// A metadata event (`ph` `M`): thread and process names, process labels.
    fn ingest_metadata(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        self.store.counts.metadata += 1;
        let name = self.text_of(ev.name)?.unwrap_or_default();
        match name.as_str() {
            "thread_name" => {
                let t = self.thread_of(&ev)?;
                let label = self.text_of(ev.arg_name)?;
                match &mut self.log {
                    Some(log) => log.thread_names.push((t, label)),
                    None => self.store.threads[t as usize].thread_name = label,
                }
            }
            "process_name" => {
                let (pid, _) = self.id_of(ev.pid)?;
                if let Some(l) = self.text_of(ev.arg_name)? {
                    self.store.process_names.push((pid, l));
                }
            }
            "process_labels" => {
                let (pid, _) = self.id_of(ev.pid)?;
                if let Some(l) = self.text_of(ev.arg_labels)? {
                    self.store.process_labels.push((pid, l));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The table a complete event goes to, decided by its category.
enum Table {
    Gpu(GpuKind),
    Frames,
    CpuOps,
    Annotations { on_gpu: bool },
    Launches { is_driver: bool },
}
