//! The process settings of a container, seen from inside real containers through the real
//! docker CLI: users and added groups, ulimits (and the daemon's --default-ulimit),
//! sysctls, the OOM score, --init, and the PID, IPC and UTS namespaces shared with the
//! host or another container. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Opts, TestDaemon};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A run that must fail before the container starts: exit 125 and `want` in the error.
fn refused(d: &TestDaemon, args: &[&str], want: &str) {
    let out = d.docker(args);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

/// `Max open files`-style rows of /proc/<pid>/limits: (soft, hard) of the row `name`.
fn limits_row(limits: &str, name: &str) -> (String, String) {
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
    let f: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (f[0].to_owned(), f[1].to_owned())
}

/// Whether berthd (pid `pid`) holds CAP_SYS_RESOURCE.
fn has_cap_sys_resource(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    eff & (1 << 24) != 0
}

/// --ulimit sets soft and hard limits inside (every name dockerd knows is accepted); a
/// hard limit above berthd's own is refused with a message naming it when berthd may not
/// raise hard limits; --default-ulimit fills the names a container leaves.
#[test]
fn ulimits_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=512:1024",
        "--ulimit",
        "nproc=300:400",
        "--ulimit",
        "core=0:0",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; cat /proc/self/limits",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("512"), "{out}");
    assert_eq!(lines.next(), Some("1024"), "{out}");
    assert_eq!(
        limits_row(&out, "Max processes"),
        ("300".into(), "400".into())
    );
    assert_eq!(
        limits_row(&out, "Max core file size"),
        ("0".into(), "0".into())
    );

    // Every name, each at berthd's own values (which the init may always set).
    let own = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let rows = [
        ("core", "Max core file size"),
        ("cpu", "Max cpu time"),
        ("data", "Max data size"),
        ("fsize", "Max file size"),
        ("locks", "Max file locks"),
        ("memlock", "Max locked memory"),
        ("msgqueue", "Max msgqueue size"),
        ("nice", "Max nice priority"),
        ("nofile", "Max open files"),
        ("nproc", "Max processes"),
        ("rss", "Max resident set"),
        ("rtprio", "Max realtime priority"),
        ("rttime", "Max realtime timeout"),
        ("sigpending", "Max pending signals"),
        ("stack", "Max stack size"),
    ];
    let mut args: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        "--network".into(),
        "none".into(),
    ];
    let num = |v: &str| {
        if v == "unlimited" {
            "-1".to_owned()
        } else {
            v.to_owned()
        }
    };
    for (name, row) in rows {
        let (soft, hard) = limits_row(&own, row);
        args.push("--ulimit".into());
        args.push(format!("{name}={}:{}", num(&soft), num(&hard)));
    }
    args.extend(["busybox".into(), "cat".into(), "/proc/self/limits".into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let inside = d.docker_ok(&a);
    for (_, row) in rows {
        assert_eq!(limits_row(&inside, row), limits_row(&own, row), "{row}");
    }

    // A hard limit above berthd's own.
    let (_, own_hard) = limits_row(&own, "Max open files");
    if own_hard != "unlimited" {
        let above = own_hard.parse::<u64>().unwrap() + 1;
        let flag = format!("nofile=1024:{above}");
        let args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            &flag,
            "busybox",
            "sh",
            "-c",
            "ulimit -Hn",
        ];
        if has_cap_sys_resource(d.pid()) {
            assert_eq!(d.docker_ok(&args).trim(), above.to_string());
        } else {
            refused(
                &d,
                &args,
                &format!(
                    "ulimit nofile: the hard limit {above} is above berthd's own ({own_hard}), and raising a hard limit needs CAP_SYS_RESOURCE, which berthd does not hold"
                ),
            );
        }
    }
    // dockerd's words for bad values (the CLI's own parser refuses some first).
    refused(
        &d,
        &["run", "--rm", "--ulimit", "nofile=2:1", "busybox", "true"],
        "ulimit soft limit must be less than or equal to hard limit: 2 > 1",
    );
    let ps = d.docker_ok(&["ps", "-aq"]);
    assert_eq!(ps.trim(), "", "{ps}");

    // The daemon's defaults, under a container's own.
    let d2 = TestDaemon::start_with(Opts {
        args: vec![
            "--default-ulimit".into(),
            "nofile=256:512".into(),
            "--default-ulimit".into(),
            "nproc=200:300".into(),
        ],
        ..Opts::default()
    });
    d2.import_busybox();
    let out = d2.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ]);
    assert_eq!(out, "256\n512\n200\n");
    let out = d2.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=300:400",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -u",
    ]);
    assert_eq!(out, "300\n200\n");
    // Inspect shows the container's own, as dockerd's does.
    let id = d2.docker_ok(&["create", "--network", "none", "busybox", "true"]);
    let got = d2.docker_ok(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", id.trim()]);
    assert!(matches!(got.trim(), "null" | "[]"), "{got}");
}

