//! Faults, driven by the real docker CLI against a real berthd (issue 18, part 4): the
//! data root's disk full, a container's monitor killed, corrupt records on disk, iptables
//! missing or failing at start, the cgroup hierarchies not mounted. Each fault ends in a
//! clear error, nothing torn, and a daemon that serves (or, at start, one line and exit
//! 1). Root only.
//!
//! Isolation: each test has its own data root (the disk-full one on a small loop-mounted
//! ext4 file under its temp dir, unmounted lazily by `TestDaemon`'s drop, also on
//! failure); the iptables tests run berthd in a network namespace of their own, with
//! bridges on 10.199.90.0/24 and 10.199.91.0/24; the cgroup test in a mount namespace of
//! its own (`unshare -m`), where /sys/fs/cgroup is covered by an empty tmpfs.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Opts, TestDaemon, berthd_bin, inspect, wait_for};

/// Whether `out` failed with the disk-full error named in its message.
fn failed_for_enospc(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what} on a full disk: {}", stderr.trim());
    assert!(!out.status.success(), "{what} succeeded on a full disk");
    assert!(
        stderr.to_lowercase().contains("no space left on device"),
        "{what}: {stderr}"
    );
}

/// The names in `dir`, sorted (none if it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out
}

/// Bytes available on the filesystem at `path` (with no blocks reserved for root, what
/// root can write too; ext4 keeps a few clusters for itself, which nobody can).
fn free_bytes(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    st.blocks_available() * st.fragment_size()
}

#[test]
fn a_full_data_root_fails_clearly_tears_nothing_and_recovers_once_freed() {
    require_root!();
    let mut d = TestDaemon::start();
    assert!(d.stop().success());
    // A 128 MB ext4 file mounted at the data root (no blocks reserved for root: berthd
    // runs as root). TestDaemon's drop unmounts (lazily) everything under its temp dir.
    let img = d.dir.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0"])
        .arg(&img));
    std::fs::remove_dir_all(&d.data_root).unwrap();
    std::fs::create_dir(&d.data_root).unwrap();
    run(Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&d.data_root));
    d.restart(&Opts::default());
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); usleep 20000; done",
    ]);
    d.docker_ok(&["create", "--network", "none", "--name", "before", "busybox"]);
    let containers = d.data_root.join("containers");
    let before = names(&containers);
    assert_eq!(before.len(), 2, "{before:?}");
    let images = d.docker_ok(&["images", "-q", "--no-trunc"]);
    // The layers' contents and metadata, which a failed create, import or commit must
    // leave as they were.
    let driver = d
        .docker_ok(&["info", "-f", "{{.Driver}}"])
        .trim()
        .to_owned();
    let layer_dirs = [
        d.data_root.join(&driver),
        d.data_root
            .join("image")
            .join(&driver)
            .join("layerdb/sha256"),
        d.data_root
            .join("image")
            .join(&driver)
            .join("layerdb/mounts"),
        d.data_root
            .join("image")
            .join(&driver)
            .join("imagedb/content/sha256"),
    ];
    let layers_before: Vec<Vec<String>> = layer_dirs.iter().map(|p| names(p)).collect();
    assert!(!layers_before[0].is_empty(), "{driver}: no layer dirs");

    // Fill it: fallocate what it can, then dd to the last block.
    let filler = d.data_root.join("filler");
    let _ = Command::new("fallocate")
        .args(["-l", "256M"])
        .arg(&filler)
        .output();
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", d.data_root.join("filler2").display()))
        .args(["bs=4k", "status=none"])
        .output();
    assert!(
        free_bytes(&d.data_root) < 64 << 10,
        "not full: {}",
        free_bytes(&d.data_root)
    );

    let create = d.docker(&["create", "--network", "none", "--name", "full", "busybox"]);
    failed_for_enospc("docker create", &create);
    let import = d.docker(&[
        "import",
        common::busybox_tar().to_str().unwrap(),
        "imported:full",
    ]);
    failed_for_enospc("docker import", &import);
    let commit = d.docker(&["commit", "talker", "committed:full"]);
    failed_for_enospc("docker commit", &commit);
    // The talker's lines are dropped meanwhile (whole entries: the log is cut back to
    // its last one), and it runs on, as under dockerd.
    std::thread::sleep(std::time::Duration::from_millis(500));

    // Nothing torn: no half-made container or image, and the daemon serves.
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    assert_eq!(ps, ["before created", "talker running"]);
    assert_eq!(names(&containers), before);
    // The deleter removes what a failed request undid after its reply.
    let layers_now = || layer_dirs.iter().map(|p| names(p)).collect::<Vec<_>>();
    assert!(
        wait_for(5, || layers_now() == layers_before),
        "{:?}\n!=\n{layers_before:?}",
        layers_now()
    );
    assert_eq!(d.docker_ok(&["images", "-q", "--no-trunc"]), images);
    assert_eq!(inspect(&d, "talker", "{{.State.Status}}"), "running");
    assert!(d.docker(&["inspect", "full"]).status.code() == Some(1));

    // Freed: everything works again.
    std::fs::remove_file(&filler).unwrap();
    let _ = std::fs::remove_file(d.data_root.join("filler2"));
    let note = "bytes of the container's output were not logged: No space left on device";
    assert!(
        wait_for(10, || String::from_utf8_lossy(
            &d.docker(&["logs", "talker"]).stdout
        )
        .contains("line")
            && String::from_utf8_lossy(&d.docker(&["logs", "talker"]).stderr)
                .contains(note)),
        "no note of the lost output in the logs:\n{}",
        String::from_utf8_lossy(&d.docker(&["logs", "talker"]).stderr)
    );
    let id = inspect(&d, "talker", "{{.Id}}");
    let log = std::fs::read_to_string(containers.join(&id).join(format!("{id}-json.log"))).unwrap();
    for line in log.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a torn log entry: {line:?}"
        );
    }
    d.docker_ok(&["create", "--network", "none", "--name", "full", "busybox"]);
    d.docker_ok(&["start", "before"]);
    d.docker_ok(&["start", "full"]);
    d.docker_ok(&[
        "import",
        common::busybox_tar().to_str().unwrap(),
        "imported:free",
    ]);
    d.docker_ok(&["commit", "talker", "committed:free"]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:free",
        "echo",
        "ok",
    ]);
    assert_eq!(out.trim(), "ok");
    d.docker_ok(&["rm", "-f", "talker", "before", "full"]);
}

