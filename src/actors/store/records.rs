//! The commit protocol of container records: a create's files, its record staged and
//! committed by one rename (the commit point), the undo of a create that failed, and the
//! load of every record at start-up with the cleanup of what a crash cut short and the
//! migration of records of an older data root format (see the module docs of the store).

use std::fs;
use std::path::Path;

use super::Peers;
use super::error::StoreError;
use super::etc::EtcFiles;
use super::persist::Persister;
use super::state::Container;
use crate::actors::graph::{RemoveRwLayer, RwLayer};
use crate::actors::graphdb::ReleaseEntity;
use crate::deleter::{self, Deleter};

/// What [`load_records`] found.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub(super) records: Vec<Container>,
    /// Every container dir with a record, readable or not: their layers are kept.
    pub(super) ids: std::collections::HashSet<String>,
}

/// Brings loaded records to the current data root and format: a record whose rootfs
/// names another data root (the data root was moved, or restored from a copy) has its
/// paths re-rooted at `data_root`, and is written again, as is every record when
/// `migrate` (an older format: the typed models read it, and write it in the current
/// form). Each rewrite is atomic and durable.
pub(super) fn migrate_records(
    dir: &Path,
    data_root: &Path,
    records: &mut [Container],
    migrate: bool,
) -> std::io::Result<()> {
    for c in records.iter_mut() {
        let moved = relocate_rootfs(&mut c.rootfs, data_root, &c.driver);
        if !(moved || migrate) {
            continue;
        }
        let cdir = dir.join(&c.id);
        let record = serde_json::to_vec(c).map_err(std::io::Error::other)?;
        let host = serde_json::to_vec(&c.host_config).map_err(std::io::Error::other)?;
        crate::util::write_atomic(&cdir.join("hostconfig.json"), &host)?;
        crate::util::write_atomic(&cdir.join("config.v2.json"), &record)?;
        tracing::info!(container_id = %c.id, moved, "container record rewritten");
    }
    Ok(())
}

/// Re-roots the paths of a layer mount made under another data root at `data_root`; true
/// if it changed. The old root is what precedes `/<driver>/` in the mount's target.
pub(super) fn relocate_rootfs(
    rootfs: &mut crate::monitor::spec::RootfsSpec,
    data_root: &Path,
    driver: &str,
) -> bool {
    let target = rootfs.target.to_string_lossy().into_owned();
    let marker = format!("/{driver}/");
    let Some(at) = target.find(&marker) else {
        return false;
    };
    let old = format!("{}{marker}", &target[..at]);
    let new = format!("{}{marker}", data_root.display());
    if old == new {
        return false;
    }
    rootfs.target = target.replacen(&old, &new, 1).into();
    rootfs.options = rootfs.options.replace(&old, &new);
    rootfs.source = rootfs.source.replace(&old, &new);
    true
}

/// Reads every record under `containers/`. A record that cannot be parsed (truncated,
/// garbage) has its dir moved aside to `<data-root>/quarantine/containers/<id>.<time>`
/// and logged as an error with both paths, so one bad file cannot stop the daemon and is
/// not met again; its name is released as dockerd leaves it free, and its layer kept
/// while the dir stays in quarantine (deleting it there lets the next start remove the
/// layer). A record that cannot be read (an I/O error) is logged and skipped. The
/// dir of a container whose removal a crash cut short (renamed to a doomed name), and that
/// of a create a crash cut short (no config.v2.json), are handed to `deleter`.
pub(super) fn load_records(dir: &Path, deleter: &Deleter) -> std::io::Result<Loaded> {
    fs::create_dir_all(dir)?;
    let mut out = Loaded::default();
    let data_root = dir.parent().unwrap_or(dir);
    out.ids.extend(
        crate::util::quarantined_names(data_root, "containers")
            .into_iter()
            .filter(|n| crate::util::is_full_id(n)),
    );
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let path = ent.path();
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if deleter::is_doomed_name(&name) {
            tracing::info!(path = %path.display(), "deleting the dir of a removed container");
            deleter.delete(path);
            continue;
        }
        if !path.is_dir() || !crate::util::is_full_id(&name) {
            continue;
        }
        let record = path.join("config.v2.json");
        if matches!(fs::symlink_metadata(&record), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        {
            // A create writes the record last: this one did not finish, and was not
            // answered. Its name in the graph database is released below, its layer by
            // the graph.
            tracing::info!(path = %path.display(), "deleting the dir of an unfinished create");
            match deleter::rename_doomed(&path) {
                Ok(Some(doomed)) => deleter.delete(doomed),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unfinished create left")
                }
            }
            continue;
        }
        out.ids.insert(name.clone().into_owned());
        // Err(Ok(..)): it could not be read; Err(Err(..)): it is not a record.
        let host = path.join("hostconfig.json");
        let parse = |file: &Path| -> Result<Vec<u8>, Result<String, String>> {
            fs::read(file).map_err(|e| Ok(format!("{}: {e}", file.display())))
        };
        let parsed = parse(&record)
            .and_then(|b| {
                serde_json::from_slice::<Container>(&b)
                    .map_err(|e| Err(format!("{}: {e}", record.display())))
            })
            .and_then(|mut c| {
                let bytes = parse(&host)?;
                c.host_config = serde_json::from_slice(&bytes)
                    .map_err(|e| Err(format!("{}: {e}", host.display())))?;
                Ok(c)
            });
        match parsed {
            Ok(c) => out.records.push(c),
            Err(Ok(e)) => {
                tracing::warn!(path = %record.display(), error = %e, "container record skipped")
            }
            Err(Err(e)) => match crate::util::quarantine(data_root, "containers", &path) {
                Ok(to) => tracing::error!(
                    path = %path.display(), moved_to = %to.display(), error = %e,
                    "corrupt container record moved aside"
                ),
                Err(q) => tracing::error!(
                    path = %path.display(), error = %e, quarantine_error = %q,
                    "corrupt container record skipped; it could not be moved aside"
                ),
            },
        }
    }
    Ok(out)
}

