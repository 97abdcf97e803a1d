//! The oci exec driver: berthd with `--exec-driver oci` (every container run by runc on a
//! generated bundle), and `--add-runtime` / `docker run --runtime` beside the native
//! driver, driven through the real docker CLI. Root only; skipped (and said so) without
//! runc.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Opts, TestDaemon};

/// runc, where Debian puts it; `None` (and a "skipped" line) when it is not installed.
fn runc() -> Option<PathBuf> {
    let found = ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        common::ledger::skip(
            module_path!(),
            "runc is not installed (apt-get install runc)",
        );
    }
    found
}

/// A daemon running every container with runc.
fn oci_daemon(runc: &Path, extra: &[&str]) -> TestDaemon {
    let mut args = vec![
        "--exec-driver".to_owned(),
        "oci".to_owned(),
        "--add-runtime".to_owned(),
        format!("runc={}", runc.display()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let d = TestDaemon::start_with(Opts {
        args,
        ..Opts::default()
    });
    d.import_busybox();
    d
}

/// The memory limit of the container's cgroup as the host sees it (v1 memory hierarchy or
/// the unified one), in bytes.
fn memory_limit(id: &str) -> Option<u64> {
    [
        format!("/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/berth/{id}/memory.max"),
        format!("/sys/fs/cgroup/unified/berth/{id}/memory.max"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// The containers runc knows in the daemon's runtime root.
fn runc_list(d: &TestDaemon, runc: &Path) -> String {
    let out = Command::new(runc)
        .arg("--root")
        .arg(d.exec_root.join("runtime-runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_oci_driver_runs_containers_through_the_cli() {
    require_root!();
    let Some(runc) = runc() else { return };
    let d = oci_daemon(&runc, &[]);
    let none = ["--network", "none"];

    // /info names runc, and it is the default; native is not offered.
    let info = d.docker_ok(&[
        "info",
        "--format",
        "{{.DefaultRuntime}} {{range $k, $v := .Runtimes}}{{$k}}={{$v.Path}} {{end}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("runc runc={}", runc.display()),
        "{info}"
    );

    let out = d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(out, "hi\n");

    // Exit codes: the command's, 127 for a missing command in the runtime's words.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "nosuch"]);
    assert_eq!(code(&out), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("OCI runtime create failed")
            && stderr(&out).contains("\"nosuch\": executable file not found"),
        "{}",
        stderr(&out)
    );

    // -e, -w, -u reach the process; the hostname is the short id.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:100",
        "busybox",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; echo $HOME",
    ]);
    assert_eq!(out, "bar\n/tmp\n1000\n100\n/\n");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "id -un; echo $HOME",
    ]);
    assert_eq!(out, "nobody\n/nonexistent\n");

    // -m: the limit is in the container's cgroup.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = id.trim();
    assert_eq!(memory_limit(id), Some(64 << 20));
    assert!(runc_list(&d, &runc).contains(id), "runc does not know {id}");
    d.docker_ok(&["rm", "-f", id]);
    assert!(!runc_list(&d, &runc).contains(id), "runc still has {id}");
    assert_eq!(memory_limit(id), None, "the cgroup outlived the container");

    // Logs: stdout and stderr apart, through the monitor's pipes.
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
    assert_eq!(stderr(&out), "two\n");
    d.docker_ok(&["rm", "lg"]);

    // Piped stdin with -i.
    let mut child = d
        .docker_cmd()
        .args(["run", "--rm", "-i"])
        .args(none)
        .args(["busybox", "sh", "-c", "read x; echo got-$x"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-abc\n");

    // stop: the stop signal, which the container traps; kill: 137.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "st",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo up; while true; do sleep 0.1; done",
    ]);
    let up = Instant::now() + Duration::from_secs(10);
    while !d.docker_ok(&["logs", "st"]).contains("up") && Instant::now() < up {
        std::thread::sleep(Duration::from_millis(20));
    }
    let began = Instant::now();
    d.docker_ok(&["stop", "-t", "10", "st"]);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "stop waited for the timeout"
    );
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "st"])
            .trim(),
        "7"
    );
    assert!(d.docker_ok(&["logs", "st"]).contains("got-term"));
    d.docker_ok(&["rm", "st"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "kl",
        "--network",
        "none",
        "busybox",
        "sleep",
        "600",
    ]);
    d.docker_ok(&["kill", "kl"]);
    assert_eq!(d.docker_ok(&["wait", "kl"]).trim(), "137");
    d.docker_ok(&["rm", "kl"]);

    // -it through a pty made by `script`, the console from runc's --console-socket.
    if Command::new("script").arg("--version").output().is_ok() {
        let cmd = "docker run --rm -it --network none busybox sh -c 'tty; echo $((6*7)); exit 4'";
        let out = Command::new("timeout")
            .args(["30", "script", "-qec", cmd, "/dev/null"])
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(code(&out), Some(4), "{text}");
        assert!(text.contains("/dev/pts/0") && text.contains("42"), "{text}");
    } else {
        skip_part!("-it (script is not installed)");
    }

    // Nothing is left in runc's root.
    assert_eq!(runc_list(&d, &runc).trim(), "");
}

#[test]
fn live_restore_keeps_an_oci_container_running_across_a_restart() {
    require_root!();
    let Some(runc) = runc() else { return };
    let add = format!("runc={}", runc.display());
    common::live_restore_keeps_a_container_running(&[
        "--exec-driver",
        "oci",
        "--add-runtime",
        &add,
    ]);
}

