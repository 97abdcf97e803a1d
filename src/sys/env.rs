//! Process environment changes, allowed only before any thread starts.

use std::ffi::OsStr;

/// Sets an environment variable. Call only while the process is single-threaded
/// (berthd's `main` before the actix System and any runtime start).
pub fn set_var_before_threads(key: &str, value: &OsStr) {
    // SAFETY: the callers run before any other thread exists, so no thread can read the
    // environment concurrently (the reason `set_var` is unsafe).
    unsafe { std::env::set_var(key, value) };
}
