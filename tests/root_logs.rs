//! Log drivers through the real docker CLI against a real berthd: json-file rotation by
//! `max-size` and `max-file` (the files on disk, `docker logs` across them, `--tail`,
//! `--follow` across a rotation), the `none` driver, the daemon's `--log-driver` and
//! `--log-opt` defaults, and bad options refused in dockerd's words. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use common::{Opts, TestDaemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `docker inspect -f`.
fn inspect(d: &TestDaemon, name: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, name])
        .trim()
        .to_owned()
}

/// The container's json-file log and the rotated files beside it, by name.
fn log_files(d: &TestDaemon, name: &str) -> Vec<(String, u64)> {
    let id = inspect(d, name, "{{.Id}}");
    let dir = d.data_root.join("containers").join(&id);
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let short = n.strip_prefix(&id)?.to_owned();
            short
                .starts_with("-json.log")
                .then(|| (short, e.metadata().unwrap().len()))
        })
        .collect();
    files.sort();
    files
}

/// The numbers that lead each line.
fn numbers(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// 30 MB written with max-size=1m and max-file=3: three files on disk, about 3 MB in
/// all, named as dockerd names them; `docker logs` reads them in order and shows the
/// newest lines, the oldest gone; `--tail` reaches across the files.
#[test]
fn max_size_and_max_file_bound_the_log_on_disk() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    // 30000 lines of 1000 bytes, each led by its number.
    d.docker_ok(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=3",
        "busybox",
        "awk",
        "BEGIN { p = sprintf(\"%992s\", \"x\"); for (i = 1; i <= 30000; i++) printf \"%06d %s\\n\", i, p }",
    ]);
    assert_eq!(
        inspect(&d, "big", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"1m"}}"#
    );
    let files = log_files(&d, "big");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["-json.log", "-json.log.1", "-json.log.2"],
        "{files:?}"
    );
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(total <= 3_300_000, "{files:?}");
    for (n, size) in &files {
        // One write past the limit at most.
        assert!(*size <= 1_100_000, "{n}: {size}");
    }
    let out = d.docker(&["logs", "big"]);
    assert!(out.status.success());
    let all = numbers(&text(&out.stdout));
    assert_eq!(*all.last().unwrap(), 30000);
    // Two full rotated files of about 930 lines each, and the newest one.
    assert!(
        all[0] > 27000 && all.len() > 1800,
        "{} lines from {}",
        all.len(),
        all[0]
    );
    // In order, none missing, across the three files.
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1));
    let tail = numbers(&d.docker_ok(&["logs", "--tail", "3", "big"]));
    assert_eq!(tail, [29998, 29999, 30000]);
    // More lines than the newest file holds: the tail starts in a rotated one.
    let tail = numbers(&d.docker_ok(&["logs", "--tail", "1500", "big"]));
    assert_eq!(tail.len(), 1500);
    assert_eq!(tail[0], 28501);
    // --since before the first line keeps them all.
    let since = numbers(&d.docker_ok(&["logs", "--since", "2000-01-01T00:00:00Z", "big"]));
    assert_eq!(since, all);
}

/// `compress=true`: the rotated files are gzipped as dockerd names them
/// (`<id>-json.log.1.gz`, …) and `docker logs` reads them.
#[test]
fn compress_gzips_the_rotated_files() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "gz",
        "--network",
        "none",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "compress=true",
        "busybox",
        "awk",
        "BEGIN { p = sprintf(\"%992s\", \"x\"); for (i = 1; i <= 30000; i++) printf \"%06d %s\\n\", i, p }",
    ]);
    let files = log_files(&d, "gz");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["-json.log", "-json.log.1.gz", "-json.log.2.gz"],
        "{files:?}"
    );
    // Mostly spaces: a gzipped megabyte is small.
    assert!(files[1].1 < 200_000 && files[2].1 < 200_000, "{files:?}");
    let all = numbers(&d.docker_ok(&["logs", "gz"]));
    assert_eq!(*all.last().unwrap(), 30000);
    assert!(all[0] > 27000 && all.len() > 1800, "{}", all[0]);
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1));
    let tail = numbers(&d.docker_ok(&["logs", "--tail", "1500", "gz"]));
    assert_eq!(tail[0], 28501);
}

