//! Cgroups seen from inside real containers, through the real docker CLI: the limits in
//! the container's read-only /sys/fs/cgroup and enforced (an OOM kill, a fork bomb), the
//! cgroup namespace, cpusets, devices and device rules, the memory and block I/O settings
//! (or their refusal where the host has no such file), and `--cgroup-parent`. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use berth::sys::cgroups::CgroupLayout;
use common::TestDaemon;

/// `docker run --rm --network none <flags> busybox sh -c <script>`: (exit code, stdout,
/// stderr).
fn run_sh(d: &TestDaemon, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let out = d.docker(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(d: &TestDaemon, flags: &[&str], script: &str) -> String {
    let (code, out, err) = run_sh(d, flags, script);
    assert_eq!(code, 0, "{flags:?} {script}: {out}{err}");
    out
}

fn layout() -> CgroupLayout {
    CgroupLayout::detect()
}

/// The container's files under /sys/fs/cgroup for a v1 controller (or v2: the root).
fn inside(controller: &str, v1: &str, v2: &str) -> String {
    if layout().version() == 2 {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{v1}")
    }
}

/// -m, --pids-limit and --cpus show in the container's own /sys/fs/cgroup, which is
/// read-only, and its cgroup is the root of each mount.
#[test]
fn limits_show_inside_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = format!(
        "cat {} {} {}; touch {} 2>/dev/null || echo read-only; ls /sys/fs/cgroup/memory/berth 2>/dev/null | wc -l",
        inside("memory", "memory.limit_in_bytes", "memory.max"),
        inside("pids", "pids.max", "pids.max"),
        inside("cpu", "cpu.cfs_quota_us", "cpu.max"),
        inside("memory", "x", "x"),
    );
    let out = run_ok(
        &d,
        &["-m", "64m", "--pids-limit", "50", "--cpus", "0.5"],
        &script,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "67108864", "{out}");
    assert_eq!(lines[1], "50", "{out}");
    assert!(lines[2].starts_with("50000"), "{out}");
    assert_eq!(lines[3], "read-only", "{out}");
    // The container's own dir is the mount's root: no berth/ below it.
    assert_eq!(lines[4], "0", "{out}");
    if layout().version() == 1 {
        // Every hierarchy the container joined, the unified one of a hybrid host too.
        let ls = run_ok(&d, &[], "ls /sys/fs/cgroup");
        for h in ["memory", "pids", "devices", "freezer", "blkio"] {
            if Path::new("/sys/fs/cgroup").join(h).is_dir() {
                assert!(ls.lines().any(|l| l == h), "{h}: {ls}");
            }
        }
        // runc 1.1 (the oci driver, BERTH_TEST_EXEC_DRIVER=oci) mounts the v1 hierarchies
        // alone: the unified one of a hybrid host is the native driver's extra.
        let oci = std::env::var("BERTH_TEST_EXEC_DRIVER").as_deref() == Ok("oci");
        if layout().unified.is_some() && !oci {
            assert!(ls.lines().any(|l| l == "unified"), "{ls}");
        }
    }
}

/// A memory hog under -m 16m is killed: exit 137, OOMKilled true.
#[test]
fn a_memory_hog_is_oom_killed() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "-m",
            "16m",
            "--memory-swap",
            "16m",
            "busybox",
            "sh",
            "-c",
            "x=a; while true; do x=$x$x; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(d.docker_ok(&["wait", &id]).trim(), "137");
    let got = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        &id,
    ]);
    assert_eq!(got.trim(), "true 137");
    d.docker_ok(&["rm", &id]);
}

/// A fork bomb stops at --pids-limit: the forks past the limit fail and the container's
/// process count stays at it.
#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let dir = inside("pids", "", "");
    let script = format!(
        "(i=0; while [ $i -lt 60 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null || echo stopped; \
         read cur < {dir}pids.current; read max < {dir}pids.max; echo $cur $max"
    );
    let out = run_ok(&d, &["--pids-limit", "20"], &script);
    assert!(out.starts_with("stopped\n"), "{out}");
    let nums: Vec<u32> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{out}");
    assert!(nums[0] <= 20 && nums[0] >= 10, "{out}");
    assert_eq!(nums[1], 20, "{out}");
}

