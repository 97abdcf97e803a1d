//! The daemon's subsystems, one actix actor each.
//!
//! Start-up order (each `Init` awaited before the next): GraphDb → Graph → Network →
//! Exec → ContainerStore; shutdown walks the same list in reverse. See
//! [`supervisor::DaemonSupervisor`] and ARCHITECTURE.md.

pub mod exec;
pub mod graph;
pub mod graphdb;
pub mod network;
pub mod store;
pub mod supervisor;

use std::fmt;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::metrics::metrics;

/// From `DaemonSupervisor`, in start-up order: the actor opens its state and checks its
/// prerequisites. An error stops the start-up.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), LifecycleError>")]
pub struct Init;

/// From `DaemonSupervisor`, in reverse start-up order: the actor releases what it holds.
/// An error is logged and the shutdown goes on.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), LifecycleError>")]
pub struct Shutdown;

/// Why an actor's `Init` or `Shutdown` failed: the actor's own error, rendered with its
/// causes, so that the supervisor can print one line.
#[derive(Debug)]
pub struct LifecycleError(pub String);

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LifecycleError {}

impl LifecycleError {
    /// Renders `err` and its chain of sources as `a: b: c`.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> Self {
        LifecycleError(crate::util::error_chain(err))
    }
}

/// An actor's address with the bookkeeping a dashboard needs: every message sent through
/// it is counted, timed from send to reply, and counted in the mailbox-depth gauge while
/// unanswered.
pub struct ActorClient<A: Actor> {
    name: &'static str,
    addr: Addr<A>,
}

impl<A: Actor> Clone for ActorClient<A> {
    fn clone(&self) -> Self {
        ActorClient {
            name: self.name,
            addr: self.addr.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for ActorClient<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorClient")
            .field("name", &self.name)
            .finish()
    }
}

impl<A: Actor> ActorClient<A> {
    pub fn new(name: &'static str, addr: Addr<A>) -> Self {
        ActorClient { name, addr }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Sends `msg` and awaits the reply, with metrics, for as long as the work takes: an
    /// import, a `docker stop -t 300` or a wait must not be cut short by berthd (timeouts
    /// belong to the client, which may go away; the reply then finds no one). Fails only
    /// when the actor is gone (`MailboxError::Closed`).
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.observe::<M, _>(self.addr.send(msg)).await
    }

    /// As [`ActorClient::send`], giving up after `timeout` (`MailboxError::Timeout`): for
    /// internal callers that must go on without the reply (the supervisor's `Init` and
    /// `Shutdown`).
    pub async fn send_timeout<M>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<M::Result, MailboxError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.observe::<M, _>(self.addr.send(msg).timeout(timeout))
            .await
    }

    /// Counts and times one request while it is unanswered.
    async fn observe<M, F>(&self, request: F) -> Result<M::Result, MailboxError>
    where
        M: Message,
        F: std::future::Future<Output = Result<M::Result, MailboxError>>,
    {
        let m = metrics();
        let message = short_type_name::<M>();
        // A guard, so that a caller that goes away (a client hanging up on a long stop)
        // does not leave the gauge raised.
        let depth = Unanswered::new(m.actor_mailbox.with_label_values(&[self.name]));
        let started = Instant::now();
        let res = request.await;
        drop(depth);
        m.actor_latency
            .with_label_values(&[self.name, message])
            .observe(started.elapsed().as_secs_f64());
        let result = if res.is_ok() { "ok" } else { "mailbox_error" };
        m.actor_messages
            .with_label_values(&[self.name, message, result])
            .inc();
        res
    }

    /// Sends an event that needs no reply. Counted, not timed.
    pub fn do_send<M>(&self, msg: M)
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        metrics()
            .actor_messages
            .with_label_values(&[self.name, short_type_name::<M>(), "event"])
            .inc();
        self.addr.do_send(msg);
    }
}

/// Holds the mailbox-depth gauge one higher while a request is unanswered.
struct Unanswered(prometheus::IntGauge);

impl Unanswered {
    fn new(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        Unanswered(gauge)
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `crate::actors::graph::messages::ImportImage` → `ImportImage`.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_paths_and_generics() {
        assert_eq!(short_type_name::<Init>(), "Init");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec");
    }
}