/// `docker logs -f` goes on from one file to the next as the log rotates under it.
#[test]
fn follow_continues_across_rotations() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "paced",
        "--network",
        "none",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; i=1; while [ $i -le 600 ]; do echo \"$i aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; \
         [ $((i % 20)) = 0 ] && sleep 0.1; i=$((i+1)); done",
    ]);
    let follow = numbers(&d.docker_ok(&["logs", "-f", "paced"]));
    assert_eq!(follow, (1..=600).collect::<Vec<u64>>());
    let files = log_files(&d, "paced");
    assert_eq!(files.len(), 3, "{files:?}");
}

/// `--log-driver none`: the output still reaches an attached client, nothing is kept,
/// `docker logs` gets dockerd's error.
#[test]
fn the_none_driver_keeps_no_log() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--name",
        "quiet",
        "--network",
        "none",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "attached",
    ]);
    assert_eq!(out, "attached\n");
    assert_eq!(
        inspect(&d, "quiet", "{{.HostConfig.LogConfig.Type}}"),
        "none"
    );
    assert_eq!(inspect(&d, "quiet", "{{.LogPath}}"), "");
    assert!(log_files(&d, "quiet").is_empty());
    let logs = d.docker(&["logs", "quiet"]);
    assert!(!logs.status.success());
    assert!(
        text(&logs.stderr).contains("configured logging driver does not support reading"),
        "{}",
        text(&logs.stderr)
    );
}

/// The daemon's `--log-opt` reaches a container that names no driver (and shows in its
/// inspect, as dockerd), not one of another driver; bad options get dockerd's words.
#[test]
fn daemon_log_opts_apply_and_bad_options_are_refused() {
    require_root!();
    let d = TestDaemon::start_with(Opts {
        args: vec![
            "--log-opt".into(),
            "max-size=2k".into(),
            "--log-opt".into(),
            "max-file=2".into(),
        ],
        ..Opts::default()
    });
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "dflt",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 400 ]; do echo \"$i bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"; i=$((i+1)); done",
    ]);
    assert_eq!(
        inspect(&d, "dflt", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{"max-file":"2","max-size":"2k"}}"#
    );
    let files = log_files(&d, "dflt");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s < 3000), "{files:?}");
    let all = numbers(&d.docker_ok(&["logs", "dflt"]));
    assert_eq!(*all.last().unwrap(), 400);
    assert!(all[0] > 300, "{all:?}");
    // A container's own option wins over the daemon's.
    d.docker_ok(&[
        "create",
        "--name",
        "own",
        "--log-opt",
        "max-size=5k",
        "busybox",
    ]);
    assert_eq!(
        inspect(&d, "own", "{{json .HostConfig.LogConfig.Config}}"),
        r#"{"max-file":"2","max-size":"5k"}"#
    );
    d.docker_ok(&[
        "create",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        "busybox",
    ]);
    assert_eq!(
        inspect(&d, "nolog", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"none","Config":{}}"#
    );
    let refused: &[(&[&str], &str)] = &[
        (
            &["--log-opt", "max-size=0"],
            "max-size must be a positive number",
        ),
        (&["--log-opt", "max-size=huge"], "invalid size: 'huge'"),
        (
            &["--log-opt", "max-file=0"],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "bogus=1"],
            "unknown log opt 'bogus' for json-file log driver",
        ),
        (
            &["--log-driver", "nosuch"],
            "logger: no log driver named 'nosuch' is registered",
        ),
        (
            &["--log-opt", "max-file=1", "--log-opt", "compress=true"],
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ),
        (
            &["--log-driver", "syslog"],
            "HostConfig.LogConfig (--log-driver syslog)",
        ),
    ];
    for (flags, words) in refused {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.push("busybox");
        let out = d.docker(&args);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(
            text(&out.stderr).contains(words),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }
    // The Python SDK's log_config reaches the same driver.
    let out = d.python_sdk_ok(
        "x = c.containers.create('busybox', log_config={'type': 'none'})\nprint(x.attrs['HostConfig']['LogConfig']['Type'])\nx.remove()\n",
    );
    assert_eq!(out.trim(), "none");
}