/// Undoes what a create that failed had made: its dir, its layer and its name. The dir
/// is deleted on the record writer (behind the create's writes), the layer and the name
/// through their actors.
pub(super) struct CreateUndo<'a> {
    pub(super) peers: &'a Peers,
    pub(super) persister: &'a Persister,
    pub(super) id: &'a str,
    pub(super) dir: &'a Path,
}

impl CreateUndo<'_> {
    /// Deletes the dir, releases the name when `name_held` and removes the layer when
    /// `layer_made`, and returns `cause`.
    pub(super) async fn run(
        &self,
        cause: StoreError,
        name_held: bool,
        layer_made: bool,
    ) -> StoreError {
        let dir = self.dir.to_owned();
        let remove_dir = self
            .persister
            .run(self.id, move || match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            });
        let remove_layer = async {
            if layer_made {
                let _ = self
                    .peers
                    .graph
                    .send(RemoveRwLayer {
                        container_id: self.id.to_owned(),
                    })
                    .await;
            }
        };
        let release_name = async {
            if name_held {
                let _ = self
                    .peers
                    .graphdb
                    .send(ReleaseEntity {
                        id: self.id.to_owned(),
                    })
                    .await;
            }
        };
        let (removed, (), ()) = futures_util::join!(remove_dir, remove_layer, release_name);
        if let Err(e) = removed {
            // Init removes a dir without a record.
            tracing::warn!(error = %e, container_id = %self.id, "the dir of a failed create was left");
        }
        cause
    }
}

