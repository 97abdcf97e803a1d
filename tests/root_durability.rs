//! Durability of the container records through the real docker CLI and the API socket
//! against a real berthd: a clean stop (SIGTERM) and start again on the same roots with
//! 20 containers in mixed states, with and without `--live-restore`, compared `docker
//! inspect` to `docker inspect`; SIGKILLs of berthd in the middle of concurrent create,
//! start, stop and rm requests (two rounds), of pause, unpause and rename requests, and of
//! Init's boot starts, after which nothing answered is lost, nothing is torn, no container
//! runs twice and nothing is left behind (monitors, mounts, dirs, cgroups). Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Opts, TestDaemon, wait_for};
use serde_json::Value;

/// `docker run -d --network none --name NAME ARGS...` (or `create` when `create`).
fn make(d: &TestDaemon, verb: &str, name: &str, args: &[&str]) {
    let mut all = vec![verb];
    if verb == "run" {
        all.push("-d");
    }
    all.extend_from_slice(&["--network", "none", "--name", name]);
    all.extend_from_slice(args);
    d.docker_ok(&all);
    // A signal that comes before the trap is set is dropped (pid 1), and a pause before
    // it would hold it back: wait for the trap.
    if verb == "run" && args.contains(&TRAPPING) {
        assert!(
            wait_for(10, || d.docker_ok(&["logs", name]).contains("ready")),
            "{name} never set its trap"
        );
    }
}

/// A command that exits with `code` at SIGTERM at once (pid 1 ignores a signal it has no
/// handler for, and a stop would wait for the timeout).
const TRAPPING: &str = "trap 'exit 7' TERM; echo ready; sleep 600 & wait";

