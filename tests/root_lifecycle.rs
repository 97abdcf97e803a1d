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

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `docker events` lines (`Type Action name`) between two times.
fn events_between(d: &TestDaemon, since: f64, until: f64, filters: &[&str]) -> Vec<String> {
    let (s, u) = (format!("{since:.9}"), format!("{until:.9}"));
    let mut args = vec![
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--format",
        "{{.Type}} {{.Action}} {{index .Actor.Attributes \"name\"}}",
    ];
    args.extend_from_slice(filters);
    d.docker_ok(&args).lines().map(str::to_owned).collect()
}

#[test]
fn events_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let t0 = unix_now();
    let out = d.docker(&[
        "run",
        "--name",
        "ev1",
        "--network",
        "none",
        "-l",
        "tier=a",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    d.docker_ok(&["rename", "ev1", "ev2"]);
    d.docker_ok(&["rm", "ev2"]);
    d.docker_ok(&["tag", "busybox", "evimg:1"]);
    d.docker_ok(&["rmi", "evimg:1"]);
    d.docker_ok(&["volume", "create", "evvol"]);
    d.docker_ok(&["volume", "rm", "evvol"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ev3",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.docker_ok(&["pause", "ev3"]);
    d.docker_ok(&["unpause", "ev3"]);
    d.docker_ok(&["exec", "ev3", "true"]);
    d.docker_ok(&["kill", "-s", "USR1", "ev3"]);
    d.docker_ok(&["restart", "-t", "0", "ev3"]);
    d.docker_ok(&["stop", "-t", "0", "ev3"]);
    d.docker_ok(&["rm", "ev3"]);
    let t1 = unix_now();

    let all = events_between(&d, t0, t1, &[]);
    let want = [
        "container create ev1",
        "container attach ev1",
        "container start ev1",
        "container die ev1",
        "container rename ev2",
        "container destroy ev2",
        "image tag evimg:1",
        "volume create ",
        "volume destroy ",
        "container create ev3",
        "container start ev3",
        "container pause ev3",
        "container unpause ev3",
        "container exec_create: true ev3",
        "container exec_start: true ev3",
        "container exec_die ev3",
        "container kill ev3",
        "container restart ev3",
        "container stop ev3",
        "container destroy ev3",
    ];
    // In this order (others may come between).
    let mut at = 0;
    for w in want {
        match all[at..].iter().position(|l| l.trim_end() == w.trim_end()) {
            Some(i) => at += i + 1,
            None => panic!("no {w:?} after line {at} in:\n{}", all.join("\n")),
        }
    }
    assert!(
        all.iter().any(|l| l.starts_with("image untag sha256:")),
        "{all:?}"
    );
    // The attributes of a die and a kill, as the CLI's default format prints them.
    let (s, u) = (format!("{t0:.9}"), format!("{t1:.9}"));
    let plain = d.docker_ok(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "container=ev1",
        "--filter",
        "event=die",
    ]);
    assert!(
        plain.contains("container die")
            && plain.contains("exitCode=3")
            && plain.contains("image=busybox")
            && plain.contains("name=ev1")
            && plain.contains("tier=a"),
        "{plain}"
    );
    // Filters: type, event (exec_start matches by prefix), label, image.
    let images = events_between(&d, t0, t1, &["--filter", "type=image"]);
    assert!(images.iter().all(|l| l.starts_with("image ")), "{images:?}");
    assert!(!images.is_empty());
    let execs = events_between(&d, t0, t1, &["--filter", "event=exec_start"]);
    assert_eq!(execs, ["container exec_start: true ev3"]);
    let labelled = events_between(&d, t0, t1, &["--filter", "label=tier=a"]);
    assert!(
        !labelled.is_empty()
            && labelled
                .iter()
                .all(|l| l.ends_with(" ev1") || l.ends_with(" ev2")),
        "{labelled:?}"
    );
    let out = d.docker(&[
        "events", "--since", &s, "--until", &u, "--filter", "bogus=1",
    ]);
    assert!(
        text(&out.stderr).contains("Invalid filter 'bogus'"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["events", "--since", &u, "--until", &s]);
    assert!(!out.status.success());

    // The live stream: a subscriber sees what happens after it connects.
    let mut live = d
        .docker_cmd()
        .args([
            "events",
            "--filter",
            "container=evlive",
            "--format",
            "{{.Action}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = live.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // The subscription is made once the CLI has its reply: retry until an event shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut n = 0;
    while !seen.iter().any(|a: &String| a == "destroy") {
        assert!(
            std::time::Instant::now() < deadline,
            "live events: {seen:?}"
        );
        if seen.is_empty() {
            n += 1;
            let name = "evlive";
            let _ = d.docker(&["rm", "-f", name]);
            d.docker_ok(&[
                "create",
                "--name",
                name,
                "--network",
                "none",
                "busybox",
                "true",
            ]);
            d.docker_ok(&["rm", name]);
        }
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            seen.push(l);
        }
    }
    assert!(n >= 1 && seen.contains(&"create".to_owned()), "{seen:?}");
    let _ = live.kill();
    let _ = live.wait();

    // The Python SDK decodes the same stream, legacy fields and all.
    let out = d.python_sdk_ok(&format!(
        "import json\nfor e in c.events(since={t0}, until={t1}, decode=True, filters={{'container': 'ev1', 'event': 'start'}}):\n    print(e['status'], e['from'], e['Actor']['Attributes']['name'], e['scope'], e['timeNano'] // 10**9 == e['time'])\n",
        t0 = t0 as i64,
        t1 = t1 as i64 + 1
    ));
    assert_eq!(out.trim(), "start busybox ev1 local True");
}

#[test]
fn system_prune_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let stopped = d
        .docker_ok(&["create", "--network", "none", "busybox", "true"])
        .trim()
        .to_owned();
    let running = d
        .docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "100"])
        .trim()
        .to_owned();
    // A dangling image: an import without a name.
    let tar = common::busybox_tar();
    let dangling = d
        .docker_ok(&["import", tar.to_str().unwrap()])
        .trim()
        .to_owned();
    d.docker_ok(&["volume", "create", "unused"]);
    let out = d.docker_ok(&["system", "prune", "-f"]);
    assert!(out.contains(&stopped) && out.contains(&dangling), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(d.docker_ok(&["ps", "-aq", "--no-trunc"]).trim(), running);
    assert!(d.docker(&["image", "inspect", &dangling]).status.code() == Some(1));
    d.docker_ok(&["image", "inspect", "busybox"]);
    d.docker_ok(&["volume", "inspect", "unused"]);
    // With --volumes the unused volume goes too; the network and build-cache steps find
    // nothing to delete (berthd has neither user networks nor a build cache).
    let out = d.docker_ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("unused"), "{out}");
    assert!(!d.docker(&["volume", "inspect", "unused"]).status.success());
    let out = d.docker(&["network", "prune", "-f", "--filter", "bogus=1"]);
    assert!(
        text(&out.stderr).contains("Invalid filter 'bogus'"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["builder", "prune", "-f"]);
}