/// -u by name or id (looked up in the container's /etc/passwd and /etc/group, dockerd's
/// errors otherwise) and --group-add by name or gid.
#[test]
fn users_and_added_groups_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        d.docker_ok(&a)
    };
    assert_eq!(
        run(&["-u", "nobody", "busybox", "id", "-u"]).trim(),
        "65534"
    );
    let groups = run(&[
        "-u",
        "nobody",
        "--group-add",
        "root",
        "--group-add",
        "4242",
        "busybox",
        "id",
        "-G",
    ]);
    let mut g: Vec<&str> = groups.split_whitespace().collect();
    g.sort_unstable();
    g.dedup();
    assert_eq!(g, ["0", "4242", "65534"], "{groups}");
    let out = run(&["-u", "4000:nogroup", "busybox", "sh", "-c", "id -u; id -g"]);
    assert_eq!(out, "4000\n65534\n");
    for (user, want) in [
        (
            "nosuch",
            "unable to find user nosuch: no matching entries in passwd file",
        ),
        (
            "nobody:nosuch",
            "unable to find group nosuch: no matching entries in group file",
        ),
    ] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            user,
            "busybox",
            "true",
        ]);
        assert_ne!(out.status.code(), Some(0));
        assert!(
            stderr_of(&out).contains(want),
            "{user}: {}",
            stderr_of(&out)
        );
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "nosuch",
        "busybox",
        "true",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("Unable to find group nosuch"),
        "{}",
        stderr_of(&out)
    );
}

/// Namespaced sysctls are written inside the container's namespaces (the host's values
/// stay), others refused in dockerd's words; --oom-score-adj is the process's score.
#[test]
fn sysctls_and_oom_score_adj_reach_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let want_forward = if host_forward.trim() == "1" { "0" } else { "1" };
    let fwd = format!("net.ipv4.ip_forward={want_forward}");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--sysctl",
        &fwd,
        "--sysctl",
        "kernel.shmmni=1234",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "--oom-score-adj",
        "123",
        "busybox",
        "sh",
        "-c",
        "sysctl net.ipv4.ip_forward; cat /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max /proc/self/oom_score_adj",
    ]);
    assert_eq!(
        out,
        format!("net.ipv4.ip_forward = {want_forward}\n1234\n20\n123\n")
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni
    );
    let id = d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--oom-score-adj",
        "55",
        "--sysctl",
        "net.core.somaxconn=99",
        "busybox",
        "true",
    ]);
    let got = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.OomScoreAdj}} {{json .HostConfig.Sysctls}}",
        id.trim(),
    ]);
    assert_eq!(got.trim(), "55 {\"net.core.somaxconn\":\"99\"}");

    // Not namespaced: the CLI refuses it in dockerd's words, and so does berthd.
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--sysctl",
            "kernel.hostname=x",
            "busybox",
            "true",
        ],
        // The CLI 28 refuses it first ("is not allowed"), dockerd "is not whitelisted".
        "sysctl 'kernel.hostname=x' is not",
    );
    let out = d.python_sdk_ok(
        "try:\n    c.containers.create('busybox', 'true', sysctls={'vm.swappiness': '1'}, \
         network_mode='none')\nexcept docker.errors.APIError as e:\n    print(e.status_code, e.explanation)",
    );
    assert_eq!(
        out.trim(),
        "400 sysctl 'vm.swappiness=1' is not whitelisted"
    );
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "true",
        ],
        "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace",
    );
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--ipc",
            "host",
            "--sysctl",
            "kernel.shmmax=1",
            "busybox",
            "true",
        ],
        "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace",
    );
    // Lowering the score below berthd's own needs CAP_SYS_RESOURCE.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--oom-score-adj",
        "-100",
        "busybox",
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    if has_cap_sys_resource(d.pid()) {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "-100");
    } else {
        assert_ne!(out.status.code(), Some(0));
        let err = stderr_of(&out);
        assert!(
            err.contains("oom_score_adj -100 could not be set") && err.contains("CAP_SYS_RESOURCE"),
            "{err}"
        );
    }
}