#[test]
fn the_runtime_flag_picks_an_oci_runtime_beside_native() {
    require_root!();
    let Some(runc) = runc() else { return };
    let add = format!("runc={}", runc.display());
    let d = TestDaemon::start_with(Opts {
        args: vec!["--add-runtime".into(), add],
        ..Opts::default()
    });
    d.import_busybox();
    let info = d.docker_ok(&[
        "info",
        "--format",
        "{{.DefaultRuntime}} {{range $k, $v := .Runtimes}}{{$k}} {{end}}",
    ]);
    assert_eq!(info.trim(), "native native runc");

    // The same container under each runtime; only the runc one is runc's.
    for (rt, ours) in [("runc", true), ("native", false)] {
        let name = format!("c-{rt}");
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--runtime",
            rt,
            "--network",
            "none",
            "-m",
            "32m",
            "busybox",
            "sleep",
            "600",
        ]);
        let id = d.docker_ok(&["inspect", "-f", "{{.Id}} {{.HostConfig.Runtime}}", &name]);
        let (id, shown) = id.trim().split_once(' ').unwrap();
        assert_eq!(shown, rt);
        assert_eq!(runc_list(&d, &runc).contains(id), ours, "{rt}");
        assert_eq!(memory_limit(id), Some(32 << 20), "{rt}");
        let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", &name]);
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
        assert_eq!(cmdline, b"sleep\x00600\x00", "{rt}");
        d.docker_ok(&["rm", "-f", &name]);
    }
    // What the process sees is the same under both: capabilities, no_new_privs, the
    // seccomp mode, its limits, its devices, its user and mounts' kinds. (/dev/core: runc
    // links it only where the host has /proc/kcore, the native init always. Below
    // /sys/fs/cgroup runc 1.1 mounts every v1 hierarchy, cpuset and name=systemd included,
    // and not a hybrid host's unified one; the native init the ones the container joined.)
    let probe = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ulimit -n; ulimit -u; \
                 ls /dev | grep -vx core; id; hostname | wc -c; mount | cut -d' ' -f3,5 | grep -v '^/sys/fs/cgroup/' | sort";
    let seen: Vec<String> = ["runc", "native"]
        .iter()
        .map(|rt| {
            d.docker_ok(&[
                "run",
                "--rm",
                "--runtime",
                rt,
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                probe,
            ])
        })
        .collect();
    assert_eq!(seen[0], seen[1], "runc and native differ");

    // No --runtime: the default, native.
    d.docker_ok(&["create", "--name", "dflt", "--network", "none", "busybox"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.HostConfig.Runtime}}", "dflt"])
            .trim(),
        "native"
    );

    // A runtime the daemon does not have: dockerd's words, before anything is made.
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "crun",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&out), Some(125));
    assert!(
        stderr(&out).contains("Unknown runtime specified crun"),
        "{}",
        stderr(&out)
    );
}

/// crun, when it is installed: registered with --add-runtime, it either runs the container
/// or (crun 1.8.1 on a hybrid cgroup host) refuses it with its own words at the start,
/// never a hang.
#[test]
fn crun_runs_the_container_or_refuses_it_clearly() {
    require_root!();
    let Some(crun) = ["/usr/bin/crun", "/usr/sbin/crun"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        skip_test!("crun is not installed (apt-get install crun)");
    };
    let d = TestDaemon::start_with(Opts {
        args: vec!["--add-runtime".into(), format!("crun={}", crun.display())],
        ..Opts::default()
    });
    d.import_busybox();
    let began = Instant::now();
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "crun",
        "--network",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    assert!(began.elapsed() < Duration::from_secs(40));
    if out.status.success() {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    } else {
        assert!(stderr(&out).contains("OCI runtime"), "{}", stderr(&out));
    }
}

/// Fake runtimes: one that refuses every `create` in its own words (runc's JSON log), one
/// that hangs in `create`. Either fails the start with a clear error, in bounded time, and
/// the container can be removed.
#[test]
fn a_runtime_that_refuses_or_hangs_fails_the_start_clearly() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, on_create: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nlog=/dev/null\nwhile [ $# -gt 0 ]; do case $1 in --log) log=$2; shift;; create) {on_create};; delete|kill) exit 0;; esac; shift; done\nexit 0\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!("{name}={}", p.display())
    };
    let refuses = script(
        "refuses",
        r#"echo '{"level":"error","msg":"refuses create failed: this layout is not supported","time":"t"}' >> "$log"; exit 1"#,
    );
    let hangs = script("hangs", "exec sleep 60");
    let d = TestDaemon::start_with(Opts {
        args: vec![
            "--add-runtime".into(),
            refuses,
            "--add-runtime".into(),
            hangs,
        ],
        env: vec![("BERTH_RUNTIME_TIMEOUT".into(), "2".into())],
    });
    d.import_busybox();

    let began = Instant::now();
    let out = d.docker(&[
        "run",
        "--name",
        "r1",
        "--runtime",
        "refuses",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&out), Some(0));
    assert!(
        stderr(&out).contains(
            "OCI runtime create failed: refuses create failed: this layout is not supported"
        ),
        "{}",
        stderr(&out)
    );
    assert!(began.elapsed() < Duration::from_secs(10));

    let began = Instant::now();
    let out = d.docker(&[
        "run",
        "--name",
        "h1",
        "--runtime",
        "hangs",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&out), Some(0));
    assert!(
        stderr(&out).contains("OCI runtime hangs did not finish create within 2s"),
        "{}",
        stderr(&out)
    );
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    for name in ["r1", "h1"] {
        let st = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", name]);
        assert_ne!(st.trim(), "running", "{name}");
        d.docker_ok(&["rm", "-f", name]);
    }
    assert!(d.ping());
}
