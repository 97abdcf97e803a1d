//! List filters and query parameters, driven by the real docker CLI and the Python SDK
//! against a real berthd: `docker ps --filter` and `docker images --filter` as dockerd
//! 20.10 filters, unknown keys refused, `docker import -c` with several changes, and the
//! logs options. Root only; every container uses `--network none` (the daemon runs with
//! `-b none`).
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use common::TestDaemon;

/// The sorted lines of `docker <args>`.
fn lines(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker_ok(args)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// The names `docker ps` lists with `args` added.
fn ps(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    let mut full = vec!["ps", "--format", "{{.Names}}"];
    full.extend_from_slice(args);
    lines(d, &full)
}

/// Runs docker, asserts exit 1 and that stderr holds `needle` (ignoring case, as
/// dockerd 20.10 writes `Invalid filter` and later releases `invalid filter`).
fn fails_with(d: &TestDaemon, args: &[&str], needle: &str) {
    let out = d.docker(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "docker {args:?}: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "docker {args:?}: {err}"
    );
}

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn ps_filters_combine_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    let image = d.import_busybox();
    let data = d.dir.path().join("data-dir");
    std::fs::create_dir_all(&data).unwrap();
    let bind = format!("{}:/data", data.display());
    let run = |args: &[&str]| {
        let mut full = vec!["run", "-d", "--network", "none"];
        full.extend_from_slice(args);
        d.docker_ok(&full).trim().to_owned()
    };
    // Created in this order: t1, t10, ex3, cr, vol, exp.
    let t1 = run(&[
        "--name", "t1", "--label", "a=1", "--label", "b=2", "busybox", "sleep", "300",
    ]);
    run(&["--name", "t10", "--label", "a=1", "busybox", "sleep", "300"]);
    let out = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "ex3",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "cr",
        "busybox",
        "true",
    ]);
    run(&["--name", "vol", "-v", &bind, "busybox", "sleep", "300"]);
    run(&["--name", "exp", "--expose", "80", "busybox", "sleep", "300"]);
    let running = names(&["t1", "t10", "vol", "exp"]);

    // Unknown keys and bad values are refused in dockerd's words.
    fails_with(&d, &["ps", "--filter", "bogus=1"], "Invalid filter 'bogus'");
    fails_with(
        &d,
        &["ps", "--filter", "status=up"],
        "Invalid filter 'status=up'",
    );
    fails_with(
        &d,
        &["ps", "--filter", "exited=x"],
        "invalid filter 'exited=x'",
    );
    fails_with(
        &d,
        &["ps", "--filter", "health=sick"],
        "Unrecognised filter value for health: sick",
    );
    fails_with(
        &d,
        &["ps", "--filter", "expose=80:80"],
        "filter for 'expose' should not contain ':': 80:80",
    );
    fails_with(
        &d,
        &["ps", "--filter", "since=nosuch"],
        "No such container: nosuch",
    );

    // Two labels must both match; other keys' values are alternatives.
    assert_eq!(
        ps(&d, &["--filter", "label=a=1", "--filter", "label=b=2"]),
        names(&["t1"])
    );
    assert_eq!(
        ps(&d, &["--filter", "label=a", "--filter", "label=b"]),
        names(&["t1"])
    );
    assert_eq!(ps(&d, &["--filter", "label=a"]), names(&["t1", "t10"]));
    assert!(ps(&d, &["--filter", "label=a=2"]).is_empty());
    assert_eq!(
        ps(&d, &["-a", "--filter", "name=ex3", "--filter", "name=cr"]),
        names(&["ex3", "cr"])
    );

    // A name is a regular expression, with or without the leading slash.
    assert_eq!(ps(&d, &["--filter", "name=t1"]), names(&["t1", "t10"]));
    assert_eq!(ps(&d, &["--filter", "name=^t1$"]), names(&["t1"]));
    assert_eq!(ps(&d, &["--filter", "name=^/t1"]), names(&["t1", "t10"]));

    // status lists stopped containers without -a; exited does not.
    assert_eq!(ps(&d, &["--filter", "status=exited"]), names(&["ex3"]));
    assert_eq!(ps(&d, &["--filter", "status=created"]), names(&["cr"]));
    assert_eq!(ps(&d, &["--filter", "status=running"]), running);
    assert_eq!(ps(&d, &["-a", "--filter", "exited=3"]), names(&["ex3"]));
    assert!(ps(&d, &["--filter", "exited=3"]).is_empty());
    // A created container never exited, so exited=0 does not list it.
    assert!(ps(&d, &["-a", "--filter", "exited=0"]).is_empty());

    // id: a unique prefix.
    assert_eq!(
        ps(&d, &["--filter", &format!("id={}", &t1[..12])]),
        names(&["t1"])
    );
    assert!(ps(&d, &["-a", "--filter", "id=zzz"]).is_empty());

    // ancestor: the image by name, tag, id or id prefix.
    let hex = image.trim_start_matches("sha256:");
    for a in ["busybox", "busybox:latest", &image, &hex[..12]] {
        assert_eq!(
            ps(&d, &["--filter", &format!("ancestor={a}")]),
            running,
            "{a}"
        );
    }
    assert!(ps(&d, &["--filter", "ancestor=nosuch"]).is_empty());

    // before and since name containers; created order is t1, t10, ex3, cr, vol, exp.
    assert_eq!(
        ps(&d, &["-a", "--filter", "before=ex3"]),
        names(&["t1", "t10"])
    );
    assert_eq!(
        ps(&d, &["-a", "--filter", "since=cr"]),
        names(&["vol", "exp"])
    );
    assert_eq!(
        ps(&d, &["--filter", "since=t1"]),
        names(&["t10", "vol", "exp"])
    );
    assert_eq!(
        ps(
            &d,
            &["-a", "--filter", "since=t10", "--filter", "before=vol"]
        ),
        names(&["ex3", "cr"])
    );

    // volume: a bind's source or destination.
    assert_eq!(ps(&d, &["--filter", "volume=/data"]), names(&["vol"]));
    let source = format!("volume={}", data.display());
    assert_eq!(ps(&d, &["--filter", &source]), names(&["vol"]));
    assert!(ps(&d, &["--filter", "volume=/other"]).is_empty());

    // Ports exist only on a container's own network (dockerd lists none for `none`),
    // and berthd publishes none yet.
    assert!(ps(&d, &["--filter", "expose=80"]).is_empty());
    assert!(ps(&d, &["--filter", "publish=80"]).is_empty());

    // network, health, isolation, is-task.
    assert_eq!(ps(&d, &["--filter", "network=none"]), running);
    assert!(ps(&d, &["--filter", "network=bridge"]).is_empty());
    assert_eq!(ps(&d, &["--filter", "health=none"]), running);
    assert!(ps(&d, &["--filter", "health=healthy"]).is_empty());
    assert_eq!(ps(&d, &["--filter", "isolation=default"]), running);
    assert_eq!(ps(&d, &["--filter", "is-task=false"]), running);
    assert!(ps(&d, &["--filter", "is-task=true"]).is_empty());

    // A limit lists stopped containers too, as in dockerd.
    assert_eq!(ps(&d, &["-n", "10"]).len(), 6);
    assert_eq!(ps(&d, &["-n", "2"]), names(&["vol", "exp"]));

    // The Python SDK sends lists instead of sets.
    let out = d.python_sdk_ok(
        "print(sorted(x.name for x in c.containers.list(filters={'label': ['a=1', 'b=2']})))\n\
         print(sorted(x.name for x in c.containers.list(all=True, filters={'status': 'exited'})))\n\
         print(sorted(x.name for x in c.containers.list(filters={'name': '^t1'})))",
    );
    assert_eq!(out, "['t1']\n['ex3']\n['t1', 't10']\n");

    for n in ["t1", "t10", "vol", "exp"] {
        d.docker_ok(&["rm", "-f", n]);
    }
}

