//! Root tests of the exec subsystem: real namespaces, mounts and cgroups through the
//! ExecActor and `berthd monitor`. They skip unless euid is 0.

#![allow(clippy::unwrap_used)]
// An integration test file is a test crate of its own; there is no module to put tests in.
#![allow(clippy::tests_outside_test_module)]

#[path = "common/exec_support.rs"]
mod exec_support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use berth::actors::exec::{
    AttachContainer, AttachOptions, ExecError, PendingAttach, PrepareStart, RestoreContainer,
    RestoreState, SPARE_TTL, SignalContainer, StartContainer,
};
use berth::monitor::spec::{MountSpec, NetworkSpec};
use exec_support::{Exec, Fixture, Kind, OUT_ERR, demux, mounts_below, processes_below};

fn system<F: std::future::Future<Output = ()>>(f: F) {
    actix_rt::System::new().block_on(f);
}

fn echo_hi(kind: Kind) {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let spec = fx.spec(kind, &["echo", "hi"]);
        let log = spec.log_path.clone();
        let (out, err, code) = ex.run(spec).await;
        assert_eq!(out, "hi\n");
        assert_eq!(err, "");
        assert_eq!(code, 0);
        let text = std::fs::read_to_string(&log).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["log"], "hi\n");
        assert_eq!(line["stream"], "stdout");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    });
    assert!(mounts_below(fx.tmp.path()).is_empty());
}

#[test]
fn echo_hi_arrives_through_pending_attach_bind() {
    echo_hi(Kind::Bind);
}

#[test]
fn echo_hi_arrives_through_pending_attach_overlay() {
    echo_hi(Kind::Overlay);
}

#[test]
fn exit_code_is_reported() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let spec = fx.spec(
            Kind::Overlay,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        );
        let state_dir = spec.state_dir.clone();
        let (out, err, code) = ex.run(spec).await;
        assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state_dir.join("exit.json")).unwrap()).unwrap();
        assert_eq!(st["exit_code"], 3);
    });
}

#[test]
fn cat_gets_stdin_and_half_close_ends_it() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut spec = fx.spec(Kind::Bind, &["cat"]);
        spec.open_stdin = true;
        spec.stdin_once = true;
        let id = spec.id.clone();
        let all = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let (res, mut streams) = ex.start_with(spec, &[all]).await;
        res.unwrap();
        let mut s = streams.pop().unwrap();
        let raw = tokio::task::spawn_blocking(move || {
            s.write_all(b"hello\nworld\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            exec_support::read_all(s)
        })
        .await
        .unwrap();
        assert_eq!(demux(&raw).0, b"hello\nworld\n");
        assert_eq!(ex.wait_exit(&id).await.exit_code, 0);
    });
}

#[test]
fn the_command_is_pid_1_and_hostname_is_set() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let spec = fx.spec(
            Kind::Overlay,
            &["sh", "-c", "echo $$; hostname; ls /sys/class/net"],
        );
        let host = spec.hostname.clone();
        let (out, _, code) = ex.run(spec).await;
        assert_eq!(out, format!("1\n{host}\nlo\n"));
        assert_eq!(code, 0);
    });
}

#[test]
fn namespaces_differ_cgroup_lives_and_goes_sigkill_gives_137() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let spec = fx.spec(Kind::Bind, &["sleep", "60"]);
        let id = spec.id.clone();
        let dirs = fx.cgroup_dirs(&spec);
        let (res, _) = ex.start_with(spec, &[]).await;
        let pid = res.unwrap().pid;
        // Only stdio reaches the container: no descriptor of the monitor leaks.
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        let links: Vec<_> = fds
            .iter()
            .map(|f| std::fs::read_link(format!("/proc/{pid}/fd/{f}")).unwrap())
            .collect();
        assert_eq!(fds, ["0", "1", "2"], "{links:?}");
        for ns in ["mnt", "pid", "uts", "ipc", "net"] {
            let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            assert_ne!(ours, theirs, "{ns} namespace is shared");
        }
        assert!(!dirs.is_empty());
        for d in &dirs {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().any(|l| l.trim() == pid.to_string()),
                "pid {pid} not in {}",
                d.display()
            );
        }
        ex.addr
            .send(SignalContainer {
                id: id.clone(),
                signal: libc::SIGKILL,
            })
            .await
            .unwrap()
            .unwrap();
        let exit = ex.wait_exit(&id).await;
        assert_eq!(exit.exit_code, 137);
        assert!(!exit.oom_killed);
        // The exit is reported first; a cleanup waits for the monitor's removal of the
        // cgroup (so does a new start of the container).
        ex.cleanup(&id).await;
        for d in &dirs {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        // The monitor is gone too (it leaves its socket dir empty of itself).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_below(fx.tmp.path()).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(processes_below(fx.tmp.path()).is_empty(), "processes left");
        // Signalling an exited container says so.
        let r = ex
            .addr
            .send(SignalContainer { id, signal: 15 })
            .await
            .unwrap();
        assert!(matches!(r, Err(ExecError::NotRunning { .. })), "{r:?}");
    });
}