/// The 20 containers: name → what its State must be after berthd's clean restart
/// without live-restore ("created", "exited:N", "restarted" for a running one started
/// again by its policy, "stopped" for a running or paused one stopped at shutdown).
fn make_twenty(d: &TestDaemon, bind: &Path) -> BTreeMap<&'static str, &'static str> {
    let bind_arg = format!("{}:/data:ro", bind.display());
    let mut want = BTreeMap::new();
    // Created, never started: with labels, env, a volume, a bind, a working dir.
    make(
        d,
        "create",
        "cr-labels",
        &["-l", "a=1", "-l", "b=two", "busybox", "true"],
    );
    make(
        d,
        "create",
        "cr-env",
        &[
            "-e",
            "X=1",
            "-e",
            "Y=with space",
            "-w",
            "/tmp",
            "busybox",
            "env",
        ],
    );
    make(
        d,
        "create",
        "cr-vol",
        &["-v", "durvol:/vol", "busybox", "true"],
    );
    make(
        d,
        "create",
        "cr-bind",
        &["-v", &bind_arg, "busybox", "true"],
    );
    for n in ["cr-labels", "cr-env", "cr-vol", "cr-bind"] {
        want.insert(n, "created");
    }
    // Exited with various codes.
    for (n, code) in [("ex-0", "0"), ("ex-1", "1"), ("ex-3", "3"), ("ex-42", "42")] {
        make(
            d,
            "run",
            n,
            &[
                "-l",
                "kind=exited",
                "busybox",
                "sh",
                "-c",
                &format!("exit {code}"),
            ],
        );
    }
    want.insert("ex-0", "exited:0");
    want.insert("ex-1", "exited:1");
    want.insert("ex-3", "exited:3");
    want.insert("ex-42", "exited:42");
    // Killed (137), and stopped by the user (the trap's 7).
    make(d, "run", "ex-killed", &["busybox", "sleep", "600"]);
    d.docker_ok(&["kill", "ex-killed"]);
    want.insert("ex-killed", "exited:137");
    make(d, "run", "ex-stopped", &["busybox", "sh", "-c", TRAPPING]);
    d.docker_ok(&["stop", "ex-stopped"]);
    want.insert("ex-stopped", "exited:7");
    // Running, no policy: stopped at shutdown.
    make(
        d,
        "run",
        "run-plain",
        &["-e", "K=v", "busybox", "sh", "-c", TRAPPING],
    );
    make(
        d,
        "run",
        "run-vol",
        &[
            "-v",
            "durvol:/vol",
            "-v",
            &bind_arg,
            "busybox",
            "sh",
            "-c",
            TRAPPING,
        ],
    );
    make(
        d,
        "run",
        "run-health",
        &[
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "busybox",
            "sh",
            "-c",
            TRAPPING,
        ],
    );
    make(
        d,
        "run",
        "run-timeout",
        &["--stop-timeout", "1", "busybox", "sleep", "600"],
    );
    for n in ["run-plain", "run-vol", "run-health", "run-timeout"] {
        want.insert(n, "stopped");
    }
    // Paused.
    make(d, "run", "paused-1", &["busybox", "sh", "-c", TRAPPING]);
    make(
        d,
        "run",
        "paused-2",
        &["-l", "p=2", "busybox", "sh", "-c", TRAPPING],
    );
    d.docker_ok(&["pause", "paused-1", "paused-2"]);
    want.insert("paused-1", "stopped");
    want.insert("paused-2", "stopped");
    // restart=always running, and one the user stopped (always restarts it at boot).
    for n in ["always-1", "always-2"] {
        make(
            d,
            "run",
            n,
            &["--restart", "always", "busybox", "sh", "-c", TRAPPING],
        );
        want.insert(n, "restarted");
    }
    make(
        d,
        "run",
        "always-stopped",
        &["--restart", "always", "busybox", "sh", "-c", TRAPPING],
    );
    d.docker_ok(&["stop", "always-stopped"]);
    want.insert("always-stopped", "restarted");
    // unless-stopped: running is started again (a shutdown is not a user's stop).
    make(
        d,
        "run",
        "unless-running",
        &[
            "--restart",
            "unless-stopped",
            "busybox",
            "sh",
            "-c",
            TRAPPING,
        ],
    );
    want.insert("unless-running", "restarted");
    assert_eq!(want.len(), 20);
    assert!(
        wait_for(20, || {
            common::inspect(d, "run-health", "{{.State.Health.Status}}") == "healthy"
        }),
        "the health check never passed"
    );
    want
}

/// Every container's inspect document by name.
fn inspect_all(d: &TestDaemon) -> BTreeMap<String, Value> {
    let ids = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut args = vec!["inspect"];
    args.extend_from_slice(&ids);
    let docs: Vec<Value> = serde_json::from_str(&d.docker_ok(&args)).unwrap();
    docs.into_iter()
        .map(|v| {
            (
                v["Name"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_owned(),
                v,
            )
        })
        .collect()
}

/// `docker ps -a` rows (name, image, command, status word).
fn ps_set(d: &TestDaemon) -> BTreeSet<String> {
    d.docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.Labels}} {{.Mounts}}",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The document with `State` set aside (compared on its own).
fn without_state(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("State");
    v
}

fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// Field-by-field differences of two JSON values, as `path: a != b` lines.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn assert_same(name: &str, what: &str, a: &Value, b: &Value) {
    let mut out = Vec::new();
    diff("", a, b, &mut out);
    assert!(
        out.is_empty(),
        "{name}: {what} changed across the restart:\n{}",
        out.join("\n")
    );
}

