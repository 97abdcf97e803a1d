//! The first containers, driven by the real docker CLI and the Python SDK against a real
//! berthd: import, images, run (attached, piped stdin, detached), ps, stop, rm, exit
//! codes, namespaces, errors a user meets, restart and live-restore. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Opts, TestDaemon};

/// The container's cgroup dirs that exist: berth/<id> in each v1 hierarchy and in the
/// unified one (or at the top, v2-only).
fn cgroups(id: &str) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![std::path::Path::new("/sys/fs/cgroup/berth").join(id)];
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        dirs.push(e.path().join("berth").join(id));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Polls `f` until it holds or `secs` pass; returns whether it held.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

fn ns_of(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn the_docker_cli_runs_a_first_container() {
    require_root!();
    let d = TestDaemon::start();
    let id = d.import_busybox();
    assert!(id.starts_with("sha256:"), "{id}");
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(images.contains("busybox:latest"), "{images}");

    let out = d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(out, "hi\n");

    let out = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "ex3",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=ex3",
        "--format",
        "{{.Status}}",
    ]);
    assert!(status.starts_with("Exited (3)"), "{status}");

    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "t1",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.Command}}"]);
    assert!(ps.contains("t1 Up"), "{ps}");
    assert!(ps.contains("\"sleep 60\""), "{ps}");
    assert_eq!(d.docker_ok(&["stop", "-t", "1", "t1"]).trim(), "t1");
    let state = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "t1",
    ]);
    assert_eq!(state.trim(), "exited 137");
    assert_eq!(d.docker_ok(&["rm", "t1"]).trim(), "t1");
    d.docker_ok(&["rm", "ex3"]);
    assert_eq!(d.docker_ok(&["ps", "-a", "-q"]), "");
    // Each rm renamed the container's dir, layer metadata and layers away before it
    // answered; the background deleter deletes them soon after.
    let driver = d.docker_ok(&["info", "--format", "{{.Driver}}"]);
    let driver = driver.trim();
    let dirs = [
        d.data_root.join("containers"),
        d.data_root
            .join("image")
            .join(driver)
            .join("layerdb/mounts"),
        d.data_root.join(driver),
    ];
    let entries = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The busybox layer and its init layer (the image's, shared by its containers) are
    // the only dirs left in the driver's home.
    let want = [0, 0, 2];
    while dirs.iter().zip(want).any(|(d, n)| entries(d).len() != n)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for (dir, n) in dirs.iter().zip(want) {
        let left = entries(dir);
        assert_eq!(left.len(), n, "{}: {left:?}", dir.display());
    }
}

#[test]
fn stdin_reaches_the_container_through_the_hijacked_attach() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let mut child = d
        .docker_cmd()
        .args(["run", "-i", "--rm", "--network", "none", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // A larger input arrives whole and in order.
    let input: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    let mut child = d
        .docker_cmd()
        .args([
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "busybox",
            "wc",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20000");
}

#[test]
fn the_container_gets_its_own_namespaces_rootfs_and_hostname() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--name",
        "nsx",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo $$; hostname; grep ' / ' /proc/self/mountinfo | head -1; ls /sys/class/net",
    ]);
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "nsx"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "pid 1 is the command: {out}");
    assert_eq!(
        lines[1],
        &id.trim()[..12],
        "hostname is the short id: {out}"
    );
    let driver = d.docker_ok(&["info", "--format", "{{.Driver}}"]);
    if driver.trim() == "overlay2" {
        assert!(
            lines[2].contains("overlay"),
            "rootfs from the driver: {out}"
        );
    }
    assert_eq!(lines[3..], ["lo"], "only lo with --network none: {out}");

    let cid = d.docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", cid.trim()]);
    let pid = pid.trim();
    assert_ne!(pid, "0");
    for ns in ["mnt", "pid", "uts", "ipc", "net"] {
        assert_ne!(
            ns_of(pid, ns),
            ns_of("self", ns),
            "{ns} namespace is the host's"
        );
    }
    d.docker_ok(&["rm", "-f", cid.trim()]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| !c.contains("sleep"))
                .unwrap_or(true),
        "the container's process outlived rm -f"
    );
}

