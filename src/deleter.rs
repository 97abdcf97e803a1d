//! The background deleter: deletes, off the reply path, directories that a removal has
//! already renamed to a doomed name.
//!
//! A removal that must be durable renames what it removes to a doomed name beside it
//! ([`rename_doomed`]: `.<name>.removing-<hex>`; the graph driver's layer dirs use
//! `<id>-removing-<hex>`) and fsyncs the parent. That rename is the commit point: a crash
//! leaves the old name or the doomed one, and start-up sweeps doomed names. What is left,
//! unlinking the contents, is no part of the answer and is handed to a [`Deleter`].
//!
//! A `Deleter` is one queue served by one thread, `berth-deleter`, started when a path is
//! queued and none is running, and gone after [`IDLE`] without work: a burst of removals
//! costs one thread, an idle daemon none. Clones share the queue. [`Deleter::drain`] waits
//! until everything queued is deleted, so that a clean stop can leave no doomed dirs. A
//! deletion that fails is logged and left for the next start-up's sweep.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long the worker thread waits for more work before it ends.
const IDLE: Duration = Duration::from_secs(2);

/// The marker of a doomed name made by [`rename_doomed`].
const DOOMED_MARK: &str = ".removing-";

/// The doomed name for `path`: `.<name>.removing-<8 hex>` in the same directory. None
/// for a path without a parent or a name.
pub fn doomed_path(path: &Path) -> Option<PathBuf> {
    let (parent, name) = (path.parent()?, path.file_name()?);
    Some(parent.join(format!(
        ".{}{DOOMED_MARK}{}",
        name.to_string_lossy(),
        hex::encode(rand::random::<[u8; 4]>())
    )))
}

/// True for a name that [`rename_doomed`] makes.
pub fn is_doomed_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(DOOMED_MARK)
}

