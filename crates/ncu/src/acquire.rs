//! Getting the CSV pages of each side: capture under ncu, export a `.ncu-rep`, or take
//! the given CSVs; plus the harness's own timing. Child processes go through
//! [`crate::capture`]; a side that cannot be read becomes a [`SidePages::Blocked`] reason.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vllm_sota_core::ToolContext;

use crate::request::{
    CaptureSpec, HarnessResult, ImportSpec, NcuDigestRequest, SideFiles, TimingSpec,
};
use crate::rules::{self, RulesFile};
use crate::{capture, units};

pub(crate) fn check_version(v: &str) -> Result<()> {
    if v.is_empty()
        || v.len() > 100
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        || v.starts_with('.')
    {
        bail!(
            "version '{v}': use 1-100 letters, digits, '.', '_' or '-' (it names a folder), not starting with '.'"
        );
    }
    Ok(())
}

/// Where the digest goes.
pub(crate) fn output_dir(req: &NcuDigestRequest) -> Result<PathBuf> {
    match (&req.campaign_dir, &req.out_dir) {
        (Some(c), None) => Ok(vllm_sota_core::layout::CampaignPaths::open(c)?
            .ncu_digests_dir()
            .join(&req.version)),
        (None, Some(o)) => Ok(o.clone()),
        (Some(_), Some(_)) => bail!("give campaign_dir or out_dir, not both"),
        (None, None) => {
            bail!("give campaign_dir (digest to kernel/ncu-digests/<version>/) or out_dir")
        }
    }
}

/// The pages of one side, or why they could not be had.
pub(crate) enum SidePages {
    Pages(Vec<PathBuf>),
    Blocked(String),
}

pub(crate) fn detect_blocker(rules: &RulesFile, log_text: &str) -> Option<String> {
    rules
        .blocker_patterns
        .iter()
        .find(|p| log_text.contains(&p.pattern))
        .map(|p| {
            let line = log_text
                .lines()
                .find(|l| l.contains(&p.pattern))
                .unwrap_or("")
                .trim();
            format!(
                "{} — ncu said: {}",
                p.meaning,
                line.chars().take(300).collect::<String>()
            )
        })
}

/// One digest run's I/O state: where files go and what was run, read and warned.
pub(crate) struct Run<'a> {
    pub req: &'a NcuDigestRequest,
    pub rules: &'a RulesFile,
    pub out: PathBuf,
    pub ctx: &'a ToolContext,
    pub artifacts: Vec<PathBuf>,
    pub commands: Vec<String>,
    pub warnings: Vec<String>,
}

