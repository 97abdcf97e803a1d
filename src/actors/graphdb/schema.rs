//! The seed's link-graph schema and the queries on it, as plain functions on a
//! `Connection` so that they can be tested without the actor.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::GraphDbError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS entity (
    id TEXT NOT NULL PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS edge (
    "entity_id" TEXT NOT NULL,
    "parent_id" TEXT NULL,
    "name" TEXT NOT NULL,
    CONSTRAINT "parent_fk" FOREIGN KEY ("parent_id") REFERENCES "entity" ("id"),
    CONSTRAINT "entity_fk" FOREIGN KEY ("entity_id") REFERENCES "entity" ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "name_index" ON "edge" (parent_id, name);
INSERT OR IGNORE INTO entity (id) VALUES ('0');
INSERT INTO edge (entity_id, name)
    SELECT '0', '/' WHERE NOT EXISTS
    (SELECT 1 FROM edge WHERE entity_id = '0' AND parent_id IS NULL);
"#;

/// The root entity, parent of every top-level name.
const ROOT: &str = "0";

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> GraphDbError {
    move |source| GraphDbError::Sqlite { op, source }
}

/// Opens (creating) the database and its schema. WAL with `synchronous=NORMAL`: a commit
/// is atomic and survives a daemon crash without an fsync per create; a power cut can lose
/// only the last commits, never corrupt the file.
/// Opens the link graph at `path`, creating it if there is none.
pub fn open(path: &Path) -> Result<Connection, GraphDbError> {
    let open_err = |source| GraphDbError::Open {
        path: path.to_owned(),
        source,
    };
    remove_unfinished(path);
    if !path.exists() {
        create(path)?;
    }
    let conn = Connection::open(path).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    // The graph is small and its lookups indexed: a 256 KiB page cache instead of the
    // default 2 MiB, which an idle daemon would otherwise fill and keep.
    conn.pragma_update(None, "cache_size", -256)
        .map_err(open_err)?;
    conn.execute_batch(SCHEMA).map_err(open_err)?;
    Ok(conn)
}

/// The prefix of a database being created next to `path` (see [`create`]).
fn unfinished_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!(".{name}.new-")
}