/// --cgroupns private: the container's cgroup is `/` in /proc/self/cgroup; with the
/// host's namespace (this host's default, as dockerd's on v1 and hybrid hosts) it is
/// berthd's path. Either way /sys/fs/cgroup shows its limits.
#[test]
fn cgroupns_private_shows_the_container_at_the_root() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = format!(
        "cat /proc/self/cgroup; echo limit $(cat {})",
        inside("memory", "memory.limit_in_bytes", "memory.max")
    );
    let out = run_ok(&d, &["--cgroupns", "private", "-m", "32m"], &script);
    for line in out.lines().filter(|l| !l.starts_with("limit")) {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        assert_eq!(path, "/", "{out}");
    }
    assert!(out.contains("limit 33554432"), "{out}");

    let default = if layout().version() == 2 {
        "private"
    } else {
        "host"
    };
    let id = d
        .docker_ok(&[
            "create",
            "--network",
            "none",
            "-m",
            "32m",
            "busybox",
            "sh",
            "-c",
            &script,
        ])
        .trim()
        .to_owned();
    let mode = d.docker_ok(&["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", &id]);
    assert_eq!(mode.trim(), default);
    let out = d.docker_ok(&["start", "-a", &id]);
    assert!(out.contains("limit 33554432"), "{out}");
    if default == "host" {
        assert!(
            out.lines().any(|l| l.ends_with(&format!("/berth/{id}"))),
            "{out}"
        );
    }
    d.docker_ok(&["rm", &id]);
}

/// --cpuset-cpus 0: cpuset.cpus in the container's cgroup, its affinity from inside
/// (`taskset -p 1`, Cpus_allowed_list), and dockerd's refusal of CPUs the host lacks.
#[test]
fn cpuset_cpus_reach_the_container() {
    require_root!();
    let l = layout();
    if !l.cpuset {
        skip_test!("no cpuset controller");
    }
    let d = TestDaemon::start();
    d.import_busybox();
    let file = inside("cpuset", "cpuset.cpus", "cpuset.cpus");
    let mems = inside("cpuset", "cpuset.mems", "cpuset.mems");
    let out = run_ok(
        &d,
        &["--cpuset-cpus", "0", "--cpuset-mems", "0"],
        &format!("cat {file} {mems}; taskset -p 1; grep Cpus_allowed_list /proc/self/status"),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    assert!(lines[2].ends_with(": 1"), "mask 1: {out}");
    assert!(lines[3].ends_with("\t0"), "{out}");

    let out = d.docker(&["run", "--rm", "--cpuset-cpus", "0-4095", "busybox", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!(
            "Requested CPUs are not available - requested 0-4095, available: {}",
            l.cpus
        )),
        "{err}"
    );
    let out = d.docker(&["run", "--rm", "--cpuset-mems", "7", "busybox", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Requested memory nodes are not available - requested 7"),
        "{err}"
    );
}

/// --device: the node in the container with the host's numbers, usable with the
/// permissions given (a read-only block device cannot be opened for writing), and a
/// device the container was not given refused (EPERM) even when it makes the node.
#[test]
fn devices_are_made_and_allowed_and_others_refused() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = run_ok(
        &d,
        &["--device", "/dev/null:/dev/xnull"],
        "echo hi > /dev/xnull && echo wrote; stat -c '%F %t:%T %a' /dev/xnull",
    );
    assert_eq!(out, "wrote\ncharacter special file 1:3 666\n");

    if !Path::new("/dev/loop0").exists() {
        skip_part!("the block device part: no /dev/loop0");
        return;
    }
    let script = "dd if=/dev/xloop of=/dev/null count=1 2>/dev/null && echo read; \
                  echo x 2>/dev/null > /dev/xloop || echo no-write; \
                  mknod /tmp/other b 7 1 && (dd if=/tmp/other of=/dev/null count=1 2>&1 || true)";
    let out = run_ok(&d, &["--device", "/dev/loop0:/dev/xloop:r"], script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "read", "{out}");
    assert_eq!(lines[1], "no-write", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");

    // A path that is no device: dockerd's words at the start.
    let (code, _, err) = run_sh(&d, &["--device", "/etc/hostname:/dev/x"], "true");
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(
            "error gathering device information while adding custom device \"/etc/hostname\": not a device node"
        ),
        "{err}"
    );
}

/// --device-cgroup-rule: a node the container makes itself (mknod) can be opened when a
/// rule allows it, and not otherwise; a malformed rule gets dockerd's words.
#[test]
fn device_cgroup_rules_allow_what_they_name() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = run_ok(
        &d,
        &["--device-cgroup-rule", "c 1:5 rwm"],
        "mknod /tmp/z c 1 5 && head -c 3 /tmp/z | od -An -tx1",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["00", "00", "00"]
    );
    if Path::new("/dev/loop0").exists() {
        let script = "mknod /tmp/l b 7 0 && dd if=/tmp/l of=/dev/null count=1 2>&1 && echo opened";
        let out = run_ok(&d, &["--device-cgroup-rule", "b 7:* r"], script);
        assert!(out.contains("opened"), "{out}");
        let (_, out, err) = run_sh(&d, &[], script);
        assert!(
            !out.contains("opened") && (out + &err).contains("Operation not permitted"),
            "refused without the rule"
        );
    }
    let body = serde_json::json!({"Image": "busybox", "HostConfig": {"NetworkMode": "none",
        "DeviceCgroupRules": ["c 1:5 xyz"]}});
    let reply = d
        .raw(&format!(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.to_string().len()
        ))
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("invalid device cgroup format 'c 1:5 xyz'"),
        "{reply}"
    );
}