/// Renames `path` to its doomed name ([`doomed_path`]) and returns that name; None when
/// `path` does not exist. The parent is not fsynced: the caller does that (once for
/// several renames in one directory, or alongside other fsyncs).
pub fn rename_doomed(path: &Path) -> io::Result<Option<PathBuf>> {
    let Some(doomed) = doomed_path(path) else {
        return Ok(None);
    };
    match fs::rename(path, &doomed) {
        Ok(()) => Ok(Some(doomed)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default)]
struct Queue {
    paths: VecDeque<PathBuf>,
    /// A worker thread is running (deleting, or waiting for work).
    worker: bool,
    /// Paths taken off `paths` whose deletion has not finished.
    in_flight: usize,
    /// Worker threads started so far.
    started: u64,
}

#[derive(Debug)]
struct Shared {
    /// How long the worker waits for more work before it ends ([`IDLE`]).
    idle: Duration,
    queue: Mutex<Queue>,
    /// Signalled when a path is queued: wakes the worker.
    queued: Condvar,
    /// Signalled when a deletion finishes: wakes [`Deleter::drain`].
    finished: Condvar,
}

/// A handle to the deletion queue; cheap to clone. See the module docs.
#[derive(Debug, Clone)]
pub struct Deleter {
    shared: Arc<Shared>,
}

impl Default for Deleter {
    fn default() -> Self {
        Deleter::with_idle(IDLE)
    }
}

impl Deleter {
    pub fn new() -> Deleter {
        Deleter::default()
    }

    fn with_idle(idle: Duration) -> Deleter {
        Deleter {
            shared: Arc::new(Shared {
                idle,
                queue: Mutex::default(),
                queued: Condvar::new(),
                finished: Condvar::new(),
            }),
        }
    }

    /// Queues `path` (a directory or a file) for deletion and returns at once.
    pub fn delete(&self, path: PathBuf) {
        self.delete_all([path]);
    }

    /// Queues every path of `paths` for deletion and returns at once.
    pub fn delete_all(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut q = self.shared.queue.lock();
        let before = q.paths.len();
        q.paths.extend(paths);
        if q.paths.len() == before {
            return;
        }
        if q.worker {
            self.shared.queued.notify_one();
            return;
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("berth-deleter".into())
            .spawn(move || work(&shared));
        match spawned {
            Ok(_) => {
                q.worker = true;
                q.started += 1;
            }
            Err(e) => {
                // No thread: delete here, as a removal did before there was a deleter.
                tracing::warn!(error = %e, "deleter thread not started; deleting in place");
                let paths: Vec<PathBuf> = q.paths.drain(..).collect();
                q.in_flight += paths.len();
                drop(q);
                for p in &paths {
                    delete_now(p);
                }
                self.shared.queue.lock().in_flight -= paths.len();
                self.shared.finished.notify_all();
            }
        }
    }

    /// Blocks until every path queued so far (and any queued meanwhile) is deleted, or
    /// its deletion has failed and been logged. Call it on a blocking thread.
    pub fn drain(&self) {
        let mut q = self.shared.queue.lock();
        while !q.paths.is_empty() || q.in_flight > 0 {
            self.shared.finished.wait(&mut q);
        }
    }
}

/// The worker: deletes queued paths in order, and ends when idle for `shared.idle`.
fn work(shared: &Shared) {
    let mut q = shared.queue.lock();
    loop {
        if let Some(path) = q.paths.pop_front() {
            q.in_flight += 1;
            parking_lot::MutexGuard::unlocked(&mut q, || delete_now(&path));
            q.in_flight -= 1;
            shared.finished.notify_all();
            continue;
        }
        // Ends only with the lock held and nothing queued, so a path queued later finds
        // `worker` false and starts a new thread.
        if shared.queued.wait_for(&mut q, shared.idle).timed_out() && q.paths.is_empty() {
            q.worker = false;
            return;
        }
    }
}

/// Deletes `path` (a tree or a file); a failure is logged, and the doomed name left for
/// the next start-up's sweep.
fn delete_now(path: &Path) {
    let res = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => tracing::trace!(path = %path.display(), "doomed path deleted"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "doomed path not deleted; the next start-up removes it")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, name: &str) -> PathBuf {
        let p = root.join(name);
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("a/b/f"), b"x").unwrap();
        fs::write(p.join("g"), b"y").unwrap();
        p
    }

    use crate::util::sorted_names as names;

    #[test]
    fn doomed_names() {
        let d = doomed_path(Path::new("/x/containers/abc")).unwrap();
        assert_eq!(d.parent(), Some(Path::new("/x/containers")));
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".abc.removing-"), "{name}");
        assert_eq!(name.len(), ".abc.removing-".len() + 8);
        assert!(is_doomed_name(&name));
        assert!(!is_doomed_name("abc"));
        assert!(!is_doomed_name(".abc.tmp-1234"));
        // The driver's layer names are its own to sweep.
        assert!(!is_doomed_name("abc-removing-1234"));
        assert!(doomed_path(Path::new("/")).is_none());
    }

    #[test]
    fn rename_doomed_moves_the_dir_and_tolerates_a_missing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tree(tmp.path(), "victim");
        let doomed = rename_doomed(&dir).unwrap().unwrap();
        assert!(!dir.exists());
        assert!(doomed.join("a/b/f").is_file());
        assert_eq!(doomed.parent(), Some(tmp.path()));
        assert!(rename_doomed(&dir).unwrap().is_none());
    }

    #[test]
    fn queued_paths_are_deleted_and_drain_waits_for_them() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Deleter::new();
        let mut queued = Vec::new();
        for i in 0..20 {
            queued.push(tree(tmp.path(), &format!("t{i}")));
        }
        let file = tmp.path().join("file");
        fs::write(&file, b"z").unwrap();
        queued.push(file);
        // A path that is already gone is not an error.
        queued.push(tmp.path().join("missing"));
        let (first, rest) = queued.split_first().unwrap();
        d.delete(first.clone());
        d.delete_all(rest.to_vec());
        d.drain();
        assert!(names(tmp.path()).is_empty());
        // Draining an empty queue returns at once.
        d.drain();
    }

    #[test]
    fn one_worker_serves_a_burst_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Deleter::new();
        std::thread::scope(|s| {
            for t in 0..8 {
                let (d, root) = (d.clone(), tmp.path());
                s.spawn(move || {
                    for i in 0..10 {
                        d.delete(tree(root, &format!("t{t}-{i}")));
                    }
                });
            }
        });
        d.drain();
        assert!(names(tmp.path()).is_empty());
        let q = d.shared.queue.lock();
        assert!(q.paths.is_empty());
        assert_eq!(q.in_flight, 0);
        // The worker stays for a while after its last path, so one served all 80.
        assert_eq!(q.started, 1);
    }

    #[test]
    fn the_worker_ends_when_idle_and_a_new_one_starts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Deleter::with_idle(Duration::from_millis(20));
        d.delete(tree(tmp.path(), "one"));
        d.drain();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while d.shared.queue.lock().worker {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker did not end when idle"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        d.delete(tree(tmp.path(), "two"));
        d.drain();
        assert!(names(tmp.path()).is_empty());
        assert_eq!(d.shared.queue.lock().started, 2);
    }

    #[test]
    fn a_failed_deletion_does_not_stall_the_queue() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"z").unwrap();
        let d = Deleter::new();
        // ENOTDIR: logged, and the next path is still deleted.
        d.delete(file.join("sub"));
        d.delete(tree(tmp.path(), "after"));
        d.drain();
        assert_eq!(names(tmp.path()), vec!["file".to_owned()]);
    }
}
