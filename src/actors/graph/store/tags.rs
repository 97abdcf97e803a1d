//! The tag store's verbs: `docker tag` and `docker rmi` (dockerd's `TagImage` and
//! `ImageDelete`, with its untag-versus-delete rules and conflict texts).
//!
//! A removal's order on disk makes a crash at any point safe: the tags first
//! (`repositories.json`), then the image config, then each layer's metadata and dirs.
//! What a crash leaves between two steps is what `load` already cleans: tags of a missing
//! image, layers no image or container uses.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use std::fs;

use super::{GraphStore, State, fsync_dir, image_event, io_error, parse_repo_tag, resolve_in};
use crate::actors::graph::error::GraphError;
use crate::actors::graph::reference::{self, Reference};
use crate::deleter;
use crate::model::api;
use crate::model::filters::label_pairs;

/// A container and the image it was made from, as the container store knows them
/// (`docker rmi` refuses to take an image from under one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container_id: String,
    /// `sha256:<hex>`.
    pub image_id: String,
    pub running: bool,
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn conflict(message: String) -> GraphError {
    GraphError::Conflict { message }
}

fn untagged(name_tag: &str) -> api::ImageDeleteResponseItem {
    api::ImageDeleteResponseItem {
        untagged: Some(name_tag.to_owned()),
        deleted: None,
    }
}

fn deleted(id: &str) -> api::ImageDeleteResponseItem {
    api::ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(id.to_owned()),
    }
}

/// dockerd's `isImageIDPrefix`: `reference` is a prefix of the id, with or without
/// `sha256:`.
fn is_id_prefix(id: &str, reference: &str) -> bool {
    id.starts_with(reference)
        || id
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.starts_with(reference))
}

/// What stops an image's deletion (dockerd's `checkImageDeleteConflict`): a running
/// container always (`hard`), tags and stopped containers unless forced.
struct Conflict {
    message: String,
    /// A container uses the image.
    used: bool,
}

impl GraphStore {
    /// `docker tag SOURCE REPO[:TAG]`: points `repo:tag` at the image `reference` names,
    /// moving the tag if another image had it.
    pub fn tag(&self, reference: &str, repo: &str, tag: Option<&str>) -> Result<(), GraphError> {
        if repo.contains('@') {
            return Err(GraphError::InvalidReference {
                reference: repo.to_owned(),
                reason: "refusing to create a tag with a digest reference".to_owned(),
            });
        }
        let (name, tag) = parse_repo_tag(repo, tag)?;
        let (hex, version, repos) = {
            let mut st = self.state.lock();
            let hex = resolve_in(&st, reference)?;
            st.repos.set(&name, &tag, &format!("sha256:{hex}"));
            st.repos_version += 1;
            (hex, st.repos_version, st.repos.clone())
        };
        let when = self.record_tag_time(&hex);
        self.state.lock().last_tagged.insert(hex.clone(), when);
        self.write_repos(version, &repos)?;
        let st = self.state.lock();
        let full = format!("sha256:{hex}");
        image_event(st.images.get(&hex), &full, &format!("{name}:{tag}"), "tag");
        Ok(())
    }