/// --init: pid 1 is the reaper and the command its child; orphans that die are reaped;
/// the exit code passes through; docker stop's SIGTERM reaches the command (143). On both
/// drivers.
#[test]
fn init_reaps_zombies_and_forwards_signals() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "ps",
        "-o",
        "pid,args",
    ]);
    let pid1 = out
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or("");
    // The native driver's reaper is its init, forked; under an OCI runtime it is the
    // daemon's static docker-init (tini), bound in as dockerd does.
    let init = if oci_driver() {
        "/sbin/docker-init -- ps -o pid,args"
    } else {
        "berthd-init -- ps -o pid,args"
    };
    assert!(pid1.contains(init), "{out}");
    assert!(
        out.lines()
            .any(|l| !l.trim_start().starts_with("1 ") && l.contains("ps -o pid,args")),
        "{out}"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));

    // Orphans: the inner shell exits at once, leaving its sleeps to pid 1, which reaps
    // them when they end; no process is left a zombie.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "sh",
        "-c",
        "sh -c 'sleep 0.2 & sleep 0.3 &'; sleep 1; cat /proc/[0-9]*/stat",
    ]);
    assert!(!out.contains(") Z "), "{out}");
    assert!(
        out.lines().all(|l| !l.contains("(sleep)")),
        "the orphans are gone: {out}"
    );

    // docker stop: SIGTERM to pid 1, forwarded to the sleep, which it kills.
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--init",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = id.trim();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.docker_ok(&["stop", id]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.HostConfig.Init}}",
            id
        ])
        .trim(),
        "143 true"
    );
    // Without --init, pid 1 is the command.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(out, "cat\0/proc/1/cmdline\0");
}

fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// --pid host and container:<name>, --ipc host, none, shareable and container:<name>
/// (refused when the other is not shareable or not running), --uts host.
#[test]
fn pid_ipc_and_uts_namespaces_are_shared_as_asked() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        d.docker_ok(&a)
    };
    // --pid host sees this test's own process.
    let me = std::process::id().to_string();
    let probe = format!("test -d /proc/{me} && echo seen");
    assert_eq!(
        run(&["--pid", "host", "busybox", "sh", "-c", &probe]).trim(),
        "seen"
    );
    let probe = format!("test -d /proc/{me} && echo seen || echo hidden");
    assert_eq!(run(&["busybox", "sh", "-c", &probe]).trim(), "hidden");

    // --pid container:x sees x's processes; the record names x by id.
    let x = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "busybox",
        "sh",
        "-c",
        "echo from-donor > /dev/shm/marker; exec sleep 100",
    ]);
    let x = x.trim().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    let out = run(&[
        "--pid",
        "container:donor",
        "busybox",
        "ps",
        "-o",
        "pid,args",
    ]);
    assert!(out.contains("sleep 100"), "{out}");
    let id = d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--pid",
        "container:donor",
        "--ipc",
        "container:donor",
        "busybox",
        "true",
    ]);
    let modes = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}",
        id.trim(),
    ]);
    assert_eq!(modes.trim(), format!("container:{x} container:{x}"));
    d.docker_ok(&["rm", id.trim()]);

    // --ipc container:x shares x's IPC namespace and its /dev/shm, both ways (on both
    // drivers).
    let x_pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", &x]);
    let x_ipc = ns_of(x_pid.trim(), "ipc");
    let out = run(&[
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; cat /dev/shm/marker; echo from-joiner > /dev/shm/back",
    ]);
    assert_eq!(out, format!("{x_ipc}\nfrom-donor\n"));
    assert_eq!(
        d.docker_ok(&["exec", "donor", "cat", "/dev/shm/back"]),
        "from-joiner\n"
    );
    // A private one differs; --ipc host is the host's; --ipc none has no /dev/shm.
    let own = run(&["busybox", "readlink", "/proc/self/ns/ipc"]);
    assert_ne!(own.trim(), x_ipc);
    let host_ipc = ns_of("self", "ipc");
    let out = run(&[
        "--ipc",
        "host",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; test -d /dev/shm && echo shm",
    ]);
    assert_eq!(out, format!("{host_ipc}\nshm\n"));
    let out = run(&[
        "--ipc",
        "none",
        "busybox",
        "sh",
        "-c",
        "test -e /dev/shm && echo shm || echo no-shm",
    ]);
    assert_eq!(out.trim(), "no-shm");

    // Not shareable, and not running: dockerd's words.
    let p = d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "private",
        "busybox",
        "sleep",
        "100",
    ]);
    let p = p.trim().to_owned();
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--ipc",
            "container:private",
            "busybox",
            "true",
        ],
        &format!(
            "can't join IPC of container {p}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
        ),
    );
    d.docker_ok(&["stop", "-t", "0", "donor"]);
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--ipc",
            "container:donor",
            "busybox",
            "true",
        ],
        &format!("can't join IPC of container {x}: container {x} is not running"),
    );
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pid",
            "container:donor",
            "busybox",
            "true",
        ],
        &format!("container {x} is not running"),
    );
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pid",
            "container:nosuch",
            "busybox",
            "true",
        ],
        "cannot join PID of a non running container: nosuch",
    );

    // --uts host: the host's hostname, which the container does not change.
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        run(&["--uts", "host", "busybox", "hostname"]).trim(),
        host_name
    );
    assert_eq!(
        nix::unistd::gethostname().unwrap().into_string().unwrap(),
        host_name
    );
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--uts",
            "host",
            "--hostname",
            "x",
            "busybox",
            "true",
        ],
        "conflicting options: hostname and the UTS mode",
    );
    d.docker_ok(&["rm", "-f", "private", "donor"]);
}

/// --read-only makes no writable /tmp of its own, as dockerd (a tmpfs there is asked for
/// with --tmpfs).
#[test]
fn read_only_rootfs_has_no_writable_tmp() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/x 2>/dev/null && echo writable || echo read-only; touch /dev/shm/x && echo shm-writable",
    ]);
    assert_eq!(out, "read-only\nshm-writable\n");
}

/// The Python SDK's ulimits, group_add and sysctls reach the container.
#[test]
fn the_python_sdk_sets_ulimits_groups_and_sysctls() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "out = c.containers.run('busybox', ['sh', '-c', \
         'ulimit -n; ulimit -Hn; id -G; cat /proc/sys/net/core/somaxconn'], \
         network_mode='none', remove=True, user='nobody', group_add=['4242'], \
         ulimits=[docker.types.Ulimit(name='nofile', soft=300, hard=600)], \
         sysctls={'net.core.somaxconn': '77'})\nprint(out.decode(), end='')",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("300"), "{out}");
    assert_eq!(lines.next(), Some("600"), "{out}");
    let mut g: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    g.sort_unstable();
    assert_eq!(g, ["4242", "65534"], "{out}");
    assert_eq!(lines.next(), Some("77"), "{out}");
}

/// The runtime tests run on the oci driver too (`BERTH_TEST_EXEC_DRIVER=oci`).
fn oci_driver() -> bool {
    !common::exec_driver_args(&[]).is_empty()
}
