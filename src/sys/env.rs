//! Process environment changes, allowed only before any thread starts.

use std::ffi::OsStr;

/// Sets an environment variable. Call only while the process is single-threaded
/// (berthd's `main` before the actix System and any runtime start).
pub fn set_var_before_threads(key: &str, value: &OsStr) {
    // SAFETY: the callers run before any other thread exists, so no thread can read the
    // environment concurrently (the reason `set_var` is unsafe).
    unsafe { std::env::set_var(key, value) };
}

/// Removes an environment variable; the same rule as [`set_var_before_threads`].
pub fn remove_var_before_threads(key: &str) {
    // SAFETY: as in `set_var_before_threads`: no other thread exists yet.
    unsafe { std::env::remove_var(key) };
}
