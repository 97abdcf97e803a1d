//! Every field of a create request honoured or refused, seen from the outside: through
//! raw HTTP for each field of the table (`berth::model::fields`), through the real docker
//! CLI for the flags a user types, and inside real containers for the fields berthd
//! honours. Also a data root written by berthd before the typed models (tests/fixtures).
//! Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::model::fields::{self, Status};
use common::TestDaemon;
use serde_json::{Value, json};

/// `POST path` with a JSON body on a fresh connection: (status, body).
fn post(d: &TestDaemon, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// A raw-HTTP create for every field of the table with a non-default value: 201 for
/// what berthd does, 400 naming the field for what it does not.
#[test]
fn every_field_is_honoured_or_refused() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let oci = !common::exec_driver_args(&[]).is_empty();
    let mut wrong = Vec::new();
    let mut tried = 0;
    for f in fields::all() {
        let mut cases = Vec::new();
        if !f.sample.is_empty() {
            let accepted = matches!(
                f.status,
                Status::Honoured | Status::Stored | Status::Partial
            );
            cases.push((f.sample, accepted));
        }
        if f.status == Status::Partial && !f.not_yet_sample.is_empty() {
            cases.push((f.not_yet_sample, false));
        }
        for (sample, accepted) in cases {
            tried += 1;
            // `native` is no runtime a container may name under the oci driver
            // (`BERTH_TEST_EXEC_DRIVER=oci`).
            let oci_lacks = oci && f.path == "HostConfig.Runtime" && sample == "\"native\"";
            let accepted = accepted && !oci_lacks;
            let body = fields::sample_body(f.path, serde_json::from_str(sample).unwrap());
            let (status, reply) = post(&d, "/v1.41/containers/create", &body);
            let ok = if accepted {
                status == 201
            } else {
                let name = f.path.replace(".*", "");
                // dockerd's own refusals name the field in their words.
                let dockers = reply.contains("Invalid QoS settings")
                    || reply.contains("invalid isolation")
                    || reply.contains("Unknown runtime");
                status == 400 && (reply.contains(f.path) || reply.contains(&name) || dockers)
            };
            if !ok {
                wrong.push(format!("{} = {sample}: {status} {reply}", f.path));
            }
        }
    }
    assert!(tried > 100, "{tried}");
    assert!(
        wrong.is_empty(),
        "fields not as the table says:\n{}",
        wrong.join("\n")
    );
}

