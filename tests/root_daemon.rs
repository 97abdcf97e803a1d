//! The daemon's life: start-up order, shutdown order, partial failure, bad input, systemd
//! notify, ping/version/info through the real docker CLI, /metrics, and the effect or the
//! refusal of daemon flags (docs/api-fields.md names these tests). Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Opts, TestDaemon, berthd_bin};
use netns::NetNs;

/// The `actor` field of every log record whose message is `message`, in order.
fn actors_logged(records: &[serde_json::Value], message: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["fields"]["message"] == message)
        .filter_map(|r| r["fields"]["actor"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn actors_start_in_order_and_stop_in_reverse() {
    require_root!();
    let mut d = TestDaemon::start();
    let v = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.41 linux");
    let info = d.docker_ok(&["info"]);
    assert!(info.contains("Storage Driver:"), "{info}");
    assert!(info.contains("Cgroup Version:"), "{info}");
    let st = d.stop();
    assert!(st.success(), "berthd exit status {st}");
    let recs = d.log_records();
    assert_eq!(
        actors_logged(&recs, "actor initialised"),
        ["graphdb", "graph", "network", "exec", "store", "api"]
    );
    assert_eq!(
        actors_logged(&recs, "actor shut down"),
        ["api", "store", "exec", "network", "graph", "graphdb"]
    );
    assert!(!d.pidfile.exists(), "pidfile left behind");
    assert!(!d.sock.exists(), "socket left behind");
    assert!(d.data_root.join("linkgraph.db").exists());
}

#[test]
fn a_failed_init_shuts_down_the_started_actors_in_reverse_and_exits_1() {
    require_root!();
    let dir = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let p = dir.path();
    let out = Command::new(berthd_bin())
        .args(["--data-root", &p.join("data").display().to_string()])
        .args(["--exec-root", &p.join("exec").display().to_string()])
        .args(["--pidfile", &p.join("pid").display().to_string()])
        .args(["-H", &format!("unix://{}", p.join("api.sock").display())])
        .args([
            "--log-format",
            "json",
            "--config-file",
            "/nonexistent/berth-none.json",
        ])
        .output()
        .unwrap();
    // An explicit config file that does not exist is itself a clear error.
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(berthd_bin())
        .args(["--data-root", &p.join("data").display().to_string()])
        .args(["--exec-root", &p.join("exec").display().to_string()])
        .args(["--pidfile", &p.join("pid").display().to_string()])
        .args(["-H", &format!("unix://{}", p.join("api.sock").display())])
        .args(["--log-format", "json", "-b", "berthnosuch0"])
        .env("BERTH_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("berthd:"))
        .collect();
    assert_eq!(fatal.len(), 1, "{stderr}");
    assert!(
        fatal[0].contains("failed to start: network: bridge berthnosuch0 not found"),
        "{}",
        fatal[0]
    );
    let recs: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        actors_logged(&recs, "actor initialised"),
        ["graphdb", "graph"]
    );
    assert_eq!(
        actors_logged(&recs, "actor failed to initialise"),
        ["network"]
    );
    assert_eq!(
        actors_logged(&recs, "actor shut down"),
        ["graph", "graphdb"]
    );
    assert!(!p.join("pid").exists());
    assert!(!p.join("api.sock").exists());
}

/// Runs berthd with `args` on fresh temp roots; asserts exit 1 and exactly one `berthd:`
/// line containing `expect`, and that no data root was made.
fn refused(extra: &[&str], setup: impl FnOnce(&std::path::Path), expect: &str) {
    let dir = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let p = dir.path();
    setup(p);
    let mut args: Vec<String> = vec![
        "--exec-root".into(),
        p.join("exec").display().to_string(),
        "--pidfile".into(),
        p.join("pid").display().to_string(),
        "-H".into(),
        format!("unix://{}", p.join("api.sock").display()),
    ];
    if !extra.iter().any(|a| a.starts_with("--data-root")) {
        args.push("--data-root".into());
        args.push(p.join("data").display().to_string());
    }
    if !extra.iter().any(|a| a.starts_with("--config-file")) {
        args.push("--config-file".into());
        args.push(p.join("none.json").display().to_string());
        std::fs::write(p.join("none.json"), "{}").unwrap();
    }
    let out = Command::new(berthd_bin())
        .args(&args)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
    let fatal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("berthd:"))
        .collect();
    assert_eq!(fatal.len(), 1, "{extra:?}: {stderr}");
    assert!(fatal[0].contains(expect), "{extra:?}: {}", fatal[0]);
    assert!(!p.join("data").exists(), "{extra:?} left a data root");
    assert!(!p.join("exec").exists(), "{extra:?} left an exec root");
}

#[test]
fn bad_input_gives_one_clear_line_and_exit_1_leaving_nothing() {
    require_root!();
    refused(&["--bogus"], |_| {}, "unknown flag: --bogus");
    refused(
        &["-b", "br0", "--bip", "10.199.9.1/24"],
        |_| {},
        "mutually exclusive",
    );
    refused(
        &["--iptables=false", "--icc=false"],
        |_| {},
        "ICC=false uses iptables",
    );
    refused(&["--mtu", "lots"], |_| {}, "--mtu");
    let bad_json = std::env::temp_dir().join(format!("berth-bad-{}.json", std::process::id()));
    std::fs::write(&bad_json, "{\"data-root\": \"/x\",\n  oops}").unwrap();
    let cf = format!("--config-file={}", bad_json.display());
    refused(
        &[&cf],
        |_| {},
        "unable to configure the berth daemon with file",
    );
    let conflict = std::env::temp_dir().join(format!("berth-conf-{}.json", std::process::id()));
    std::fs::write(&conflict, "{\"mtu\": 1400}").unwrap();
    let cf2 = format!("--config-file={}", conflict.display());
    refused(
        &[&cf2, "--mtu", "1500"],
        |_| {},
        "specified both as a flag and in the configuration file",
    );
    let _ = std::fs::remove_file(&bad_json);
    let _ = std::fs::remove_file(&conflict);
    // A pidfile naming a live process (pid 1 is always alive).
    refused(
        &[],
        |p| std::fs::write(p.join("pid"), "1\n").unwrap(),
        "pid file found",
    );
    // A socket path a live process listens on.
    let holder = std::sync::Arc::new(std::sync::Mutex::new(None));
    let h2 = holder.clone();
    refused(
        &[],
        move |p| {
            let l = std::os::unix::net::UnixListener::bind(p.join("api.sock")).unwrap();
            *h2.lock().unwrap() = Some(l);
        },
        "is in use by another process",
    );
    drop(holder);
}

#[test]
fn an_unwritable_data_root_is_one_clear_line() {
    require_root!();
    let dir = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let p = dir.path();
    std::fs::write(p.join("none.json"), "{}").unwrap();
    let out = Command::new(berthd_bin())
        .args(["--data-root", "/proc/berth-cannot-exist"])
        .args(["--exec-root", &p.join("exec").display().to_string()])
        .args(["--pidfile", &p.join("pid").display().to_string()])
        .args(["-H", &format!("unix://{}", p.join("api.sock").display())])
        .args(["--config-file", &p.join("none.json").display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("berthd:"))
        .collect();
    assert_eq!(fatal.len(), 1, "{stderr}");
    assert!(
        fatal[0].contains("data root /proc/berth-cannot-exist could not be created"),
        "{}",
        fatal[0]
    );
    // The pidfile taken before the data root check is released again.
    assert!(!p.join("pid").exists());
}

#[test]
fn systemd_gets_ready_then_stopping() {
    require_root!();
    let dir = tempfile::Builder::new()
        .prefix("berth-test.")
        .tempdir()
        .unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut d = TestDaemon::start_with(Opts {
        env: vec![("NOTIFY_SOCKET".into(), notify.display().to_string())],
        ..Opts::default()
    });
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    assert!(d.stop().success());
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[test]
fn ping_version_and_errors_on_the_wire() {
    require_root!();
    let d = TestDaemon::start();
    let head = d
        .raw("HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    for h in [
        "Api-Version: 1.41",
        "Ostype: linux",
        "Docker-Experimental: false",
    ] {
        assert!(
            head.to_ascii_lowercase().contains(&h.to_ascii_lowercase()),
            "{h} missing: {head}"
        );
    }
    assert!(
        head.ends_with("\r\n\r\n"),
        "HEAD must have no body: {head:?}"
    );
    let get = d
        .raw("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(get.ends_with("OK"), "{get}");
    let v = d
        .raw("GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(v.contains("\"ApiVersion\":\"1.41\""), "{v}");
    let too_new = d
        .raw("GET /v1.99/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(too_new.starts_with("HTTP/1.1 400"), "{too_new}");
    assert!(
        too_new.contains("client version 1.99 is too new. Maximum supported API version is 1.41"),
        "{too_new}"
    );
    let missing = d
        .raw("GET /v1.41/containers/nope/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing.contains("{\"message\":\"No such container: nope\"}"),
        "{missing}"
    );
    // The CLI prints the daemon's message.
    let out = d.docker(&["inspect", "--type", "container", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such container: nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_are_prometheus_text_with_actor_and_api_series() {
    require_root!();
    let d = TestDaemon::start();
    d.docker_ok(&["ps", "-a"]);
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.metrics_port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    };
    for needle in [
        "berth_actor_up{actor=\"store\"} 1",
        "berth_actor_up{actor=\"graphdb\"} 1",
        "berth_actor_mailbox_depth{actor=\"store\"}",
        "berth_actor_messages_total{actor=\"store\",message=\"ListContainers\",result=\"ok\"}",
        "berth_api_requests_total{method=\"GET\",route=\"/containers/json\",status=\"200\"}",
        "berth_containers{state=\"running\"} 0",
        "process_resident_memory_bytes",
    ] {
        assert!(body.contains(needle), "{needle} missing from /metrics");
    }
    if std::path::Path::new("/usr/bin/promtool").exists() {
        let mut child = Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .output_with(body.as_bytes());
        assert!(
            child.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&child.stderr)
        );
        child.stdout.clear();
    } else {
        eprintln!("promtool not installed; exposition format not checked");
    }
}

/// `Command::output` with bytes on stdin.
trait OutputWith {
    fn output_with(&mut self, input: &[u8]) -> std::process::Output;
}

impl OutputWith for Command {
    fn output_with(&mut self, input: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[test]
fn the_python_sdk_reads_version_and_info() {
    require_root!();
    let d = TestDaemon::start();
    let text = d.python_sdk_ok(
        "print(c.version()['ApiVersion'])\nprint(c.info()['Driver'])\nprint(c.ping())\n",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1.41");
    assert!(lines[1] == "overlay2" || lines[1] == "vfs", "{text}");
    assert_eq!(lines[2], "True");
}

/// `--log-level` and `BERTH_LOG` decide what is logged: debug shows each request served,
/// info does not, and a BERTH_LOG directive overrides the flag.
#[test]
fn log_level_and_berth_log_pick_the_records() {
    require_root!();
    let served = |d: &TestDaemon| {
        d.log_records()
            .iter()
            .filter(|r| r["fields"]["message"] == "request served")
            .count()
    };
    let debug = |env: Vec<(String, String)>| {
        let mut d = TestDaemon::start_with(Opts {
            args: vec!["--log-level".into(), "debug".into()],
            env,
        });
        d.docker_ok(&["version"]);
        d.stop();
        d
    };
    let d = debug(Vec::new());
    assert!(served(&d) >= 1, "{}", d.log());
    let d = debug(vec![("BERTH_LOG".into(), "info".into())]);
    assert_eq!(served(&d), 0, "{}", d.log());
    let mut d = TestDaemon::start();
    d.docker_ok(&["version"]);
    d.stop();
    assert_eq!(served(&d), 0);
    assert!(!d.log_records().is_empty());
}

/// Options berthd cannot honour are refused before anything is made, as flags and as
/// daemon.json keys: exit 1 and one line naming the option.
#[test]
fn refused_options_exit_1_naming_the_option() {
    require_root!();
    for (flags, expect) in [
        (
            &["--selinux-enabled"][..],
            "--selinux-enabled=true is not supported by this berthd yet",
        ),
        (
            &["--default-runtime", "crun"][..],
            "specified default runtime 'crun' does not exist",
        ),
        (
            &["--add-runtime", "crun=/nonexistent/crun"][..],
            "invalid argument \"crun=/nonexistent/crun\" for \"--add-runtime\" flag: runtime crun: exec: \"/nonexistent/crun\": stat /nonexistent/crun: no such file or directory",
        ),
        (
            &["--storage-opt", "foo=bar"][..],
            "invalid argument \"foo=bar\" for \"--storage-opt\" flag: unknown option foo",
        ),
        (
            &["--ip", "::1"][..],
            "--ip=::1 is not supported by this berthd yet: berthd publishes ports on IPv4 addresses only",
        ),
        (
            &["--log-driver", "local"][..],
            "failed to set log opts: berthd does not support --log-driver local yet",
        ),
        (
            &["--log-opt", "max-size=0"][..],
            "failed to set log opts: max-size must be a positive number",
        ),
        // A root API on the network needs TLS or the explicit opt-out (root_tls.rs
        // serves it with TLS).
        (
            &["-H", "tcp://0.0.0.0:2375"][..],
            "listening on tcp://0.0.0.0:2375 without TLS gives root access on this machine",
        ),
        (
            &[
                "-H",
                "tcp://127.0.0.1:2376",
                "--tlsverify",
                "--tlscert",
                "/nonexistent/cert.pem",
                "--tlskey",
                "/nonexistent/key.pem",
            ][..],
            "could not load X509 key pair (cert: \"/nonexistent/cert.pem\", key: \"/nonexistent/key.pem\"): open /nonexistent/cert.pem: no such file or directory",
        ),
        (
            &["--group", "no-such-group-berth"][..],
            "can't create unix socket: group no-such-group-berth not found",
        ),
    ] {
        refused(flags, |_| {}, expect);
    }
    for (json, expect) in [
        (
            r#"{"selinux-enabled": true}"#,
            "selinux-enabled: true is not supported by this berthd yet",
        ),
        (
            r#"{"runtimes": {"shim": {"runtimeType": "io.containerd.runsc.v1"}}}"#,
            "runtimes: shim is not supported by this berthd yet",
        ),
        (
            r#"{"storage-opts": ["foo=bar"]}"#,
            "invalid value \"foo=bar\" for storage-opts: unknown option foo",
        ),
        (
            r#"{"ip": "::1"}"#,
            "ip: ::1 is not supported by this berthd yet",
        ),
        (
            r#"{"log-opts": {"max-file": "0"}}"#,
            "failed to set log opts: max-file cannot be less than 1",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, json).unwrap();
        let cf = format!("--config-file={}", path.display());
        refused(&[&cf], |_| {}, expect);
    }
}

/// `--dns` fills the containers' resolv.conf, `-s` picks the driver, each container's
/// state dir (its monitor's cwd) is under `--exec-root`, and the daemon's shutdown gives
/// a container that ignores SIGTERM `--shutdown-timeout` seconds, not the default 10.
#[test]
fn dns_storage_driver_exec_root_and_shutdown_timeout_take_effect() {
    require_root!();
    let mut d = TestDaemon::start_with(Opts {
        args: [
            "--dns",
            "10.9.8.7",
            "--dns",
            "10.9.8.6",
            "-s",
            "vfs",
            "--shutdown-timeout",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        ..Opts::default()
    });
    d.import_busybox();
    assert_eq!(
        d.docker_ok(&["info", "--format", "{{.Driver}}"]).trim(),
        "vfs"
    );
    assert!(d.data_root.join("vfs").is_dir());
    let resolv = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(resolv, "nameserver 10.9.8.7\nnameserver 10.9.8.6\n");
    // busybox sleep as pid 1 has no SIGTERM handler, so the kernel drops SIGTERM.
    let id = d.docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "600"]);
    let state_dir = d.exec_root.join("containers").join(id.trim());
    assert!(state_dir.is_dir(), "{} is missing", state_dir.display());
    assert!(
        !d.monitor_pids().is_empty(),
        "no monitor runs under the exec root"
    );
    let started = Instant::now();
    assert!(d.stop().success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "shutdown took {took:?}"
    );
}

/// In a network namespace of its own, on a bridge of its own: `--mtu` sets the
/// containers' MTU, `--iptables=false` sets no rule, `--ip-forward=false` leaves
/// forwarding off; the same daemon restarted with the defaults does all three.
#[test]
fn mtu_iptables_and_ip_forward_take_effect_in_a_network_namespace() {
    require_root!();
    let br = format!("bd{:08x}", rand::random::<u32>());
    let mut n = NetNs::start(
        &br,
        &[
            "-b",
            &br,
            "--mtu",
            "1400",
            "--iptables=false",
            "--ip-forward=false",
        ],
        &[
            &["ip", "link", "add", &br, "type", "bridge"],
            &["ip", "addr", "add", "10.199.121.1/24", "dev", &br],
            &["ip", "link", "set", &br, "up"],
            &["sysctl", "-qw", "net.ipv4.ip_forward=0"],
        ],
    );
    n.d().import_busybox();
    let mtu = |n: &NetNs| {
        n.d()
            .docker_ok(&["run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu"])
            .trim()
            .to_owned()
    };
    assert_eq!(mtu(&n), "1400");
    assert_eq!(
        n.ns_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );
    for table in ["nat", "filter"] {
        let rules = n.rules(table);
        assert!(
            !rules.contains(&br) && !rules.contains("10.199.121."),
            "{table}: {rules}"
        );
    }
    n.restart(&["-b", &br]);
    assert_eq!(mtu(&n), "1500");
    assert_eq!(
        n.ns_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    assert!(
        n.rules("nat").contains("10.199.121.0/24"),
        "{}",
        n.rules("nat")
    );
}