#[test]
fn errors_a_user_meets_are_clear() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    // A missing image: the CLI tries to pull it from Docker Hub, and berthd says why it
    // cannot (Docker Hub's refusal, or, without a network, the failed request).
    let out = d.docker(&["run", "--rm", "--network", "none", "nosuchimage", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to find image 'nosuchimage:latest' locally"),
        "{err}"
    );
    assert!(
        err.contains("pull access denied for nosuchimage") || err.contains("registry docker.io"),
        "{err}"
    );
    // A name already taken.
    let create_dup = [
        "create",
        "--network",
        "none",
        "--name",
        "dup",
        "busybox",
        "true",
    ];
    d.docker_ok(&create_dup);
    let out = d.docker(&create_dup);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The container name \"/dup\" is already in use"),
        "{err}"
    );
    // A command that does not exist: 127, as with dockerd.
    let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "nosuchcmd"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    // Removing a running container needs -f.
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "busy",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = d.docker(&["rm", "busy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("You cannot remove a running container"));
    d.docker_ok(&["rm", "-f", "busy", "dup"]);
    // With -b none (the fixture's default), the default network is none, as under
    // dockerd, and there is no network "bridge".
    let links = d.docker_ok(&["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(links, "lo\n");
    let out = d.docker(&["run", "--rm", "--network", "bridge", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network bridge not found"),
        "{out:?}"
    );
    // Bad JSON never reaches a record.
    let reply = d
        .raw("POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"Cmd\":3}")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert_eq!(d.docker_ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn the_python_sdk_creates_starts_waits_and_removes() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let text = d.python_sdk_ok(
        r#"
ct = c.containers.create('busybox', ['sh', '-c', 'exit 3'], network_mode='none', name='sdk1')
ct.start()
print(ct.wait()['StatusCode'])
ct.reload()
print(ct.status)
print(len(c.containers.list(all=True)))
ct.remove()
print(len(c.containers.list(all=True)))
d = c.containers.run('busybox', ['sleep', '30'], network_mode='none', detach=True)
d.reload()
print(d.status)
d.remove(force=True)
print(len(c.images.list()))
"#,
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["3", "exited", "1", "0", "running", "1"]
    );
}

#[test]
fn shutdown_stops_containers_and_a_restart_remembers_them() {
    require_root!();
    let mut d = TestDaemon::start_with(Opts {
        args: vec!["--shutdown-timeout".into(), "1".into()],
        ..Opts::default()
    });
    d.import_busybox();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "keep",
        "busybox",
        "sleep",
        "600",
    ]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "keep"]);
    assert!(d.stop().success());
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the container outlived the daemon's shutdown"
    );
    d.restart(&Opts::default());
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), format!("{} keep exited", &id.trim()[..12]));
    // The name is still taken after the restart (the link graph is a real file).
    let out = d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "keep",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    d.docker_ok(&["start", "keep"]);
    assert!(
        d.docker_ok(&["ps", "--format", "{{.Names}}"])
            .contains("keep")
    );
    let pid1 = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "keep"]);
    assert_eq!(d.docker_ok(&["restart", "-t", "1", "keep"]).trim(), "keep");
    let after = d.docker_ok(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "keep"]);
    assert!(after.starts_with("running "), "{after}");
    assert_ne!(pid1.trim(), after.trim_start_matches("running ").trim());
    d.docker_ok(&["rm", "-f", "keep"]);
}

#[test]
fn live_restore_keeps_containers_running_across_a_restart() {
    require_root!();
    common::live_restore_keeps_a_container_running(&[]);
}