/// The flags a docker user types for what berthd does not do: exit 125 and a message
/// naming the field; values dockerd refuses get dockerd's words. (`--network-alias` is
/// refused by the CLI itself on the networks a `-b none` daemon has, and `--mac-address`
/// by the CLI against API 1.41; their fields are in `every_field_is_honoured_or_refused`
/// and `root_network::mac_address_reaches_eth0`.)
#[test]
fn the_cli_refuses_what_berthd_does_not_do() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let refused: &[(&[&str], &str)] = &[
        (
            &["--log-driver", "local"],
            "HostConfig.LogConfig (--log-driver local)",
        ),
        (
            &["--log-opt", "tag={{upper .Name}}"],
            "HostConfig.LogConfig (--log-opt tag={{upper .Name}})",
        ),
        (
            &["--log-opt", "x=1"],
            "unknown log opt 'x' for json-file log driver",
        ),
        (
            &["--cpu-rt-period", "1000000"],
            "HostConfig.CpuRealtimePeriod",
        ),
        (
            &["--cpu-rt-runtime", "950000"],
            "HostConfig.CpuRealtimeRuntime",
        ),
        (
            &["--security-opt", "label=level:s0:c100"],
            "HostConfig.SecurityOpt (--security-opt)",
        ),
        (&["--gpus", "all"], "HostConfig.DeviceRequests (--gpus)"),
        (
            &["--tmpfs", "/scratch:bogus"],
            "invalid tmpfs option \"bogus\"",
        ),
        (
            &["-v", "vol:/x", "--mount", "type=volume,target=/x"],
            "Duplicate mount point: /x",
        ),
        (
            &["--storage-opt", "size=1G"],
            "HostConfig.StorageOpt (--storage-opt)",
        ),
        (
            &["--isolation", "hyperv"],
            "invalid isolation 'hyperv' on linux",
        ),
        // dockerd's words for --ip off user-defined networks.
        (
            &["--ip", "10.199.0.9"],
            "user specified IP address is supported on user defined networks only",
        ),
        (&["--runtime", "nope"], "Unknown runtime specified nope"),
        (&["-m", "1k"], "Minimum memory limit allowed is 6MB"),
        (
            &["--cap-add", "FOO"],
            "invalid CapAdd: unknown capability: \"CAP_FOO\"",
        ),
        (&["--cpus", "64"], "Range of CPUs is from 0.01 to"),
        (
            &["--oom-score-adj", "5000"],
            "range for oom score adj is [-1000, 1000]",
        ),
    ];
    let mut wrong = Vec::new();
    for (flags, want) in refused {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let out = d.docker(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(125) || !stderr.contains(want) {
            wrong.push(format!("{flags:?}: {:?} {stderr}", out.status.code()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing was created by a refused run.
    let left = d.docker_ok(&["ps", "-aq"]);
    assert_eq!(left.trim(), "", "{left}");
}

/// The container's cgroup dir in the hierarchy of `controller` (v1) or the unified one.
fn cgroup_file(id: &str, controller: &str, file: &str) -> Option<String> {
    let candidates = [
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}")),
        PathBuf::from(format!("/sys/fs/cgroup/cpu,cpuacct/berth/{id}/{file}")),
        PathBuf::from(format!("/sys/fs/cgroup/unified/berth/{id}/{file}")),
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}/{file}")),
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
}

/// -m, --memory-swap (and its default), --cpus, --cpu-shares, --cpu-period/--cpu-quota
/// and --pids-limit reach the container's cgroup, and a pids limit stops a fork inside.
#[test]
fn resource_limits_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let run = |flags: &[&str]| -> String {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sleep", "60"]);
        d.docker_ok(&args).trim().to_owned()
    };
    let a = run(&[
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
    ]);
    let mem = cgroup_file(&a, "memory", "memory.limit_in_bytes")
        .or_else(|| cgroup_file(&a, "memory", "memory.max"));
    assert_eq!(mem.as_deref(), Some("67108864"));
    // dockerd's default: memory and swap together twice the limit.
    if let Some(memsw) = cgroup_file(&a, "memory", "memory.memsw.limit_in_bytes") {
        assert_eq!(memsw, "134217728");
    } else if let Some(swap) = cgroup_file(&a, "memory", "memory.swap.max") {
        assert_eq!(swap, "67108864");
    }
    let quota = cgroup_file(&a, "cpu", "cpu.cfs_quota_us")
        .or_else(|| cgroup_file(&a, "cpu", "cpu.max"))
        .unwrap();
    assert!(quota.starts_with("50000"), "{quota}");
    let shares =
        cgroup_file(&a, "cpu", "cpu.shares").or_else(|| cgroup_file(&a, "cpu", "cpu.weight"));
    assert!(
        matches!(shares.as_deref(), Some("512") | Some("20")),
        "{shares:?}"
    );
    assert_eq!(cgroup_file(&a, "pids", "pids.max").as_deref(), Some("50"));
    let inspect = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
        &a,
    ]);
    assert_eq!(inspect.trim(), "67108864 134217728 500000000 50");

    let b = run(&[
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "-m",
        "64m",
        "--memory-swap",
        "-1",
    ]);
    let quota = cgroup_file(&b, "cpu", "cpu.cfs_quota_us")
        .or_else(|| cgroup_file(&b, "cpu", "cpu.max"))
        .unwrap();
    assert!(quota.starts_with("25000"), "{quota}");
    if let Some(period) = cgroup_file(&b, "cpu", "cpu.cfs_period_us") {
        assert_eq!(period, "50000");
    }
    if let Some(memsw) = cgroup_file(&b, "memory", "memory.memsw.limit_in_bytes") {
        assert!(
            memsw.parse::<u64>().unwrap() > 1 << 40,
            "unlimited: {memsw}"
        );
    }
    d.docker_ok(&["rm", "-f", &a, &b]);

    // Inside: with a limit of 4 pids, the fifth process cannot be forked.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "4",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do sleep 2 & done; wait; echo done",
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("fork") || all.contains("Resource"), "{all}");
}

