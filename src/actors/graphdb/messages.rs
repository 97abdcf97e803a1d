//! Messages of the [`GraphDbActor`](super::GraphDbActor).

use actix::prelude::*;

use super::error::GraphDbError;

/// From `ContainerStoreActor` on create (and on `Init`, to re-register names of records
/// the database lost). Reserves `/name` for container `id`; idempotent for the same id;
/// `NameInUse` when another container holds it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphDbError>")]
pub struct ReserveName {
    /// With or without the leading `/`.
    pub name: String,
    pub id: String,
}

/// From `ContainerStoreActor` on remove (and to undo a failed create): drops the
/// container's entity with its names and links.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphDbError>")]
pub struct ReleaseEntity {
    pub id: String,
}

/// From `ContainerStoreActor` (`docker rename`): moves container `id` from `old` to `new`
/// at once; `NameInUse` when another holds `new`. The database's commit is the rename.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphDbError>")]
pub struct RenameEntity {
    pub id: String,
    pub old: String,
    pub new: String,
}

/// From `ContainerStoreActor` on create (`--link child:alias`): the links of container
/// `parent`, `(alias, child id)`, in one transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphDbError>")]
pub struct AddLinks {
    pub parent: String,
    pub links: Vec<(String, String)>,
}

/// From `ContainerStoreActor` (`docker rm --link /parent/alias`): drops one link;
/// whether there was one.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, GraphDbError>")]
pub struct RemoveLink {
    pub parent: String,
    pub alias: String,
}

/// From `ContainerStoreActor::Init`: every link as `(parent, alias, child)`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(String, String, String)>, GraphDbError>")]
pub struct ListLinks;

/// From `ContainerStoreActor::Init`: every top-level name as `("/name", id)`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(String, String)>, GraphDbError>")]
pub struct ListNames;