#[test]
fn missing_command_gives_docker_127_text() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let ex = Exec::start(&fx).await;
        let spec = fx.spec(Kind::Overlay, &["nosuch"]);
        let dirs = fx.cgroup_dirs(&spec);
        let (res, _) = ex.start_with(spec, &[OUT_ERR]).await;
        match res {
            Err(ExecError::StartFailed { message, .. }) => {
                assert_eq!(
                    message,
                    "exec: \"nosuch\": executable file not found in $PATH"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        let spec = fx.spec(Kind::Bind, &["/etc/passwd"]);
        let (res, _) = ex.start_with(spec, &[]).await;
        match res {
            Err(ExecError::StartFailed { message, .. }) => {
                assert_eq!(message, "exec: \"/etc/passwd\": permission denied")
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut spec = fx.spec(Kind::Bind, &["true"]);
        spec.user = "ghost".into();
        let (res, _) = ex.start_with(spec, &[]).await;
        let e = res.unwrap_err();
        assert!(e.to_string().contains("unable to find user ghost"), "{e}");
        for d in &dirs {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
    });
}

#[test]
fn user_cwd_caps_and_readonly_rootfs() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut spec = fx.spec(
            Kind::Overlay,
            &[
                "sh",
                "-c",
                "id -u; id -g; pwd; grep CapBnd /proc/self/status; \
                 touch /x 2>/dev/null && echo rw || echo ro; wc -c < /proc/timer_list; \
                 echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sysrw || echo sysro",
            ],
        );
        spec.user = "nobody".into();
        spec.cwd = "/work/dir".into();
        spec.readonly_rootfs = true;
        let (out, err, code) = ex.run(spec).await;
        assert_eq!(
            out, "65534\n65534\n/work/dir\nCapBnd:\t00000000a80425fb\nro\n0\nsysro\n",
            "stderr: {err}"
        );
        assert_eq!(code, 0);

        // Root gets Docker's default effective set.
        let spec = fx.spec(Kind::Bind, &["grep", "CapEff", "/proc/self/status"]);
        let (out, _, _) = ex.run(spec).await;
        assert_eq!(out, "CapEff:\t00000000a80425fb\n");
    });
}

#[test]
fn tty_output_is_raw() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut spec = fx.spec(Kind::Bind, &["sh", "-c", "echo hi; tty"]);
        spec.tty = true;
        let (out, _, code) = ex.run(spec).await;
        assert_eq!(out, "hi\r\n/dev/pts/0\r\n");
        assert_eq!(code, 0);
    });
}

