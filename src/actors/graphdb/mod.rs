//! GraphDbActor: the SQLite graph of container names and links (seed step 4.6).
//!
//! State: one `rusqlite::Connection` to `<data-root>/linkgraph.db`, opened by `Init` and
//! closed by `Shutdown`. Threads: the actor runs on a one-thread `SyncArbiter`, so SQLite's
//! blocking calls never stall an actix arbiter. The schema is the seed's: `entity` rows
//! (container ids; `0` is the root) and `edge` rows (`parent_id`, `name`, `entity_id`), so
//! the name `/web` is the edge `0 -web-> <id>` and the link `/web/db` is `<web> -db-> <db>`.
//!
//! Architecture invariant: only GraphDbActor touches linkgraph.db.

pub mod error;
pub mod messages;
pub mod schema;

use std::path::PathBuf;

use actix::prelude::*;
use rusqlite::Connection;

pub use error::GraphDbError;
pub use messages::*;

use super::{Init, LifecycleError, Shutdown};

/// The name graph. See the module docs.
#[derive(Debug)]
pub struct GraphDbActor {
    path: PathBuf,
    /// `None` before `Init` and after `Shutdown`.
    conn: Option<Connection>,
}

impl GraphDbActor {
    /// The actor for `<data_root>/linkgraph.db`; nothing is opened until `Init`.
    pub fn new(path: PathBuf) -> Self {
        GraphDbActor { path, conn: None }
    }

    fn conn(&mut self) -> Result<&mut Connection, GraphDbError> {
        self.conn.as_mut().ok_or(GraphDbError::Closed)
    }
}

impl Actor for GraphDbActor {
    type Context = SyncContext<Self>;
}

impl Handler<Init> for GraphDbActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let conn = schema::open(&self.path).map_err(|e| LifecycleError::from_error(&e))?;
        self.conn = Some(conn);
        Ok(())
    }
}

impl Handler<Shutdown> for GraphDbActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        if let Some(conn) = self.conn.take() {
            conn.close().map_err(|(_, source)| {
                LifecycleError::from_error(&GraphDbError::Sqlite {
                    op: "close",
                    source,
                })
            })?;
        }
        Ok(())
    }
}

impl Handler<ReserveName> for GraphDbActor {
    type Result = Result<(), GraphDbError>;
    fn handle(&mut self, msg: ReserveName, _: &mut Self::Context) -> Self::Result {
        schema::reserve_name(self.conn()?, &msg.name, &msg.id)
    }
}

impl Handler<ReleaseEntity> for GraphDbActor {
    type Result = Result<(), GraphDbError>;
    fn handle(&mut self, msg: ReleaseEntity, _: &mut Self::Context) -> Self::Result {
        schema::purge(self.conn()?, &msg.id)
    }
}

impl Handler<RenameEntity> for GraphDbActor {
    type Result = Result<(), GraphDbError>;
    fn handle(&mut self, msg: RenameEntity, _: &mut Self::Context) -> Self::Result {
        schema::rename(self.conn()?, &msg.id, &msg.old, &msg.new)
    }
}

impl Handler<AddLinks> for GraphDbActor {
    type Result = Result<(), GraphDbError>;
    fn handle(&mut self, msg: AddLinks, _: &mut Self::Context) -> Self::Result {
        schema::add_links(self.conn()?, &msg.parent, &msg.links)
    }
}

impl Handler<RemoveLink> for GraphDbActor {
    type Result = Result<bool, GraphDbError>;
    fn handle(&mut self, msg: RemoveLink, _: &mut Self::Context) -> Self::Result {
        schema::remove_link(self.conn()?, &msg.parent, &msg.alias)
    }
}

impl Handler<ListLinks> for GraphDbActor {
    type Result = Result<Vec<(String, String, String)>, GraphDbError>;
    fn handle(&mut self, _: ListLinks, _: &mut Self::Context) -> Self::Result {
        schema::list_links(self.conn()?)
    }
}

impl Handler<ListNames> for GraphDbActor {
    type Result = Result<Vec<(String, String)>, GraphDbError>;
    fn handle(&mut self, _: ListNames, _: &mut Self::Context) -> Self::Result {
        schema::list_names(self.conn()?)
    }
}
