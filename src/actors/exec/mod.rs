//! ExecActor: runs container processes through per-container monitors (seed step 4.7).
//!
//! State: one entry per live monitor (its control connection). Threads: the actor runs on
//! its own arbiter; spawning a monitor (fork + exec) runs in `spawn_blocking`.
//! Architecture invariant: only ExecActor starts monitors, and only monitors fork
//! container processes.

pub mod error;
pub mod messages;

use std::sync::Arc;

use actix::prelude::*;

pub use error::ExecError;
pub use messages::*;

use super::{Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;

/// The exec subsystem. See the module docs.
#[derive(Debug)]
pub struct ExecActor {
    config: Arc<DaemonConfig>,
    exits: Option<Recipient<ContainerExited>>,
}

impl ExecActor {
    pub fn new(config: Arc<DaemonConfig>, monitor_exe: std::path::PathBuf) -> Self {
        let _ = monitor_exe;
        ExecActor {
            config,
            exits: None,
        }
    }
}

impl Actor for ExecActor {
    type Context = Context<Self>;
}

impl Handler<Init> for ExecActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        if self.config.exec_driver != "native" {
            let e = ExecError::UnknownDriver {
                name: self.config.exec_driver.clone(),
            };
            return Err(LifecycleError::from_error(&e));
        }
        Ok(())
    }
}

impl Handler<Shutdown> for ExecActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<SubscribeExits> for ExecActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribeExits, _: &mut Self::Context) {
        self.exits = Some(msg.0);
    }
}

impl Handler<StartContainer> for ExecActor {
    type Result = Result<Started, ExecError>;
    fn handle(&mut self, msg: StartContainer, _: &mut Self::Context) -> Self::Result {
        Err(ExecError::NotRunning { id: msg.spec.id })
    }
}

impl Handler<SignalContainer> for ExecActor {
    type Result = Result<(), ExecError>;
    fn handle(&mut self, msg: SignalContainer, _: &mut Self::Context) -> Self::Result {
        Err(ExecError::NotRunning { id: msg.id })
    }
}

impl Handler<AttachContainer> for ExecActor {
    type Result = Result<std::os::unix::net::UnixStream, ExecError>;
    fn handle(&mut self, msg: AttachContainer, _: &mut Self::Context) -> Self::Result {
        Err(ExecError::NotRunning { id: msg.id })
    }
}

impl Handler<ResizeContainer> for ExecActor {
    type Result = Result<(), ExecError>;
    fn handle(&mut self, msg: ResizeContainer, _: &mut Self::Context) -> Self::Result {
        Err(ExecError::NotRunning { id: msg.id })
    }
}

impl Handler<RestoreContainer> for ExecActor {
    type Result = Result<RestoreState, ExecError>;
    fn handle(&mut self, _: RestoreContainer, _: &mut Self::Context) -> Self::Result {
        Ok(RestoreState::Gone)
    }
}

impl Handler<CleanupContainer> for ExecActor {
    type Result = Result<(), ExecError>;
    fn handle(&mut self, _: CleanupContainer, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}