#[test]
fn images_filters_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    let tar = common::busybox_tar();
    let tar = tar.to_str().unwrap();
    d.import_busybox();
    let dangling = d.docker_ok(&["import", tar]).trim().to_owned();
    d.docker_ok(&["import", "-c", "LABEL k=v", tar, "other:1"]);
    let images = |args: &[&str]| {
        let mut full = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        full.extend_from_slice(args);
        lines(&d, &full)
    };
    assert_eq!(
        images(&[]),
        names(&["<none>:<none>", "busybox:latest", "other:1"])
    );
    assert_eq!(
        images(&["--filter", "dangling=false"]),
        names(&["busybox:latest", "other:1"])
    );
    assert_eq!(
        images(&["--filter", "dangling=true"]),
        names(&["<none>:<none>"])
    );
    let ids = lines(
        &d,
        &["images", "-q", "--no-trunc", "--filter", "dangling=true"],
    );
    assert_eq!(ids, vec![dangling]);
    assert_eq!(
        images(&["--filter", "reference=busybox"]),
        names(&["busybox:latest"])
    );
    assert_eq!(
        images(&["--filter", "reference=oth*:1"]),
        names(&["other:1"])
    );
    assert_eq!(images(&["--filter", "label=k=v"]), names(&["other:1"]));
    assert_eq!(
        images(&["--filter", "since=busybox"]),
        names(&["<none>:<none>", "other:1"])
    );
    assert_eq!(
        images(&["--filter", "before=other:1"]),
        names(&["<none>:<none>", "busybox:latest"])
    );
    // `docker images busybox` is a reference filter too.
    assert_eq!(
        lines(&d, &["images", "--format", "{{.Repository}}", "busybox"]),
        names(&["busybox"])
    );
    fails_with(
        &d,
        &["images", "--filter", "bogus=1"],
        "Invalid filter 'bogus'",
    );
    fails_with(
        &d,
        &["images", "--filter", "dangling=maybe"],
        "Invalid filter 'dangling=[maybe]'",
    );
    fails_with(
        &d,
        &["images", "--filter", "since=nosuch"],
        "No such image: nosuch",
    );
}