/// Starts berthd with `args`, makes the 20 containers, stops berthd with SIGTERM, starts
/// it again and compares. Returns the daemon for more checks.
fn clean_restart(args: &[&str]) -> (TestDaemon, BTreeMap<&'static str, &'static str>) {
    let opts = Opts {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(opts.clone());
    d.import_busybox();
    let bind = d.dir.path().join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::write(bind.join("f"), "bound\n").unwrap();
    let want = make_twenty(&d, &bind);
    let before = inspect_all(&d);
    let ps_before = ps_set(&d);
    assert_eq!(before.len(), 20, "{:?}", before.keys());
    let started = std::time::Instant::now();
    assert!(d.stop().success(), "berthd's stop failed:\n{}", d.log());
    eprintln!("berthd's stop took {:?}", started.elapsed());
    d.restart(&opts);
    let after = inspect_all(&d);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the set of containers changed"
    );
    assert_eq!(ps_before, ps_set(&d), "docker ps -a changed");
    let live = args.contains(&"--live-restore");
    for (name, a) in &before {
        let b = &after[name];
        let (sa, sb) = (&a["State"], &b["State"]);
        let expect = if live && a["State"]["Running"] == true {
            "live"
        } else {
            want[name.as_str()]
        };
        // Everything but State is the same document (the config, mounts, log path,
        // restart count, names, network settings of `none`), but the sandbox of a
        // container started again (its new namespace).
        let (mut a2, mut b2) = (without_state(a), without_state(b));
        if expect == "restarted" {
            for v in [&mut a2, &mut b2] {
                v["NetworkSettings"]["SandboxKey"] = Value::Null;
            }
        }
        if expect == "stopped" {
            // dockerd's releaseNetwork empties the sandbox key of a stopped container.
            assert_eq!(b2["NetworkSettings"]["SandboxKey"], "", "{name}");
            for v in [&mut a2, &mut b2] {
                v["NetworkSettings"]["SandboxKey"] = Value::Null;
            }
        }
        assert_same(name, "inspect (but State)", &a2, &b2);
        match expect {
            "created" | "live" => {
                let (mut sa, mut sb) = (sa.clone(), sb.clone());
                // A restore starts the health check again (dockerd's
                // initHealthMonitor sets it starting); the log of probes stays.
                for s in [&mut sa, &mut sb] {
                    if let Some(h) = s.get_mut("Health") {
                        h.as_object_mut().unwrap().remove("Status");
                        h.as_object_mut().unwrap().remove("FailingStreak");
                        h.as_object_mut().unwrap().remove("Log");
                    }
                }
                assert_same(name, "State", &sa, &sb);
                if expect == "live" {
                    let pid = sb["Pid"].as_i64().unwrap();
                    assert!(pid > 0 && Path::new(&format!("/proc/{pid}")).exists());
                }
            }
            e if e.starts_with("exited:") => {
                assert_same(name, "State", sa, sb);
                assert_eq!(sb["Status"], "exited", "{name}");
                assert_eq!(sb["ExitCode"].to_string(), &e[7..], "{name}");
            }
            "stopped" => {
                assert_eq!(sb["Status"], "exited", "{name}: {sb}");
                assert_eq!(sb["Running"], false, "{name}");
                assert_eq!(sb["Paused"], false, "{name}");
                assert_eq!(sb["Pid"], 0, "{name}");
                assert_eq!(sb["StartedAt"], sa["StartedAt"], "{name}");
                assert!(
                    sb["FinishedAt"].as_str() > sa["StartedAt"].as_str(),
                    "{name}: {sb}"
                );
                // The trap's exit at the stop signal; SIGKILL after its own stop
                // timeout for the one without a trap (below). A paused container is thawed to see its
                // signal (dockerd's containerStop of a paused container).
                let code = if name == "run-timeout" { 137 } else { 7 };
                assert_eq!(sb["ExitCode"], code, "{name}: {sb}");
                if name == "run-health" {
                    assert_eq!(field(sb, "Health.Status"), "unhealthy", "{name}: {sb}");
                }
            }
            "restarted" => {
                assert_eq!(sb["Status"], "running", "{name}: {sb}");
                assert_eq!(sb["Running"], true, "{name}");
                let pid = sb["Pid"].as_i64().unwrap();
                assert!(pid > 0 && Path::new(&format!("/proc/{pid}")).exists());
                assert_ne!(sb["Pid"], sa["Pid"], "{name}");
                assert!(sb["StartedAt"].as_str() > sa["StartedAt"].as_str());
                // A boot's start is a user's start: the count is reset (dockerd's
                // containerStart with resetRestartManager).
                assert_eq!(b["RestartCount"], 0, "{name}");
            }
            other => unreachable!("{other}"),
        }
    }
    if !live {
        // dockerd's shutdownContainer: a container's own --stop-timeout (1 s) before
        // SIGKILL, not the daemon's --shutdown-timeout (5 s here).
        let finished = |n: &str| {
            chrono::DateTime::parse_from_rfc3339(after[n]["State"]["FinishedAt"].as_str().unwrap())
                .unwrap()
        };
        let gap = finished("run-timeout") - finished("run-plain");
        assert!(
            gap > chrono::TimeDelta::milliseconds(800) && gap < chrono::TimeDelta::seconds(4),
            "run-timeout was killed {gap} after run-plain exited at its stop signal"
        );
    }
    (d, want)
}