impl Run<'_> {
    /// Run one side's command, recorded in the report, its output logged to `log` (an
    /// artifact), under the spec's working directory and timeout (default 900 s).
    fn run_side(
        &mut self,
        argv: &[String],
        spec: &CaptureSpec,
        log: &Path,
    ) -> Result<capture::RunOutcome> {
        self.record(argv);
        self.artifacts.push(log.to_path_buf());
        capture::run_logged(
            argv,
            spec.cwd.as_deref(),
            log,
            None,
            Duration::from_secs(spec.timeout_s.unwrap_or(900)),
            self.ctx,
        )
    }

    fn record(&mut self, argv: &[String]) {
        self.commands
            .push(vllm_sota_core::redact::redact(&shell_join(argv)).into_owned());
    }

    /// One imported side: its CSV pages, else its `.ncu-rep` exported with ncu.
    pub(crate) fn import_side(
        &mut self,
        ncu: Option<&Path>,
        side: &str,
        files: &SideFiles,
    ) -> Result<SidePages> {
        let csvs: Vec<PathBuf> = files
            .details_csv
            .iter()
            .chain(files.raw_csv.iter())
            .cloned()
            .collect();
        if !csvs.is_empty() {
            self.artifacts.extend(csvs.iter().cloned());
            if files.ncu_rep.is_some() {
                self.warnings.push(format!(
                    "{side}: CSV pages given, so ncu_rep was not re-exported"
                ));
            }
            return Ok(SidePages::Pages(csvs));
        }
        let Some(rep) = &files.ncu_rep else {
            bail!("import.{side}: give ncu_rep, details_csv or raw_csv");
        };
        if !rep.is_file() {
            bail!("import.{side}.ncu_rep {} does not exist", rep.display());
        }
        match ncu {
            Some(n) => self.export(n, rep, side),
            None => Ok(SidePages::Blocked(format!(
                "ncu is not installed here, so {} cannot be exported: pass its CSV pages (details_csv / raw_csv) instead",
                rep.display()
            ))),
        }
    }

    /// Export the details and raw pages of a report.
    fn export(&mut self, ncu: &Path, report: &Path, side: &str) -> Result<SidePages> {
        let mut pages = Vec::new();
        for page in ["details", "raw"] {
            let csv = self.out.join(format!("{side}_{page}.csv"));
            let log = self.out.join(format!("{side}_{page}_export.log"));
            let argv = capture::ncu_export_argv(ncu, report, page);
            self.record(&argv);
            let r = capture::run_logged(
                &argv,
                None,
                &log,
                Some(&csv),
                Duration::from_secs(600),
                self.ctx,
            )?;
            let log_text = capture::log_tail(&log, 4000);
            if r.code != Some(0) {
                let why = detect_blocker(self.rules, &log_text).unwrap_or_else(|| {
                    format!(
                        "`ncu --import` of {} exited with {:?}: {}",
                        report.display(),
                        r.code,
                        log_text.trim()
                    )
                });
                return Ok(SidePages::Blocked(why));
            }
            self.artifacts.push(csv.clone());
            pages.push(csv);
        }
        Ok(SidePages::Pages(pages))
    }

    pub(crate) fn capture_side(
        &mut self,
        ncu: &Path,
        spec: &CaptureSpec,
        side: &str,
        argv: &[String],
    ) -> Result<SidePages> {
        if argv.is_empty() {
            bail!("capture.{side}_argv is empty");
        }
        let stem = self.out.join(side);
        let collect = capture::ncu_collect_argv(
            ncu,
            &self.req.kernel_regex,
            spec.count.unwrap_or(1).max(1),
            spec.launch_skip.unwrap_or(0),
            spec.kernel_name_base.as_deref(),
            &spec.extra_ncu_args,
            &stem,
            argv,
        );
        let log = self.out.join(format!("{side}_ncu.log"));
        let r = self.run_side(&collect, spec, &log)?;
        let log_text = capture::log_tail(&log, 20_000);
        if r.timed_out {
            return Ok(SidePages::Blocked(format!(
                "ncu run timed out after {:.0} s (log {})",
                r.wall_s,
                log.display()
            )));
        }
        let report = capture::report_for_stem(&stem);
        if let Some(why) = detect_blocker(self.rules, &log_text)
            && (report.is_none() || r.code != Some(0))
        {
            return Ok(SidePages::Blocked(why));
        }
        let Some(report) = report else {
            let tail: String = log_text
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ");
            return Ok(SidePages::Blocked(format!(
                "ncu exited with {:?} and wrote no report (log {}): {tail}",
                r.code,
                log.display()
            )));
        };
        if r.code != Some(0) {
            self.warnings.push(format!(
                "{side}: ncu exited with {:?} but wrote {}",
                r.code,
                report.display()
            ));
        }
        self.artifacts.push(report.clone());
        self.export(ncu, &report, side)
    }

    pub(crate) fn harness_timing(
        &mut self,
        spec: &CaptureSpec,
        t: &TimingSpec,
        side: &str,
        argv: &[String],
    ) -> Result<HarnessResult> {
        let time_re = regex::Regex::new(&t.time_regex)
            .with_context(|| format!("capture.timing.time_regex '{}'", t.time_regex))?;
        let err_re = t
            .error_regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .context("capture.timing.error_regex")?;
        if !matches!(t.time_unit.as_str(), "s" | "ms" | "us" | "ns") {
            bail!(
                "capture.timing.time_unit '{}': use s, ms, us or ns",
                t.time_unit
            );
        }
        let log = self.out.join(format!("{side}_harness.log"));
        let r = self.run_side(argv, spec, &log)?;
        let text = capture::log_tail(&log, 200_000);
        let time_us = capture::last_number(&text, &time_re)
            .map(|v| units::normalise(v, &t.time_unit).0 / 1e3);
        let err = err_re
            .as_ref()
            .and_then(|re| capture::last_number(&text, re));
        let correct = match (r.code, err, t.max_error) {
            (Some(c), _, _) if c != 0 => Some(false),
            (None, _, _) => Some(false),
            (_, Some(e), Some(m)) => Some(e <= m),
            (_, None, Some(_)) => None,
            _ => None,
        };
        if time_us.is_none() {
            self.warnings.push(format!(
                "{side}: harness output has no match for time_regex '{}' (log {})",
                t.time_regex,
                log.display()
            ));
        }
        let exit = match (r.code, r.timed_out) {
            (_, true) => format!("timed out after {:.0} s", r.wall_s),
            (Some(0), _) => "exit 0".to_string(),
            (Some(c), _) => {
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                format!(
                    "FAILED with exit {c} (last line: {}; log {})",
                    last.chars().take(200).collect::<String>(),
                    log.display()
                )
            }
            (None, _) => "killed by a signal".to_string(),
        };
        let note = format!(
            "{} run without ncu: {exit}{}{}{}",
            shell_join(argv),
            time_us
                .map(|t| format!(", time {} us", rules::fmt_num(t)))
                .unwrap_or_default(),
            err.map(|e| format!(", error {e}")).unwrap_or_default(),
            t.max_error
                .map(|m| format!(" (max allowed {m})"))
                .unwrap_or_default()
        );
        Ok(HarnessResult {
            time_us,
            correct,
            note: Some(note),
        })
    }
}

pub(crate) use vllm_sota_core::proc::shell_join;

/// Refuse an import whose candidate is the baseline's report: the same path, or a file
/// of the same kind with identical bytes. A digest of one report leaves `candidate` out.
pub(crate) fn check_distinct_inputs(spec: &ImportSpec) -> Result<()> {
    let Some(cand) = &spec.candidate else {
        return Ok(());
    };
    for (kind, b) in spec.baseline.files() {
        let Some((_, c)) = cand.files().into_iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        let same_path = match (std::fs::canonicalize(b), std::fs::canonicalize(c)) {
            (Ok(x), Ok(y)) => x == y,
            _ => b == c,
        };
        let same_bytes = !same_path
            && match (std::fs::metadata(b), std::fs::metadata(c)) {
                (Ok(mb), Ok(mc)) if mb.len() == mc.len() => {
                    matches!((std::fs::read(b), std::fs::read(c)), (Ok(x), Ok(y)) if x == y)
                }
                _ => false,
            };
        if same_path || same_bytes {
            bail!(
                "import.candidate.{kind} {} is {} import.baseline.{kind} {}: baseline and candidate would be the same measurement; leave import.candidate out for a digest of one report",
                c.display(),
                if same_path {
                    "the same file as"
                } else {
                    "byte-for-byte identical to"
                },
                b.display()
            );
        }
    }
    Ok(())
}
