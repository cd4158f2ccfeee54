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

    /// Store one event by its phase. Longer than 120 lines for a reason: one `match` on the
    /// phase, each arm a handful of column pushes; it runs once per event (over a million
    /// per trace), and keeping the arms in one function keeps them inlined together.
    pub(super) fn ingest(&mut self, ev: Ev<'_>) -> std::result::Result<(), String> {
        let opt_i = |s: Option<&[u8]>| s.and_then(parse_i64).unwrap_or(-1);
        match ev.ph {
            b'X' => {
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
                if let Some(kind) = gpu_kind {
                    let name = self.intern_val(ev.name)?;
                    let thread = self.thread_of(&ev)?;
                    let k = &mut self.store.kernels;
                    k.name.push(name);
                    k.ts_ns.push(ts);
                    k.dur_ns.push(dur);
                    k.thread.push(thread);
                    k.device.push(opt_i(ev.device) as i32);
                    k.stream.push(opt_i(ev.stream));
                    k.correlation.push(opt_i(ev.correlation));
                    k.external_id.push(opt_i(ev.external_id));
                    k.kind.push(kind);
                    k.grid.push(dim3(ev.grid));
                    k.block.push(dim3(ev.block));
                    let c = &mut self.store.counts;
                    match kind {
                        GpuKind::Kernel => c.kernels += 1,
                        GpuKind::Memcpy => c.memcpy += 1,
                        GpuKind::Memset => c.memset += 1,
                    }
                    return Ok(());
                }
                match cat {
                    b"python_function" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let f = &mut self.store.frames;
                        f.name.push(name);
                        f.ts_ns.push(ts);
                        f.dur_ns.push(dur);
                        f.thread.push(thread);
                        f.python_id.push(opt_i(ev.python_id));
                        f.parent_python_id.push(opt_i(ev.python_parent));
                        self.store.counts.python_functions += 1;
                    }
                    b"cpu_op" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let dims = match ev.input_dims {
                            Some(raw) => {
                                let s = std::str::from_utf8(raw)
                                    .map_err(|_| "Input Dims is not UTF-8")?;
                                self.store.names.intern(s)
                            }
                            None => NONE,
                        };
                        let c = &mut self.store.cpu_ops;
                        c.name.push(name);
                        c.ts_ns.push(ts);
                        c.dur_ns.push(dur);
                        c.thread.push(thread);
                        c.external_id.push(opt_i(ev.external_id));
                        c.input_dims.push(dims);
                        self.store.counts.cpu_ops += 1;
                    }
                    b"user_annotation" | b"gpu_user_annotation" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let on_gpu = cat == b"gpu_user_annotation";
                        let a = &mut self.store.annotations;
                        a.name.push(name);
                        a.ts_ns.push(ts);
                        a.dur_ns.push(dur);
                        a.thread.push(thread);
                        a.external_id.push(opt_i(ev.external_id));
                        a.on_gpu.push(on_gpu);
                        if on_gpu {
                            self.store.counts.gpu_user_annotations += 1
                        } else {
                            self.store.counts.user_annotations += 1
                        }
                    }
                    b"cuda_runtime" | b"cuda_driver" => {
                        let name = self.intern_val(ev.name)?;
                        let thread = self.thread_of(&ev)?;
                        let is_driver = cat == b"cuda_driver";
                        let l = &mut self.store.launches;
                        l.name.push(name);
                        l.ts_ns.push(ts);
                        l.dur_ns.push(dur);
                        l.thread.push(thread);
                        l.correlation.push(opt_i(ev.correlation));
                        l.external_id.push(opt_i(ev.external_id));
                        l.is_driver.push(is_driver);
                        if is_driver {
                            self.store.counts.driver += 1
                        } else {
                            self.store.counts.runtime += 1
                        }
                    }
                    _ => self.store.counts.other += 1,
                }
            }
            b's' | b'f' | b't' => {
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
            }
            b'M' => {
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
            }
            _ => self.store.counts.other += 1,
        }
        let _ = ev.bp;
        Ok(())
    }
}
