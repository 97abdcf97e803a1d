//! The test ledger: honest counts of the tests that ran as root and of those that did not
//! run. A test that cannot run (not root, a tool or a kernel feature missing) still passes
//! under libtest, so it also appends a line to `skipped`; a root test that does run appends
//! one to `ran`. `scripts/test.sh` points `BERTH_TEST_LEDGER` at a fresh directory per pass
//! and `scripts/test-ledger.sh` prints and judges the counts (as root: no skip allowed).
//!
//! One line per record, tab-separated: `kind binary test reason`, kind `ran`, `skip` (the
//! whole test did not run) or `part` (the test ran but left a part out). Each line is one
//! `write` on a file opened with `O_APPEND`, so parallel test threads and test binaries
//! never interleave their lines.
//!
//! Shared by the integration tests (`mod common`, `exec_support`, or `#[path]`) and the
//! library's unit tests (`berth::test_ledger`, `#[cfg(test)]` only).
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// The test hook that makes [`is_root`] say no to root: to try the skip path and its
/// ledger lines without another user. Not for anything else.
pub const PRETEND_NOT_ROOT: &str = "BERTH_TEST_PRETEND_NOT_ROOT";

/// Whether the tests run as root (euid 0), unless `BERTH_TEST_PRETEND_NOT_ROOT=1`.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
        && std::env::var_os(PRETEND_NOT_ROOT).is_none_or(|v| v.is_empty() || v == "0")
}

/// `$BERTH_TEST_LEDGER`, else `test-ledger` in cargo's temp dir for integration tests
/// (`CARGO_TARGET_TMPDIR`), else in the system temp dir (unit tests have no such dir).
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_TEST_LEDGER").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(t) => PathBuf::from(t).join("test-ledger"),
        None => std::env::temp_dir().join("berth-test-ledger"),
    }
}

/// The running test's name: libtest names each test's thread after it
/// (`module::test_name`); `?` when run another way.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_owned(),
        _ => "?".to_owned(),
    }
}

/// The test binary's name: the first part of the caller's `module_path!()`.
fn binary(module_path: &str) -> &str {
    module_path.split("::").next().unwrap_or(module_path)
}

fn append(file: &str, kind: &str, module_path: &str, reason: &str) {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let line = format!(
        "{kind}\t{}\t{}\t{}\n",
        clean(binary(module_path)),
        clean(&test_name()),
        clean(reason)
    );
    let dir = dir();
    let res = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file))?;
        // One write of the whole line: O_APPEND places it atomically after the others.
        f.write_all(line.as_bytes())
    });
    if let Err(e) = res {
        eprintln!("test ledger: cannot append to {}: {e}", dir.display());
    }
}

/// Records that the calling root test runs (it passed its root check).
pub fn ran(module_path: &str) {
    append("ran", "ran", module_path, "");
}

/// Records (and prints) that the calling test does not run; the caller returns.
pub fn skip(module_path: &str, reason: &str) {
    eprintln!("skipped: {reason}");
    append("skipped", "skip", module_path, reason);
}

/// Records (and prints) that the calling test leaves a part out; it goes on or returns.
pub fn skip_part(module_path: &str, reason: &str) {
    eprintln!("skipped part: {reason}");
    append("skipped", "part", module_path, reason);
}

/// As root: records the test as run and says true. Otherwise records the skip with
/// `reason` and says false (the caller returns).
pub fn root_or_skip(module_path: &str, reason: &str) -> bool {
    if is_root() {
        ran(module_path);
        true
    } else {
        skip(module_path, reason);
        false
    }
}