#[test]
fn logs_reach_the_cli_and_the_sdk() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "lg",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; echo three",
    ]);
    let out = d.docker(&["logs", "lg"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    let ts = d.docker_ok(&["logs", "-t", "lg"]);
    assert!(ts.lines().all(|l| l.len() > 30 && l.contains('T')), "{ts}");
    // Follow ends when the container exits.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "lf",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]);
    let follow = d.docker_ok(&["logs", "-f", "lf"]);
    assert_eq!(follow, "1\n2\n3\n");
    assert_eq!(d.docker_ok(&["logs", "--tail", "1", "lf"]), "3\n");
    // docker-py's containers.run (not detached) reads the output through logs.
    let out = d.python_sdk_ok(
        "print(repr(c.containers.run('busybox', ['echo', 'hi'], network_mode='none', remove=True)))\n",
    );
    assert_eq!(out.trim(), "b'hi\\n'");
    d.docker_ok(&["rm", "lg", "lf"]);
}

#[test]
fn a_container_whose_monitor_was_killed_can_still_be_stopped_and_removed() {
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
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "lost"]);
    let pid: u32 = pid.trim().parse().unwrap();
    // Kill the monitor the hard way, by pid: the container runs on, unsupervised.
    let monitors = d.monitor_pids();
    assert_eq!(monitors.len(), 1, "one monitor per container");
    common::signal(monitors[0] as u32, libc::SIGKILL);
    // berthd sees the monitor's connection close with no exit status: the container is
    // exited (255), its init killed (tests/root_faults.rs checks State.Error and the
    // init); a stop, had it come first, finds no monitor and records the same.
    d.docker_ok(&["stop", "-t", "1", "lost"]);
    let state = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "lost",
    ]);
    assert_eq!(state.trim(), "exited 255");
    // Ended by berthd already; by pid in case the stop came first.
    common::signal(pid, libc::SIGKILL);
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "lost"]);
    assert!(
        !cgroups(id.trim()).is_empty(),
        "the dead monitor left no cgroup?"
    );
    d.docker_ok(&["rm", "lost"]);
    // Its monitor did not live to remove its cgroup: the removal did.
    let left = cgroups(id.trim());
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_create_sets_the_container_up_ahead_and_undoes_it_unless_started_in_time() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    // Options (up to the image) and command.
    let create = |args: &[&str]| {
        let mut all = vec!["create", "--network", "none"];
        let (opts, cmd) = match args.first() {
            Some(&"-v") => args.split_at(2),
            _ => args.split_at(0),
        };
        all.extend_from_slice(opts);
        all.push("busybox");
        all.extend_from_slice(cmd);
        d.docker_ok(&all).trim().to_owned()
    };

    // Started at once: the monitor that set it up during the create runs it.
    let id = create(&["sleep", "600"]);
    assert!(
        eventually(5, || !d.monitor_pids().is_empty()
            && !cgroups(&id).is_empty()),
        "no monitor holds the created container"
    );
    // The monitor (and, until its pivot_root, its init, cloned in the same dir).
    let held = d.monitor_pids();
    d.docker_ok(&["start", &id]);
    let running = d.monitor_pids();
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(held.contains(&running[0]), "the start used another monitor");
    let status = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", &id]);
    assert_eq!(status.trim(), "running");
    d.docker_ok(&["rm", "-f", &id]);
    assert!(eventually(5, || d.monitor_pids().is_empty()));

    // Removed before any start: the set-up goes with it.
    let id = create(&["true"]);
    assert!(eventually(5, || !cgroups(&id).is_empty()));
    d.docker_ok(&["rm", &id]);
    assert!(cgroups(&id).is_empty(), "{:?}", cgroups(&id));
    assert!(eventually(5, || d.monitor_pids().is_empty()));

    // Not started in time: undone after half a second; a later start sets it up anew.
    let id = create(&["echo", "hello"]);
    assert!(eventually(5, || !cgroups(&id).is_empty()));
    assert!(
        eventually(5, || d.monitor_pids().is_empty() && cgroups(&id).is_empty()),
        "the set-up ahead was kept: {:?} {:?}",
        d.monitor_pids(),
        cgroups(&id)
    );
    let out = d.docker_ok(&["start", "-a", &id]);
    assert_eq!(out.trim(), "hello");
    d.docker_ok(&["rm", &id]);
    assert!(cgroups(&id).is_empty());

    // With a bind mount, nothing is set up ahead: the start mounts the file as it is
    // then, even when it was replaced since the create.
    let file = d.dir.path().join("motd");
    std::fs::write(&file, "before\n").unwrap();
    let bind = format!("{}:/motd:ro", file.display());
    let id = create(&["-v", &bind, "cat", "/motd"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        d.monitor_pids().is_empty(),
        "set up ahead despite a bind mount"
    );
    let tmp = d.dir.path().join("motd.new");
    std::fs::write(&tmp, "after\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let out = d.docker_ok(&["start", "-a", &id]);
    assert_eq!(out.trim(), "after");
    d.docker_ok(&["rm", &id]);
}

/// Long operations are not cut by berthd: its actors' replies have no deadline, so a stop
/// that waits longer than two minutes for the exit ends with the kill, and the CLI gets
/// its 204. pid 1 of a pid namespace ignores SIGTERM (no handler), so `sleep` outlives the
/// stop signal. The test sleeps most of its time; its name sorts it early, so that the
/// other tests of this binary run beside it.
#[test]
fn a_stop_that_outlasts_two_minutes_ends_with_the_kill() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d
        .docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"])
        .trim()
        .to_owned();
    let started = std::time::Instant::now();
    let out = d.docker(&["stop", "-t", "130", &id]);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "docker stop failed after {took:?}: {}\ndaemon log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&d.log(), 20)
    );
    assert!(took.as_secs() >= 129, "the stop took only {took:?}");
    let state = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &id,
    ]);
    assert_eq!(state.trim(), "exited 137");
}
