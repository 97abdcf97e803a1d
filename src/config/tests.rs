//! Unit tests of flag and daemon.json loading.

use std::net::IpAddr;

use super::*;

/// Where no default daemon.json exists, so that tests never read the host's.
fn no_default() -> PathBuf {
    PathBuf::from("/nonexistent/berth-test/daemon.json")
}

fn run(args: &[&str]) -> Result<Loaded, ConfigError> {
    let argv = std::iter::once("berthd")
        .chain(args.iter().copied())
        .map(OsString::from);
    load_with_default_file(argv, &no_default())
}

fn ok(args: &[&str]) -> DaemonConfig {
    match run(args) {
        Ok(Loaded::Run(c)) => c,
        Ok(Loaded::Exit(text)) => panic!("{args:?}: wanted a config, got exit text {text:?}"),
        Err(e) => panic!("{args:?}: wanted a config, got error {e}"),
    }
}

fn err(args: &[&str]) -> ConfigError {
    match run(args) {
        Ok(other) => panic!("{args:?}: wanted an error, got {other:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "error is not one line: {text:?}");
            assert_eq!(e.kind(), ErrorKind::InvalidParameter);
            e
        }
    }
}

fn exit_text(args: &[&str]) -> String {
    match run(args) {
        Ok(Loaded::Exit(text)) => text,
        other => panic!("{args:?}: wanted exit text, got {other:?}"),
    }
}

/// A daemon.json in a temp dir; the dir lives as long as the returned guard.
fn file(json: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, json).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[test]
fn no_flags_gives_defaults() {
    let c = ok(&[]);
    let d = DaemonConfig::defaults();
    assert_eq!(c.hosts, vec![HostAddr::Unix("/run/berth.sock".into())]);
    assert_eq!(c.hosts, d.hosts);
    assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
    assert_eq!(c.exec_root, PathBuf::from("/run/berth"));
    assert_eq!(c.pidfile, PathBuf::from("/run/berthd.pid"));
    assert_eq!(c.bridge, BridgeSetting::Default);
    assert_eq!(c.bip, None);
    assert_eq!(c.mtu, 0);
    assert!(c.icc && c.iptables && c.ip_forward);
    assert!(!c.live_restore);
    assert!(c.dns.is_empty());
    assert_eq!(c.storage_opts, StorageOpts { sync_layers: true });
    assert_eq!(c.storage_driver, None);
    assert_eq!(c.exec_driver, "native");
    assert_eq!(c.metrics_addr, None);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.config_file, None);
    assert_eq!(c.shutdown_timeout, 10);
}

#[test]
fn every_flag_is_read() {
    let c = ok(&[
        "-H",
        "unix:///tmp/b.sock",
        "--host=tcp://127.0.0.1:2376",
        "-H",
        "fd://",
        "--data-root",
        "/d",
        "--exec-root=/e",
        "-p",
        "/p.pid",
        "--bip",
        "10.200.0.1/24",
        "--mtu",
        "1400",
        "--icc=false",
        "--ip-forward=0",
        "--ip",
        "0.0.0.0",
        "--dns",
        "1.1.1.1",
        "--dns=8.8.8.8",
        "-s",
        "vfs",
        "--storage-opt",
        "berth.sync_layers=false",
        "--storage-opt",
        "Berth.Sync_Layers = 0",
        "--exec-driver",
        "native",
        "--selinux-enabled=false",
        "--live-restore=true",
        "--metrics-addr",
        "127.0.0.1:9323",
        "-l",
        "debug",
        "--log-format",
        "json",
        "--shutdown-timeout",
        "30",
    ]);
    assert_eq!(
        c.hosts,
        vec![
            HostAddr::Unix("/tmp/b.sock".into()),
            HostAddr::Tcp("127.0.0.1:2376".parse().unwrap()),
            HostAddr::Fd(None),
        ]
    );
    assert_eq!(c.data_root, PathBuf::from("/d"));
    assert_eq!(c.exec_root, PathBuf::from("/e"));
    assert_eq!(c.pidfile, PathBuf::from("/p.pid"));
    assert_eq!(c.bip.as_deref(), Some("10.200.0.1/24"));
    assert_eq!(c.mtu, 1400);
    assert!(!c.icc && c.iptables && !c.ip_forward);
    assert_eq!(
        c.dns,
        vec![IpAddr::from([1, 1, 1, 1]), IpAddr::from([8, 8, 8, 8])]
    );
    assert_eq!(c.storage_driver.as_deref(), Some("vfs"));
    assert!(!c.storage_opts.sync_layers);
    assert_eq!(c.exec_driver, "native");
    assert!(c.live_restore);
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.shutdown_timeout, 30);
}

#[test]
fn long_forms_of_short_flags() {
    let c = ok(&[
        "--pidfile=/x",
        "--storage-driver=overlay2",
        "--log-level=warn",
    ]);
    assert_eq!(c.pidfile, PathBuf::from("/x"));
    assert_eq!(c.storage_driver.as_deref(), Some("overlay2"));
    assert_eq!(c.log_level, "warn");
}

