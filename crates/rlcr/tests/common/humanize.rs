//! The real Humanize runtime for tests: the vendored snapshot
//! (`../shared/vendor/humanize-0ec921a.tar.gz`, humania-org/humanize 1.16.0 at commit
//! 0ec921a) unpacked into a temporary directory, plus a stub `codex` (the only program
//! of the runtime's that needs a network). Shared by the rlcr tests and, through
//! `#[path]`, the workspace tests (capstone).
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The vendored snapshot's file name.
pub const VENDORED: &str = "humanize-0ec921a.tar.gz";

/// `<shared>/vendor`: beside the shared fixtures (`$VLLM_SOTA_FIXTURES/../vendor`, else
/// `<repo>/../shared/vendor`), or `$VLLM_SOTA_VENDOR`.
pub fn vendor_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VLLM_SOTA_VENDOR") {
        return PathBuf::from(d);
    }
    vllm_sota_core::refs::fixtures_dir().join("../vendor")
}

/// A usable copy of the real runtime.
pub struct RealRuntime {
    /// The runtime root (holds scripts/setup-rlcr-loop.sh, hooks/, prompt-template/).
    pub root: PathBuf,
    /// The directory holding the stub `codex`; the stub appends its arguments to
    /// `<bin>/codex-calls.log` and answers `codex exec` with a review that carries the
    /// `Mainline Progress Verdict` line the stop hook requires.
    pub bin: PathBuf,
}

/// Stub `codex`: records each call; `exec` reads the prompt and prints a review.
const STUB_CODEX: &str = r#"#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/codex-calls.log"
if [[ "${1:-}" == "exec" ]]; then
    cat > /dev/null
    printf 'Review of the round.\n\nMainline Progress Verdict: ADVANCED\n\n- [P2] continue with the next round\n'
fi
exit 0
"#;

impl RealRuntime {
    /// PATH with the stub codex first, then this process's PATH.
    pub fn path_with_codex(&self) -> OsString {
        let mut dirs = vec![self.bin.clone()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(dirs).expect("PATH joins")
    }

    /// This process's PATH without any directory holding a `codex`.
    pub fn path_without_codex(&self) -> OsString {
        let dirs: Vec<PathBuf> =
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .filter(|d| !d.join("codex").exists())
                .collect();
        std::env::join_paths(dirs).expect("PATH joins")
    }

    /// A PATH where every program of this process's PATH except `program` is reachable
    /// (links in `<dir>`), plus the stub codex.
    pub fn path_without(&self, program: &str, dir: &Path) -> OsString {
        std::fs::create_dir_all(dir).unwrap();
        for d in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = e.file_name();
                let link = dir.join(&name);
                if name != program && !link.exists() {
                    let _ = std::os::unix::fs::symlink(e.path(), link);
                }
            }
        }
        std::env::join_paths([self.bin.clone(), dir.to_path_buf()]).expect("PATH joins")
    }

    /// Calls the stub codex received, one line each.
    pub fn codex_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.bin.join("codex-calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Unpack the vendored runtime into `<dir>/humanize-runtime` and write the stub codex
/// into `<dir>/stub-bin`. None (after a loud message) when the snapshot is missing
/// outside CI; in CI (`CI=true`) a missing snapshot fails the test.
pub fn real_runtime(dir: &Path) -> Option<RealRuntime> {
    let tarball = vendor_dir().join(VENDORED);
    if !tarball.is_file() {
        let msg = format!(
            "the vendored Humanize runtime {} is missing (expected ../shared/vendor beside the checkout, or set VLLM_SOTA_VENDOR): this test of the real runtime cannot run",
            tarball.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
        return None;
    }
    let unpack = dir.join("humanize-runtime-unpack");
    std::fs::create_dir_all(&unpack).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpack)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf {} failed", tarball.display());
    let root = unpack.join("humanize");
    assert!(
        root.join("scripts/setup-rlcr-loop.sh").is_file(),
        "{} has no humanize/scripts/setup-rlcr-loop.sh",
        tarball.display()
    );
    let bin = dir.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let codex = bin.join("codex");
    std::fs::write(&codex, STUB_CODEX).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(RealRuntime { root, bin })
}
