//! `docker exec` through the real docker CLI and the Python SDK against a real berthd:
//! exit codes (the command's own, 126, 127), -u, -w, -e, -i with piped stdin, -t through
//! `script`, -d, --privileged, exec inspect, the namespaces and cgroup the exec joins,
//! dockerd's refusals for a stopped container, and an exec that outlives a berthd
//! restart. Root only. (tests/root_exec.rs tests the ExecActor and its monitors below
//! the API.)
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Opts, TestDaemon};

/// A daemon with busybox and a running container `name` (`sleep 1000`).
fn with_running(name: &str) -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        "busybox",
        "sleep",
        "1000",
    ]);
    d
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A POST with a JSON body on a fresh connection; the whole reply.
fn post(d: &TestDaemon, path: &str, body: &str) -> String {
    d.raw(&format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .unwrap()
}

fn inspect_exec(d: &TestDaemon, id: &str) -> serde_json::Value {
    let reply = d
        .raw(&format!(
            "GET /v1.41/exec/{id}/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ))
        .unwrap();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

#[test]
fn exit_codes_are_the_commands_and_dockerds() {
    require_root!();
    let d = with_running("ex1");
    let out = d.docker(&["exec", "ex1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");

    let out = d.docker(&["exec", "ex1", "nosuch"]);
    assert_eq!(code(&out), 127, "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("executable file not found"), "{all}");

    d.docker_ok(&[
        "exec",
        "ex1",
        "sh",
        "-c",
        "echo echo x > /tmp/f; chmod 644 /tmp/f",
    ]);
    let out = d.docker(&["exec", "ex1", "/tmp/f"]);
    assert_eq!(code(&out), 126, "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("permission denied"), "{all}");

    let out = d.docker(&["exec", "ex1", "/no/such/file"]);
    assert_eq!(code(&out), 127, "{}", text(&out.stderr));
    assert_eq!(d.docker_ok(&["exec", "ex1", "true"]), "");
}

#[test]
fn user_workdir_and_env() {
    require_root!();
    let d = with_running("ex2");
    d.docker_ok(&[
        "exec",
        "ex2",
        "sh",
        "-c",
        "echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd; echo 'app:x:1234:' >> /etc/group; echo 'extra:x:777:app' >> /etc/group",
    ]);
    assert_eq!(d.docker_ok(&["exec", "ex2", "id", "-u"]), "0\n");
    assert_eq!(
        d.docker_ok(&["exec", "-u", "app", "ex2", "id", "-u"]),
        "1234\n"
    );
    assert_eq!(
        d.docker_ok(&["exec", "-u", "app", "ex2", "id", "-G"]),
        "1234 777\n"
    );
    assert_eq!(
        d.docker_ok(&[
            "exec",
            "-u",
            "99:nogroup",
            "ex2",
            "sh",
            "-c",
            "id -u; id -g"
        ]),
        "99\n65534\n"
    );
    let out = d.docker(&["exec", "-u", "nosuchuser", "ex2", "true"]);
    assert_eq!(code(&out), 126, "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("unable to find user nosuchuser"), "{all}");

    assert_eq!(d.docker_ok(&["exec", "-w", "/etc", "ex2", "pwd"]), "/etc\n");
    assert_eq!(d.docker_ok(&["exec", "ex2", "pwd"]), "/\n");
    let out = d.docker(&["exec", "-w", "/nonexistent", "ex2", "pwd"]);
    assert_ne!(code(&out), 0);

    let env = d.docker_ok(&["exec", "-e", "FOO=bar", "-e", "HOSTNAME=h2", "ex2", "env"]);
    assert!(env.lines().any(|l| l == "FOO=bar"), "{env}");
    assert!(env.lines().any(|l| l == "HOSTNAME=h2"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

#[test]
fn stdin_is_piped_with_i() {
    require_root!();
    let d = with_running("ex3");
    let mut child = d
        .docker_cmd()
        .args(["exec", "-i", "ex3", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "line one\nline two\ndone\n");

    // Without -i the exec's stdin is empty.
    let out = d
        .docker_cmd()
        .args(["exec", "ex3", "sh", "-c", "cat; echo end"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "end\n");
}

#[test]
fn a_tty_through_script() {
    require_root!();
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_test!("script(1) is not installed");
    }
    let d = with_running("ex4");
    let docker = format!(
        "DOCKER_HOST=unix://{} docker exec -it ex4 sh -c 'tty; stty size; exit 5'",
        d.sock.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &docker, "/dev/null"])
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let all = text(&out.stdout);
    assert_eq!(code(&out), 5, "{all}\n{}", text(&out.stderr));
    assert!(all.contains("/dev/pts/"), "{all}");
}

#[test]
fn detached_exec_and_inspect() {
    require_root!();
    let d = with_running("ex5");
    d.docker_ok(&["exec", "-d", "ex5", "sh", "-c", "echo hi > /tmp/d; sleep 1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = d.docker(&["exec", "ex5", "cat", "/tmp/d"]);
        if text(&out.stdout) == "hi\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the detached exec did not run");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An exec made through the API, inspected before and after its start.
    let reply = post(
        &d,
        "/v1.41/containers/ex5/exec",
        r#"{"Cmd":["sh","-c","exit 7"],"User":"0","AttachStdout":true,"Privileged":false}"#,
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = inspect_exec(&d, &id);
    assert_eq!(v["Running"], false);
    assert_eq!(v["ExitCode"], serde_json::Value::Null);
    assert_eq!(v["ID"], id.as_str());
    assert_eq!(v["OpenStdout"], true);
    assert_eq!(v["OpenStdin"], false);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(
        v["ProcessConfig"]["arguments"],
        serde_json::json!(["-c", "exit 7"])
    );
    assert_eq!(v["ProcessConfig"]["user"], "0");
    let cid = d.docker_ok(&["inspect", "-f", "{{.Id}}", "ex5"]);
    assert_eq!(v["ContainerID"], cid.trim());
    let ids = d.docker_ok(&["inspect", "-f", "{{json .ExecIDs}}", "ex5"]);
    assert!(ids.contains(&id), "{ids}");

    let start = r#"{"Detach":true,"Tty":false}"#;
    let reply = d
        .raw(&format!(
            "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
            start.len()
        ))
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let v = loop {
        let v = inspect_exec(&d, &id);
        if v["Running"] == false {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(v["ExitCode"], 7);
    assert!(v["Pid"].as_i64().unwrap() > 0, "{v}");

    // A second start is dockerd's 409.
    let reply = d
        .raw(&format!(
            "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
            start.len()
        ))
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 409"), "{reply}");
    assert!(reply.contains("has already run"), "{reply}");

    let reply = d
        .raw("GET /v1.41/exec/nosuch/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(reply.contains("No such exec instance: nosuch"), "{reply}");
}

#[test]
fn the_exec_joins_the_container() {
    require_root!();
    let d = with_running("ex6");
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "ex6"]);
    let pid = pid.trim();
    // The exec sees the container's processes, with sleep as pid 1.
    let ps = d.docker_ok(&["exec", "ex6", "cat", "/proc/1/cmdline"]);
    assert!(ps.starts_with("sleep"), "{ps}");
    let own = d.docker_ok(&[
        "exec",
        "ex6",
        "sh",
        "-c",
        "for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done",
    ]);
    let theirs: Vec<String> = ["ipc", "mnt", "net", "pid", "uts"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(own.lines().collect::<Vec<_>>(), theirs);
    let hostname = d.docker_ok(&["inspect", "-f", "{{.Config.Hostname}}", "ex6"]);
    assert_eq!(d.docker_ok(&["exec", "ex6", "hostname"]), hostname);
    // Its cgroups (every hierarchy) are the container's.
    let cgroups_of = |p: &str| std::fs::read_to_string(format!("/proc/{p}/cgroup")).ok();
    d.docker_ok(&["exec", "-d", "ex6", "sleep", "31"]);
    let exec_pid = process_with_cmdline(b"sleep\x0031\x00");
    let mine = cgroups_of(&exec_pid).unwrap();
    assert!(mine.contains("berth"), "{mine}");
    assert_eq!(mine, cgroups_of(pid).unwrap());
    // The container's capabilities, and every one with --privileged.
    let capeff = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["ex6", "grep", "CapEff", "/proc/self/status"]);
        d.docker_ok(&a)
    };
    let init_caps = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapEff"))
        .unwrap()
        .to_owned();
    assert_eq!(capeff(&[]).trim(), init_caps);
    let privileged = capeff(&["--privileged"]);
    let own = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap()
        .replace("CapBnd", "CapEff");
    assert_eq!(privileged.trim(), own);
    // And its seccomp filter.
    let seccomp = d.docker_ok(&["exec", "ex6", "grep", "Seccomp:", "/proc/self/status"]);
    let init_seccomp = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .unwrap()
        .to_owned();
    assert_eq!(seccomp.trim(), init_seccomp);
}

/// An exec gets the container's settings, as runc's exec does: its capabilities
/// (--cap-drop), no_new_privs, added groups and resource limits.
#[test]
fn an_exec_gets_the_containers_security_and_process_settings() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ex9",
        "--cap-drop",
        "NET_RAW",
        "--cap-drop",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
        "--group-add",
        "10",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "ex9"]);
    let status_of = |key: &str| {
        std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
            .unwrap()
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .to_owned()
    };
    for key in ["CapEff:", "CapBnd:", "NoNewPrivs:", "Groups:"] {
        let mine = d.docker_ok(&["exec", "ex9", "grep", key, "/proc/self/status"]);
        assert_eq!(mine.trim(), status_of(key).trim(), "{key}");
    }
    assert!(status_of("NoNewPrivs:").ends_with('1'));
    assert!(status_of("Groups:").split_whitespace().any(|g| g == "10"));
    let limits = d.docker_ok(&["exec", "ex9", "sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!(
        limits.split_whitespace().collect::<Vec<_>>(),
        ["100", "200"]
    );
    // chown needs CAP_CHOWN, dropped: refused in the exec as in the container.
    let out = d.docker(&["exec", "ex9", "chown", "1", "/tmp"]);
    assert_ne!(code(&out), 0);
    d.docker_ok(&["rm", "-f", "ex9"]);
}

#[test]
fn a_stopped_or_missing_container_is_refused_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ex7",
        "busybox",
        "true",
    ]);
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "ex7"]);
    let out = d.docker(&["exec", "ex7", "true"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "Error response from daemon: Container {} is not running",
            id.trim()
        )
    );
    let reply = post(&d, "/v1.41/containers/ex7/exec", r#"{"Cmd":["true"]}"#);
    assert!(reply.starts_with("HTTP/1.1 409"), "{reply}");
    let out = d.docker(&["exec", "nosuch", "true"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ex8",
        "busybox",
        "sleep",
        "1000",
    ]);
    let reply = post(&d, "/v1.41/containers/ex8/exec", r#"{"Cmd":[]}"#);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("No exec command specified"), "{reply}");
}

/// A container that had an exec stops and starts again as any other (under runc, the
/// monitor's later runtime commands must not be born in the dead container's pid
/// namespace), and nothing of the runtime shows inside it.
#[test]
fn a_container_with_an_exec_restarts_cleanly() {
    require_root!();
    let d = with_running("again");
    d.docker_ok(&["exec", "again", "true"]);
    d.docker_ok(&["kill", "again"]);
    d.docker_ok(&["start", "again"]);
    d.docker_ok(&["exec", "again", "true"]);
    d.docker_ok(&["stop", "-t", "1", "again"]);
    d.docker_ok(&["start", "again"]);
    let ps = d.docker_ok(&["exec", "again", "ps", "-o", "comm"]);
    assert!(!ps.contains("runc"), "{ps}");
    d.docker_ok(&["rm", "-f", "again"]);
}

#[test]
fn the_python_sdk_exec_run() {
    require_root!();
    let d = with_running("ex9");
    let out = d.python_sdk_ok(
        r#"
ct = c.containers.get('ex9')
r = ct.exec_run(['sh', '-c', 'echo hi; echo oops >&2; exit 4'])
print(r.exit_code, repr(r.output))
r = ct.exec_run(['sh', '-c', 'echo $A; pwd; id -u'], environment={'A': 'b'}, workdir='/tmp', user='12')
print(r.exit_code, repr(r.output))
r = ct.exec_run(['sh', '-c', 'echo o; echo e >&2'], demux=True)
print(r.exit_code, repr(r.output))
r = ct.exec_run('nosuch')
print(r.exit_code)
r = ct.exec_run(['sleep', '0.2'], detach=True)
print(r.exit_code, r.output)
"#,
    );
    assert_eq!(
        out,
        "4 b'hi\\noops\\n'\n0 b'b\\n/tmp\\n12\\n'\n0 (b'o\\n', b'e\\n')\n127\nNone \n"
    );
}

#[test]
fn an_exec_outlives_a_berthd_restart() {
    require_root!();
    // With --live-restore the container outlives berthd (without it berthd stops every
    // container at shutdown, as dockerd does, and its execs with it).
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
        "ex10",
        "busybox",
        "sleep",
        "1000",
    ]);
    // An exec started detached keeps running while berthd is away: its monitor, not
    // berthd, holds it.
    let reply = post(
        &d,
        "/v1.41/containers/ex10/exec",
        r#"{"Cmd":["sh","-c","sleep 3; echo x > /tmp/after"]}"#,
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = r#"{"Detach":true,"Tty":false}"#;
    let reply = d
        .raw(&format!(
            "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
            start.len()
        ))
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let sleeper = process_with_cmdline(b"sleep\x003\x00");
    assert!(d.stop().success());
    // berthd is gone; the exec is not.
    let exe = std::path::Path::new("/proc").join(&sleeper).join("exe");
    assert!(exe.read_link().is_ok(), "the exec ended with berthd");
    d.restart(&live);
    // berthd knows the exec again from its monitor: running, the same process.
    let inspect = |d: &TestDaemon| {
        let reply = d
            .raw(&format!(
                "GET /v1.41/exec/{id}/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ))
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let body = reply.split("\r\n\r\n").nth(1).unwrap().to_owned();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let v = inspect(&d);
    assert_eq!(v["Running"], true, "{v}");
    assert_eq!(v["Pid"].to_string(), sleeper_sh_pid(&sleeper), "{v}");
    // The exec runs on under its monitor, finishes its work, and its exit code is seen.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = d.docker(&["exec", "ex10", "cat", "/tmp/after"]);
        if text(&out.stdout) == "x\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exec did not outlive the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = inspect(&d);
        if v["Running"] == false {
            assert_eq!(v["ExitCode"], 0, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exec's own process (`sh -c ...`): the parent of its `sleep`.
fn sleeper_sh_pid(sleep_pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{sleep_pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().to_owned()
}

/// The pid of the process whose `/proc/<pid>/cmdline` is `cmdline`, waited for (5 s).
fn process_with_cmdline(cmdline: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let p = e.file_name().to_string_lossy().into_owned();
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            (cmd == cmdline).then_some(p)
        });
        if let Some(p) = found {
            return p;
        }
        assert!(Instant::now() < deadline, "no exec process found");
        std::thread::sleep(Duration::from_millis(20));
    }
}