    /// `docker rmi [-f] REFERENCE`: untags a name, and deletes the image when that was
    /// its last name, or when an id names it, as dockerd's `ImageDelete` does; `users`
    /// are the daemon's containers. Replies dockerd's records: each tag untagged, then
    /// the image and each layer deleted.
    pub fn delete(
        &self,
        reference: &str,
        force: bool,
        users: &[ImageUser],
    ) -> Result<Vec<api::ImageDeleteResponseItem>, GraphError> {
        let _commits = self.layer_commits.lock();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        let hex = resolve_in(&st, reference)?;
        let id = format!("sha256:{hex}");
        let tags = st.repos.tags_of(&id);
        let mut quiet = false;
        if is_id_prefix(&id, reference) {
            // An id: with a single tag, the tag goes with the image.
            if tags.len() == 1 {
                if let Some(c) = self.conflict(&st, &id, users, force, false) {
                    return Err(conflict(c.message));
                }
                untag_all(&mut st, &id, &mut records);
            }
        } else {
            // A name: untagged first; the image goes only with its last name.
            if !force && tags.len() == 1 {
                if let Some(u) = users.iter().find(|u| u.image_id == id) {
                    return Err(conflict(format!(
                        "conflict: unable to remove repository reference {reference:?} (must force) - container {} is using its referenced image {}",
                        short(&u.container_id),
                        short(&id)
                    )));
                }
            }
            let removed = match reference::parse_reference(reference) {
                Ok(Reference::Tagged { name, tag }) => st
                    .repos
                    .remove(&name, &tag)
                    .then(|| format!("{name}:{tag}")),
                Ok(Reference::Digested { name, digest }) => st
                    .repos
                    .remove_digest(&name, &digest)
                    .then(|| format!("{name}@{digest}")),
                _ => {
                    return Err(GraphError::ImageNotFound {
                        reference: reference.to_owned(),
                    });
                }
            };
            if let Some(r) = removed {
                records.push(untagged(&r));
                image_event(st.images.get(&hex), &id, &id, "untag");
            }
            if !st.repos.tags_of(&id).is_empty() {
                st.repos_version += 1;
                let (version, repos) = (st.repos_version, st.repos.clone());
                drop(st);
                self.write_repos(version, &repos)?;
                return Ok(records);
            }
            quiet = true;
        }
        if let Some(c) = self.conflict(&st, &id, users, force, true) {
            // dockerd's `imageIsDangling`: no tags and no child images.
            let dangling =
                st.repos.tags_of(&id).is_empty() && !st.parents.values().any(|p| *p == hex);
            // What was untagged stays untagged.
            if !records.is_empty() {
                st.repos_version += 1;
                let (version, repos) = (st.repos_version, st.repos.clone());
                drop(st);
                self.write_repos(version, &repos)?;
            }
            if quiet && (!dangling || c.used) {
                // dockerd: the untag stands, the image stays, and no error.
                return Ok(records);
            }
            return Err(conflict(c.message));
        }
        untag_all(&mut st, &id, &mut records);
        st.repos_version += 1;
        let (version, repos) = (st.repos_version, st.repos.clone());
        drop(st);
        // Tags first: a crash after this leaves an untagged image, never a tag of a
        // missing one.
        self.write_repos(version, &repos)?;
        records.extend(self.delete_image(&hex)?);
        Ok(records)
    }

    /// dockerd's conflicts for deleting image `id`: a running container always; unless
    /// `force`, a stopped one, and (`with_tags`) any tag.
    fn conflict(
        &self,
        st: &State,
        id: &str,
        users: &[ImageUser],
        force: bool,
        with_tags: bool,
    ) -> Option<Conflict> {
        let cannot = |reason: String, used: bool, hard: bool| Conflict {
            message: format!(
                "conflict: unable to delete {} ({}) - {reason}",
                short(id),
                if hard {
                    "cannot be forced"
                } else {
                    "must be forced"
                }
            ),
            used,
        };
        let hex = id.trim_start_matches("sha256:");
        if st.parents.values().any(|p| p == hex) {
            return Some(cannot(
                "image has dependent child images".to_owned(),
                false,
                true,
            ));
        }
        if let Some(u) = users.iter().find(|u| u.image_id == id && u.running) {
            return Some(cannot(
                format!(
                    "image is being used by running container {}",
                    short(&u.container_id)
                ),
                true,
                true,
            ));
        }
        if force {
            return None;
        }
        if with_tags && !st.repos.tags_of(id).is_empty() {
            return Some(cannot(
                "image is referenced in multiple repositories".to_owned(),
                false,
                false,
            ));
        }
        users
            .iter()
            .find(|u| u.image_id == id && !u.running)
            .map(|u| {
                cannot(
                    format!(
                        "image is being used by stopped container {}",
                        short(&u.container_id)
                    ),
                    true,
                    false,
                )
            })
    }