#[test]
fn a_killed_monitor_leaves_its_container_exited_with_an_error_and_berthd_serving() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "lost",
        "busybox",
        "sleep",
        "600",
    ]);
    let pid: i32 = inspect(&d, "lost", "{{.State.Pid}}").parse().unwrap();
    let monitors = d.monitor_pids();
    assert_eq!(monitors.len(), 1, "one monitor per container");
    common::signal(monitors[0] as u32, libc::SIGKILL);
    assert!(
        wait_for(10, || inspect(&d, "lost", "{{.State.Status}}") == "exited"),
        "still {}",
        inspect(&d, "lost", "{{.State.Status}}")
    );
    assert_eq!(inspect(&d, "lost", "{{.State.ExitCode}}"), "255");
    let error = inspect(&d, "lost", "{{.State.Error}}");
    assert_eq!(
        error,
        "the container's monitor was killed or crashed, so its exit status is unknown; its processes were killed"
    );
    // Nothing supervised is left running behind a container shown as exited.
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    assert!(
        wait_for(5, || gone(pid)),
        "the container's init {pid} runs on"
    );
    // berthd serves, and the container starts again under a new monitor.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "served",
    ]);
    assert_eq!(out.trim(), "served");
    d.docker_ok(&["start", "lost"]);
    assert_eq!(
        inspect(&d, "lost", "{{.State.Status}} {{.State.Error}}"),
        "running"
    );
    d.docker_ok(&["rm", "-f", "lost"]);
}

#[test]
fn a_monitor_killed_while_berthd_is_down_is_found_at_start() {
    require_root!();
    let live = Opts {
        args: vec!["--live-restore".into()],
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(live.clone());
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "orphan",
        "busybox",
        "sleep",
        "600",
    ]);
    let pid: i32 = inspect(&d, "orphan", "{{.State.Pid}}").parse().unwrap();
    assert!(d.stop().success());
    let monitors = d.monitor_pids();
    assert_eq!(monitors.len(), 1, "live-restore leaves the monitor");
    common::signal(monitors[0] as u32, libc::SIGKILL);
    d.restart(&live);
    assert_eq!(
        inspect(&d, "orphan", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );
    assert!(
        inspect(&d, "orphan", "{{.State.Error}}")
            .starts_with("the container's monitor was killed or crashed"),
        "{}",
        inspect(&d, "orphan", "{{.State.Error}}")
    );
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    assert!(wait_for(5, gone), "the container's init {pid} runs on");
    d.docker_ok(&["start", "orphan"]);
    assert_eq!(inspect(&d, "orphan", "{{.State.Status}}"), "running");
    d.docker_ok(&["rm", "-f", "orphan"]);
}