/// Removes what a crash during [`create`] left.
fn remove_unfinished(path: &Path) {
    let (Some(dir), prefix) = (path.parent(), unfinished_prefix(path)) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Creates the database, schema and WAL mode included, under a temp name without
/// SQLite's own syncs, then fsyncs it and renames it into place (the directory fsynced):
/// a crash leaves the whole database or none. Opening a new database in place cost seven
/// fsyncs (the switch to WAL goes through a rollback journal), most of berthd's start-up
/// on an empty data root.
fn create(path: &Path) -> Result<(), GraphDbError> {
    let tmp = path.with_file_name(format!(
        "{}{}",
        unfinished_prefix(path),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let sql_err = |source| GraphDbError::Open {
        path: tmp.clone(),
        source,
    };
    let io_err = |source| GraphDbError::Create {
        path: path.to_owned(),
        source,
    };
    let res = (|| {
        let conn = Connection::open(&tmp).map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "OFF")
            .map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "OFF")
            .map_err(sql_err)?;
        conn.execute_batch(&format!("BEGIN;{SCHEMA}COMMIT;"))
            .map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_err)?;
        conn.close().map_err(|(_, e)| sql_err(e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn bare(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// Reserves `/name` for `id`. Idempotent for the same id.
pub fn reserve_name(conn: &mut Connection, name: &str, id: &str) -> Result<(), GraphDbError> {
    let name = bare(name);
    let tx = conn.transaction().map_err(sql("begin"))?;
    let holder: Option<String> = tx
        .query_row(
            "SELECT entity_id FROM edge WHERE parent_id = ?1 AND name = ?2",
            params![ROOT, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("lookup"))?;
    match holder {
        Some(h) if h == id => return Ok(()),
        Some(holder) => {
            return Err(GraphDbError::NameInUse {
                name: format!("/{name}"),
                holder,
            });
        }
        None => {}
    }
    tx.execute("INSERT OR IGNORE INTO entity (id) VALUES (?1)", params![id])
        .map_err(sql("insert entity"))?;
    tx.execute(
        "INSERT INTO edge (entity_id, parent_id, name) VALUES (?1, ?2, ?3)",
        params![id, ROOT, name],
    )
    .map_err(sql("insert edge"))?;
    tx.commit().map_err(sql("commit"))
}

/// Renames container `id` from `old` to `new` in one transaction: `NameInUse` when another
/// holds `new`; a database that lost `old` gets `new` anyway.
pub fn rename(conn: &mut Connection, id: &str, old: &str, new: &str) -> Result<(), GraphDbError> {
    let (old, new) = (bare(old), bare(new));
    let tx = conn.transaction().map_err(sql("begin"))?;
    let holder: Option<String> = tx
        .query_row(
            "SELECT entity_id FROM edge WHERE parent_id = ?1 AND name = ?2",
            params![ROOT, new],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("lookup"))?;
    if let Some(holder) = holder.filter(|h| h != id) {
        return Err(GraphDbError::NameInUse {
            name: format!("/{new}"),
            holder,
        });
    }
    let changed = tx
        .execute(
            "UPDATE edge SET name = ?3 WHERE entity_id = ?1 AND parent_id = ?2 AND name = ?4",
            params![id, ROOT, new, old],
        )
        .map_err(sql("rename"))?;
    if changed == 0 {
        tx.execute("INSERT OR IGNORE INTO entity (id) VALUES (?1)", params![id])
            .map_err(sql("insert entity"))?;
        tx.execute(
            "INSERT INTO edge (entity_id, parent_id, name) VALUES (?1, ?2, ?3)",
            params![id, ROOT, new],
        )
        .map_err(sql("insert edge"))?;
    }
    tx.commit().map_err(sql("commit"))
}

/// Removes `id`'s entity with every edge to or from it. Idempotent.
pub fn purge(conn: &mut Connection, id: &str) -> Result<(), GraphDbError> {
    if id == ROOT {
        return Ok(());
    }
    let tx = conn.transaction().map_err(sql("begin"))?;
    tx.execute(
        "DELETE FROM edge WHERE entity_id = ?1 OR parent_id = ?1",
        params![id],
    )
    .map_err(sql("delete edges"))?;
    tx.execute("DELETE FROM entity WHERE id = ?1", params![id])
        .map_err(sql("delete entity"))?;
    tx.commit().map_err(sql("commit"))
}

/// Links container `parent` to each `(alias, child)`: the edge `/parent/alias` → child,
/// in one transaction; `NameInUse` when `parent` already has a link of that alias to
/// another container.
pub fn add_links(
    conn: &mut Connection,
    parent: &str,
    links: &[(String, String)],
) -> Result<(), GraphDbError> {
    let tx = conn.transaction().map_err(sql("begin"))?;
    tx.execute(
        "INSERT OR IGNORE INTO entity (id) VALUES (?1)",
        params![parent],
    )
    .map_err(sql("insert entity"))?;
    for (alias, child) in links {
        let holder: Option<String> = tx
            .query_row(
                "SELECT entity_id FROM edge WHERE parent_id = ?1 AND name = ?2",
                params![parent, alias],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("lookup"))?;
        match holder {
            Some(h) if &h == child => continue,
            Some(holder) => {
                return Err(GraphDbError::NameInUse {
                    name: format!("{parent}/{alias}"),
                    holder,
                });
            }
            None => {}
        }
        tx.execute(
            "INSERT OR IGNORE INTO entity (id) VALUES (?1)",
            params![child],
        )
        .map_err(sql("insert entity"))?;
        tx.execute(
            "INSERT INTO edge (entity_id, parent_id, name) VALUES (?1, ?2, ?3)",
            params![child, parent, alias],
        )
        .map_err(sql("insert edge"))?;
    }
    tx.commit().map_err(sql("commit"))
}

/// Removes the link `alias` of container `parent`; whether there was one.
pub fn remove_link(conn: &mut Connection, parent: &str, alias: &str) -> Result<bool, GraphDbError> {
    let n = conn
        .execute(
            "DELETE FROM edge WHERE parent_id = ?1 AND name = ?2",
            params![parent, alias],
        )
        .map_err(sql("delete edge"))?;
    Ok(n > 0)
}

/// Every link as `(parent, alias, child)`.
pub fn list_links(conn: &mut Connection) -> Result<Vec<(String, String, String)>, GraphDbError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT parent_id, name, entity_id FROM edge WHERE parent_id IS NOT NULL AND parent_id != ?1",
        )
        .map_err(sql("prepare"))?;
    let rows = stmt
        .query_map(params![ROOT], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql("list"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql("list"))
}

/// Every top-level name as `("/name", id)`.
pub fn list_names(conn: &mut Connection) -> Result<Vec<(String, String)>, GraphDbError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, entity_id FROM edge WHERE parent_id = ?1")
        .map_err(sql("prepare"))?;
    let rows = stmt
        .query_map(params![ROOT], |r| {
            Ok((
                format!("/{}", r.get::<_, String>(0)?),
                r.get::<_, String>(1)?,
            ))
        })
        .map_err(sql("list"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql("list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("linkgraph.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn links_are_edges_that_go_with_either_end() {
        let (_d, mut c) = db();
        reserve_name(&mut c, "web", "w1").unwrap();
        reserve_name(&mut c, "db", "d1").unwrap();
        add_links(&mut c, "w1", &[("db".into(), "d1".into())]).unwrap();
        // Idempotent for the same child; another child under the alias conflicts.
        add_links(&mut c, "w1", &[("db".into(), "d1".into())]).unwrap();
        assert!(add_links(&mut c, "w1", &[("db".into(), "x".into())]).is_err());
        assert_eq!(
            list_links(&mut c).unwrap(),
            [("w1".to_owned(), "db".to_owned(), "d1".to_owned())]
        );
        // Names are not links.
        assert_eq!(list_names(&mut c).unwrap().len(), 2);
        assert!(remove_link(&mut c, "w1", "db").unwrap());
        assert!(!remove_link(&mut c, "w1", "db").unwrap());
        add_links(&mut c, "w1", &[("db".into(), "d1".into())]).unwrap();
        purge(&mut c, "d1").unwrap();
        assert!(list_links(&mut c).unwrap().is_empty());
    }

    #[test]
    fn rename_moves_a_name_at_once_and_refuses_a_taken_one() {
        let (_d, mut conn) = db();
        reserve_name(&mut conn, "/a", "id1").unwrap();
        reserve_name(&mut conn, "b", "id2").unwrap();
        rename(&mut conn, "id1", "/a", "/c").unwrap();
        let names = list_names(&mut conn).unwrap();
        assert!(
            names.contains(&("/c".to_owned(), "id1".to_owned())),
            "{names:?}"
        );
        assert!(!names.iter().any(|(n, _)| n == "/a"));
        let e = rename(&mut conn, "id1", "/c", "/b").unwrap_err();
        assert!(matches!(e, GraphDbError::NameInUse { .. }));
        // A database that lost the old name gets the new one anyway.
        rename(&mut conn, "id3", "/gone", "/d").unwrap();
        assert!(
            list_names(&mut conn)
                .unwrap()
                .contains(&("/d".to_owned(), "id3".to_owned()))
        );
    }

    #[test]
    fn schema_has_the_seed_tables_and_root() {
        let (_d, conn) = db();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM entity WHERE id = '0'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
        let root: String = conn
            .query_row(
                "SELECT name FROM edge WHERE entity_id = '0' AND parent_id IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(root, "/");
    }

    #[test]
    fn names_are_unique_and_released() {
        let (_d, mut conn) = db();
        reserve_name(&mut conn, "/web", "aaa").unwrap();
        reserve_name(&mut conn, "web", "aaa").unwrap();
        let err = reserve_name(&mut conn, "web", "bbb").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Conflict);
        assert!(
            err.to_string()
                .contains("\"/web\" is already in use by container \"aaa\"")
        );
        purge(&mut conn, "aaa").unwrap();
        reserve_name(&mut conn, "web", "bbb").unwrap();
        assert_eq!(
            list_names(&mut conn).unwrap(),
            vec![("/web".to_owned(), "bbb".to_owned())]
        );
    }

    #[test]
    fn a_new_database_is_made_whole_in_wal_mode_and_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("linkgraph.db");
        let leftover = dir.path().join(".linkgraph.db.new-deadbeef");
        std::fs::write(&leftover, b"half").unwrap();
        let conn = open(&p).unwrap();
        assert!(!leftover.exists());
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("linkgraph.db"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM edge WHERE name = '/'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn reopening_keeps_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("linkgraph.db");
        {
            let mut c = open(&p).unwrap();
            reserve_name(&mut c, "db", "ccc").unwrap();
        }
        let mut c = open(&p).unwrap();
        assert_eq!(list_names(&mut c).unwrap().len(), 1);
    }
}