#[test]
fn restore_finds_running_then_exited() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let spec = fx.spec(Kind::Bind, &["sh", "-c", "echo up; exec sleep 60"]);
        let id = spec.id.clone();
        let log = spec.log_path.clone();
        let pid;
        {
            let ex = Exec::start(&fx).await;
            let (res, _) = ex.start_with(spec, &[]).await;
            pid = res.unwrap().pid;
            // "up" is out (and logged) before the late attach below, which must not see it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("up")) {
                assert!(Instant::now() < deadline, "no output logged");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ex.addr
                .send(berth::actors::Shutdown)
                .await
                .unwrap()
                .unwrap();
            // Dropping the address stops the actor; the monitor carries on.
        }
        let mut ex = Exec::start(&fx).await;
        let r = ex
            .addr
            .send(RestoreContainer { id: id.clone() })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r, RestoreState::Running { pid });

        // A late attach still works, and sees new output only.
        let opts = AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
        };
        let s = ex
            .addr
            .send(AttachContainer {
                id: id.clone(),
                options: opts,
            })
            .await
            .unwrap()
            .unwrap();
        // (SIGTERM would be ignored: pid 1 gets only signals it has handlers for.)
        ex.addr
            .send(SignalContainer {
                id: id.clone(),
                signal: libc::SIGKILL,
            })
            .await
            .unwrap()
            .unwrap();
        let exit = ex.wait_exit(&id).await;
        assert_eq!(exit.exit_code, 137);
        let rest = tokio::task::spawn_blocking(move || {
            let mut s = s;
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
        .await
        .unwrap();
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
        let r = ex
            .addr
            .send(RestoreContainer { id: id.clone() })
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(r, RestoreState::Exited { exit_code: 137, .. }),
            "{r:?}"
        );
        ex.cleanup(&id).await;
        let r = ex
            .addr
            .send(RestoreContainer { id })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r, RestoreState::Gone);
    });
}

#[test]
fn concurrent_starts_and_latency() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        // Warm up page cache for the binary.
        let (_, _, _) = ex.run(fx.spec(Kind::Bind, &["true"])).await;
        let t = Instant::now();
        let (out, _, _) = ex.run(fx.spec(Kind::Overlay, &["echo", "x"])).await;
        let one = t.elapsed();
        assert_eq!(out, "x\n");
        eprintln!("start+run+exit of one container: {one:?}");

        let specs: Vec<_> = (0..8)
            .map(|i| fx.spec(Kind::Bind, &["sh", "-c", &format!("sleep 0.2; echo {i}")]))
            .collect();
        let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
        let t = Instant::now();
        let starts = specs.into_iter().map(|s| ex.start_with(s, &[OUT_ERR]));
        let results = futures_util::future::join_all(starts).await;
        let started = t.elapsed();
        eprintln!("8 concurrent starts: {started:?}");
        let mut readers = Vec::new();
        for (res, mut streams) in results {
            res.unwrap();
            let s = streams.pop().unwrap();
            readers.push(tokio::task::spawn_blocking(move || {
                exec_support::read_all(s)
            }));
        }
        for (i, r) in readers.into_iter().enumerate() {
            let raw = r.await.unwrap();
            assert_eq!(demux(&raw).0, format!("{i}\n").as_bytes());
        }
        for id in ids {
            assert_eq!(ex.wait_exit(&id).await.exit_code, 0);
        }
    });
}

#[test]
fn a_given_network_namespace_is_joined_with_lo_up() {
    require_root!();
    let fx = Fixture::new();
    // Made as the network actor makes them: on a thread that moves into it and ends.
    let netns = std::thread::spawn(berth::sys::namespaces::unshare_netns)
        .join()
        .unwrap()
        .unwrap();
    let inode = std::fs::File::from(netns.try_clone().unwrap())
        .metadata()
        .unwrap()
        .ino();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let script = "readlink /proc/self/ns/net; cat /sys/class/net/lo/flags; ls /sys/class/net";
        for network in [NetworkSpec::None, NetworkSpec::New] {
            let mut spec = fx.spec(Kind::Bind, &["sh", "-c", script]);
            spec.network = network.clone();
            let id = spec.id.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut msg = StartContainer::new(
                spec,
                vec![PendingAttach {
                    options: OUT_ERR,
                    reply: tx,
                }],
            );
            msg.netns = Some(netns.try_clone().unwrap());
            ex.addr.send(msg).await.unwrap().unwrap();
            let s = rx.await.unwrap().unwrap();
            let raw = tokio::task::spawn_blocking(move || exec_support::read_all(s))
                .await
                .unwrap();
            let (out, err) = demux(&raw);
            let out = String::from_utf8_lossy(&out).into_owned();
            assert_eq!(ex.wait_exit(&id).await.exit_code, 0, "{out}\n{:?}", err);
            let mut lines = out.lines();
            assert_eq!(
                lines.next(),
                Some(format!("net:[{inode}]").as_str()),
                "{out}"
            );
            // IFF_UP (0x1) set on lo; nothing but lo in it (sysfs of the joined namespace).
            let flags = lines.next().unwrap_or("");
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
            assert_eq!(flags & 1, 1, "{out}");
            assert_eq!(lines.next(), Some("lo"), "{out}");
            assert_eq!(lines.next(), None, "{out}");
        }
    });
}

