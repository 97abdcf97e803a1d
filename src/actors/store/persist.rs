//! Ordered disk writes for container records, off the actor's thread.
//!
//! Writes for one container must land in the order they were made (a fast exit's
//! "exited" must not be overwritten by the "running" written just before it), and none
//! may run on an actix arbiter. Jobs are sharded by container id over a few writer
//! threads, so one container's jobs stay in order while different containers' jobs run
//! side by side.

use std::io;
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() -> io::Result<()> + Send>;
type Queue = mpsc::Sender<(Job, Option<oneshot::Sender<io::Result<()>>>)>;

const SHARDS: usize = 2;

/// A handle to the writer threads; cheap to clone.
#[derive(Debug, Clone)]
pub struct Persister {
    shards: Vec<Queue>,
}

impl Persister {
    pub fn start() -> io::Result<Persister> {
        let mut shards = Vec::with_capacity(SHARDS);
        for i in 0..SHARDS {
            let (tx, rx) = mpsc::channel::<(Job, Option<oneshot::Sender<io::Result<()>>>)>();
            std::thread::Builder::new()
                .name(format!("store-writer-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    for (job, done) in rx {
                        let res = job();
                        if let Err(e) = &res {
                            tracing::error!(error = %e, "container record write failed");
                        }
                        if let Some(done) = done {
                            let _ = done.send(res);
                        }
                    }
                })?;
            shards.push(tx);
        }
        Ok(Persister { shards })
    }

    fn shard(&self, key: &str) -> &Queue {
        let h = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.shards[h % self.shards.len()]
    }

    /// Queues `job` behind the earlier jobs for `key` and returns when it has run.
    pub async fn run(
        &self,
        key: &str,
        job: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.shard(key)
            .send((Box::new(job), Some(tx)))
            .map_err(|_| io::Error::other("record writer stopped"))?;
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("record writer stopped")))
    }

    /// Queues `job` behind the earlier jobs for `key`; a failure is logged.
    pub fn queue(&self, key: &str, job: impl FnOnce() -> io::Result<()> + Send + 'static) {
        if self.shard(key).send((Box::new(job), None)).is_err() {
            tracing::error!("record writer stopped; a container record was not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn jobs_for_one_key_run_in_order() {
        let p = Persister::start().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let log = log.clone();
            p.queue("abc", move || {
                log.lock().unwrap().push(i);
                Ok(())
            });
        }
        p.run("abc", || Ok(())).await.unwrap();
        assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }
}