/// A clean stop and start without `--live-restore`: the stopped containers are the
/// same documents, the running ones were stopped at shutdown (with their stop signal,
/// the paused ones thawed) and those their policy restarts run again.
#[test]
fn clean_restart_keeps_every_record() {
    require_root!();
    let (d, _) = clean_restart(&["--shutdown-timeout", "5"]);
    // The restored containers work: a created one starts, the bind is there.
    d.docker_ok(&["start", "cr-bind"]);
    assert_eq!(d.docker_ok(&["wait", "cr-bind"]).trim(), "0");
    d.docker_ok(&["start", "run-vol"]);
    let out = d.docker_ok(&["exec", "run-vol", "cat", "/data/f"]);
    assert_eq!(out, "bound\n");
    d.docker_ok(&["stop", "-t", "1", "run-vol", "always-1"]);
    remove_all(&d);
}

/// The same with `--live-restore`: nothing is stopped, every document is the same but
/// the health check's status (started again), and the paused ones are still paused.
#[test]
fn clean_restart_with_live_restore_keeps_every_record() {
    require_root!();
    let (d, _) = clean_restart(&["--live-restore"]);
    assert_eq!(
        common::inspect(&d, "paused-1", "{{.State.Status}}"),
        "paused"
    );
    d.docker_ok(&["unpause", "paused-1"]);
    d.docker_ok(&["stop", "paused-1"]);
    assert_eq!(common::inspect(&d, "paused-1", "{{.State.ExitCode}}"), "7");
    assert!(wait_for(20, || {
        common::inspect(&d, "run-health", "{{.State.Health.Status}}") == "healthy"
    }));
    remove_all(&d);
}

/// `docker rm -f` of every container, then [`nothing_left`].
fn remove_all(d: &TestDaemon) {
    let all = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    let ids: BTreeSet<String> = all.split_whitespace().map(str::to_owned).collect();
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(ids.iter().map(String::as_str));
    d.docker_ok(&args);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    nothing_left(d, &ids);
}

/// One HTTP request on a fresh connection to the API socket: the status, or None when
/// no answer came (the daemon died, or the connection was refused).
fn api(sock: &Path, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} /v1.41{path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((code, body.to_owned()))
}

/// What a worker learnt of one container.
#[derive(Debug, Default, Clone)]
struct Seen {
    name: String,
    /// The id from a 201 to its create.
    created: Option<String>,
    /// Its rm was answered 204.
    removed: bool,
    /// Its rm was sent and not answered (the kill came first): it may be gone or not.
    rm_in_flight: bool,
}

/// The create body of the crash tests.
const CREATE: &str = r#"{"Image":"busybox","Cmd":["sleep","600"],"Labels":{"durability":"1"},"HostConfig":{"NetworkMode":"none"}}"#;