/// The image config file of image `id` (`sha256:<hex>`) under the data root.
fn image_config(data_root: &Path, id: &str) -> PathBuf {
    let hex = id.trim().trim_start_matches("sha256:");
    for driver in names(&data_root.join("image")) {
        let p = data_root
            .join("image")
            .join(driver)
            .join("imagedb/content/sha256")
            .join(hex);
        if p.exists() {
            return p;
        }
    }
    panic!("no image config for {id}");
}

/// Log records at `level` whose message is `message`.
fn logged(d: &TestDaemon, level: &str, message: &str) -> Vec<serde_json::Value> {
    d.log_records()
        .into_iter()
        .filter(|r| r["level"] == level && r["fields"]["message"] == message)
        .collect()
}

#[test]
fn corrupt_records_are_moved_aside_at_start_and_the_rest_is_served() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    let other = d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"true\"]",
        common::busybox_tar().to_str().unwrap(),
        "other:latest",
    ]);
    let good = d
        .docker_ok(&["create", "--network", "none", "--name", "good", "busybox"])
        .trim()
        .to_owned();
    let trunc = d
        .docker_ok(&["create", "--network", "none", "--name", "trunc", "busybox"])
        .trim()
        .to_owned();
    let garbage = d
        .docker_ok(&[
            "create",
            "--network",
            "none",
            "--name",
            "garbage",
            "busybox",
        ])
        .trim()
        .to_owned();
    assert!(d.stop().success());

    let containers = d.data_root.join("containers");
    let record = containers.join(&trunc).join("config.v2.json");
    let bytes = std::fs::read(&record).unwrap();
    std::fs::write(&record, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        containers.join(&garbage).join("hostconfig.json"),
        b"\x00\x13garbage{",
    )
    .unwrap();
    let config = image_config(&d.data_root, &other);
    std::fs::write(&config, b"{\"architecture\":\"amd").unwrap();

    d.restart(&Opts::default());
    // Started normally, with everything else intact.
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "good");
    assert_eq!(inspect(&d, "good", "{{.Id}}"), good);
    let repos = d.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(repos.trim(), "busybox");
    // Moved aside, not deleted, and said so with the paths.
    let quarantine = d.data_root.join("quarantine");
    let moved = names(&quarantine.join("containers"));
    assert_eq!(moved.len(), 2, "{moved:?}");
    for id in [&trunc, &garbage] {
        let m = moved.iter().find(|m| m.starts_with(id.as_str())).unwrap();
        assert!(
            quarantine
                .join("containers")
                .join(m)
                .join("config.v2.json")
                .exists()
        );
    }
    let hex = other.trim().trim_start_matches("sha256:");
    let moved_images = names(&quarantine.join("images"));
    assert_eq!(moved_images.len(), 1, "{moved_images:?}");
    assert!(moved_images[0].starts_with(hex), "{moved_images:?}");
    let records = logged(&d, "ERROR", "corrupt container record moved aside");
    assert_eq!(records.len(), 2, "{}", d.log());
    for r in &records {
        let path = r["fields"]["path"].as_str().unwrap();
        assert!(path.ends_with(&trunc) || path.ends_with(&garbage), "{r}");
        assert!(
            r["fields"]["moved_to"]
                .as_str()
                .unwrap()
                .contains("/quarantine/containers/")
        );
    }
    let images = logged(&d, "ERROR", "corrupt image config moved aside");
    assert_eq!(images.len(), 1, "{}", d.log());
    assert_eq!(
        images[0]["fields"]["path"].as_str().unwrap(),
        config.display().to_string()
    );
    // The names are free again, the rest runs.
    d.docker_ok(&["create", "--network", "none", "--name", "trunc", "busybox"]);
    d.docker_ok(&["start", "good"]);
    let out = d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
    // The next start meets nothing corrupt.
    assert!(d.stop().success());
    d.restart(&Opts::default());
    assert!(logged(&d, "ERROR", "corrupt container record moved aside").len() == 2);
    assert_eq!(names(&quarantine.join("containers")).len(), 2);
    let mut ps: Vec<String> = d
        .docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    ps.sort();
    assert_eq!(ps, ["good", "trunc"]);
    d.docker_ok(&["rm", "-f", "good", "trunc"]);
    // Garbage tags: moved aside too (not overwritten by the next tag); the images stay.
    assert!(d.stop().success());
    let repos = config.ancestors().nth(4).unwrap().join("repositories.json");
    std::fs::write(&repos, b"{\"Repositories\":{\"busy").unwrap();
    d.restart(&Opts::default());
    assert_eq!(
        logged(
            &d,
            "ERROR",
            "corrupt repositories.json moved aside; tags lost"
        )
        .len(),
        1,
        "{}",
        d.log()
    );
    let moved = names(&quarantine.join("images"));
    assert!(
        moved.iter().any(|m| m.starts_with("repositories.json.")),
        "{moved:?}"
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "<none>:<none>");
}

