//! A container's security settings seen from inside real containers, through the real
//! docker CLI and the Python SDK: capabilities (Docker's default set, --cap-add,
//! --cap-drop, ALL, --privileged), seccomp (Docker's default profile, unconfined, a
//! profile file), no_new_privs (the option and the daemon flag), the masked and read-only
//! paths (systempaths=unconfined), and what berthd refuses (AppArmor profiles, SELinux
//! labels). Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use common::{Opts, TestDaemon};

/// Docker's default capability set, as `/proc/<pid>/status` prints it.
const DEFAULT_CAPS: u64 = 0xa804_25fb;

/// A field of `/proc/self/status` inside a container started with `flags`.
fn status_field(d: &TestDaemon, flags: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    let script = format!("grep '^{field}:' /proc/self/status");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let out = d.docker_ok(&args);
    out.trim()
        .strip_prefix(&format!("{field}:"))
        .unwrap_or_else(|| panic!("no {field} in {out:?}"))
        .trim()
        .to_owned()
}

fn cap_eff(d: &TestDaemon, flags: &[&str]) -> u64 {
    u64::from_str_radix(&status_field(d, flags, "CapEff"), 16).unwrap()
}

/// `sh -c script` in a container with `flags`: (exit code, stdout + stderr).
fn run_sh(d: &TestDaemon, flags: &[&str], script: &str) -> (i32, String) {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let out = d.docker(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A process's bounding set, from `/proc/<pid>/status`.
fn bounding_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap()
}

const CHOWN: u64 = 1 << 0;
const NET_ADMIN: u64 = 1 << 12;

#[test]
fn capabilities_default_drop_add_and_all() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    assert_eq!(cap_eff(&d, &[]), DEFAULT_CAPS);
    // Dropping CHOWN: the set lacks it, and chown fails.
    assert_eq!(cap_eff(&d, &["--cap-drop", "CHOWN"]), DEFAULT_CAPS & !CHOWN);
    let (code, out) = run_sh(
        &d,
        &["--cap-drop", "chown"],
        "touch /f && chown 1:1 /f && echo changed",
    );
    assert!(
        code != 0 && out.contains("Operation not permitted"),
        "{code} {out}"
    );
    let (code, out) = run_sh(&d, &[], "touch /f && chown 1:1 /f && echo changed");
    assert_eq!((code, out.trim()), (0, "changed"));
    // Adding, with and without the prefix.
    assert_eq!(
        cap_eff(&d, &["--cap-add", "NET_ADMIN"]),
        DEFAULT_CAPS | NET_ADMIN
    );
    assert_eq!(
        cap_eff(
            &d,
            &["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "CAP_CHOWN"]
        ),
        (DEFAULT_CAPS | NET_ADMIN) & !CHOWN
    );
    // ALL.
    assert_eq!(cap_eff(&d, &["--cap-drop", "ALL"]), 0);
    assert_eq!(
        cap_eff(&d, &["--cap-drop", "ALL", "--cap-add", "CHOWN"]),
        CHOWN
    );
    let bounding = bounding_of(d.pid());
    assert_eq!(cap_eff(&d, &["--cap-add", "ALL"]), bounding);
    // CapAdd and CapDrop as inspect shows them: as given.
    let id = d
        .docker_ok(&[
            "create",
            "--network",
            "none",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "busybox",
            "true",
        ])
        .trim()
        .to_owned();
    let caps = d.docker_ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}",
        &id,
    ]);
    // (The CLI sends the names with the prefix.)
    assert_eq!(caps.trim(), r#"["CAP_NET_ADMIN"] ["CAP_CHOWN"]"#);
    // A capability berthd does not hold cannot be added (this host lacks SYS_RESOURCE).
    if bounding & (1 << 24) == 0 {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-add",
            "SYS_RESOURCE",
            "busybox",
            "true",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        assert!(
            stderr.contains("CAP_SYS_RESOURCE cannot be added"),
            "{stderr}"
        );
    }
}

#[test]
fn privileged_gets_every_capability_and_device() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let bounding = bounding_of(d.pid());
    assert_eq!(cap_eff(&d, &["--privileged"]), bounding);
    // No seccomp filter, no masked or read-only paths, /sys writable, the host's devices.
    assert_eq!(status_field(&d, &["--privileged"], "Seccomp"), "0");
    let host_dev = std::fs::read_dir("/dev")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            let ft = e.file_type().unwrap();
            (ft.is_char_device() || ft.is_block_device()) && e.file_name() != "console"
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            !["null", "zero", "full", "random", "urandom", "tty", "ptmx"].contains(&n.as_str())
        });
    let script = "{ test -c /proc/timer_list && echo masked || echo open; }; grep -c ' /proc/sys ' /proc/mounts; \
                  grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; ls /dev";
    let (code, out) = run_sh(&d, &["--privileged"], script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "open", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    assert_eq!(lines[2], "rw", "{out}");
    if let Some(dev) = host_dev {
        assert!(lines[3..].contains(&dev.as_str()), "{dev} missing: {out}");
    }
    // A block device the host lets us open opens in the container too: its node is there
    // and the devices cgroup is open (this host refuses its disk to everyone; an unbound
    // loop device reads as empty).
    let disk = ["vda", "sda", "xvda", "nvme0n1", "loop0"]
        .into_iter()
        .find(|n| std::fs::File::open(format!("/dev/{n}")).is_ok());
    if let Some(disk) = disk {
        let (code, out) = run_sh(
            &d,
            &["--privileged"],
            &format!("dd if=/dev/{disk} of=/dev/null bs=512 count=1"),
        );
        assert_eq!(code, 0, "{out}");
    }
    // Inspect: dockerd leaves the path lists unset for a privileged container.
    let id = d
        .docker_ok(&[
            "create",
            "--network",
            "none",
            "--privileged",
            "busybox",
            "true",
        ])
        .trim()
        .to_owned();
    let v = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Privileged}} {{json .HostConfig.MaskedPaths}}",
        &id,
    ]);
    assert_eq!(v.trim(), "true null");
}