/// Our children running `berthd monitor` that are still there, unchanged, 150 ms later:
/// spares (the first process of a monitor spawned for a start lives only until it has
/// read its spec, a few milliseconds).
fn spare_monitors() -> Vec<i32> {
    let me = std::process::id().to_string();
    let ours = || -> Vec<i32> {
        let mut v: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .nth(1);
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                ppid == Some(me.as_str()) && cmd.ends_with(b"\0monitor\0")
            })
            .collect();
        v.sort_unstable();
        v
    };
    let first = ours();
    std::thread::sleep(Duration::from_millis(150));
    let second = ours();
    first.into_iter().filter(|p| second.contains(p)).collect()
}

#[test]
fn a_create_spawns_a_spare_monitor_that_the_start_uses_or_that_goes() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        assert!(spare_monitors().is_empty());
        ex.addr.send(PrepareStart).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let spare = loop {
            if let [p] = spare_monitors()[..] {
                break p;
            }
            assert!(Instant::now() < deadline, "no spare monitor");
        };
        // A second create while one waits spawns no other.
        ex.addr.send(PrepareStart).await.unwrap();
        assert_eq!(spare_monitors(), vec![spare]);
        let (out, _, code) = ex.run(fx.spec(Kind::Bind, &["echo", "hi"])).await;
        assert_eq!((out.as_str(), code), ("hi\n", 0));
        // Used: it took the spec, daemonized, and its first process was reaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{spare}")).exists() {
            assert!(Instant::now() < deadline, "spare {spare} not reaped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Unused, it goes after SPARE_TTL.
        ex.addr.send(PrepareStart).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while spare_monitors().is_empty() {
            assert!(Instant::now() < deadline, "no second spare monitor");
        }
        tokio::time::sleep(SPARE_TTL + Duration::from_millis(300)).await;
        assert!(spare_monitors().is_empty());
    });
}

#[test]
fn extra_mounts_are_made_and_targets_created() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let hosts = fx.tmp.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let vol = fx.tmp.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("f"), "data\n").unwrap();
        let mut spec = fx.spec(
            Kind::Overlay,
            &[
                "sh",
                "-c",
                "cat /etc/hosts /data/f; touch /data/x 2>/dev/null || echo ro; \
                 grep -c ' /run tmpfs' /proc/mounts",
            ],
        );
        spec.mounts = vec![
            MountSpec {
                source: hosts,
                destination: "/etc/hosts".into(),
                fstype: "bind".into(),
                options: vec!["rbind".into(), "rprivate".into()],
                copy_up: false,
            },
            MountSpec {
                source: vol,
                destination: "/data".into(),
                fstype: "bind".into(),
                options: vec!["rbind".into(), "ro".into()],
                copy_up: false,
            },
            MountSpec {
                source: "tmpfs".into(),
                destination: "/run".into(),
                fstype: "tmpfs".into(),
                options: vec!["nosuid".into(), "mode=755".into()],
                copy_up: false,
            },
        ];
        let (out, err, code) = ex.run(spec).await;
        assert_eq!(out, "127.0.0.1 localhost\ndata\nro\n1\n", "stderr: {err}");
        assert_eq!(code, 0);
    });
    assert!(mounts_below(fx.tmp.path()).is_empty());
}

#[test]
fn late_attach_sends_stdin_and_gets_output() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut spec = fx.spec(Kind::Bind, &["cat"]);
        spec.open_stdin = true;
        let id = spec.id.clone();
        let (res, _) = ex.start_with(spec, &[]).await;
        res.unwrap();
        let opts = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: false,
        };
        let s = ex
            .addr
            .send(AttachContainer {
                id: id.clone(),
                options: opts,
            })
            .await
            .unwrap()
            .unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let mut s = s;
            s.write_all(b"abc\n").unwrap();
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).unwrap();
            buf.to_vec()
        })
        .await
        .unwrap();
        assert_eq!(got, b"\x01\x00\x00\x00\x00\x00\x00\x04abc\n");
        // Without stdin_once, a detached client leaves stdin open: still running.
        ex.addr
            .send(SignalContainer {
                id: id.clone(),
                signal: libc::SIGKILL,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ex.wait_exit(&id).await.exit_code, 137);
    });
}

