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

/// Caps glibc's malloc arenas. Each thread that allocates would otherwise get an arena of
/// its own (up to 8 per core), and their half-used pages add up in the daemon's resident
/// memory; berthd's threads allocate little, so two arenas serve them all.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only tunes glibc's allocator; called before any thread starts, and
    // a refused setting (return 0) leaves the defaults in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