/// daemon.json's `log-driver` and `log-opts` keys: the default driver of containers that
/// name none.
#[test]
fn daemon_json_log_driver_is_the_default() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(
        &path,
        r#"{"log-driver": "none", "log-opts": {"max-size": "1m"}}"#,
    )
    .unwrap();
    let d = TestDaemon::start_with(Opts {
        args: vec!["--config-file".into(), path.display().to_string()],
        ..Opts::default()
    });
    d.import_busybox();
    assert_eq!(
        d.docker_ok(&["info", "-f", "{{.LoggingDriver}}"]).trim(),
        "none"
    );
    d.docker_ok(&[
        "run",
        "--name",
        "dj",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&d, "dj", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"none","Config":{"max-size":"1m"}}"#
    );
    let logs = d.docker(&["logs", "dj"]);
    assert!(text(&logs.stderr).contains("configured logging driver does not support reading"));
    // A container that names json-file gets its own options only.
    d.docker_ok(&[
        "create",
        "--name",
        "own",
        "--log-driver",
        "json-file",
        "busybox",
    ]);
    assert_eq!(
        inspect(&d, "own", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{}}"#
    );
}

/// The issue's case at full size: 1 GB written with max-size=10m and max-file=3 leaves
/// about 30 MB. Slow (a minute or more on a debug build): run with `--ignored`.
#[test]
#[ignore]
fn a_gigabyte_leaves_about_thirty_megabytes() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "gb",
        "--network",
        "none",
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=3",
        "busybox",
        "awk",
        "BEGIN { p = sprintf(\"%992s\", \"x\"); for (i = 1; i <= 1000000; i++) printf \"%07d %s\\n\", i, p }",
    ]);
    let files = log_files(&d, "gb");
    assert_eq!(files.len(), 3, "{files:?}");
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(total <= 31_000_000, "{files:?}");
    let tail = numbers(&d.docker_ok(&["logs", "--tail", "1", "gb"]));
    assert_eq!(tail, [1_000_000]);
    eprintln!("{files:?}");
}

/// `--log-opt labels`, `labels-regex`, `env`, `env-regex`: the named labels and variables
/// go into each entry's `attrs` and lead each line of `docker logs --details`, as dockerd
/// writes them (`k=v,…` in key order, query-escaped).
#[test]
fn labels_and_env_options_reach_docker_logs_details() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "attrs",
        "--network",
        "none",
        "--label",
        "app=web",
        "--label",
        "tier=front end",
        "--label",
        "other=no",
        "-e",
        "STAGE=prod",
        "-e",
        "IGNORED=1",
        "--log-opt",
        "labels=app",
        "--log-opt",
        "labels-regex=^ti",
        "--log-opt",
        "env=STAGE",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(
        d.docker_ok(&["logs", "--details", "attrs"]),
        "STAGE=prod,app=web,tier=front+end hi\n"
    );
    assert_eq!(d.docker_ok(&["logs", "attrs"]), "hi\n");
    let id = inspect(&d, "attrs", "{{.Id}}");
    let raw = std::fs::read_to_string(
        d.data_root
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    assert!(
        raw.starts_with(
            r#"{"log":"hi\n","stream":"stdout","attrs":{"STAGE":"prod","app":"web","tier":"front end"},"time":""#
        ),
        "{raw}"
    );
}

/// `--log-opt tag`: dockerd's json-file writes the rendered template as the `tag`
/// attribute, which `docker logs --details` shows.
#[test]
fn tag_is_an_attribute_of_each_entry() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "tagged",
        "--network",
        "none",
        "--log-opt",
        "tag={{.Name}}/{{.ID}} {{.ImageName}} {{.DaemonName}}",
        "busybox",
        "echo",
        "hi",
    ]);
    let id = inspect(&d, "tagged", "{{.Id}}");
    assert_eq!(
        d.docker_ok(&["logs", "--details", "tagged"]),
        format!("tag=tagged%2F{}+busybox+docker hi\n", &id[..12])
    );
    let out = d.docker(&[
        "create",
        "--log-opt",
        "tag={{split .Name \"-\"}}",
        "busybox",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HostConfig.LogConfig (--log-opt tag={{split .Name \"-\"}})"),
        "{}",
        text(&out.stderr)
    );
}