#[test]
fn import_keeps_every_change() {
    require_root!();
    let d = TestDaemon::start();
    let tar = common::busybox_tar();
    d.docker_ok(&[
        "import",
        "-c",
        "ENV A=1",
        "-c",
        "CMD [\"env\"]",
        "-c",
        "LABEL k=v",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "ENV B=two",
        "-m",
        "made by a test",
        tar.to_str().unwrap(),
        "imp:1",
    ]);
    let env = d.docker_ok(&["run", "--rm", "--network", "none", "imp:1"]);
    assert!(env.lines().any(|l| l == "A=1"), "{env}");
    assert!(env.lines().any(|l| l == "B=two"), "{env}");
    let pwd = d.docker_ok(&["run", "--rm", "--network", "none", "imp:1", "pwd"]);
    assert_eq!(pwd, "/tmp\n");
    let label = d.docker_ok(&["image", "inspect", "-f", "{{.Config.Labels.k}}", "imp:1"]);
    assert_eq!(label, "v\n");
    let comment = d.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "imp:1"]);
    assert_eq!(comment, "made by a test\n");
    fails_with(
        &d,
        &["import", "-c", "FROM busybox", tar.to_str().unwrap()],
        "from is not a valid change command",
    );
    fails_with(
        &d,
        &[
            "import",
            "-c",
            "HEALTHCHECK RUN true",
            tar.to_str().unwrap(),
        ],
        "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
    );
    // HEALTHCHECK is kept in the image (tests/root_health.rs runs it).
    d.docker_ok(&[
        "import",
        "-c",
        "HEALTHCHECK --retries=4 CMD true",
        tar.to_str().unwrap(),
        "imp:hc",
    ]);
    let hc = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}",
        "imp:hc",
    ]);
    assert_eq!(hc, "[\"CMD-SHELL\",\"true\"] 4\n");
    fails_with(
        &d,
        &[
            "import",
            "--platform",
            "windows/amd64",
            tar.to_str().unwrap(),
        ],
        "platform query parameter",
    );
}

#[test]
fn logs_and_container_query_parameters() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two",
    ]);
    assert_eq!(d.docker_ok(&["logs", "lg"]), "one\ntwo\n");
    assert_eq!(d.docker_ok(&["logs", "--tail", "1", "lg"]), "two\n");
    assert_eq!(d.docker_ok(&["logs", "--tail", "0", "lg"]), "");
    assert_eq!(d.docker_ok(&["logs", "--details", "lg"]), " one\n two\n");
    assert_eq!(
        d.docker_ok(&["logs", "--until", "1970-01-02T00:00:00Z", "lg"]),
        ""
    );
    assert_eq!(
        d.docker_ok(&["logs", "--since", "1970-01-02T00:00:00Z", "lg"]),
        "one\ntwo\n"
    );
    let stamped = d.docker_ok(&["logs", "-t", "--details", "lg"]);
    assert!(stamped.lines().all(|l| l.contains("Z  ")), "{stamped}");

    fails_with(&d, &["kill", "-s", "BOGUS", "lg"], "Invalid signal: BOGUS");
    fails_with(
        &d,
        &["rm", "--link", "lg"],
        "Conflict, cannot remove the default link name of the container",
    );
    // `size`: the read-write layer's bytes, and with the image's.
    d.docker_ok(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /blob",
    ]);
    let sizes = d.docker_ok(&[
        "inspect",
        "-s",
        "--type",
        "container",
        "-f",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "big",
    ]);
    let v: Vec<i64> = sizes
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(v[0] >= 300_000 && v[0] < 400_000 && v[1] > v[0], "{sizes}");
    let ps = d.docker_ok(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=big",
        "--format",
        "{{.Size}}",
    ]);
    assert!(
        ps.starts_with("300kB (virtual ") || ps.starts_with("3"),
        "{ps}"
    );
    assert!(ps.contains("virtual"), "{ps}");
    let lg = d.docker_ok(&["inspect", "-f", "{{json .SizeRw}}", "lg"]);
    assert_eq!(lg.trim(), "null");
    d.docker_ok(&["rm", "-v", "lg", "big"]);
}

