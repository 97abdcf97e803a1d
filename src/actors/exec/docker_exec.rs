//! `docker exec` through the container's monitor: [`RunExec`], [`ResizeExecTty`], and the
//! exec events the monitors report ([`ExecEvent`]).
//!
//! The exec actor keeps no state of its own for execs: the store holds the exec records,
//! the monitor holds the processes and their stdio. A start is one request on the
//! monitor's socket (on a blocking thread), whose connection then is the exec's stream;
//! the exits arrive on the connection the actor already watches the monitor on (its
//! control socket, or its watch after a restore) and go to the subscriber.

use actix::prelude::*;

use super::client::ExecEvents;
use super::messages::{
    ExecEvent, ExecRunning, PrepareExec, ResizeExecTty, RunExec, SubscribeExecEvents,
};
use super::{ExecActor, ExecError, expect_ok, request};
use crate::monitor::proto::{ExecState, SockReply, SockRequest};

impl ExecActor {
    /// Where the exec exits of container `id`'s monitor go.
    pub(super) fn exec_events(&self, id: &str) -> ExecEvents {
        ExecEvents {
            container_id: id.to_owned(),
            to: self.exec_events.clone(),
        }
    }

    /// A container watched again after a restart runs (or ran) `execs`: the store
    /// records them again.
    pub(super) fn restored_execs(&self, id: &str, execs: Vec<ExecState>) {
        if execs.is_empty() {
            return;
        }
        if let Some(r) = &self.exec_events {
            r.do_send(ExecEvent::Restored {
                container_id: id.to_owned(),
                execs,
            });
        }
    }
}

impl Handler<SubscribeExecEvents> for ExecActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribeExecEvents, _: &mut Self::Context) {
        self.exec_events = Some(msg.0);
    }
}

impl Handler<PrepareExec> for ExecActor {
    type Result = ();
    fn handle(&mut self, _: PrepareExec, _: &mut Self::Context) {
        if let Some(w) = &self.warmup {
            w.poke();
        }
    }
}

impl Handler<RunExec> for ExecActor {
    type Result = ResponseFuture<Result<ExecRunning, ExecError>>;
    fn handle(&mut self, msg: RunExec, _: &mut Self::Context) -> Self::Result {
        if let Some(w) = &self.warmup {
            w.poke();
        }
        let dir = self.dir_of(&msg.container_id);
        let id = msg.container_id;
        let detach = msg.spec.detach;
        let span = tracing::debug_span!("run_exec", container_id = %id, exec_id = %msg.spec.id);
        let fut = async move {
            let (sock, reply) =
                request(id.clone(), dir, SockRequest::Exec(Box::new(msg.spec))).await?;
            match reply {
                SockReply::ExecStarted { pid } => Ok(ExecRunning {
                    pid,
                    stream: (!detach).then_some(sock),
                }),
                SockReply::ExecFailed { message } => Err(ExecError::StartFailed { id, message }),
                other => Err(match expect_ok(id.clone(), other) {
                    Err(e) => e,
                    Ok(()) => ExecError::Monitor {
                        id,
                        source: std::io::Error::other("unexpected reply to an exec"),
                    },
                }),
            }
        };
        Box::pin(tracing::Instrument::instrument(fut, span))
    }
}

impl Handler<ResizeExecTty> for ExecActor {
    type Result = ResponseFuture<Result<(), ExecError>>;
    fn handle(&mut self, msg: ResizeExecTty, _: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.container_id);
        Box::pin(async move {
            let req = SockRequest::ResizeExec {
                id: msg.exec_id,
                height: msg.height,
                width: msg.width,
            };
            let (_s, reply) = request(msg.container_id.clone(), dir, req).await?;
            expect_ok(msg.container_id, reply)
        })
    }
}
