//! Root tests of the GraphActor: driver selection, import, lookups, container layers
//! that really mount, and a restart on the same data root.
//!
//! Each test uses its own temp data root; mounts are undone by a Drop guard.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure, as tests do"
)]

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use berth::actors::graph::*;
use berth::actors::{Init, Shutdown};
use berth::config::DaemonConfig;
use berth::deleter::Deleter;
use berth::error::ErrorKind;

#[path = "common/ledger.rs"]
mod ledger;

/// True (the test returns) unless root; the test ledger records the skip or the run.
fn skip_unless_root() -> bool {
    !ledger::root_or_skip(module_path!(), "root tests need euid 0")
}

fn temp_root() -> tempfile::TempDir {
    temp_root_in(std::env::temp_dir())
}

fn temp_root_in(base: impl AsRef<Path>) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-graph-test-")
        .tempdir_in(base)
        .unwrap()
}

/// Benchmarks run under `$BERTH_BENCH_DIR` when set (e.g. a fresh ext4), else TMPDIR.
fn bench_root() -> tempfile::TempDir {
    match std::env::var_os("BERTH_BENCH_DIR") {
        Some(d) => temp_root_in(d),
        None => temp_root(),
    }
}

fn config(root: &Path, driver: Option<&str>) -> Arc<DaemonConfig> {
    let mut c = DaemonConfig::defaults();
    c.data_root = root.join("data");
    c.exec_root = root.join("exec");
    c.storage_driver = driver.map(Into::into);
    Arc::new(c)
}

