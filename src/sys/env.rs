//! The process environment (changes allowed only before any thread starts) and the
//! allocator's settings.

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

/// Notes activity (an API request served). Once 100 ms pass without any, a thread
/// ("berth-trim") gives the allocator's free pages back to the kernel (`malloc_trim`): glibc
/// keeps what a burst freed in its arenas otherwise, and an idle daemon would hold the
/// high-water mark of its last burst.
pub fn note_heap_activity() {
    use std::sync::OnceLock;
    use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
    use std::time::Duration;
    static TRIMMER: OnceLock<Option<SyncSender<()>>> = OnceLock::new();
    let tx = TRIMMER.get_or_init(|| {
        let (tx, rx) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("berth-trim".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    loop {
                        match rx.recv_timeout(Duration::from_millis(100)) {
                            Ok(()) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    trim_heap();
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = tx {
        let _ = tx.try_send(());
    }
}

#[cfg(target_env = "gnu")]
fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the
    // kernel; it is thread-safe (it takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn trim_heap() {}