/// --shm-size sizes /dev/shm; ConsoleSize is the pty's size before the first resize.
#[test]
fn shm_and_console_sizes_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--shm-size",
        "32m",
        "busybox",
        "df",
        "-k",
        "/dev/shm",
    ]);
    assert!(out.contains("32768"), "{out}");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "df",
        "-k",
        "/dev/shm",
    ]);
    assert!(out.contains("65536"), "{out}");

    let (status, reply) = post(
        &d,
        "/v1.41/containers/create?name=console",
        &json!({"Image": "busybox", "Cmd": ["stty", "size"], "Tty": true,
            "HostConfig": {"NetworkMode": "none", "ConsoleSize": [30, 100]}}),
    );
    assert_eq!(status, 201, "{reply}");
    d.docker_ok(&["start", "console"]);
    assert_eq!(d.docker_ok(&["wait", "console"]).trim(), "0");
    let logs = d.docker_ok(&["logs", "console"]);
    assert_eq!(logs.trim(), "30 100");
}

/// Hostname, domain name, user, workdir, env, entrypoint, labels, read-only rootfs, stop
/// signal and stop timeout, seen from inside and by docker stop.
#[test]
fn config_fields_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run", "--rm", "--network", "none", "--hostname", "hh", "--domainname", "example.org",
        "-u", "1000:1000", "-w", "/tmp/work", "-e", "A=1", "--label", "k=v", "--read-only",
        "--entrypoint", "/bin/sh", "busybox", "-c",
        "hostname; cat /proc/sys/kernel/domainname; id -u; id -g; pwd; echo A=$A; touch /x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(
        out, "hh\nexample.org\n1000\n1000\n/tmp/work\nA=1\nread-only\n",
        "{out}"
    );
    // A bare NAME (unset on the client) is kept in the config, as dockerd keeps it.
    let id = d.docker_ok(&[
        "create",
        "--network",
        "none",
        "-l",
        "k=v",
        "-e",
        "UNSET_ON_THE_CLIENT",
        "busybox",
        "true",
    ]);
    let got = d.docker_ok(&[
        "inspect",
        "-f",
        "{{json .Config.Env}} {{.Config.Labels.k}}",
        id.trim(),
    ]);
    assert!(
        got.contains("UNSET_ON_THE_CLIENT") && got.trim().ends_with(" v"),
        "{got}"
    );

    // The stop signal reaches the process; the stop timeout bounds the wait.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--stop-signal",
        "SIGUSR1",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    std::thread::sleep(Duration::from_millis(300));
    d.docker_ok(&["stop", id]);
    assert_eq!(d.docker_ok(&["wait", id]).trim(), "7");
    assert!(d.docker_ok(&["logs", id]).contains("got-usr1"));
    // pid 1 ignores SIGTERM: only the SIGKILL after --stop-timeout (1 s, not 10) ends it.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--stop-timeout",
        "1",
        "busybox",
        "sleep",
        "60",
    ]);
    let t = Instant::now();
    d.docker_ok(&["stop", id.trim()]);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.Config.StopTimeout}}",
            id.trim()
        ])
        .trim(),
        "137 1"
    );
}

/// Host paths bind in (read-only honoured); named volumes are refused as not yet.
#[test]
fn binds_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "from-host").unwrap();
    let spec = format!("{}:/data:ro", dir.path().display());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /data/f; echo; touch /data/g 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "from-host\nread-only\n");
    let spec = format!("{}:/data", dir.path().display());
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        "busybox",
        "touch",
        "/data/g",
    ]);
    assert!(dir.path().join("g").exists());
}

/// --network none and host, and NetworkDisabled through the Python SDK.
#[test]
fn network_modes_and_network_disabled() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let links = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "ls", "/sys/class/net"]);
        d.docker_ok(&a)
    };
    assert_eq!(links(&["--network", "none"]).trim(), "lo");
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let inside = links(&["--network", "host"]);
    assert!(
        host.iter().all(|h| inside.contains(h.as_str())),
        "{inside} vs {host:?}"
    );
    let out = d.python_sdk_ok(
        "out = c.containers.run('busybox', 'ls /sys/class/net', network_disabled=True, \
         network_mode='none', remove=True)\nprint(out.decode().split())",
    );
    assert_eq!(out.trim(), "['lo']");
    let out = d.docker(&["run", "--rm", "--network", "container:x", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such container: x"),
        "{out:?}"
    );
    // A user-defined network that does not exist.
    let out = d.docker(&["run", "--rm", "--network", "mynet", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network mynet not found"),
        "{out:?}"
    );
}

/// Extracts the fixture data root (tests/fixtures/README.md) into `root`, with the
/// machine's busybox put back in its image layer.
fn unpack_fixture(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/datarootv1.tar.xz"
    );
    let st = Command::new("tar")
        .args(["-xJf", fixture, "-C"])
        .arg(root)
        .status()
        .unwrap();
    assert!(st.success());
    let mut put_back = 0;
    for e in std::fs::read_dir(root.join("overlay2")).unwrap().flatten() {
        let bin = e.path().join("diff/bin");
        if bin.join("sh").is_symlink() && !bin.join("busybox").exists() {
            std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
            put_back += 1;
        }
    }
    assert_eq!(put_back, 1);
}