#[test]
fn bool_flags_take_go_forms() {
    assert!(ok(&["--live-restore"]).live_restore);
    assert!(ok(&["--live-restore=true"]).live_restore);
    assert!(ok(&["--live-restore=1"]).live_restore);
    assert!(ok(&["--live-restore=T"]).live_restore);
    assert!(!ok(&["--live-restore=false"]).live_restore);
    assert!(!ok(&["--live-restore=FALSE"]).live_restore);
    assert!(!ok(&["--iptables=f", "--icc"]).iptables);
    assert!(!ok(&["--ip-forward=False"]).ip_forward);
    let e = err(&["--icc=maybe"]);
    assert!(
        matches!(&e, ConfigError::InvalidFlag { flag: "--icc", .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "invalid argument \"maybe\" for \"--icc\" flag: expected true or false"
    );
}

#[test]
fn bool_flag_does_not_swallow_next_arg() {
    // `--icc false` must not read as --icc=false: "false" is a stray argument.
    let e = err(&["--icc", "false"]);
    assert!(
        matches!(&e, ConfigError::UnexpectedArgument { arg } if arg == "false"),
        "{e:?}"
    );
    // A following flag stays a flag.
    let c = ok(&["--live-restore", "--data-root", "/x"]);
    assert!(c.live_restore);
    assert_eq!(c.data_root, PathBuf::from("/x"));
}

#[test]
fn host_forms() {
    let hosts = |arg: &str| ok(&["--tls=false", "-H", arg]).hosts;
    assert_eq!(
        hosts("/tmp/x.sock"),
        vec![HostAddr::Unix("/tmp/x.sock".into())]
    );
    assert_eq!(
        hosts("unix://"),
        vec![HostAddr::Unix("/run/berth.sock".into())]
    );
    assert_eq!(hosts("fd://3"), vec![HostAddr::Fd(Some("3".into()))]);
    assert_eq!(
        hosts("tcp://0.0.0.0:2375"),
        vec![HostAddr::Tcp("0.0.0.0:2375".parse().unwrap())]
    );
    assert_eq!(
        hosts("tcp://127.0.0.1"),
        vec![HostAddr::Tcp("127.0.0.1:2375".parse().unwrap())]
    );
    assert_eq!(
        hosts("tcp://localhost:4243"),
        vec![HostAddr::Tcp("127.0.0.1:4243".parse().unwrap())]
    );
    assert_eq!(
        hosts("tcp://[::1]:2375"),
        vec![HostAddr::Tcp("[::1]:2375".parse().unwrap())]
    );
    assert_eq!(
        hosts("tcp://:2375"),
        vec![HostAddr::Tcp("0.0.0.0:2375".parse().unwrap())]
    );
    for bad in [
        "http://x:1",
        "tcp://host.example:x",
        "unix://relative",
        "tcp://1.2.3.4:99999",
        "",
    ] {
        let e = err(&["-H", bad]);
        assert!(
            matches!(&e, ConfigError::InvalidFlag { flag: "--host", value, .. } if value == bad),
            "{bad}: {e:?}"
        );
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
    }
}

#[test]
fn bad_values_name_their_flag() {
    for (args, flag) in [
        (&["--bip", "10.0.0.1"][..], "--bip"),
        (&["--bip", "10.0.0.300/24"][..], "--bip"),
        (&["--bip", "10.0.0.1/33"][..], "--bip"),
        (&["--bip", "10.0.0.0/24"][..], "--bip"),
        (&["--mtu", "-1"][..], "--mtu"),
        (&["--mtu", "big"][..], "--mtu"),
        (&["--ip", "1.2.3"][..], "--ip"),
        (&["--dns", "1.1.1.1", "--dns", "nope"][..], "--dns"),
        (&["--exec-driver", "lxc"][..], "--exec-driver"),
        (&["--metrics-addr", "9323"][..], "--metrics-addr"),
        (
            &["--metrics-addr", "example.com:9323"][..],
            "--metrics-addr",
        ),
        (&["-l", "verbose"][..], "--log-level"),
        (&["--log-format", "xml"][..], "--log-format"),
        (&["--shutdown-timeout", "-5"][..], "--shutdown-timeout"),
        (&["--data-root="][..], "--data-root"),
    ] {
        let e = err(args);
        assert!(
            matches!(&e, ConfigError::InvalidFlag { flag: f, .. } if *f == flag),
            "{args:?}: {e:?}"
        );
    }
}

#[test]
fn repeated_single_flags_take_the_last_value() {
    // pflag semantics: the last value wins; repeatable flags still collect every value.
    let c = ok(&[
        "--icc=false",
        "--icc",
        "--data-root=/a",
        "--data-root=/b",
        "-H",
        "/x",
        "-H",
        "/y",
    ]);
    assert!(c.icc);
    assert_eq!(c.data_root, PathBuf::from("/b"));
    assert_eq!(
        c.hosts,
        vec![HostAddr::Unix("/x".into()), HostAddr::Unix("/y".into())]
    );
}

#[test]
fn bridge_none_and_existing() {
    assert_eq!(ok(&["-b", "none"]).bridge, BridgeSetting::None);
    assert_eq!(
        ok(&["--bridge=br-ops"]).bridge,
        BridgeSetting::Existing("br-ops".into())
    );
}

#[test]
fn cross_rules() {
    let e = err(&["-b", "br0", "--bip", "10.1.0.1/24"]);
    assert!(matches!(e, ConfigError::BridgeAndBip));
    assert_eq!(
        e.to_string(),
        "You specified -b & --bip, mutually exclusive options. Please specify only one"
    );
    let e = err(&["--iptables=false", "--icc=false"]);
    assert!(matches!(e, ConfigError::IccWithoutIptables));
    assert_eq!(
        e.to_string(),
        "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true."
    );
    // One from the file and one from a flag still conflict: the rule is on the result.
    let (_dir, path) = file(r#"{"iptables": false}"#);
    assert!(matches!(
        err(&["--config-file", &path, "--icc=false"]),
        ConfigError::IccWithoutIptables
    ));
    let (_dir, path) = file(r#"{"bridge": "br0"}"#);
    assert!(matches!(
        err(&["--config-file", &path, "--bip=10.1.0.1/24"]),
        ConfigError::BridgeAndBip
    ));
    // Either one alone is fine.
    assert!(!ok(&["--iptables=false"]).iptables);
    assert!(!ok(&["--icc=false"]).icc);
}

#[test]
fn unknown_flag_is_one_line() {
    let e = err(&["--foo"]);
    assert!(
        matches!(&e, ConfigError::UnknownFlag { flag } if flag == "--foo"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "unknown flag: --foo");
    assert_eq!(err(&["--foo=bar"]).to_string(), "unknown flag: --foo");
    assert_eq!(err(&["-Z"]).to_string(), "unknown flag: -Z");
    // A flag missing its value is condensed to one line too.
    let e = err(&["--data-root"]);
    assert!(matches!(e, ConfigError::Usage { .. }), "{e:?}");
    assert!(e.to_string().contains("--data-root"), "{e}");
    assert!(!e.to_string().starts_with("error:"), "{e}");
}

#[test]
fn help_and_version_exit() {
    let help = exit_text(&["--help"]);
    assert!(help.contains("--data-root"), "{help}");
    assert!(help.contains("--config-file"), "{help}");
    assert!(help.contains("Usage: berthd"), "{help}");
    assert_eq!(exit_text(&["-h"]), help);
    let version = format!("berthd version {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(exit_text(&["--version"]), version);
    assert_eq!(exit_text(&["-v"]), version);
}

#[test]
fn file_alone() {
    let (_dir, path) = file(
        r#"{
            "hosts": ["unix:///tmp/f.sock", "tcp://127.0.0.1:2375"],
            "data-root": "/fd",
            "exec-root": "/fe",
            "pidfile": "/fp.pid",
            "bip": "10.9.0.1/16",
            "mtu": 9000,
            "icc": false,
            "iptables": true,
            "ip-forward": false,
            "ip": "0.0.0.0",
            "dns": ["9.9.9.9"],
            "storage-driver": "vfs",
            "storage-opts": ["berth.sync_layers=false"],
            "exec-driver": "native",
            "selinux-enabled": false,
            "live-restore": true,
            "metrics-addr": "127.0.0.1:9323",
            "log-level": "error",
            "log-format": "json",
            "shutdown-timeout": 3
        }"#,
    );
    let c = ok(&["--config-file", &path]);
    assert_eq!(
        c.hosts,
        vec![
            HostAddr::Unix("/tmp/f.sock".into()),
            HostAddr::Tcp("127.0.0.1:2375".parse().unwrap())
        ]
    );
    assert_eq!(c.data_root, PathBuf::from("/fd"));
    assert_eq!(c.exec_root, PathBuf::from("/fe"));
    assert_eq!(c.pidfile, PathBuf::from("/fp.pid"));
    assert_eq!(c.bip.as_deref(), Some("10.9.0.1/16"));
    assert_eq!(c.mtu, 9000);
    assert!(!c.icc && c.iptables && !c.ip_forward);
    assert_eq!(c.dns, vec![IpAddr::from([9, 9, 9, 9])]);
    assert_eq!(c.storage_driver.as_deref(), Some("vfs"));
    assert!(!c.storage_opts.sync_layers);
    assert_eq!(c.exec_driver, "native");
    assert!(c.live_restore);
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
    assert_eq!(c.log_level, "error");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.shutdown_timeout, 3);
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
}

#[test]
fn flags_and_file_merge_when_keys_differ() {
    let (_dir, path) = file(r#"{"data-root": "/from-file", "bridge": "none"}"#);
    let c = ok(&[
        "--config-file",
        &path,
        "--exec-root",
        "/from-flag",
        "-l",
        "debug",
    ]);
    assert_eq!(c.data_root, PathBuf::from("/from-file"));
    assert_eq!(c.exec_root, PathBuf::from("/from-flag"));
    assert_eq!(c.bridge, BridgeSetting::None);
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.pidfile, PathBuf::from("/run/berthd.pid"));
}

#[test]
fn key_in_flag_and_file_is_refused() {
    let (_dir, path) = file(r#"{"data-root": "/b"}"#);
    let e = err(&["--config-file", &path, "--data-root", "/a"]);
    assert_eq!(
        e.to_string(),
        format!(
            "unable to configure the berth daemon with file {path}: the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /a, from file: /b)"
        )
    );
    // Every conflict, sorted by key, with lists, bools and numbers as dockerd prints them.
    let (_dir, path) = file(
        r#"{"mtu": 1400, "hosts": ["unix:///b.sock"], "live-restore": true, "data-root": "/b"}"#,
    );
    let e = err(&[
        "--config-file",
        &path,
        "--mtu=1500",
        "--live-restore",
        "-H",
        "unix:///a.sock",
        "-H",
        "fd://",
        "--data-root=/a",
    ]);
    let ConfigError::File {
        problem: FileProblem::Conflicts { conflicts },
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        conflicts,
        &[
            "data-root: (from flag: /a, from file: /b)",
            "hosts: (from flag: [unix:///a.sock fd://], from file: [unix:///b.sock])",
            "live-restore: (from flag: true, from file: true)",
            "mtu: (from flag: 1500, from file: 1400)",
        ]
    );
    assert!(e.to_string().contains(
        "data-root: (from flag: /a, from file: /b), hosts: (from flag: [unix:///a.sock fd://], from file: [unix:///b.sock]), live-restore"
    ));
    // The repeatable flags use the file's plural key names.
    let (_dir, path) = file(r#"{"storage-opts": ["berth.sync_layers=1"], "dns": ["1.1.1.1"]}"#);
    let e = err(&[
        "--config-file",
        &path,
        "--storage-opt=berth.sync_layers=0",
        "--dns=8.8.8.8",
    ]);
    assert!(
        e.to_string().ends_with(
            "dns: (from flag: [8.8.8.8], from file: [1.1.1.1]), storage-opts: (from flag: [berth.sync_layers=0], from file: [berth.sync_layers=1])"
        ),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let (_dir, path) = file(r#"{"foo": 1, "data-root": "/x", "bar": true}"#);
    let e = err(&["--config-file", &path]);
    assert_eq!(
        e.to_string(),
        format!(
            "unable to configure the berth daemon with file {path}: the following directives don't match any configuration option: bar, foo"
        )
    );
    // The flag spelling of a plural key is not a file key.
    let (_dir, path) = file(r#"{"storage-opt": ["a"]}"#);
    assert!(matches!(
        err(&["--config-file", &path]),
        ConfigError::File {
            problem: FileProblem::UnknownKeys { .. },
            ..
        }
    ));
}

#[test]
fn bad_json_names_file_and_position() {
    let (_dir, path) = file("{\n  \"data-root\": \"/x\",\n  oops\n}\n");
    let e = err(&["--config-file", &path]);
    let ConfigError::File {
        path: p,
        problem: FileProblem::Syntax { line, column, .. },
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(p, &PathBuf::from(&path));
    assert_eq!((*line, *column), (3, 3));
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "unable to configure the berth daemon with file {path}: invalid JSON at line 3 column 3: "
        )),
        "{text}"
    );
    let (_dir, path) = file("[1, 2]");
    assert!(matches!(
        err(&["--config-file", &path]),
        ConfigError::File {
            problem: FileProblem::NotObject,
            ..
        }
    ));
}

#[test]
fn wrong_type_names_the_key() {
    for (json, key) in [
        (r#"{"mtu": "1500"}"#, "mtu"),
        (r#"{"mtu": -1}"#, "mtu"),
        (r#"{"icc": "false"}"#, "icc"),
        (r#"{"hosts": "unix:///x"}"#, "hosts"),
        (r#"{"data-root": 5}"#, "data-root"),
        (r#"{"shutdown-timeout": 1.5}"#, "shutdown-timeout"),
    ] {
        let (_dir, path) = file(json);
        let e = err(&["--config-file", &path]);
        assert!(
            matches!(&e, ConfigError::File { problem: FileProblem::WrongType { key: k, .. }, .. } if *k == key),
            "{json}: {e:?}"
        );
        assert!(
            e.to_string().contains(&format!("invalid type for {key}: ")),
            "{e}"
        );
    }
}

#[test]
fn bad_file_values_name_the_key() {
    for (json, key) in [
        (r#"{"hosts": ["ftp://x"]}"#, "hosts"),
        (r#"{"bip": "10.0.0.1"}"#, "bip"),
        (r#"{"log-level": "loud"}"#, "log-level"),
        (r#"{"exec-driver": "lxc"}"#, "exec-driver"),
        (r#"{"metrics-addr": "nowhere"}"#, "metrics-addr"),
        (r#"{"dns": ["x"]}"#, "dns"),
    ] {
        let (_dir, path) = file(json);
        let e = err(&["--config-file", &path]);
        assert!(
            matches!(&e, ConfigError::File { problem: FileProblem::InvalidValue { key: k, .. }, .. } if *k == key),
            "{json}: {e:?}"
        );
    }
}

#[test]
fn missing_explicit_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    let path = path.to_str().unwrap();
    let e = err(&["--config-file", path]);
    assert_eq!(
        e.to_string(),
        format!(
            "unable to configure the berth daemon with file {path}: open {path}: no such file or directory"
        )
    );
}

#[test]
fn default_file_is_read_when_present_and_skipped_when_absent() {
    // Absent: defaults, no config_file.
    assert_eq!(ok(&[]).config_file, None);
    // Present: read.
    let (_dir, path) = file(r#"{"log-level": "warn"}"#);
    let argv = ["berthd"].map(OsString::from);
    let Ok(Loaded::Run(c)) = load_with_default_file(argv, Path::new(&path)) else {
        panic!("default file not loaded")
    };
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
    // Present but broken: an error even though it was not named.
    let (_dir, path) = file("{");
    let argv = ["berthd"].map(OsString::from);
    assert!(matches!(
        load_with_default_file(argv, Path::new(&path)),
        Err(ConfigError::File { .. })
    ));
}

#[test]
fn empty_file_is_no_configuration() {
    let (_dir, path) = file("  \n");
    let c = ok(&["--config-file", &path]);
    assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
    assert_eq!(c.config_file, None);
    let (_dir, path) = file("{}");
    assert_eq!(
        ok(&["--config-file", &path]).config_file,
        Some(PathBuf::from(&path))
    );
}

#[test]
fn example_daemon_json_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/daemon.json");
    let c = ok(&["--config-file", path]);
    assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
    assert!(!c.live_restore);
}

#[test]
fn selinux_enabled_is_refused_unless_false() {
    for args in [
        &["--selinux-enabled"][..],
        &["--selinux-enabled=true"][..],
        &["--selinux-enabled=1"][..],
    ] {
        let e = err(args);
        assert!(
            matches!(
                &e,
                ConfigError::UnsupportedFlag {
                    flag: "--selinux-enabled",
                    ..
                }
            ),
            "{args:?}: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            "--selinux-enabled=true is not supported by this berthd yet: berthd applies no SELinux labels"
        );
    }
    ok(&["--selinux-enabled=false"]);
    ok(&["--selinux-enabled=0"]);
    let e = err(&["--selinux-enabled=yes"]);
    assert!(matches!(e, ConfigError::InvalidFlag { .. }), "{e:?}");
}

#[test]
fn exec_driver_is_native_or_oci_with_its_runtimes() {
    use std::os::unix::fs::PermissionsExt;
    let c = ok(&["--exec-driver", "native"]);
    assert_eq!(
        (c.exec_driver.as_str(), c.default_runtime_name()),
        ("native", "native")
    );
    assert!(matches!(
        err(&["--exec-driver", "lxc"]),
        ConfigError::InvalidFlag {
            flag: "--exec-driver",
            ..
        }
    ));
    // oci: runc, from PATH or where --add-runtime says; native is then not offered.
    let t = tempfile::tempdir().unwrap();
    let runc = t.path().join("runc");
    std::fs::write(&runc, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let add = format!("runc={}", runc.display());
    let c = ok(&["--exec-driver=oci", "--add-runtime", &add]);
    assert_eq!(c.default_runtime_name(), "runc");
    assert_eq!(c.runtimes["runc"].binary, runc);
    assert_eq!(c.runtime_names(), ["runc"]);
    // --add-runtime alone adds a runtime beside native; --default-runtime picks it.
    let c = ok(&["--add-runtime", &add, "--default-runtime", "runc"]);
    assert_eq!(c.runtime_names(), ["native", "runc"]);
    assert_eq!(c.default_runtime_name(), "runc");
    let e = err(&["--default-runtime", "crun"]);
    assert_eq!(
        e.to_string(),
        "specified default runtime 'crun' does not exist"
    );
    let e = err(&["--add-runtime", "native=/bin/true"]);
    assert_eq!(
        e.to_string(),
        "invalid argument \"native=/bin/true\" for \"--add-runtime\" flag: runtime name 'native' is reserved"
    );
    let e = err(&[
        "--exec-driver=oci",
        "--add-runtime",
        &add,
        "--default-runtime=native",
    ]);
    assert!(matches!(e, ConfigError::NativeWithOciDriver), "{e:?}");
    // The same from daemon.json, and a flag and the file together conflict.
    let json = format!(
        r#"{{"exec-driver": "oci", "runtimes": {{"runc": {{"path": "{}", "runtimeArgs": ["--debug"]}}}}}}"#,
        runc.display()
    );
    let (_dir, path) = file(&json);
    let c = ok(&["--config-file", &path]);
    assert_eq!(c.runtimes["runc"].args, ["--debug"]);
    assert_eq!(c.default_runtime_name(), "runc");
    let e = err(&["--config-file", &path, "--add-runtime", &add]);
    assert!(e.to_string().contains("runtimes: (from flag: ["), "{e}");
}

#[test]
fn ip_is_the_default_address_of_published_ports_ipv4_only() {
    for ip in ["::", "::1"] {
        let e = err(&["--ip", ip]);
        assert!(
            matches!(&e, ConfigError::UnsupportedFlag { flag: "--ip", value, .. } if value == ip),
            "{ip}: {e:?}"
        );
        assert!(e.to_string().contains("IPv4 addresses only"), "{e}");
    }
    assert_eq!(
        ok(&["--ip=127.0.0.1"]).default_bind_ip,
        Some(std::net::Ipv4Addr::LOCALHOST)
    );
    assert!(ok(&[]).default_bind_ip.is_none_or(|ip| ip.is_unspecified()));
    assert!(err(&["--ip", "bogus"]).to_string().contains("--ip"));
}

#[test]
fn storage_opts_are_checked() {
    assert!(
        ok(&["--storage-opt", "berth.sync_layers=true"])
            .storage_opts
            .sync_layers
    );
    assert!(
        !ok(&["--storage-opt", "berth.sync_layers=false"])
            .storage_opts
            .sync_layers
    );
    assert!(
        !ok(&[
            "--storage-opt",
            "berth.sync_layers=true",
            "--storage-opt",
            "berth.sync_layers=F"
        ])
        .storage_opts
        .sync_layers
    );
    assert_eq!(
        err(&["--storage-opt", "foo=bar"]).to_string(),
        "invalid argument \"foo=bar\" for \"--storage-opt\" flag: unknown option foo"
    );
    assert_eq!(
        err(&["--storage-opt", "nokv"]).to_string(),
        "invalid argument \"nokv\" for \"--storage-opt\" flag: Unable to parse key/value option: nokv"
    );
    assert_eq!(
        err(&["--storage-opt", "berth.sync_layers=maybe"]).to_string(),
        "invalid argument \"berth.sync_layers=maybe\" for \"--storage-opt\" flag: berth.sync_layers: expected true or false"
    );
    // One bad value among good ones is named.
    let e = err(&[
        "--storage-opt",
        "berth.sync_layers=false",
        "--storage-opt",
        "x=1",
    ]);
    assert!(
        matches!(&e, ConfigError::InvalidFlag { flag: "--storage-opt", value, .. } if value == "x=1"),
        "{e:?}"
    );
    // dockerd's own driver options are valid there, but berthd has none of them.
    let e = err(&["--storage-opt", "overlay2.size=10G"]);
    assert!(matches!(e, ConfigError::UnsupportedFlag { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "--storage-opt=overlay2.size=10G is not supported by this berthd yet: the only storage option is berth.sync_layers"
    );
}

#[test]
fn storage_driver_names_are_checked() {
    assert_eq!(ok(&["-s", "vfs"]).storage_driver.as_deref(), Some("vfs"));
    assert_eq!(ok(&["-s", ""]).storage_driver, None);
    let e = err(&["-s", "zfs"]);
    assert_eq!(
        e.to_string(),
        "invalid argument \"zfs\" for \"--storage-driver\" flag: unknown storage driver: berthd has overlay2 and vfs"
    );
    let (_dir, path) = file(r#"{"storage-driver": "devicemapper"}"#);
    assert!(matches!(
        err(&["--config-file", &path]),
        ConfigError::File {
            problem: FileProblem::InvalidValue {
                key: "storage-driver",
                ..
            },
            ..
        }
    ));
}

#[test]
fn refused_values_in_daemon_json_name_the_key() {
    for (json, key, text) in [
        (
            r#"{"selinux-enabled": true}"#,
            "selinux-enabled",
            "selinux-enabled: true is not supported by this berthd yet: berthd applies no SELinux labels",
        ),
        (
            r#"{"ip": "::1"}"#,
            "ip",
            "ip: ::1 is not supported by this berthd yet: ",
        ),
        (
            r#"{"storage-opts": ["overlay2.override_kernel_check=1"]}"#,
            "storage-opts",
            "storage-opts: overlay2.override_kernel_check=1 is not supported by this berthd yet: ",
        ),
    ] {
        let (_dir, path) = file(json);
        let e = err(&["--config-file", &path]);
        assert!(
            matches!(&e, ConfigError::File { problem: FileProblem::Unsupported { key: k, .. }, .. } if *k == key),
            "{json}: {e:?}"
        );
        assert!(
            e.to_string().starts_with(&format!(
                "unable to configure the berth daemon with file {path}: {text}"
            )),
            "{e}"
        );
    }
    let (_dir, path) = file(r#"{"storage-opts": ["foo=bar"]}"#);
    assert_eq!(
        err(&["--config-file", &path]).to_string(),
        format!(
            "unable to configure the berth daemon with file {path}: invalid value \"foo=bar\" for storage-opts: unknown option foo"
        )
    );
    // The defaults, written out, are accepted.
    let (_dir, path) = file(
        r#"{"selinux-enabled": false, "exec-driver": "native", "ip": "0.0.0.0", "storage-opts": []}"#,
    );
    ok(&["--config-file", &path]);
}

#[test]
fn every_default_is_valid() {
    for o in OPTIONS {
        let mut c = DaemonConfig::default();
        if let Err(e) = apply_default(o, &mut c) {
            panic!("{}: the declared default does not parse: {e}", o.flag);
        }
    }
    // defaults() and a load with nothing given agree.
    let d = DaemonConfig::defaults();
    assert_eq!(format!("{d:?}"), format!("{:?}", ok(&[])));
}

#[test]
fn the_declaration_is_consistent() {
    command().debug_assert();
    let mut flags = std::collections::BTreeSet::new();
    let mut keys = std::collections::BTreeSet::new();
    let mut shorts = std::collections::BTreeSet::new();
    for o in OPTIONS {
        assert!(o.flag.starts_with("--") && o.long().len() > 1, "{}", o.flag);
        assert!(flags.insert(o.flag), "{} declared twice", o.flag);
        if let Some(k) = o.key {
            assert!(keys.insert(k), "key {k} declared twice");
            // A list's key is a plural of the flag (dockerd's names); the rest match it.
            if o.form != Form::List {
                assert_eq!(k, o.long(), "{}", o.flag);
            }
        }
        if let Some(s) = o.short {
            assert!(shorts.insert(s), "-{s} declared twice");
        }
    }
}

/// The `## Daemon flags and daemon.json keys` section of docs/api-fields.md: one row per
/// option of [`OPTIONS`] with the same key and status, and notes naming tests that exist.
#[test]
fn docs_table_matches_the_declaration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/api-fields.md")).unwrap();
    let heading = "\n## Daemon flags and daemon.json keys\n";
    let start = doc
        .find(heading)
        .expect("docs/api-fields.md has no daemon section")
        + heading.len();
    let section = &doc[start..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    assert_eq!(
        lines.next().map(str::trim_end),
        Some("| flag | daemon.json key | status | notes |")
    );
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        if cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            continue;
        }
        assert_eq!(cells.len(), 4, "{line}");
        assert!(
            rows.insert(cells[0].clone(), cells).is_none(),
            "two rows for {line}"
        );
    }
    let sources = rust_sources(root);
    for o in OPTIONS {
        let row = rows
            .remove(&format!("`{}`", o.flag))
            .unwrap_or_else(|| panic!("docs/api-fields.md has no row for `{}`", o.flag));
        let key = o.key.map_or("-".to_owned(), |k| format!("`{k}`"));
        assert_eq!(row[1], key, "{}: key", o.flag);
        assert_eq!(row[2], o.status.as_str(), "{}: status", o.flag);
        let tests: Vec<&str> = row[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.contains("::"))
            .collect();
        assert!(!tests.is_empty(), "{}: the notes name no test", o.flag);
        for t in tests {
            let name = t.rsplit("::").next().unwrap_or(t);
            let decl = format!("fn {name}(");
            assert!(
                sources.iter().any(|s| s.contains(&decl)),
                "{}: the notes name {t}, which does not exist",
                o.flag
            );
        }
    }
    assert!(
        rows.is_empty(),
        "docs/api-fields.md has rows for options berthd does not declare: {:?}",
        rows.keys().collect::<Vec<_>>()
    );
}

#[test]
fn no_new_privileges_is_read_from_flag_and_file() {
    assert!(!ok(&[]).no_new_privileges);
    assert!(ok(&["--no-new-privileges"]).no_new_privileges);
    assert!(ok(&["--no-new-privileges=true"]).no_new_privileges);
    assert!(!ok(&["--no-new-privileges=false"]).no_new_privileges);
    let e = err(&["--no-new-privileges=maybe"]);
    assert!(e.to_string().contains("--no-new-privileges"), "{e}");
    let (_d, path) = file(r#"{"no-new-privileges": true}"#);
    assert!(ok(&["--config-file", &path]).no_new_privileges);
    let (_d2, path2) = file(r#"{"no-new-privileges": "yes"}"#);
    let e = err(&["--config-file", &path2]);
    assert!(e.to_string().contains("no-new-privileges"), "{e}");
}

/// The text of every .rs file under src/ and tests/.
fn rust_sources(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.join("src"), root.join("tests")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

/// `--default-ulimit` as dockerd parses it (repeatable, the last of a name wins), and
/// daemon.json's `default-ulimits` in dockerd's shape; bad names and values refused.
#[test]
fn default_ulimits_flag_and_file() {
    use crate::model::ulimit::Ulimit;
    let c = ok(&[
        "--default-ulimit",
        "nofile=512:1024",
        "--default-ulimit",
        "nproc=100",
        "--default-ulimit",
        "nofile=256:1024",
    ]);
    assert_eq!(
        c.default_ulimits,
        vec![
            Ulimit {
                name: "nproc".into(),
                soft: 100,
                hard: 100
            },
            Ulimit {
                name: "nofile".into(),
                soft: 256,
                hard: 1024
            },
        ]
    );
    assert!(ok(&[]).default_ulimits.is_empty());
    let e = err(&["--default-ulimit", "bogus=1"]).to_string();
    assert_eq!(
        e,
        "invalid argument \"bogus=1\" for \"--default-ulimit\" flag: invalid ulimit type: bogus"
    );
    let e = err(&["--default-ulimit", "nofile=2:1"]).to_string();
    assert!(e.contains("ulimit soft limit must be less than or equal to hard limit: 2 > 1"));

    let (_dir, path) =
        file(r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}}}"#);
    let c = ok(&["--config-file", &path]);
    assert_eq!(
        c.default_ulimits,
        vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048
        }]
    );
    let (_dir, path) = file(r#"{"default-ulimits": {"nofiles": {"Soft": 1, "Hard": 1}}}"#);
    let e = err(&["--config-file", &path]).to_string();
    assert!(e.contains("invalid ulimit type: nofiles"), "{e}");
    let (_dir, path) = file(r#"{"default-ulimits": ["nofile=1:1"]}"#);
    let e = err(&["--config-file", &path]).to_string();
    assert!(e.contains("invalid type for default-ulimits"), "{e}");
}

#[test]
fn registries_from_flags_and_file() {
    let c = ok(&[
        "--insecure-registry",
        "10.0.0.0/8",
        "--insecure-registry",
        "reg.example:5000",
        "--registry-mirror",
        "http://127.0.0.1:5000/",
    ]);
    assert_eq!(c.insecure_registries, ["10.0.0.0/8", "reg.example:5000"]);
    assert_eq!(c.registry_mirrors, ["http://127.0.0.1:5000"]);
    let (_dir, path) = file(
        r#"{"insecure-registries": ["192.168.0.0/16"], "registry-mirrors": ["https://mirror.example"]}"#,
    );
    let c = ok(&["--config-file", &path]);
    assert_eq!(c.insecure_registries, ["192.168.0.0/16"]);
    assert_eq!(c.registry_mirrors, ["https://mirror.example"]);
    let c = ok(&[]);
    assert!(c.insecure_registries.is_empty() && c.registry_mirrors.is_empty());
    let e = err(&["--registry-mirror", "127.0.0.1:5000"]).to_string();
    assert!(
        e.contains("--registry-mirror") && e.contains("http://"),
        "{e}"
    );
    let e = err(&["--insecure-registry", "10.0.0.0/40"]).to_string();
    assert!(e.contains("--insecure-registry"), "{e}");
}

/// `--log-driver` and `--log-opt` from flags and daemon.json (`log-driver`, `log-opts`,
/// an object), checked together at start in dockerd's words.
#[test]
fn log_driver_and_opts_from_flags_and_file() {
    let c = ok(&[]);
    assert_eq!(c.log_driver, "json-file");
    assert!(c.log_opts.is_empty());
    let c = ok(&[
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "max-size=1m",
    ]);
    assert_eq!(
        c.log_opts,
        vec![
            ("max-file".to_owned(), "3".to_owned()),
            ("max-size".to_owned(), "1m".to_owned())
        ]
    );
    assert_eq!(ok(&["--log-driver", "none"]).log_driver, "none");
    let (_dir, path) =
        file(r#"{"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}"#);
    let c = ok(&["--config-file", &path]);
    assert_eq!(c.log_driver, "json-file");
    assert_eq!(c.log_opts.len(), 2);
    assert_eq!(
        err(&["--log-opt", "max-file=0"]).to_string(),
        "failed to set log opts: max-file cannot be less than 1"
    );
    assert_eq!(
        err(&["--log-opt", "x=1"]).to_string(),
        "failed to set log opts: unknown log opt 'x' for json-file log driver"
    );
    assert_eq!(
        err(&["--log-driver", "local"]).to_string(),
        "failed to set log opts: berthd does not support --log-driver local yet"
    );
    assert_eq!(
        err(&["--log-driver", "nosuch"]).to_string(),
        "failed to set log opts: logger: no log driver named 'nosuch' is registered"
    );
    assert!(
        err(&["--log-opt", "novalue"])
            .to_string()
            .contains("--log-opt")
    );
    let (_dir, path) = file(r#"{"log-opts": {"max-size": 10}}"#);
    assert!(
        err(&["--config-file", &path])
            .to_string()
            .contains("log-opts")
    );
}

/// A non-loopback TCP address needs TLS (`--tls`, `--tlsverify`) or the explicit
/// `--tls=false`; loopback does not. TLS is on with `--tls` or any `--tlsverify`.
#[test]
fn tcp_without_tls_needs_the_explicit_opt_out() {
    let e = err(&["-H", "tcp://0.0.0.0:2375"]);
    assert!(
        matches!(e, ConfigError::TcpWithoutTls { addr } if addr.port() == 2375),
        "{e:?}"
    );
    assert!(ok(&["-H", "tcp://127.0.0.1:2375"]).tls_files().is_none());
    assert!(
        ok(&["--tls=false", "-H", "tcp://0.0.0.0:2375"])
            .tls_files()
            .is_none()
    );
    let c = ok(&[
        "-H",
        "tcp://0.0.0.0:2376",
        "--tlsverify",
        "--tlscacert=/c/ca.pem",
        "--tlscert=/c/cert.pem",
        "--tlskey=/c/key.pem",
    ]);
    let files = c.tls_files().unwrap();
    assert!(files.verify);
    assert_eq!(files.ca, PathBuf::from("/c/ca.pem"));
    assert_eq!(files.key, PathBuf::from("/c/key.pem"));
    // dockerd's quirk: --tlsverify=false still means TLS, without client checks.
    let files = ok(&["--tlsverify=false", "-H", "tcp://0.0.0.0:2376"])
        .tls_files()
        .unwrap();
    assert!(!files.verify);
    assert!(files.cert.ends_with("cert.pem"));
    assert!(
        ok(&["--tls", "-H", "tcp://0.0.0.0:2376"])
            .tls_files()
            .is_some()
    );
}

#[test]
fn default_address_pools_from_flags_and_file() {
    let c = ok(&[
        "--default-address-pool",
        "base=10.199.60.0/22,size=24",
        "--default-address-pool",
        "base=10.199.64.0/24,size=26",
    ]);
    assert_eq!(
        c.default_address_pools,
        [
            ("10.199.60.0".parse().unwrap(), 22, 24),
            ("10.199.64.0".parse().unwrap(), 24, 26)
        ]
    );
    let (_dir, path) =
        file(r#"{"default-address-pools": [{"base": "10.199.72.0/21", "size": 24}]}"#);
    let c = ok(&["--config-file", &path]);
    assert_eq!(
        c.default_address_pools,
        [("10.199.72.0".parse().unwrap(), 21, 24)]
    );
    for bad in [
        "base=10.199.60.0/24,size=16",
        "base=fd00::/64,size=80",
        "size=24",
        "base=10.199.60.0/22",
        "base=10.199.60.0/22,size=24,x=1",
    ] {
        let e = err(&["--default-address-pool", bad]);
        assert!(e.to_string().contains("--default-address-pool"), "{e}");
    }
    assert!(ok(&[]).default_address_pools.is_empty());
}