/// A busybox rootfs: bin/busybox, a few applet symlinks, etc/passwd.
fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, io::empty()).unwrap();
    };
    dir(&mut b, "bin/", 0o755);
    dir(&mut b, "etc/", 0o755);
    dir(&mut b, "tmp/", 0o1777);
    b.append_path_with_name("/bin/busybox", "bin/busybox")
        .unwrap();
    for applet in ["sh", "ls", "cat", "echo"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(passwd.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    b.into_inner().unwrap()
}

fn import_msg(tar: Vec<u8>, repo: &str, tag: &str) -> ImportImage {
    ImportImage {
        source: Box::new(io::Cursor::new(tar)),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        message: String::new(),
        changes: vec![r#"CMD ["sh"]"#.into()],
    }
}

/// What Init should pick for a data root: overlay2 unless the filesystem cannot hold
/// overlay upper layers.
fn expected_driver(root: &Path) -> &'static str {
    let st = nix::sys::statfs::statfs(root).unwrap();
    if st.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC {
        "vfs"
    } else {
        "overlay2"
    }
}

/// Unmounts on drop, also when an assertion fails.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn mount_spec(spec: &berth::monitor::spec::RootfsSpec) -> MountGuard {
    use nix::mount::MsFlags;
    if spec.fstype == "bind" {
        nix::mount::mount(
            Some(spec.source.as_str()),
            &spec.target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
    } else {
        nix::mount::mount(
            Some(spec.source.as_str()),
            &spec.target,
            Some(spec.fstype.as_str()),
            MsFlags::empty(),
            Some(spec.options.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount {spec:?}: {e}"));
    }
    MountGuard(spec.target.clone())
}

fn upperdir(spec: &berth::monitor::spec::RootfsSpec) -> PathBuf {
    if spec.fstype == "bind" {
        return PathBuf::from(&spec.source);
    }
    let up = spec
        .options
        .split(',')
        .find_map(|o| o.strip_prefix("upperdir="))
        .unwrap();
    PathBuf::from(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay2_import_resolve_mount_and_restart() {
        if skip_unless_root() {
            return;
        }
        let tmp = temp_root();
        let cfg = config(tmp.path(), None);
        let want_driver = expected_driver(tmp.path());
        let cid = berth::util::new_id();

        let (id, spec) = System::new().block_on(async {
            let graph = GraphActor::new(cfg.clone(), Deleter::new()).start();
            graph.send(Init).await.unwrap().unwrap();
            let info = graph.send(GetDriverInfo).await.unwrap();
            assert_eq!(info.name, want_driver);
            if want_driver == "overlay2" {
                let status: Vec<(&str, &str)> = info
                    .status
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                assert_eq!(status[0], ("Backing Filesystem", "extfs"));
                assert!(status.contains(&("Supports d_type", "true")));
            }
            assert_eq!(info.images, 0);
            assert!(cfg.data_root.join(want_driver).is_dir());
            assert!(cfg.data_root.join("image").join(want_driver).is_dir());

            let id = graph
                .send(import_msg(busybox_tar(), "busybox", "latest"))
                .await
                .unwrap()
                .unwrap();
            assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

            let rows = graph.send(ListImages::default()).await.unwrap().unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].id, id);
            assert_eq!(rows[0].repo_tags, vec!["busybox:latest".to_owned()]);
            let busybox_size = fs::metadata("/bin/busybox").unwrap().len() as i64;
            assert_eq!(rows[0].size, busybox_size + 30);
            assert_eq!(rows[0].virtual_size, rows[0].size);

            for r in [
                "busybox",
                "busybox:latest",
                "docker.io/library/busybox",
                &id,
                &id[7..],
                &id[7..10],
            ] {
                let info = graph
                    .send(ResolveImage {
                        reference: r.to_owned(),
                    })
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{r}: {e}"));
                assert_eq!(info.id, id);
                assert_eq!(info.config.cmd, Some(vec!["sh".to_owned()]));
                assert_eq!(info.repo_tags, vec!["busybox:latest".to_owned()]);
            }
            let e = graph
                .send(ResolveImage {
                    reference: "busybox:nope".into(),
                })
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(e.to_string(), "No such image: busybox:nope");

            let layer = graph
                .send(CreateRwLayer {
                    container_id: cid.clone(),
                    image_id: id.clone(),
                })
                .await
                .unwrap()
                .unwrap();
            layer.durable.await.unwrap().unwrap();
            let spec = layer.rootfs;
            assert_eq!(
                spec.fstype,
                if want_driver == "overlay2" {
                    "overlay"
                } else {
                    "bind"
                }
            );
            (id, spec)
        });

        // The spec mounts, shows the image, and writes land in the container's layer.
        {
            let _guard = mount_spec(&spec);
            let root = &spec.target;
            assert!(root.join("bin/busybox").is_file());
            assert_eq!(
                fs::read_to_string(root.join("etc/passwd")).unwrap(),
                "root:x:0:0:root:/root:/bin/sh\n"
            );
            assert!(root.join("proc").is_dir(), "mount points are prepared");
            assert!(root.join("etc/hosts").is_file());
            // The busybox in the layer really runs there.
            let out = std::process::Command::new("chroot")
                .arg(root)
                .args(["/bin/sh", "-c", "echo hi > /hello.txt && cat /hello.txt"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(out.stdout, b"hi\n");
            assert_eq!(
                fs::read_to_string(upperdir(&spec).join("hello.txt")).unwrap(),
                "hi\n"
            );
        }
        if spec.fstype == "overlay" {
            // The image layer is untouched.
            let lower = spec
                .options
                .split(',')
                .find_map(|o| o.strip_prefix("lowerdir="))
                .unwrap();
            for l in lower.split(':') {
                assert!(!Path::new(l).join("hello.txt").exists());
            }
        }

        System::new().block_on(async {
            let graph = GraphActor::new(cfg.clone(), Deleter::new()).start();
            graph.send(Init).await.unwrap().unwrap();
            // The restarted actor still has the image and the container's layer.
            let rows = graph.send(ListImages::default()).await.unwrap().unwrap();
            assert_eq!(rows.len(), 1);
            let info = graph
                .send(ResolveImage {
                    reference: "busybox:latest".into(),
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(info.id, id);
            assert!(upperdir(&spec).join("hello.txt").is_file());

            graph
                .send(RemoveRwLayer {
                    container_id: cid.clone(),
                })
                .await
                .unwrap()
                .unwrap();
            assert!(!spec.target.exists());
            assert!(!upperdir(&spec).exists());
            // Idempotent.
            graph
                .send(RemoveRwLayer {
                    container_id: cid.clone(),
                })
                .await
                .unwrap()
                .unwrap();
            graph.send(Shutdown).await.unwrap().unwrap();
            // Shutdown waited for the background deletion: nothing doomed is left.
            let mounts = cfg
                .data_root
                .join("image")
                .join(want_driver)
                .join("layerdb/mounts");
            for dir in [cfg.data_root.join(want_driver), mounts] {
                let doomed: Vec<_> = fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .filter(|n| n.to_string_lossy().contains("removing-"))
                    .collect();
                assert!(doomed.is_empty(), "{}: {doomed:?}", dir.display());
            }
        });
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(tmp.path().to_str().unwrap()),
            "a mount was left behind"
        );
    }

    #[test]
    fn named_drivers_and_bad_archives() {
        if skip_unless_root() {
            return;
        }
        let tmp = temp_root();
        System::new().block_on(async {
            let graph = GraphActor::new(config(tmp.path(), Some("zfs")), Deleter::new()).start();
            let e = graph.send(Init).await.unwrap().unwrap_err();
            assert!(e.to_string().contains("zfs is not supported"), "{e}");

            let cfg = config(tmp.path(), Some("vfs"));
            let graph = GraphActor::new(cfg.clone(), Deleter::new()).start();
            graph.send(Init).await.unwrap().unwrap();
            assert_eq!(graph.send(GetDriverInfo).await.unwrap().name, "vfs");

            // A tarball that climbs out of the layer: refused, nothing left.
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..10].copy_from_slice(b"../escaped");
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
            let e = graph
                .send(import_msg(b.into_inner().unwrap(), "evil", "latest"))
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
            assert!(e.to_string().contains("leaves the layer"), "{e}");
            assert_eq!(fs::read_dir(cfg.data_root.join("vfs")).unwrap().count(), 0);
            assert!(!cfg.data_root.join("escaped").exists());
            assert!(
                graph
                    .send(ListImages::default())
                    .await
                    .unwrap()
                    .unwrap()
                    .is_empty()
            );
            graph.send(Shutdown).await.unwrap().unwrap();
        });
    }

    /// A reader that delivers a tarball only after the test says so.
    struct Gate {
        rx: std::sync::mpsc::Receiver<()>,
        opened: bool,
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for Gate {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.opened {
                self.rx
                    .recv_timeout(Duration::from_secs(20))
                    .map_err(|_| io::Error::other("gate never opened"))?;
                self.opened = true;
            }
            self.data.read(buf)
        }
    }

    #[test]
    fn a_slow_import_does_not_block_other_messages() {
        if skip_unless_root() {
            return;
        }
        let tmp = temp_root();
        let cfg = config(tmp.path(), Some("vfs"));
        System::new().block_on(async {
            let graph = GraphActor::new(cfg, Deleter::new()).start();
            graph.send(Init).await.unwrap().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let slow = graph.send(ImportImage {
                source: Box::new(Gate {
                    rx,
                    opened: false,
                    data: io::Cursor::new(busybox_tar()),
                }),
                repo: Some("slow".into()),
                tag: None,
                message: "slow one".into(),
                changes: Vec::new(),
            });
            let slow = actix::spawn(slow);
            actix::clock::sleep(Duration::from_millis(50)).await;
            // While the slow import waits for its body, other work goes on.
            let quick = graph
                .send(import_msg(busybox_tar(), "quick", "1"))
                .timeout(Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap();
            let rows = graph
                .send(ListImages::default())
                .timeout(Duration::from_secs(1))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].id, quick);
            tx.send(()).unwrap();
            let slow_id = slow.await.unwrap().unwrap().unwrap();
            let info = graph
                .send(ResolveImage {
                    reference: "slow".into(),
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(info.id, slow_id);
            let inspected = graph
                .send(InspectImage {
                    reference: "slow".into(),
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(inspected.comment, "slow one");
            assert_eq!(
                graph
                    .send(ListImages::default())
                    .await
                    .unwrap()
                    .unwrap()
                    .len(),
                2
            );
        });
    }
}

/// About `limit` bytes of real files from /usr, as a rootfs-like tarball.
fn usr_tarball(limit: u64) -> (Vec<u8>, usize) {
    let mut b = tar::Builder::new(Vec::with_capacity(limit as usize + (16 << 20)));
    b.follow_symlinks(false);
    let mut total = 0u64;
    let mut count = 0usize;
    let mut stack = vec![PathBuf::from("/usr")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if total >= limit {
                return (b.into_inner().unwrap(), count);
            }
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let name = p.strip_prefix("/").unwrap();
            if m.is_dir() {
                if b.append_dir(name, &p).is_ok() {
                    count += 1;
                }
                stack.push(p);
            } else if (m.is_file() || m.file_type().is_symlink())
                && total + m.len() <= limit + (1 << 20)
                && b.append_path_with_name(&p, name).is_ok()
            {
                total += if m.is_file() { m.len() } else { 0 };
                count += 1;
            }
        }
    }
    (b.into_inner().unwrap(), count)
}

/// A benchmark, not a test: `cargo test --release --test root_graph -- --ignored --nocapture`.
#[cfg(test)]
mod bench {
    use super::*;

    #[test]
    #[ignore = "benchmark"]
    fn import_100mb_rootfs() {
        if skip_unless_root() {
            return;
        }
        let (tar, entries) = usr_tarball(100 << 20);
        eprintln!("tarball: {} MB, {entries} entries", tar.len() >> 20);
        for (driver, sync) in [("overlay2", true), ("overlay2", false), ("vfs", false)] {
            let tmp = bench_root();
            let mut cfg = (*config(tmp.path(), Some(driver))).clone();
            if !sync {
                cfg.storage_opts.sync_layers = false;
            }
            let cfg = Arc::new(cfg);
            let tar = tar.clone();
            System::new().block_on(async move {
                let graph = GraphActor::new(cfg, Deleter::new()).start();
                graph.send(Init).await.unwrap().unwrap();
                for round in 0..3 {
                    let started = std::time::Instant::now();
                    let msg = import_msg(tar.clone(), "bench", &format!("r{round}"));
                    graph.send(msg).await.unwrap().unwrap();
                    eprintln!(
                        "{driver} sync={sync} import {round}: {:?}",
                        started.elapsed()
                    );
                }
            });
        }
    }
}

fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

#[cfg(test)]
mod bench_parts {
    use super::*;
    use sha2::Digest;

    #[test]
    #[ignore = "benchmark"]
    fn import_stages() {
        let (tar, entries) = usr_tarball(100 << 20);
        eprintln!("tarball: {} MB, {entries} entries", tar.len() >> 20);
        let t = std::time::Instant::now();
        let d = sha2::Sha256::digest(&tar);
        eprintln!("sha256 alone: {:?} {}", t.elapsed(), d[0]);
        let t = std::time::Instant::now();
        let mut a = tar::Archive::new(io::Cursor::new(&tar));
        let mut n = 0;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            n += io::copy(&mut e, &mut io::sink()).unwrap();
        }
        eprintln!("parse alone: {:?} {n}", t.elapsed());
        for round in 0..3 {
            let tmp = bench_root();
            let dest = tmp.path().join("x");
            fs::create_dir(&dest).unwrap();
            let data = tar.clone();
            let cpu0 = cpu_time();
            let t = std::time::Instant::now();
            berth::actors::graph::archive::extract(io::Cursor::new(data), &dest).unwrap();
            let ex = t.elapsed();
            eprintln!("round {round}: cpu (all threads) {:?}", cpu_time() - cpu0);
            let t = std::time::Instant::now();
            let f = fs::File::open(&dest).unwrap();
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)).unwrap();
            eprintln!("round {round}: extract {ex:?}, syncfs {:?}", t.elapsed());
            let t = std::time::Instant::now();
            drop(tmp);
            eprintln!("rm: {:?}", t.elapsed());
        }
    }
}