/// One round of the crash test: 8 threads send 200 requests at most (each thread: a
/// create, a start, then by turns a stop, an rm -f, or an rm -f of one of `old`, the
/// containers an earlier round left), and berthd is killed (SIGKILL) once `kill_at` of
/// them are answered. Updates `seen` (by container name) with what the answers said.
fn crash_round(
    d: &mut TestDaemon,
    round: usize,
    kill_at: usize,
    old: &[String],
    seen: &mut BTreeMap<String, Seen>,
) {
    let sock: PathBuf = d.sock.clone();
    let answered = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let found: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let olds: Mutex<Vec<String>> = Mutex::new(old.to_vec());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (sock, answered, sent, found, errors, olds) =
                (&sock, &answered, &sent, &found, &errors, &olds);
            s.spawn(move || {
                // Sends one request; false when no answer came (the daemon is gone).
                let send = |method: &str, path: &str, body: Option<&str>, me: &mut Seen| {
                    sent.fetch_add(1, Ordering::SeqCst);
                    let Some((code, text)) = api(sock, method, path, body) else {
                        me.rm_in_flight |= method == "DELETE";
                        return false;
                    };
                    answered.fetch_add(1, Ordering::SeqCst);
                    match (method, code) {
                        ("POST", 201) => {
                            let v: Value = serde_json::from_str(&text).unwrap();
                            me.created = Some(v["Id"].as_str().unwrap().to_owned());
                        }
                        ("DELETE", 204) => me.removed = true,
                        (_, 200..300) => {}
                        _ => errors
                            .lock()
                            .unwrap()
                            .push(format!("{method} {path}: {code} {text}")),
                    }
                    true
                };
                let mut i = 0;
                while sent.load(Ordering::SeqCst) < 200 {
                    let name = format!("k{round}-{t}-{i}");
                    let mut me = Seen {
                        name: name.clone(),
                        ..Seen::default()
                    };
                    let mut alive = send(
                        "POST",
                        &format!("/containers/create?name={name}"),
                        Some(CREATE),
                        &mut me,
                    );
                    if alive && me.created.is_some() {
                        alive = send("POST", &format!("/containers/{name}/start"), None, &mut me);
                    }
                    if alive && me.created.is_some() {
                        match i % 3 {
                            0 => {
                                let p = format!("/containers/{name}/stop?t=0");
                                alive = send("POST", &p, None, &mut me);
                            }
                            1 => {
                                let p = format!("/containers/{name}?force=1");
                                alive = send("DELETE", &p, None, &mut me);
                            }
                            _ => {
                                let next = olds.lock().unwrap().pop();
                                if let Some(o) = next {
                                    let mut them = Seen {
                                        name: o.clone(),
                                        ..Seen::default()
                                    };
                                    let p = format!("/containers/{o}?force=1");
                                    alive = send("DELETE", &p, None, &mut them);
                                    found.lock().unwrap().push(them);
                                }
                            }
                        }
                    }
                    i += 1;
                    found.lock().unwrap().push(me);
                    if !alive {
                        break;
                    }
                }
            });
        }
        assert!(
            wait_for(120, || answered.load(Ordering::SeqCst) >= kill_at),
            "the requests did not get answers:\n{}",
            common::tail(&d.log(), 30)
        );
        d.kill();
    });
    let errors = errors.into_inner().unwrap();
    eprintln!(
        "round {round}: {} requests sent, {} answered before the kill; non-2xx: {errors:?}",
        sent.load(Ordering::SeqCst),
        answered.load(Ordering::SeqCst),
    );
    assert!(
        errors.is_empty(),
        "requests failed before the kill: {errors:?}"
    );
    for f in found.into_inner().unwrap() {
        let e = seen.entry(f.name.clone()).or_insert_with(|| f.clone());
        e.created = e.created.clone().or(f.created);
        e.removed |= f.removed;
        e.rm_in_flight |= f.rm_in_flight;
    }
}