/// `method path` on a fresh connection: (status, body).
fn raw(d: &TestDaemon, method: &str, path: &str) -> (u16, String) {
    let reply = d
        .raw(&format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .unwrap();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn signals_and_raw_query_parameters() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let script = "trap 'echo got; exit 7' USR1; echo ready; while true; do sleep 0.1; done";
    // kill's signal reaches the process.
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "kk",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let ready = |name: &str| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !d.docker_ok(&["logs", name]).contains("ready") {
            assert!(std::time::Instant::now() < until, "{name} never got ready");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    ready("kk");
    d.docker_ok(&["kill", "-s", "USR1", "kk"]);
    assert_eq!(d.docker_ok(&["wait", "kk"]).trim(), "7");
    assert!(d.docker_ok(&["logs", "kk"]).contains("got"));
    // So does stop's (API 1.42's parameter; the 28.x CLI at 1.41 does not send it).
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ss",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    ready("ss");
    let (status, body) = raw(&d, "POST", "/v1.41/containers/ss/stop?signal=USR1&t=5");
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "ss"])
            .trim(),
        "7"
    );

    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "GET",
            "/v1.41/containers/json?filters=nope",
            400,
            "invalid filter",
        ),
        (
            "GET",
            "/v1.41/containers/json?filters=%7B%22name%22%3A%22kk%22%7D",
            400,
            "invalid filter",
        ),
        (
            "GET",
            "/v1.41/containers/json?limit=x",
            400,
            "strconv.Atoi: parsing \\\"x\\\": invalid syntax",
        ),
        (
            "GET",
            "/v1.41/images/json?filters=%7B%22bogus%22%3A%5B%221%22%5D%7D",
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "POST",
            "/v1.41/containers/kk/start?checkpoint=c1",
            400,
            "checkpoint is only supported in experimental mode",
        ),
        (
            "POST",
            "/v1.41/containers/kk/start?checkpoint-dir=/x",
            400,
            "custom checkpointdir is not supported",
        ),
        (
            "POST",
            "/v1.41/containers/kk/resize?h=10",
            400,
            "strconv.Atoi: parsing \\\"\\\": invalid syntax",
        ),
        ("POST", "/v1.41/containers/kk/stop?t=x", 400, "strconv.Atoi"),
        (
            "POST",
            "/v1.41/containers/kk/wait?condition=bogus",
            400,
            "invalid condition: \\\"bogus\\\"",
        ),
        (
            "POST",
            "/v1.41/containers/kk/kill?signal=0",
            400,
            "Invalid signal: 0",
        ),
        (
            "POST",
            "/v1.41/containers/create?platform=windows%2Famd64",
            400,
            "platform query parameter of POST /containers/create",
        ),
        (
            "POST",
            "/v1.41/images/create?fromSrc=http%3A%2F%2Fx%2Fy.tar",
            400,
            "fromSrc query parameter",
        ),
        (
            "GET",
            "/v1.41/containers/kk/logs?stdout=1&since=10m",
            400,
            "strconv.ParseInt: parsing \\\"10m\\\": invalid syntax",
        ),
    ];
    for (method, path, want, needle) in cases {
        let (status, body) = raw(&d, method, path);
        assert_eq!(status, *want, "{method} {path}: {body}");
        assert!(body.contains(needle), "{method} {path}: {body}");
    }
    // Flags read as dockerd's BoolValue: `yes` is true, unknown parameters are ignored.
    let (status, body) = raw(&d, "GET", "/v1.41/containers/json?all=yes&bogus=1");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"/kk\""), "{body}");
}