    /// Deletes image `hex` (already untagged) and the layers that no other image and no
    /// container layer uses. Replies the `Deleted` records: the image, then the layers,
    /// top first.
    fn delete_image(&self, hex: &str) -> Result<Vec<api::ImageDeleteResponseItem>, GraphError> {
        let (img, doomed_layers) = {
            let mut st = self.state.lock();
            let Some(img) = st.images.remove(hex) else {
                return Ok(Vec::new());
            };
            st.last_tagged.remove(hex);
            st.parents.remove(hex);
            let used = used_layers(&st);
            let mut doomed = Vec::new();
            for chain in img.chain.iter().rev() {
                if used.contains(chain) {
                    continue;
                }
                if let Some(l) = st.layers.remove(chain) {
                    doomed.push(l);
                }
            }
            (img, doomed)
        };
        let config = self.imagedb().join(hex);
        match fs::remove_file(&config) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&config)(e)),
        }
        fsync_dir(&self.imagedb())?;
        let meta = self.image_metadata_dir().join(hex);
        let _ = fs::remove_dir_all(&meta);
        let mut records = vec![deleted(&format!("sha256:{hex}"))];
        let full = format!("sha256:{hex}");
        image_event(Some(&img), &full, &full, "delete");
        let layerdb = self.layerdb();
        let mut doomed_dirs = Vec::new();
        for l in &doomed_layers {
            let dir = layerdb.join(l.chain_id.trim_start_matches("sha256:"));
            doomed_dirs.extend(deleter::rename_doomed(&dir).map_err(io_error(&dir))?);
            records.push(deleted(&l.chain_id));
        }
        if !doomed_layers.is_empty() {
            fsync_dir(&layerdb)?;
        }
        for l in &doomed_layers {
            self.driver.doom(&l.cache_id, &mut doomed_dirs)?;
            // The init layer of the image's containers, when this was its top layer.
            let init = format!("{}-init", l.cache_id);
            if self.driver.layer_exists(&init) {
                self.driver.doom(&init, &mut doomed_dirs)?;
            }
        }
        self.deleter.delete_all(doomed_dirs);
        Ok(records)
    }
}