/// PSS of the monitors, per container, with 10 containers running.
#[test]
fn monitor_memory_per_container() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            let spec = fx.spec(Kind::Bind, &["sleep", "60"]);
            ids.push(spec.id.clone());
            let (res, _) = ex.start_with(spec, &[OUT_ERR]).await;
            res.unwrap();
        }
        let monitors = processes_below(fx.tmp.path());
        assert_eq!(monitors.len(), 10, "one monitor per container");
        let (mut pss, mut private) = (0u64, 0u64);
        for pid in &monitors {
            let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
            for l in text.lines() {
                let mut it = l.split_whitespace();
                let (k, v) = (it.next().unwrap_or(""), it.next().unwrap_or("0"));
                let v: u64 = v.parse().unwrap_or(0);
                match k {
                    "Pss:" => pss += v,
                    "Private_Dirty:" | "Private_Clean:" => private += v,
                    _ => {}
                }
            }
        }
        eprintln!(
            "monitor memory per container: PSS {} KiB, private {} KiB",
            pss / 10,
            private / 10
        );
        for id in &ids {
            ex.addr
                .send(SignalContainer {
                    id: id.clone(),
                    signal: libc::SIGKILL,
                })
                .await
                .unwrap()
                .unwrap();
        }
        for id in &ids {
            assert_eq!(ex.wait_exit(id).await.exit_code, 137);
        }
        // The budget (≤ 0.5 MiB PSS per container, release build) is checked by the
        // benchmark, never by a test: a debug build's monitor is far larger.
    });
}

#[test]
fn memory_limit_oom_kill_is_reported() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let mut spec = fx.spec(Kind::Bind, &["tail", "/dev/zero"]);
        spec.cgroup.memory = 16 << 20;
        spec.cgroup.pids = 20;
        let id = spec.id.clone();
        let (res, _) = ex.start_with(spec, &[]).await;
        res.unwrap();
        let exit = ex.wait_exit(&id).await;
        assert_eq!(exit.exit_code, 137);
        assert!(exit.oom_killed);
    });
}

/// On a v2-only host the device allow-list is an eBPF program; try it on this host's
/// unified hierarchy with a process moved into the cgroup.
#[test]
fn v2_device_filter_allows_null_and_denies_kmsg() {
    require_root!();
    use berth::sys::cgroups::{CgroupLayout, ContainerCgroup, Limits};
    use std::process::{Command, Stdio};
    let fx = Fixture::new();
    let host = CgroupLayout::detect();
    let Some(unified) = host.unified.clone() else {
        skip_test!("no cgroup2 hierarchy");
    };
    let layout = CgroupLayout {
        v1: Vec::new(),
        unified: Some(unified),
        ..Default::default()
    };
    let rel = format!("{}/{}", fx.cgroup_parent, berth::util::new_id());
    let cg = ContainerCgroup::create(&layout, &rel, &Limits::default()).unwrap();
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read x; head -c 1 /dev/zero >/dev/null && echo zero; \
             head -c 1 /dev/kmsg >/dev/null 2>&1 && echo kmsg || echo nokmsg",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    ContainerCgroup::join(&cg.procs_files(), i32::try_from(child.id()).unwrap()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zero\nnokmsg\n");
    assert!(cg.remove(Duration::from_secs(2)).is_empty());
}

#[test]
fn seccomp_blocks_namespaces_and_mounts() {
    require_root!();
    let fx = Fixture::new();
    system(async {
        let mut ex = Exec::start(&fx).await;
        let spec = fx.spec(
            Kind::Bind,
            &[
                "sh",
                "-c",
                "unshare -U true 2>/dev/null && echo userns || echo no-userns; \
                 mount -t tmpfs t /tmp 2>/dev/null && echo mounted || echo no-mount; \
                 (echo sub) | cat; grep Seccomp: /proc/self/status",
            ],
        );
        let (out, err, code) = ex.run(spec).await;
        assert_eq!(
            out, "no-userns\nno-mount\nsub\nSeccomp:\t2\n",
            "stderr: {err}"
        );
        assert_eq!(code, 0);
    });
}