/// --memory-reservation reaches the soft limit; --memory-swappiness and
/// --oom-kill-disable reach memory.swappiness and memory.oom_control on v1, and are
/// refused by name on v2, which has neither.
#[test]
fn memory_settings_reach_the_cgroup() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let l = layout();
    let out = run_ok(
        &d,
        &["-m", "64m", "--memory-reservation", "32m"],
        &format!(
            "cat {}",
            inside("memory", "memory.soft_limit_in_bytes", "memory.low")
        ),
    );
    assert_eq!(out.trim(), "33554432");
    let (code, out, err) = run_sh(
        &d,
        &[
            "-m",
            "64m",
            "--memory-swappiness",
            "10",
            "--oom-kill-disable",
        ],
        "cat /sys/fs/cgroup/memory/memory.swappiness; grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control",
    );
    if l.memory_swappiness && l.oom_kill_disable {
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "10\noom_kill_disable 1\n");
    } else {
        assert_eq!(code, 125, "{out}");
        assert!(err.contains("HostConfig.MemorySwappiness"), "{err}");
    }
    // Without a memory limit: dockerd's warning, and still done.
    if l.oom_kill_disable {
        let out = d.docker(&[
            "create",
            "--network",
            "none",
            "--oom-kill-disable",
            "busybox",
            "true",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("OOM killer is disabled for the container, but no memory limit is set"),
            "{err}"
        );
    }
}

/// --blkio-weight and --blkio-weight-device reach their files where the host has them and
/// are refused by name with dockerd's warning where it does not (as on this test host:
/// no BFQ or CFQ); the read and write throttles reach blkio.throttle.* (v1) or io.max
/// (v2); a device that is not there gets dockerd's `stat` error at the start.
#[test]
fn blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let l = layout();
    let (code, out, err) = run_sh(
        &d,
        &["--blkio-weight", "300"],
        &format!(
            "cat {} 2>/dev/null || cat {}",
            inside("blkio", "blkio.bfq.weight", "io.bfq.weight"),
            inside("blkio", "blkio.weight", "io.weight")
        ),
    );
    if l.blkio_weight {
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("300") || out.contains("2928"), "{out}");
    } else {
        assert_eq!(code, 125, "{out}");
        assert!(
            err.contains(
                "berthd does not support HostConfig.BlkioWeight (--blkio-weight): Your kernel does not support Block I/O weight or the cgroup is not mounted"
            ),
            "{err}"
        );
    }
    let disk = ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(disk) = disk else {
        skip_part!("the throttles: no block device found");
        return;
    };
    let (code, out, err) = run_sh(
        &d,
        &["--blkio-weight-device", &format!("{disk}:200")],
        "true",
    );
    if !l.blkio_weight_device {
        assert_eq!(code, 125, "{out}");
        assert!(
            err.contains("HostConfig.BlkioWeightDevice (--blkio-weight-device): Your kernel does not support Block I/O weight_device"),
            "{err}"
        );
    }
    if !l.blkio_throttle {
        skip_part!("the throttles: the host has none");
        return;
    }
    let rdev = {
        use std::os::unix::fs::MetadataExt;
        let r = std::fs::metadata(disk).unwrap().rdev();
        format!("{}:{}", libc::major(r), libc::minor(r))
    };
    let script = if l.version() == 2 {
        "cat /sys/fs/cgroup/io.max".to_owned()
    } else {
        "cd /sys/fs/cgroup/blkio; cat blkio.throttle.read_bps_device blkio.throttle.write_bps_device blkio.throttle.read_iops_device blkio.throttle.write_iops_device".to_owned()
    };
    let out = run_ok(
        &d,
        &[
            "--device-read-bps",
            &format!("{disk}:1mb"),
            "--device-write-bps",
            &format!("{disk}:2mb"),
            "--device-read-iops",
            &format!("{disk}:100"),
            "--device-write-iops",
            &format!("{disk}:200"),
        ],
        &script,
    );
    if l.version() == 2 {
        assert!(
            out.contains(&format!(
                "{rdev} rbps=1048576 wbps=2097152 riops=100 wiops=200"
            )),
            "{out}"
        );
    } else {
        assert_eq!(
            out,
            format!("{rdev} 1048576\n{rdev} 2097152\n{rdev} 100\n{rdev} 200\n")
        );
    }
    let (code, _, err) = run_sh(&d, &["--device-read-bps", "/dev/nope-nope:1mb"], "true");
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("stat /dev/nope-nope"), "{err}");
}