/// Runs berthd as `wrap berthd ARGS` with environment `env` and its own temp roots,
/// asserting exit 1 and one fatal line holding `expect`; with `before_dirs`, that it
/// made no data root or exec root (the refusal came before them).
fn refused_with(
    wrap: &[&str],
    env: &[(&str, &str)],
    extra: &[&str],
    expect: &str,
    before_dirs: bool,
) {
    let dir = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let p = dir.path();
    std::fs::write(p.join("none.json"), "{}").unwrap();
    let args: Vec<String> = vec![
        "--data-root".into(),
        p.join("data").display().to_string(),
        "--exec-root".into(),
        p.join("exec").display().to_string(),
        "--pidfile".into(),
        p.join("pid").display().to_string(),
        "-H".into(),
        format!("unix://{}", p.join("api.sock").display()),
        "--config-file".into(),
        p.join("none.json").display().to_string(),
        "--metrics-addr".into(),
        format!("127.0.0.1:{}", common::free_port()),
    ];
    let mut cmd = Command::new(wrap.first().copied().unwrap_or(berthd_bin()));
    if !wrap.is_empty() {
        cmd.args(&wrap[1..]).arg(berthd_bin());
    }
    cmd.args(&args).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
    let fatal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("berthd:"))
        .collect();
    assert_eq!(fatal.len(), 1, "{extra:?}: {stderr}");
    assert!(fatal[0].contains(expect), "{extra:?}: {}", fatal[0]);
    if before_dirs {
        assert!(!p.join("data").exists(), "{extra:?} left a data root");
        assert!(!p.join("exec").exists(), "{extra:?} left an exec root");
    }
}

/// Runs `f` on a thread in a network namespace of its own (with `lo` up): berthd's
/// bridge and rules live and die there.
fn in_own_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        run(Command::new("ip").args(["link", "set", "lo", "up"]));
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn iptables_missing_or_failing_at_start_is_one_line_and_exit_1() {
    require_root!();
    let bin = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let empty = bin.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // An iptables that fails as one without the privilege or the kernel modules does.
    let failing = bin.path().join("failing");
    std::fs::create_dir(&failing).unwrap();
    for tool in ["iptables", "iptables-save", "iptables-restore"] {
        let p = failing.join(tool);
        std::fs::write(
            &p,
            "#!/bin/sh\necho 'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)' >&2\nexit 4\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (empty_s, failing_s) = (empty.display().to_string(), failing.display().to_string());
    in_own_netns(move || {
        refused_with(
            &[],
            &[("PATH", &empty_s)],
            &["--bip", "10.199.90.1/24"],
            "failed to start: network: iptables could not be run: No such file or directory",
            false,
        );
        refused_with(
            &[],
            &[("PATH", &failing_s)],
            &["--bip", "10.199.90.1/24"],
            "failed to start: network: iptables iptables-save failed: iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
            false,
        );
    });
    // With --iptables=false the daemon starts without it and runs bridged containers.
    let empty_s = empty.display().to_string();
    let d = in_own_netns(move || {
        TestDaemon::start_with(Opts {
            args: vec![
                "--bip".into(),
                "10.199.91.1/24".into(),
                "--iptables=false".into(),
            ],
            env: vec![("PATH".into(), empty_s)],
        })
    });
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(out.contains("10.199.91."), "{out}");
}

#[test]
fn cgroup_hierarchies_not_mounted_refuse_the_start() {
    require_root!();
    // As under `ip netns exec` (which mounts /sys again): no cgroup hierarchy in berthd's
    // mount namespace. The tmpfs lives and dies with that namespace.
    refused_with(
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs berth-test-empty /sys/fs/cgroup && exec \"$0\" \"$@\"",
        ],
        &[],
        &["-b", "none"],
        "Devices cgroup isn't mounted: berthd found no cgroup hierarchy mounted",
        true,
    );
    // Only the namespace saw the tmpfs.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("berth-test-empty"), "{mounts}");
}