/// dockerd's `until` filter value: Unix seconds (with a fraction), an RFC 3339 time or
/// date, or a Go duration before `now` (`24h`, `1h30m`).
pub fn parse_until(v: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, GraphError> {
    let bad = || GraphError::Invalid {
        message: format!("invalid filter 'until={v}'"),
    };
    if let Ok(secs) = v.parse::<f64>() {
        return DateTime::from_timestamp(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
            .ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(v, fmt) {
            return Ok(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc());
        }
    }
    // A Go duration: numbers with units, summed.
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = v;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        num.clear();
        num.push_str(&rest[..n]);
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num.parse::<f64>().map_err(|_| bad())? * scale;
        rest = &rest[u..];
    }
    Ok(now - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

impl GraphStore {
    /// `docker image prune`: with `dangling` (the default) the untagged images nothing
    /// uses, without it every image no container uses, narrowed by `until` and `label` /
    /// `label!`; the parents that become prunable go too (dockerd's `prune`). Replies the
    /// records and the bytes of the layers removed.
    pub fn prune_images(
        &self,
        filters: &crate::model::filters::Filters,
        users: &[ImageUser],
    ) -> Result<(Vec<api::ImageDeleteResponseItem>, u64), GraphError> {
        filters.validate(&["dangling", "label", "label!", "until"])?;
        let mut dangling_only = true;
        for v in filters.get("dangling") {
            dangling_only = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(GraphError::Filter(
                        crate::model::filters::FilterError::InvalidValue {
                            key: "dangling",
                            value: v.to_owned(),
                        },
                    ));
                }
            };
        }
        let now = Utc::now();
        let until: Vec<DateTime<Utc>> = filters
            .get("until")
            .map(|v| parse_until(v, now))
            .collect::<Result<_, _>>()?;
        let mut records = Vec::new();
        let mut reclaimed = 0u64;
        loop {
            let doomed: Vec<String> = {
                let st = self.state.lock();
                st.images
                    .values()
                    .filter(|img| {
                        let id = format!("sha256:{}", img.id);
                        let child = st.parents.values().any(|p| *p == img.id);
                        let used = users.iter().any(|u| u.image_id == id);
                        // A digest is a reference too: dockerd prunes as dangling only
                        // the images nothing names.
                        let tagged = !st.repos.tags_of(&id).is_empty()
                            || !st.repos.digests_of(&id).is_empty();
                        if child || used || (dangling_only && tagged) {
                            return false;
                        }
                        let labels = label_pairs(img.config.labels.iter().flatten());
                        let created = img.created_at().unwrap_or(now);
                        until.iter().all(|u| created < *u)
                            && filters.match_kv_list("label", &labels)
                            && filters.match_kv_none("label!", &labels)
                    })
                    .map(|img| img.id.clone())
                    .collect()
            };
            if doomed.is_empty() {
                break;
            }
            for hex in doomed {
                let _commits = self.layer_commits.lock();
                let (version, repos) = {
                    let mut st = self.state.lock();
                    untag_all(&mut st, &format!("sha256:{hex}"), &mut records);
                    st.repos_version += 1;
                    (st.repos_version, st.repos.clone())
                };
                self.write_repos(version, &repos)?;
                let sizes: HashMap<String, i64> = {
                    let st = self.state.lock();
                    st.layers.iter().map(|(c, l)| (c.clone(), l.size)).collect()
                };
                let deleted = self.delete_image(&hex)?;
                for r in deleted.iter().filter_map(|r| r.deleted.as_deref()) {
                    reclaimed += sizes.get(r).map_or(0, |s| u64::try_from(*s).unwrap_or(0));
                }
                records.extend(deleted);
            }
        }
        Ok((records, reclaimed))
    }
}

/// Removes every tag of image `id`, recording each.
fn untag_all(st: &mut State, id: &str, records: &mut Vec<api::ImageDeleteResponseItem>) {
    for t in st.repos.tags_of(id) {
        let (name, tag) = reference::split_name_tag(&t);
        st.repos.remove(name, tag.unwrap_or(reference::DEFAULT_TAG));
        records.push(untagged(&t));
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        image_event(st.images.get(hex), id, id, "untag");
    }
    for d in st.repos.digests_of(id) {
        records.push(untagged(&d));
    }
    st.repos.remove_digests_of(id);
}

/// Every layer that an image or a container layer (made or being made) stands on.
pub(super) fn used_layers(st: &State) -> HashSet<String> {
    let mut used: HashSet<String> = st.pinned.keys().cloned().collect();
    for img in st.images.values() {
        used.extend(img.chain.iter().cloned());
    }
    let tops = st
        .mounts
        .values()
        .map(|m| &m.parent)
        .chain(st.creating_on.values());
    for top in tops {
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            cur = st.layers.get(&c).and_then(|l| l.parent.clone());
            used.insert(c);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::super::tests::{import, tarball, vfs_store};
    use super::*;
    use crate::error::ErrorKind;

    fn user(c: &str, image: &str, running: bool) -> ImageUser {
        ImageUser {
            container_id: c.to_owned(),
            image_id: image.to_owned(),
            running,
        }
    }

    fn untags(r: &[api::ImageDeleteResponseItem]) -> Vec<&str> {
        r.iter().filter_map(|x| x.untagged.as_deref()).collect()
    }

    fn deletes(r: &[api::ImageDeleteResponseItem]) -> Vec<&str> {
        r.iter().filter_map(|x| x.deleted.as_deref()).collect()
    }

    #[test]
    fn tag_then_rmi_untags_until_the_last_name_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("a", b"1")]), Some("one"), None, &[]).unwrap();
        s.tag("one", "docker.io/library/two", Some("x")).unwrap();
        s.tag(&id[7..19], "localhost:5000/three", None).unwrap();
        assert_eq!(
            s.resolve("two:x").unwrap().repo_tags,
            ["localhost:5000/three:latest", "one:latest", "two:x"]
        );
        // Tags are on disk.
        let reopened = vfs_store(tmp.path());
        assert_eq!(reopened.resolve("two:x").unwrap().id, id);
        drop(reopened);

        let r = s.delete("two:x", false, &[]).unwrap();
        assert_eq!(untags(&r), ["two:x"]);
        assert!(deletes(&r).is_empty());
        // An id with two tags left: must be forced.
        let e = s.delete(&id, false, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                &id[7..19]
            )
        );
        s.delete("localhost:5000/three", false, &[]).unwrap();
        let r = s.delete("one", false, &[]).unwrap();
        assert_eq!(untags(&r), ["one:latest"]);
        let d = deletes(&r);
        assert_eq!(d[0], id);
        assert_eq!(d.len(), 2, "the image and its layer: {d:?}");
        assert!(s.resolve(&id).is_err());
        assert!(s.state.lock().layers.is_empty());
        s.deleter.drain();
        // Nothing of the layer is left on disk, and a reopen finds no image.
        assert_eq!(vfs_store(tmp.path()).image_count(), 0);
    }

    #[test]
    fn containers_hold_their_image_as_dockerd_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("a", b"1")]), Some("img"), None, &[]).unwrap();
        let cid = crate::util::new_id();
        s.create_rw(&cid, &id).unwrap();
        let stopped = [user(&cid, &id, false)];
        let running = [user(&cid, &id, true)];

        let e = s.delete("img", false, &stopped).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "conflict: unable to remove repository reference \"img\" (must force) - container {} is using its referenced image {}",
                &cid[..12],
                &id[7..19]
            )
        );
        let e = s.delete(&id, false, &stopped).unwrap_err();
        assert!(e.to_string().ends_with(&format!(
            "(must be forced) - image is being used by stopped container {}",
            &cid[..12]
        )));
        let e = s.delete(&id, true, &running).unwrap_err();
        assert!(
            e.to_string()
                .contains("(cannot be forced) - image is being used by running container")
        );
        // Untagging by name with -f while a container runs: the tag goes, the image stays.
        let r = s.delete("img", true, &running).unwrap();
        assert_eq!(untags(&r), ["img:latest"]);
        assert!(deletes(&r).is_empty());
        assert!(s.resolve(&id).is_ok());
        // -f on a stopped container's image: the image goes, its layer stays for the
        // container.
        let r = s.delete(&id, true, &stopped).unwrap();
        assert_eq!(deletes(&r), [id.as_str()]);
        assert_eq!(s.state.lock().layers.len(), 1);
        s.remove_rw(&cid).unwrap();
        s.deleter.drain();
        // The layer no one uses is removed at the next open.
        let s2 = vfs_store(tmp.path());
        assert!(s2.state.lock().layers.is_empty());
    }

    #[test]
    fn bad_tags_are_refused_and_unknown_images_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        import(&s, tarball(&[("a", b"1")]), Some("img"), None, &[]).unwrap();
        for (repo, tag) in [
            ("Upper", None),
            ("img@sha256:abcd", None),
            ("img", Some("bad tag")),
            (&"a".repeat(64) as &str, None),
        ] {
            let e = s.tag("img", repo, tag).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{repo} {tag:?}");
        }
        let e = s.tag("nope", "x", None).unwrap_err();
        assert_eq!(e.to_string(), "No such image: nope:latest");
        let e = s.delete("nope", false, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(s.resolve("img").unwrap().repo_tags, ["img:latest"]);
    }
}