/// The files of a container's dir made from its hostname and the host's resolv.conf:
/// written at the create and not fsynced (see [`restore_derived_files`]).
pub(super) fn derived_files(etc: &EtcFiles) -> [(&'static str, Vec<u8>); 3] {
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host_hosts = if etc.host_network {
        fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        String::new()
    };
    [
        ("hostname", etc.hostname_file().into_bytes()),
        ("hosts", etc.hosts_file(&host_hosts, None).into_bytes()),
        ("resolv.conf", etc.resolv_conf(&host_resolv).into_bytes()),
    ]
}

/// Writes the files of a new container's dir that do not depend on its layer (hostname,
/// hosts, resolv.conf, hostconfig.json), without fsyncs: hostconfig.json is fsynced with
/// the record ([`stage_record`]) and the dir and its parent at the commit
/// ([`commit_record`]); the others are derived, and the first start after a restart writes
/// again any that a crash left empty ([`restore_derived_files`]). They need no temp names: until
/// [`commit_record`] adds config.v2.json the dir is a create that did not finish, which
/// Init removes (`load_records`).
pub(super) fn write_container_files(
    dir: &Path,
    etc: &EtcFiles,
    host_config: &[u8],
) -> std::io::Result<()> {
    fs::create_dir(dir)?;
    let [a, b, c] = derived_files(etc);
    for (name, data) in [a, b, c, ("hostconfig.json", host_config.to_vec())] {
        let mut f = fs::File::create_new(dir.join(name))?;
        std::io::Write::write_all(&mut f, &data)?;
    }
    Ok(())
}

/// Writes again the derived files of a container's dir (see [`derived_files`]) that are
/// missing or empty, as a crash soon after the create can leave them. Before the first
/// start of a container loaded at Init (one created since has them as written).
pub(super) fn restore_derived_files(dir: &Path, etc: &EtcFiles) -> std::io::Result<()> {
    for (name, data) in derived_files(etc) {
        let path = dir.join(name);
        if fs::metadata(&path).map_or(true, |m| m.len() == 0) {
            tracing::info!(path = %path.display(), "writing a lost file again");
            fs::write(&path, data)?;
        }
    }
    Ok(())
}

/// Waits until a layer the graph was making is durable or undone; true when it was made
/// (and so must be removed).
pub(super) async fn settle(layer: Result<RwLayer, StoreError>) -> bool {
    match layer {
        Ok(l) => matches!(l.durable.await, Ok(Ok(()))),
        Err(_) => false,
    }
}

/// The temp name of a new container's record until [`commit_record`].
const STAGED_RECORD: &str = ".config.v2.json.tmp-create";

/// Writes a new container's record under a temp name in a dir that
/// [`write_container_files`] made, and fsyncs it with hostconfig.json.
pub(super) fn stage_record(dir: &Path, record: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create_new(dir.join(STAGED_RECORD))?;
    std::io::Write::write_all(&mut f, record)?;
    let host_config = fs::File::open(dir.join("hostconfig.json"))?;
    crate::util::sync_all_concurrently(&[&f, &host_config])
}

/// The commit point of a create: the staged record renamed to config.v2.json, the dir
/// (its files' names) and its parent (the dir's name) fsynced.
pub(super) fn commit_record(dir: &Path) -> std::io::Result<()> {
    fs::rename(dir.join(STAGED_RECORD), dir.join("config.v2.json"))?;
    let d = fs::File::open(dir)?;
    match dir.parent() {
        Some(parent) => crate::util::sync_all_concurrently(&[&d, &fs::File::open(parent)?]),
        None => d.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::store::state::State;
    use crate::monitor::spec::{NetworkSpec, RootfsSpec};
    use chrono::Utc;
    use std::path::PathBuf;

    fn record(id: &str) -> Container {
        Container {
            id: id.to_owned(),
            name: "/kept".to_owned(),
            created: Utc::now(),
            path: "true".to_owned(),
            args: Vec::new(),
            config: Default::default(),
            host_config: Default::default(),
            image: format!("sha256:{}", crate::util::new_id()),
            state: State::new(),
            rootfs: RootfsSpec {
                fstype: "bind".into(),
                source: "/x".into(),
                options: String::new(),
                target: "/x".into(),
            },
            driver: "vfs".to_owned(),
            network: NetworkSpec::None,
            restart_count: 0,
            has_been_manually_stopped: false,
            mount_points: Vec::new(),
            endpoint: None,
            attachments: Vec::new(),
            extra_endpoints: Vec::new(),
        }
    }

    use crate::util::sorted_names as names;

    fn etc(hostname: &str, dns: &[std::net::IpAddr]) -> EtcFiles {
        EtcFiles {
            hostname: hostname.to_owned(),
            dns: dns.to_vec(),
            ..EtcFiles::default()
        }
    }

    /// A container's dir as a create leaves it.
    fn write_dir(dir: &Path, c: &Container) {
        let host = serde_json::to_vec(&c.host_config).unwrap();
        write_container_files(dir, &etc(&c.id[..12], &[]), &host).unwrap();
        stage_record(dir, &serde_json::to_vec(c).unwrap()).unwrap();
        commit_record(dir).unwrap();
    }

    #[test]
    fn load_records_deletes_the_dirs_of_creates_a_crash_cut_short() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers");
        fs::create_dir_all(&dir).unwrap();
        let kept = crate::util::new_id();
        write_dir(&dir.join(&kept), &record(&kept));
        // The files made beside the layer, and the daemon died before the record.
        let early = crate::util::new_id();
        write_container_files(&dir.join(&early), &etc("early", &[]), b"{}").unwrap();
        // The record's temp file written but not renamed.
        let late = crate::util::new_id();
        let late_dir = dir.join(&late);
        write_container_files(&late_dir, &etc("late", &[]), b"{}").unwrap();
        stage_record(&late_dir, b"{}").unwrap();
        // The dir made, nothing in it yet.
        let empty = crate::util::new_id();
        fs::create_dir(dir.join(&empty)).unwrap();
        // A record that cannot be parsed is moved aside for the operator, its layer
        // kept; so is one whose hostconfig.json is garbage.
        let bad = crate::util::new_id();
        write_container_files(&dir.join(&bad), &etc("bad", &[]), b"{}").unwrap();
        fs::write(dir.join(&bad).join("config.v2.json"), b"{").unwrap();
        let bad_host = crate::util::new_id();
        write_dir(&dir.join(&bad_host), &record(&bad_host));
        fs::write(dir.join(&bad_host).join("hostconfig.json"), b"\0\0garbage").unwrap();

        let deleter = Deleter::new();
        let loaded = load_records(&dir, &deleter).unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].id, kept);
        let all = [kept.clone(), bad.clone(), bad_host.clone()];
        assert_eq!(loaded.ids, all.clone().into());
        deleter.drain();
        assert_eq!(names(&dir), vec![kept.clone()]);
        let mut moved = names(&tmp.path().join("quarantine/containers"));
        moved.sort();
        let mut want = vec![bad.clone(), bad_host.clone()];
        want.sort();
        assert_eq!(moved.len(), 2, "{moved:?}");
        for (m, id) in moved.iter().zip(&want) {
            assert!(m.starts_with(&format!("{id}.")), "{m}");
        }
        assert!(
            tmp.path()
                .join("quarantine/containers")
                .join(&moved[0])
                .join("config.v2.json")
                .exists()
        );
        // The next start keeps their layers while they are in quarantine.
        let again = load_records(&dir, &deleter).unwrap();
        assert_eq!(again.ids, all.into());
    }

    #[test]
    fn a_start_writes_again_the_derived_files_a_crash_left_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let dns: Vec<std::net::IpAddr> = vec!["192.0.2.53".parse().unwrap()];
        write_container_files(&dir, &etc("box", &dns), b"{\"a\":1}").unwrap();
        let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap();
        let (hosts, resolv) = (read("hosts"), read("resolv.conf"));
        assert!(resolv.contains("nameserver 192.0.2.53"), "{resolv}");
        // What delayed allocation can leave of files not fsynced: empty, or gone.
        fs::write(dir.join("hostname"), "").unwrap();
        fs::remove_file(dir.join("resolv.conf")).unwrap();
        fs::write(dir.join("hosts"), "kept as it is\n").unwrap();
        restore_derived_files(&dir, &etc("box", &dns)).unwrap();
        assert_eq!(read("hostname"), "box\n");
        assert_eq!(read("resolv.conf"), resolv);
        assert_eq!(read("hosts"), "kept as it is\n");
        assert_ne!(read("hosts"), hosts);
        assert_eq!(read("hostconfig.json"), "{\"a\":1}");
    }

    #[test]
    fn a_moved_data_root_re_roots_the_layer_paths() {
        let mut rootfs = RootfsSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: "lowerdir=/old/r/overlay2/a-init/diff:/old/r/overlay2/a/diff,upperdir=/old/r/overlay2/b/diff,workdir=/old/r/overlay2/b/work".into(),
            target: "/old/r/overlay2/b/merged".into(),
        };
        assert!(relocate_rootfs(&mut rootfs, Path::new("/new"), "overlay2"));
        assert_eq!(rootfs.target, PathBuf::from("/new/overlay2/b/merged"));
        assert_eq!(
            rootfs.options,
            "lowerdir=/new/overlay2/a-init/diff:/new/overlay2/a/diff,upperdir=/new/overlay2/b/diff,workdir=/new/overlay2/b/work"
        );
        assert!(!relocate_rootfs(&mut rootfs, Path::new("/new"), "overlay2"));
        let mut vfs = RootfsSpec {
            fstype: "bind".into(),
            source: "/old/vfs/dir/c".into(),
            options: String::new(),
            target: "/old/vfs/dir/c".into(),
        };
        assert!(relocate_rootfs(&mut vfs, Path::new("/srv/b"), "vfs"));
        assert_eq!(vfs.source, "/srv/b/vfs/dir/c");
    }

    #[test]
    fn load_records_deletes_the_dirs_of_removals_a_crash_cut_short() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers");
        let kept = crate::util::new_id();
        let c = record(&kept);
        fs::create_dir_all(&dir).unwrap();
        write_dir(&dir.join(&kept), &c);
        // A removal renamed this one away (its record intact) and the daemon died.
        let gone = crate::util::new_id();
        let gone_dir = dir.join(&gone);
        write_dir(&gone_dir, &record(&gone));
        fs::write(gone_dir.join(format!("{gone}-json.log")), b"{}\n").unwrap();
        let doomed = deleter::rename_doomed(&gone_dir).unwrap().unwrap();
        // Not ours: left alone.
        fs::create_dir(dir.join("lost+found")).unwrap();

        let deleter = Deleter::new();
        let loaded = load_records(&dir, &deleter).unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].id, kept);
        deleter.drain();
        assert!(!doomed.exists());
        let mut want = vec![kept, "lost+found".to_owned()];
        want.sort();
        assert_eq!(names(&dir), want);
    }
}