/// After a restart: every container whose create was answered 201 is listed unless its
/// rm was answered (or was in flight at the kill), none whose rm was answered 204 came
/// back, and each listed one inspects with a state a container can be in. Returns the
/// names listed.
fn check_after_crash(d: &TestDaemon, seen: &BTreeMap<String, Seen>) -> Vec<String> {
    let listed = d.docker_ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    let listed: BTreeMap<String, String> = listed
        .lines()
        .map(|l| {
            let (id, name) = l.split_once(' ').unwrap();
            (id.to_owned(), name.to_owned())
        })
        .collect();
    for s in seen.values() {
        let Some(id) = &s.created else { continue };
        if s.removed {
            assert!(
                !listed.contains_key(id),
                "{}: removed (204) but back",
                s.name
            );
        } else if !s.rm_in_flight {
            assert_eq!(
                listed.get(id),
                Some(&s.name),
                "{}: created (201) but lost after the crash",
                s.name
            );
        }
    }
    // No torn record: each inspects, and its state is one a container can be in.
    for (id, name) in &listed {
        let st = common::inspect(d, id, "{{.State.Status}} {{.Name}} {{.Config.Image}}");
        let mut parts = st.split(' ');
        let status = parts.next().unwrap();
        assert!(
            ["created", "running", "exited"].contains(&status),
            "{name}: {st}"
        );
        assert_eq!(parts.next(), Some(format!("/{name}").as_str()));
        assert_eq!(parts.next(), Some("busybox"));
    }
    listed.into_values().collect()
}

/// SIGKILL of berthd while 8 threads run create/start/stop/rm requests on the socket,
/// twice (the second round also removes containers the first left, and its crash comes
/// later): after each restart on the same roots nothing answered is lost or back, no
/// record is torn; then `docker rm -f` of all works and no monitor, mount or container
/// dir is left.
#[test]
fn sigkill_during_concurrent_operations_loses_nothing_answered() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    let mut seen = BTreeMap::new();
    crash_round(&mut d, 1, 60, &[], &mut seen);
    d.restart(&Opts::default());
    let left = check_after_crash(&d, &seen);
    crash_round(&mut d, 2, 150, &left, &mut seen);
    d.restart(&Opts::default());
    let listed = check_after_crash(&d, &seen);
    let mut args = vec!["rm", "-f"];
    args.extend(listed.iter().map(String::as_str));
    if !listed.is_empty() {
        d.docker_ok(&args);
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    let ids: BTreeSet<String> = seen.values().filter_map(|s| s.created.clone()).collect();
    nothing_left(&d, &ids);
}

/// Once every container is removed: no monitor, no mount under the data root, no
/// container dir, no cgroup of any of `ids`, and no error (nor a warning about a
/// container's remains) in the log since the daemon's last start.
fn nothing_left(d: &TestDaemon, ids: &BTreeSet<String>) {
    if !wait_for(20, || d.monitor_pids().is_empty()) {
        let about: Vec<String> = d
            .monitor_pids()
            .iter()
            .map(|p| {
                format!(
                    "{p}: cwd {:?} cmdline {:?} children {:?}",
                    std::fs::read_link(format!("/proc/{p}/cwd")),
                    std::fs::read_to_string(format!("/proc/{p}/cmdline")),
                    common::children_of(*p)
                )
            })
            .collect();
        panic!(
            "monitors left after rm -f of all:\n{}\nlog:\n{}",
            about.join("\n"),
            d.log()
        );
    }
    // No mount under the data root once every container is gone (the image layers are
    // not mounted).
    let root = d.data_root.display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&root))
        .map(str::to_owned)
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    // No container dir left behind either (the deleter finishes in the background).
    let dir = d.data_root.join("containers");
    assert!(
        wait_for(10, || std::fs::read_dir(&dir)
            .map(|r| r.count() == 0)
            .unwrap_or(true)),
        "container dirs left: {:?}",
        std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    // No cgroup of any of them (each is named by the container's id, so only ours).
    let mut cgroups = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for sub in [h.path().join("berth"), h.path()] {
            for e in std::fs::read_dir(sub).into_iter().flatten().flatten() {
                if ids.contains(e.file_name().to_string_lossy().as_ref()) {
                    cgroups.push(e.path());
                }
            }
        }
    }
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    // The daemon's log after the last restart has no error, and no warning about a
    // container's remains.
    let log = d.log();
    let last = log
        .rfind("\"actor\":\"graphdb\"")
        .map_or(&log[..], |i| &log[i..]);
    let bad: Vec<&str> = last
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains("still in use"))
        .collect();
    assert!(
        bad.is_empty(),
        "the restarted daemon logged:\n{}",
        bad.join("\n")
    );
}

