//! Container lifecycle through the real docker CLI and the Python SDK against a real
//! berthd: `docker rename` (dockerd's texts, names kept across a restart of berthd).
//! Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use common::{Opts, TestDaemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rename_as_dockerd() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.docker_ok(&[
        "create",
        "--name",
        "other",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    d.docker_ok(&["rename", "first", "second"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.Name}}", "second"])
            .trim(),
        "/second"
    );
    let names = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "second");
    let out = d.docker(&["inspect", "first"]);
    assert!(!out.status.success());
    // The old name is free again; dockerd's refusals.
    d.docker_ok(&[
        "create",
        "--name",
        "first",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let out = d.docker(&["rename", "second", "second"]);
    assert!(
        text(&out.stderr).contains("Renaming a container with the same name as its current name"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["rename", "second", "other"]);
    assert!(
        text(&out.stderr)
            .contains("Conflict. The container name \"/other\" is already in use by container"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["rename", "nosuch", "x1"]);
    assert!(
        text(&out.stderr).contains("No such container: nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["rename", "second", "bad name"]);
    assert!(!out.status.success());
    // The Python SDK's rename.
    let out = d.python_sdk_ok(
        "c.containers.get('other').rename('third')\nprint(c.containers.get('third').name)\n",
    );
    assert_eq!(out.trim(), "third");
    // Names survive a restart of berthd.
    d.stop();
    d.restart(&Opts::default());
    let mut names: Vec<String> = d
        .docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    assert_eq!(names, ["first", "second", "third"]);
}

#[test]
fn container_prune_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let gone = d.docker_ok(&[
        "run",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo x > /f",
    ]);
    assert!(gone.is_empty());
    let gone = d.docker_ok(&["ps", "-aq", "--no-trunc"]).trim().to_owned();
    let kept = d
        .docker_ok(&[
            "create",
            "-l",
            "keep=1",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .trim()
        .to_owned();
    let running = d
        .docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "100"])
        .trim()
        .to_owned();
    let out = d.docker_ok(&["container", "prune", "-f", "--filter", "until=24h"]);
    assert!(!out.contains(&gone), "nothing is a day old: {out}");
    let out = d.docker_ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains(&gone) && !out.contains(&kept), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let left = d.docker_ok(&["ps", "-aq", "--no-trunc"]);
    assert!(
        left.contains(&kept) && left.contains(&running) && !left.contains(&gone),
        "{left}"
    );
    d.docker_ok(&["container", "prune", "-f"]);
    assert_eq!(d.docker_ok(&["ps", "-aq", "--no-trunc"]).trim(), running);
    let out = d.docker(&["container", "prune", "-f", "--filter", "bogus=1"]);
    assert!(
        text(&out.stderr).contains("Invalid filter 'bogus'"),
        "{}",
        text(&out.stderr)
    );
}