#[test]
fn seccomp_default_unconfined_and_custom_profile() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    assert_eq!(status_field(&d, &[], "Seccomp"), "2");
    // Docker's profile allows unshare only with CAP_SYS_ADMIN.
    let (code, out) = run_sh(&d, &[], "unshare -U true");
    assert!(
        code != 0 && out.contains("Operation not permitted"),
        "{code} {out}"
    );
    // ... and the per-capability additions let it through with it.
    let (code, out) = run_sh(
        &d,
        &["--cap-add", "SYS_ADMIN"],
        "unshare -m true && echo ok",
    );
    assert_eq!((code, out.trim()), (0, "ok"));
    assert_eq!(
        status_field(&d, &["--security-opt", "seccomp=unconfined"], "Seccomp"),
        "0"
    );
    // A profile file (the CLI sends its content) that denies mkdir.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, out) = run_sh(&d, &["--security-opt", &opt], "mkdir /newdir");
    assert!(
        code != 0 && out.contains("Operation not permitted"),
        "{code} {out}"
    );
    let (code, out) = run_sh(&d, &[], "mkdir /newdir && echo made");
    assert_eq!((code, out.trim()), (0, "made"));
    // Docker's own profile given as a file works as the default does.
    let docker_default = dir.path().join("default.json");
    std::fs::write(
        &docker_default,
        include_str!("../src/security/default.json"),
    )
    .unwrap();
    let opt = format!("seccomp={}", docker_default.display());
    assert_eq!(status_field(&d, &["--security-opt", &opt], "Seccomp"), "2");
    // A profile berthd cannot use is refused at create.
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_DANCE"}"#).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, out) = run_sh(&d, &["--security-opt", &opt], "true");
    assert_eq!(code, 125, "{out}");
    assert!(out.contains("SCMP_ACT_DANCE"), "{out}");
}

#[test]
fn no_new_privileges_from_the_option_and_the_daemon() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(&d, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );
    assert_eq!(
        status_field(
            &d,
            &["--security-opt", "no-new-privileges=true"],
            "NoNewPrivs"
        ),
        "1"
    );
    // The daemon flag sets it for every container that does not say otherwise.
    d.stop();
    d.restart(&Opts {
        args: vec!["--no-new-privileges".into()],
        ..Opts::default()
    });
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "1");
    assert_eq!(
        status_field(
            &d,
            &["--security-opt", "no-new-privileges=false"],
            "NoNewPrivs"
        ),
        "0"
    );
    let opts = d.docker_ok(&["info", "-f", "{{json .SecurityOptions}}"]);
    assert!(opts.contains("name=no-new-privileges"), "{opts}");
}

#[test]
fn systempaths_unconfined_unmasks_proc() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    // /proc/kcore where the kernel has it, and /proc/timer_list (every kernel has it):
    // masked by /dev/null; /proc/sys mounted read-only.
    let script = "for p in /proc/kcore /proc/timer_list; do \
                    if test -c $p; then echo masked; elif test -e $p; then echo open; fi; \
                  done; grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1";
    let kcore = std::path::Path::new("/proc/kcore").exists();
    let (code, out) = run_sh(&d, &[], script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let want: &[&str] = if kcore {
        &["masked", "masked", "ro"]
    } else {
        &["masked", "ro"]
    };
    assert_eq!(lines, want, "{out}");
    let (code, out) = run_sh(&d, &["--security-opt", "systempaths=unconfined"], script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let want: &[&str] = if kcore { &["open", "open"] } else { &["open"] };
    assert_eq!(lines, want, "{out}");
}

#[test]
fn apparmor_profiles_and_selinux_labels_are_refused() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    for (opt, want) in [
        ("apparmor=docker-default", "AppArmor"),
        ("label=level:s0:c100", "SELinux"),
    ] {
        let (code, out) = run_sh(&d, &["--security-opt", opt], "true");
        assert_eq!(code, 125, "{opt}: {out}");
        assert!(
            out.contains("HostConfig.SecurityOpt (--security-opt)") && out.contains(want),
            "{opt}: {out}"
        );
    }
    // What every container gets already is accepted.
    let (code, out) = run_sh(
        &d,
        &[
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "label=disable",
        ],
        "echo ok",
    );
    assert_eq!((code, out.trim()), (0, "ok"));
    // /info lists no AppArmor: the host has none applied by berthd.
    let opts = d.docker_ok(&["info", "-f", "{{json .SecurityOptions}}"]);
    assert!(!opts.contains("apparmor"), "{opts}");
    assert!(opts.contains("name=seccomp"), "{opts}");
}

#[test]
fn python_sdk_sets_cap_add_and_security_opt() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "out = c.containers.run('busybox', ['sh', '-c', 'grep -E \"^(CapEff|NoNewPrivs|Seccomp):\" /proc/self/status'], \
         cap_add=['NET_ADMIN'], cap_drop=['CHOWN'], security_opt=['no-new-privileges', 'seccomp=unconfined'], \
         network_mode='none', remove=True)\nprint(out.decode(), end='')",
    );
    let fields: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {out}"))
    };
    assert_eq!(
        u64::from_str_radix(&get("CapEff"), 16).unwrap(),
        (DEFAULT_CAPS | NET_ADMIN) & !CHOWN
    );
    assert_eq!(get("NoNewPrivs"), "1");
    assert_eq!(get("Seccomp"), "0");
}