/// The host's cgroup dirs of a container in `parent` (absolute), in each hierarchy.
fn dirs_under(parent: &str, id: &str) -> Vec<PathBuf> {
    let l = layout();
    let mut mounts: Vec<PathBuf> = l.v1.iter().map(|(_, m)| m.clone()).collect();
    mounts.extend(l.unified.clone());
    mounts.sort();
    mounts.dedup();
    mounts
        .into_iter()
        .map(|m| m.join(parent.trim_start_matches('/')).join(id))
        .filter(|p| p.is_dir())
        .collect()
}

/// --cgroup-parent: the container's cgroup is `<parent>/<id>` in every hierarchy while it
/// runs, and its dir is gone after (the parent stays, as with dockerd).
#[test]
fn cgroup_parent_holds_the_container_and_is_left_after() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let parent = format!("/berth-test-parent-{}", std::process::id());
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cgroup-parent",
            &parent,
            "-m",
            "32m",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_owned();
    let dirs = dirs_under(&parent, &id);
    let cleanup = || {
        for m in layout()
            .v1
            .iter()
            .map(|(_, m)| m.clone())
            .chain(layout().unified)
        {
            let _ = std::fs::remove_dir(m.join(parent.trim_start_matches('/')));
        }
    };
    let check = || -> Result<(), String> {
        if dirs.is_empty() {
            return Err("no cgroup dir under the parent".into());
        }
        let mem = dirs
            .iter()
            .find_map(|p| {
                std::fs::read_to_string(p.join("memory.limit_in_bytes"))
                    .or_else(|_| std::fs::read_to_string(p.join("memory.max")))
                    .ok()
            })
            .unwrap_or_default();
        if mem.trim() != "33554432" {
            return Err(format!("memory limit {mem:?} in {dirs:?}"));
        }
        let procs: String = dirs
            .iter()
            .map(|p| std::fs::read_to_string(p.join("cgroup.procs")).unwrap_or_default())
            .collect();
        if procs.trim().is_empty() {
            return Err("no process in the cgroup".into());
        }
        d.docker_ok(&["rm", "-f", &id]);
        let left = dirs_under(&parent, &id);
        if !left.is_empty() {
            return Err(format!("left behind: {left:?}"));
        }
        Ok(())
    };
    let res = check();
    let _ = d.docker(&["rm", "-f", &id]);
    cleanup();
    res.unwrap();

    // A relative parent is below berthd's own cgroup, in each hierarchy.
    let l = layout();
    let Some(mem) = l.v1_mount("memory").map(Path::to_path_buf) else {
        return;
    };
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", d.pid())).unwrap();
    let own_path = |ctrl: &str| {
        own.lines()
            .find_map(|line| {
                let mut it = line.splitn(3, ':');
                let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                let hit = if ctrl.is_empty() {
                    ctrls.is_empty()
                } else {
                    ctrls.split(',').any(|c| c == ctrl)
                };
                hit.then(|| path.trim_start_matches('/').to_owned())
            })
            .unwrap_or_default()
    };
    let rel = format!("berth-test-rel-{}", std::process::id());
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cgroup-parent",
            &rel,
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_owned();
    let parent_dir = mem.join(own_path("memory")).join(&rel);
    let there = parent_dir.join(&id).is_dir();
    d.docker_ok(&["rm", "-f", &id]);
    let gone = !parent_dir.join(&id).exists();
    for (ctrl, m) in &l.v1 {
        let _ = std::fs::remove_dir(m.join(own_path(ctrl)).join(&rel));
    }
    if let Some(u) = &l.unified {
        let _ = std::fs::remove_dir(u.join(own_path("")).join(&rel));
    }
    let _ = std::fs::remove_dir(&parent_dir);
    assert!(there, "no {}", parent_dir.join(&id).display());
    assert!(gone, "left behind");
}