/// A start that a crash cut short after the monitor ran the container but before the
/// store recorded it (the race the test above can hit), made deterministic: a running
/// container's record is given a created container's state while berthd is killed.
/// The restart kills the orphan (its start was never answered), so the record holds:
/// no process, no monitor, and the container starts and is removed as any other.
#[test]
fn a_start_cut_short_by_a_crash_leaves_no_orphan() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    make(&d, "create", "fresh", &["busybox", "true"]);
    make(&d, "run", "orphan", &["busybox", "sleep", "600"]);
    let pid = common::inspect(&d, "orphan", "{{.State.Pid}}");
    let id = common::inspect(&d, "orphan", "{{.Id}}");
    let fresh = common::inspect(&d, "fresh", "{{.Id}}");
    d.kill();
    let read = |id: &str| -> Value {
        let p = d
            .data_root
            .join("containers")
            .join(id)
            .join("config.v2.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let mut rec = read(&id);
    rec["state"] = read(&fresh)["state"].clone();
    let path = d
        .data_root
        .join("containers")
        .join(&id)
        .join("config.v2.json");
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    d.restart(&Opts::default());
    assert_eq!(
        common::inspect(&d, "orphan", "{{.State.Status}}"),
        "created"
    );
    assert!(
        wait_for(10, || !Path::new(&format!("/proc/{pid}")).exists()),
        "the orphaned container still runs"
    );
    assert!(wait_for(10, || d.monitor_pids().is_empty()));
    assert!(
        d.log().contains("cut short by a crash"),
        "{}",
        common::tail(&d.log(), 20)
    );
    d.docker_ok(&["start", "orphan"]);
    assert_eq!(
        common::inspect(&d, "orphan", "{{.State.Status}}"),
        "running"
    );
    remove_all(&d);
}

/// A SIGKILL while Init starts the containers a restart policy brings back at boot: the
/// next start brings each back once, with one monitor per running container (a boot's
/// start cut short leaves no second one), and nothing is left after the rm of all.
#[test]
fn sigkill_while_init_restarts_containers() {
    require_root!();
    let opts = Opts {
        args: vec!["--shutdown-timeout".into(), "1".into()],
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(opts.clone());
    d.import_busybox();
    for i in 0..8 {
        let name = format!("always-{i}");
        make(
            &d,
            "run",
            &name,
            &["--restart", "always", "busybox", "sleep", "600"],
        );
    }
    assert!(d.stop().success());
    let before = d.log().len();
    // The API serves once Init's starts are done (TestDaemon waits for it): this berthd
    // is started by hand and killed at the first of its boot's starts.
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&d.log_path)
        .unwrap();
    let mut child = std::process::Command::new(common::berthd_bin())
        .args(d.base_args())
        .args(["-b", "none", "--shutdown-timeout", "1"])
        .args(common::exec_driver_args(&[]))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    assert!(
        wait_for(30, || d.log()[before..].contains("\"container started\"")),
        "no boot start:\n{}",
        &d.log()[before..]
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let boot = d.log()[before..].matches("\"container started\"").count();
    eprintln!("{boot} of 8 started at boot before the kill");
    d.restart(&opts);
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.lines().count(), 8, "{ps}");
    let mut pids = BTreeSet::new();
    for i in 0..8 {
        let st = common::inspect(
            &d,
            &format!("always-{i}"),
            "{{.State.Status}} {{.State.Pid}}",
        );
        let (status, pid) = st.split_once(' ').unwrap();
        assert_eq!(status, "running", "always-{i}");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        pids.insert(pid.to_owned());
    }
    assert_eq!(pids.len(), 8);
    assert!(
        wait_for(5, || d.monitor_pids().len() == 8),
        "monitors: {:?}",
        d.monitor_pids()
    );
    remove_all(&d);
}

/// SIGKILL of berthd while 8 threads pause, unpause and rename 8 running containers
/// through the socket: after the restart each one's `paused` agrees with its freezer (so
/// `docker unpause`/`docker pause` work), and its name is the last rename answered or a
/// later one (in flight at the kill); then nothing is left after the rm of all.
#[test]
fn sigkill_during_pause_and_rename_keeps_state_and_names() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    let ids: Vec<String> = (0..8)
        .map(|i| {
            make(&d, "run", &format!("c{i}"), &["busybox", "sleep", "600"]);
            common::inspect(&d, &format!("c{i}"), "{{.Id}}")
        })
        .collect();
    let sock = d.sock.clone();
    let answered = AtomicUsize::new(0);
    // Per container: the index of the last rename answered 204.
    let renamed: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for (i, id) in ids.iter().enumerate() {
            let (sock, answered, renamed) = (&sock, &answered, &renamed);
            s.spawn(move || {
                for n in 0.. {
                    let (method, path) = match n % 3 {
                        0 => ("POST", format!("/containers/{id}/pause")),
                        1 => ("POST", format!("/containers/{id}/unpause")),
                        _ => ("POST", format!("/containers/{id}/rename?name=c{i}-r{n}")),
                    };
                    let Some((code, body)) = api(sock, method, &path, None) else {
                        return;
                    };
                    assert!((200..300).contains(&code), "{path}: {code} {body}");
                    answered.fetch_add(1, Ordering::SeqCst);
                    if n % 3 == 2 {
                        renamed.lock().unwrap().insert(i, n);
                    }
                }
            });
        }
        assert!(wait_for(60, || answered.load(Ordering::SeqCst) >= 200));
        d.kill();
    });
    d.restart(&Opts::default());
    let renamed = renamed.into_inner().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let st = common::inspect(&d, id, "{{.Name}} {{.State.Status}}");
        let (name, status) = st.split_once(' ').unwrap();
        let n: Option<usize> = name.rsplit_once("-r").map(|(_, n)| n.parse().unwrap());
        assert!(
            n >= renamed.get(&i).copied(),
            "{id}: {name}, but c{i}-r{:?} was answered",
            renamed.get(&i)
        );
        let freezer = ["freezer/berth", "berth", "unified/berth"]
            .iter()
            .find_map(|h| {
                let dir = Path::new("/sys/fs/cgroup").join(h).join(id);
                std::fs::read_to_string(dir.join("freezer.state"))
                    .map(|s| s.trim() == "FROZEN")
                    .or_else(|_| {
                        std::fs::read_to_string(dir.join("cgroup.freeze")).map(|s| s.trim() == "1")
                    })
                    .ok()
            })
            .expect("no freezer");
        assert_eq!(
            status == "paused",
            freezer,
            "{name}: {status}, frozen {freezer}"
        );
        assert!(["paused", "running"].contains(&status), "{name}: {status}");
        if status == "paused" {
            d.docker_ok(&["unpause", id]);
        }
        assert_eq!(d.docker_ok(&["exec", id, "echo", "ok"]), "ok\n");
    }
    remove_all(&d);
}
