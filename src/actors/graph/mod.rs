//! GraphActor: graph drivers, layers, images, tags and volumes (seed step 4.4).

pub mod archive;
pub mod changes;
pub mod error;
pub mod messages;
pub mod reference;

use std::sync::Arc;

use actix::prelude::*;

pub use error::GraphError;
pub use messages::*;

use super::{Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;

/// The graph subsystem. See the module docs.
#[derive(Debug)]
pub struct GraphActor {
    #[allow(dead_code)]
    config: Arc<DaemonConfig>,
}

impl GraphActor {
    pub fn new(config: Arc<DaemonConfig>) -> Self {
        GraphActor { config }
    }
}

impl Actor for GraphActor {
    type Context = Context<Self>;
}

impl Handler<Init> for GraphActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<Shutdown> for GraphActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<ImportImage> for GraphActor {
    type Result = Result<String, GraphError>;
    fn handle(&mut self, _: ImportImage, _: &mut Self::Context) -> Self::Result {
        Err(GraphError::ImageNotFound {
            reference: "-".into(),
        })
    }
}

impl Handler<ListImages> for GraphActor {
    type Result = MessageResult<ListImages>;
    fn handle(&mut self, _: ListImages, _: &mut Self::Context) -> Self::Result {
        MessageResult(Vec::new())
    }
}

impl Handler<ResolveImage> for GraphActor {
    type Result = Result<ImageInfo, GraphError>;
    fn handle(&mut self, msg: ResolveImage, _: &mut Self::Context) -> Self::Result {
        Err(GraphError::ImageNotFound {
            reference: msg.reference,
        })
    }
}

impl Handler<CreateRwLayer> for GraphActor {
    type Result = Result<crate::monitor::spec::RootfsSpec, GraphError>;
    fn handle(&mut self, msg: CreateRwLayer, _: &mut Self::Context) -> Self::Result {
        Err(GraphError::ImageNotFound {
            reference: msg.image_id,
        })
    }
}

impl Handler<RemoveRwLayer> for GraphActor {
    type Result = Result<(), GraphError>;
    fn handle(&mut self, _: RemoveRwLayer, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<GetDriverInfo> for GraphActor {
    type Result = MessageResult<GetDriverInfo>;
    fn handle(&mut self, _: GetDriverInfo, _: &mut Self::Context) -> Self::Result {
        MessageResult(DriverInfo {
            name: "vfs".into(),
            status: Vec::new(),
            images: 0,
        })
    }
}