/// A data root written by berthd 6dd7ba1 (format 1, records as JSON maps, at another
/// path) starts: every container and image shows as before, the records are rewritten in
/// format 2, the old containers run, and a second start finds format 2.
#[test]
fn a_data_root_of_format_1_starts_and_shows_everything() {
    require_root!();
    // The fixture's containers were made by the native driver, which `--exec-driver oci`
    // does not offer: this test is about the data root, on the driver that made it.
    let native = common::Opts {
        args: vec!["--exec-driver".into(), "native".into()],
        ..Default::default()
    };
    let mut d = TestDaemon::start_with(native.clone());
    d.stop();
    let _ = std::fs::remove_dir_all(&d.data_root);
    unpack_fixture(&d.data_root);
    assert!(!d.data_root.join("format-version").exists());
    d.restart(&native);

    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Status}}"]);
    for want in [
        "kept-created busybox Created",
        "kept-exited busybox Exited (3)",
        "kept-limits fixture:v1 Exited (0)",
        "kept-host busybox Exited (0)",
    ] {
        assert!(ps.contains(want), "{want}:\n{ps}");
    }
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("busybox:latest") && images.contains("fixture:v1"),
        "{images}"
    );
    let got = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{json .HostConfig.Binds}} {{.Config.User}} {{.Config.WorkingDir}} {{.HostConfig.LogConfig.Type}}",
        "kept-limits",
    ]);
    assert_eq!(
        got.trim(),
        "67108864 50 500000000 [\"/tmp:/host-tmp:ro\"] 1000:1000 /tmp json-file"
    );
    let labels = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.Config.Labels.fixture}} {{json .Config.Env}}",
        "kept-created",
    ]);
    assert!(
        labels.starts_with("yes ") && labels.contains("A=1"),
        "{labels}"
    );
    assert!(d.docker_ok(&["logs", "kept-exited"]).contains("out-v1"));
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("format-version"))
            .unwrap()
            .trim(),
        "2"
    );
    // The records now name this data root and run.
    let record = std::fs::read_to_string(
        std::fs::read_dir(d.data_root.join("containers"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path()
            .join("config.v2.json"),
    )
    .unwrap();
    assert!(
        record.contains(&d.data_root.display().to_string()),
        "{record}"
    );
    assert!(!record.contains("/tmp/fx/root/data"), "{record}");
    let out = d.docker(&["start", "-a", "kept-exited"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("out-v1"));
    let out = d.docker_ok(&["start", "-a", "kept-created"]);
    assert_eq!(out, "created-ok\n");
    let out = d.docker_ok(&["start", "-a", "kept-limits"]);
    assert!(out.contains("uid=1000"), "{out}");
    let out = d.docker_ok(&["run", "--rm", "--network", "none", "fixture:v1", "pwd"]);
    assert_eq!(out, "/tmp\n");

    // A second start: format 2, nothing rewritten.
    d.stop();
    d.restart(&native);
    let ps = d.docker_ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.lines().count(), 4, "{ps}");
    assert!(
        !d.log().contains("\"from\":1") || d.log().matches("records are rewritten").count() == 1
    );
}

/// A data root in a format newer than this berthd knows is refused at start.
#[test]
fn a_newer_data_root_format_is_refused() {
    require_root!();
    let mut d = TestDaemon::start();
    d.stop();
    std::fs::write(d.data_root.join("format-version"), "99\n").unwrap();
    let out = Command::new(common::berthd_bin())
        .args(d.base_args())
        .args(["-b", "none"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("berthd: data root") && last.contains("format 99"),
        "{err}"
    );
}
