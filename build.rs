//! Build facts for `berthd`: the linking mode of the release binary and the values that
//! `/version` reports about the build.
//!
//! Linking: the release `berthd` is a position-dependent executable (`-no-pie`). Every
//! container has a monitor, which is berthd re-executed. A PIE binary is relocated at
//! load time, and the pages holding its relocated pointers (vtables, string tables)
//! become private to each process: about 350 KiB per monitor. A fixed-address binary has
//! those resolved at link time, so the pages stay shared, and a monitor's private memory
//! drops to about 170 KiB. (Go's dockerd is not PIE either.) Debug builds keep PIE.
//!
//! Build facts, as `rustc-env` variables read with `env!`:
//! - `BERTH_GIT_COMMIT`: `git rev-parse --short=7 HEAD` when the source is a git
//!   checkout, as dockerd's `GitCommit`; a packager building from a tarball may set
//!   `BERTH_GIT_COMMIT` itself (as dockerd's `DOCKER_GITCOMMIT`). Otherwise empty: the
//!   build cannot know the commit, and an empty value is what dockerd reports then.
//! - `BERTH_GIT_COMMIT_FROM`: where that value came from, `env` (the variable), `git` or
//!   `none`, for the tests that hold the commit to the checkout's. (Cargo also puts the
//!   `rustc-env` variables in the environment of `cargo test`, so a test cannot tell an
//!   override by looking for `BERTH_GIT_COMMIT` there.)
//! - `BERTH_BUILD_TIME`: `SOURCE_DATE_EPOCH` (the reproducible-builds convention that
//!   Debian's dockerd uses for its `BuildTime`) in dockerd's format, else empty. A clock
//!   reading taken here would not be the build time: this script reruns only when its
//!   inputs change, not on every build of the crate.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|o| o == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bin=berthd=-no-pie");
    }
    let (commit, from) = git_commit();
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=BERTH_GIT_COMMIT_FROM={from}");
    println!("cargo:rustc-env=BERTH_BUILD_TIME={}", build_time());
}

/// Runs `git` in the package's directory; its trimmed stdout, if it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// The commit and where it came from: `env`, `git` or `none`.
fn git_commit() -> (String, &'static str) {
    println!("cargo:rerun-if-env-changed=BERTH_GIT_COMMIT");
    if let Ok(c) = std::env::var("BERTH_GIT_COMMIT") {
        return (c, "env");
    }
    let Some(commit) = git(&["rev-parse", "--short=7", "HEAD"]) else {
        return (String::new(), "none");
    };
    // Rerun when HEAD moves: HEAD itself (a checkout, a detached HEAD), the branch it
    // names (a commit) and packed-refs (a branch that `git gc` packed). The paths come
    // from git, so that a worktree's HEAD and the shared refs are both found. Only files
    // that exist are named: cargo reruns a script on every build for a missing one.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for name in watch {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    (commit, "git")
}

fn build_time() -> String {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(rfc3339_utc)
        .unwrap_or_default()
}

/// `secs` since the epoch as dockerd prints `BuildTime`
/// (`2026-05-07T21:09:36.000000000+00:00`), without a date crate in the build script.
fn rfc3339_utc(secs: i64) -> Option<String> {
    if secs < 0 {
        return None;
    }
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    Some(format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.000000000+00:00"
    ))
}
