//! Observing and changing a running container through the real docker CLI and the
//! Python SDK: pause and unpause (the freezer), top, stats and update. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::{Opts, TestDaemon};

/// A busybox container that appends a line to /tmp/count every 50 ms.
fn counter(d: &TestDaemon, name: &str) {
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "while true; do echo x >> /tmp/count; usleep 50000; done",
    ]);
}

/// The lines in the counter's file, read from the host through the container's root.
fn count(d: &TestDaemon, name: &str) -> usize {
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let path = format!("/proc/{}/root/tmp/count", pid.trim());
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

fn inspect(d: &TestDaemon, name: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, name])
        .trim()
        .to_owned()
}

/// A paused counter stops counting and shows as paused in inspect and ps; unpaused it
/// counts again; the 409s of dockerd for a second pause and an unpause of a running one.
#[test]
fn pause_freezes_a_counter() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    counter(&d, "cnt");
    sleep(Duration::from_millis(400));
    d.docker_ok(&["pause", "cnt"]);
    assert_eq!(
        inspect(
            &d,
            "cnt",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"
        ),
        "paused true true"
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let frozen = count(&d, "cnt");
    sleep(Duration::from_millis(500));
    assert_eq!(count(&d, "cnt"), frozen, "the counter grew while paused");
    let out = d.docker(&["start", "cnt"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start a paused container, try unpause instead"),
        "{err}"
    );
    let again = d.docker(&["pause", "cnt"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("is already paused"), "{err}");
    d.docker_ok(&["unpause", "cnt"]);
    assert_eq!(
        inspect(&d, "cnt", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    sleep(Duration::from_millis(500));
    assert!(count(&d, "cnt") > frozen, "the counter did not resume");
    let out = d.docker(&["unpause", "cnt"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not paused"), "{err}");
    d.docker_ok(&["rm", "-f", "cnt"]);
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "idle",
        "busybox",
        "true",
    ]);
    let out = d.docker(&["pause", "idle"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not running"), "{err}");
}

/// kill, stop and rm -f of a paused container end it, as under dockerd (the signal is
/// delivered once the container is thawed).
#[test]
fn a_paused_container_can_be_killed_stopped_and_removed() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    for name in ["k1", "s1", "r1"] {
        counter(&d, name);
        d.docker_ok(&["pause", name]);
    }
    d.docker_ok(&["kill", "k1"]);
    assert_eq!(d.docker_ok(&["wait", "k1"]).trim(), "137");
    assert_eq!(
        inspect(&d, "k1", "{{.State.Status}} {{.State.Paused}}"),
        "exited false"
    );
    d.docker_ok(&["stop", "-t", "1", "s1"]);
    assert_eq!(inspect(&d, "s1", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "-f", "r1"]);
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(ps.lines().all(|l| l != "r1"), "{ps}");
}

/// A paused container is still paused after a restart of berthd (live-restore), and can
/// be unpaused then.
#[test]
fn paused_survives_a_restart_of_berthd() {
    require_root!();
    let opts = Opts {
        args: vec!["--live-restore".into()],
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(opts.clone());
    d.import_busybox();
    counter(&d, "p1");
    d.docker_ok(&["pause", "p1"]);
    assert!(d.stop().success());
    d.restart(&opts);
    assert_eq!(
        inspect(&d, "p1", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    d.docker_ok(&["unpause", "p1"]);
    assert_eq!(inspect(&d, "p1", "{{.State.Status}}"), "running");
    d.docker_ok(&["rm", "-f", "p1"]);
}

/// docker top: dockerd's columns and the container's process; ps options passed through;
/// a stopped container is a 409.
#[test]
fn top_lists_the_containers_processes() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "t1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = d.docker_ok(&["top", "t1"]);
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].ends_with("sleep 1000"), "{out}");
    let pid = inspect(&d, "t1", "{{.State.Pid}}");
    assert_eq!(
        rows[0].split_whitespace().nth(1),
        Some(pid.as_str()),
        "{out}"
    );
    let out = d.docker_ok(&["top", "t1", "-o", "pid,comm"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{out}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [pid.as_str(), "sleep"],
        "{out}"
    );
    d.docker_ok(&["pause", "t1"]);
    assert!(d.docker_ok(&["top", "t1"]).contains("sleep 1000"));
    d.docker_ok(&["rm", "-f", "t1"]);
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "idle",
        "busybox",
        "true",
    ]);
    let out = d.docker(&["top", "idle"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not running"), "{err}");
}

/// docker stats --no-stream: memory in use and a limit, cpu counted, pids.
#[test]
fn stats_no_stream_renders_numbers() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-m",
        "64m",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=1k count=200000; sleep 1000",
    ]);
    let out = d.docker_ok(&["stats", "--no-stream", "--format", "{{json .}}", "st"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["Name"], "st", "{out}");
    let mem = v["MemUsage"].as_str().unwrap();
    assert!(mem.ends_with("/ 64MiB"), "{out}");
    assert!(!mem.starts_with("0B"), "{out}");
    assert_ne!(v["MemPerc"], "0.00%", "{out}");
    assert_ne!(v["PIDs"], "0", "{out}");
    // The raw document: the keys docker stats reads, on this host's cgroups.
    let py = d.python_sdk_ok(
        "import json\ns = c.containers.get('st').stats(stream=False)\nprint(json.dumps(s))",
    );
    let s: serde_json::Value = serde_json::from_str(py.trim()).unwrap();
    assert!(
        s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0,
        "{py}"
    );
    assert!(
        s["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0,
        "{py}"
    );
    assert!(
        s["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0,
        "{py}"
    );
    assert!(s["cpu_stats"]["online_cpus"].as_u64().unwrap() > 0, "{py}");
    assert_eq!(s["memory_stats"]["limit"], 64 << 20, "{py}");
    assert!(s["memory_stats"]["usage"].as_u64().unwrap() > 0, "{py}");
    assert!(
        s["memory_stats"]["stats"].as_object().unwrap().len() > 3,
        "{py}"
    );
    assert!(
        s["blkio_stats"]["io_service_bytes_recursive"].is_array()
            || s["blkio_stats"]["io_service_bytes_recursive"].is_null(),
        "{py}"
    );
    assert!(s["pids_stats"]["current"].as_u64().unwrap() >= 1, "{py}");
    assert_ne!(s["read"], s["preread"], "{py}");
    // Streamed: one document a second.
    let py = d.python_sdk_ok(
        "g = c.containers.get('st').stats(stream=True, decode=True)\na = next(g); b = next(g)\nprint(a['preread'], b['preread'] == a['read'])",
    );
    assert_eq!(py.trim(), "0001-01-01T00:00:00Z True", "{py}");
    d.docker_ok(&["rm", "-f", "st"]);
}

/// The Python SDK: pause, top, stats and unpause of one container.
#[test]
fn the_python_sdk_pauses_tops_and_stats() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "ctr = c.containers.run('busybox', ['sleep', '1000'], detach=True, network_mode='none')\n\
ctr.pause(); ctr.reload(); print(ctr.status)\n\
t = ctr.top(); print(t['Titles'][1], t['Processes'][0][-1])\n\
s = ctr.stats(stream=False); print(s['memory_stats']['usage'] > 0)\n\
ctr.unpause(); ctr.reload(); print(ctr.status)\n\
ctr.remove(force=True)",
    );
    assert_eq!(out, "paused\nPID sleep 1000\nTrue\nrunning\n");
}

/// A file of the container's own /sys/fs/cgroup: `v1` under the controller's directory on
/// v1 and hybrid hosts, `v2` at the root on a v2-only host.
fn cgroup_file(controller: &str, v1: &str, v2: &str) -> String {
    if berth::sys::cgroups::CgroupLayout::detect().version() == 2 {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{v1}")
    }
}

fn exec_cat(d: &TestDaemon, name: &str, file: &str) -> String {
    // No exec yet on this branch: read the file through the container's root.
    let pid = inspect(d, name, "{{.State.Pid}}");
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-m", "cat", file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cat {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// docker update raises a memory limit, a pids limit and a CPU quota seen inside the
/// running container, keeps them in the record (inspect, and a restart of the container),
/// and refuses what dockerd refuses, in its words, and what berthd cannot apply, by name.
#[test]
fn update_changes_the_limits_of_a_running_container() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-m",
        "64m",
        "--name",
        "up",
        "busybox",
        "sleep",
        "1000",
    ]);
    let mem = cgroup_file("memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(exec_cat(&d, "up", &mem), (64u64 << 20).to_string());
    d.docker_ok(&[
        "update",
        "-m",
        "100m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "up",
    ]);
    assert_eq!(exec_cat(&d, "up", &mem), (100u64 << 20).to_string());
    assert_eq!(
        exec_cat(&d, "up", &cgroup_file("pids", "pids.max", "pids.max")),
        "20"
    );
    let quota = exec_cat(&d, "up", &cgroup_file("cpu", "cpu.cfs_quota_us", "cpu.max"));
    assert!(quota.starts_with("50000"), "{quota}");
    assert_eq!(
        inspect(
            &d,
            "up",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}"
        ),
        format!("{} 20 500000000", 100u64 << 20)
    );
    // dockerd's conflict: memory above the memory+swap already set.
    let out = d.docker(&["update", "-m", "512m", "up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Memory limit should be smaller than already set memoryswap limit"),
        "{err}"
    );
    // dockerd's checks of the values.
    let out = d.docker(&["update", "-m", "1m", "up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    // A restart policy is applied too (tests/root_restart.rs sees its effect).
    d.docker_ok(&["update", "--restart", "on-failure:2", "up"]);
    // The new limits hold at the next start.
    d.docker_ok(&["restart", "-t", "0", "up"]);
    assert_eq!(exec_cat(&d, "up", &mem), (100u64 << 20).to_string());
    // The Python SDK.
    d.python_sdk_ok("ctr = c.containers.get('up')\nctr.update(mem_limit='120m')");
    assert_eq!(exec_cat(&d, "up", &mem), (120u64 << 20).to_string());
    // And after a restart of berthd.
    assert!(d.stop().success());
    d.restart(&Opts::default());
    d.docker_ok(&["start", "up"]);
    assert_eq!(exec_cat(&d, "up", &mem), (120u64 << 20).to_string());
    d.docker_ok(&["rm", "-f", "up"]);
}
