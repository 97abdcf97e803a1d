//! Health checks through the real docker CLI against a real berthd: `--health-*` flags,
//! an image's HEALTHCHECK and `--no-healthcheck`, `State.Health`, the `docker ps` status
//! and `health` filter, the `health_status` events, timeouts. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Opts, TestDaemon, inspect, wait_for};

fn health(d: &TestDaemon, name: &str) -> String {
    inspect(
        d,
        name,
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
    )
}

fn run(d: &TestDaemon, name: &str, flags: &[&str], cmd: &[&str]) {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(flags);
    args.push("busybox");
    args.extend_from_slice(cmd);
    d.docker_ok(&args);
}

fn ps_names(d: &TestDaemon, filter: &str) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker_ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn a_passing_check_turns_healthy() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run(
        &d,
        "good",
        &[
            "--health-cmd",
            "echo ok-$((1+1))",
            "--health-interval",
            "200ms",
        ],
        &["sleep", "600"],
    );
    // Starting until the first round (an interval after the start).
    let s = d.docker_ok(&["ps", "--filter", "name=good", "--format", "{{.Status}}"]);
    assert!(
        s.contains("(health: starting)") || s.contains("(healthy)"),
        "{s}"
    );
    assert!(
        wait_for(10, || health(&d, "good") == "healthy"),
        "{}",
        inspect(&d, "good", "{{json .State.Health}}")
    );
    let s = d.docker_ok(&["ps", "--filter", "name=good", "--format", "{{.Status}}"]);
    assert!(s.trim().ends_with("(healthy)"), "{s}");
    // CMD-SHELL ran through /bin/sh -c; the log keeps its output and exit code.
    assert_eq!(
        inspect(
            &d,
            "good",
            "{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}"
        ),
        "0 ok-2"
    );
    assert_eq!(inspect(&d, "good", "{{.State.Health.FailingStreak}}"), "0");
    assert_eq!(
        inspect(&d, "good", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","echo ok-$((1+1))"]"#
    );
    // At most five results are kept.
    assert!(wait_for(10, || inspect(
        &d,
        "good",
        "{{len .State.Health.Log}}"
    ) == "5"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "good", "{{len .State.Health.Log}}"), "5");
    // The ps filter and the event.
    assert_eq!(ps_names(&d, "health=healthy"), ["good"]);
    let ev = d.events_so_far(
        &["event=health_status"],
        "{{.Action}} {{.Actor.Attributes.name}}",
    );
    assert_eq!(ev.trim(), "health_status: healthy good", "{ev}");
    // A stop ends the check: unhealthy, as dockerd marks a stopped one.
    d.docker_ok(&["stop", "-t", "0", "good"]);
    assert_eq!(health(&d, "good"), "unhealthy");
    let n = inspect(&d, "good", "{{len .State.Health.Log}}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(inspect(&d, "good", "{{len .State.Health.Log}}"), n);
    // And a start starts it again.
    d.docker_ok(&["start", "good"]);
    assert!(wait_for(10, || health(&d, "good") == "healthy"));
    // The Python SDK sees it.
    let out =
        d.python_sdk_ok("print(c.api.inspect_container('good')['State']['Health']['Status'])");
    assert_eq!(out.trim(), "healthy");
    d.docker_ok(&["rm", "-f", "good"]);
}

#[test]
fn a_failing_check_turns_unhealthy_after_its_retries() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run(
        &d,
        "bad",
        &[
            "--health-cmd",
            "echo nope; exit 1",
            "--health-interval",
            "200ms",
            "--health-retries",
            "3",
        ],
        &["sleep", "600"],
    );
    run(&d, "plain", &[], &["sleep", "600"]);
    // Starting through two failures, unhealthy at the third.
    assert!(wait_for(10, || inspect(
        &d,
        "bad",
        "{{.State.Health.FailingStreak}}"
    ) == "2"));
    assert_eq!(health(&d, "bad"), "starting");
    assert_eq!(ps_names(&d, "health=starting"), ["bad"]);
    assert!(wait_for(10, || health(&d, "bad") == "unhealthy"));
    let s = d.docker_ok(&["ps", "--filter", "name=bad", "--format", "{{.Status}}"]);
    assert!(s.trim().ends_with("(unhealthy)"), "{s}");
    assert_eq!(
        inspect(
            &d,
            "bad",
            "{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}"
        ),
        "1 nope"
    );
    assert_eq!(ps_names(&d, "health=unhealthy"), ["bad"]);
    assert_eq!(ps_names(&d, "health=none"), ["plain"]);
    assert_eq!(health(&d, "plain"), "none");
    let ev = d.events_so_far(&["event=health_status"], "{{.Action}}");
    assert_eq!(ev.trim(), "health_status: unhealthy", "{ev}");
    // A start period: failures inside it do not count.
    run(
        &d,
        "slow",
        &[
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "30s",
        ],
        &["sleep", "600"],
    );
    assert!(wait_for(10, || inspect(
        &d,
        "slow",
        "{{len .State.Health.Log}}"
    ) == "3"));
    assert_eq!(
        inspect(
            &d,
            "slow",
            "{{.State.Health.Status}} {{.State.Health.FailingStreak}}"
        ),
        "starting 0"
    );
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run(
        &d,
        "hang",
        &[
            "--health-cmd",
            "sleep 30",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
        ],
        &["sleep", "600"],
    );
    assert!(wait_for(15, || health(&d, "hang") == "unhealthy"));
    assert_eq!(
        inspect(
            &d,
            "hang",
            "{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}"
        ),
        "-1 Health check exceeded timeout (300ms)"
    );
    // Each probe is killed at its timeout. Probes go on every 100ms after the container
    // turned unhealthy, so one `sleep 30` may be running when `top` looks; unkilled probes
    // (30 s each) would pile up: after a few more rounds there would be several.
    assert!(wait_for(15, || {
        inspect(&d, "hang", "{{len .State.Health.Log}}")
            .parse::<u32>()
            .is_ok_and(|n| n >= 4)
    }));
    let top = d.docker_ok(&["top", "hang"]);
    assert!(top.matches("sleep 30").count() <= 1, "{top}");
}

#[test]
fn an_images_healthcheck_and_no_healthcheck() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "base",
        "busybox",
        "true",
    ]);
    d.docker_ok(&[
        "commit",
        "--change",
        "HEALTHCHECK --interval=200ms --retries=2 CMD [\"true\"]",
        "base",
        "checked:1",
    ]);
    assert_eq!(
        d.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}}",
            "checked:1"
        ])
        .trim(),
        r#"["CMD","true"] 200ms"#
    );
    let run_img = |name: &str, flags: &[&str]| {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["checked:1", "sleep", "600"]);
        d.docker_ok(&args);
    };
    run_img("img", &[]);
    assert!(wait_for(10, || health(&d, "img") == "healthy"));
    // The request's flags override the image's parts they set.
    run_img("over", &["--health-cmd", "exit 1"]);
    assert_eq!(
        inspect(
            &d,
            "over",
            "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}"
        ),
        r#"["CMD-SHELL","exit 1"] 2"#
    );
    assert!(wait_for(10, || health(&d, "over") == "unhealthy"));
    // --no-healthcheck: none at all.
    run_img("off", &["--no-healthcheck"]);
    assert_eq!(
        inspect(&d, "off", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(health(&d, "off"), "none");
    let s = d.docker_ok(&["ps", "--filter", "name=off", "--format", "{{.Status}}"]);
    assert!(!s.contains('('), "{s}");
    // dockerd's minimum interval.
    let out = d.docker(&[
        "run",
        "--health-cmd",
        "true",
        "--health-interval",
        "100us",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
}

/// With --live-restore a running container keeps its check across a restart of berthd:
/// starting again, then healthy, as dockerd's restore.
#[test]
fn the_check_starts_again_after_a_live_restore() {
    require_root!();
    let live = Opts {
        args: vec!["--live-restore".into()],
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(live.clone());
    d.import_busybox();
    run(
        &d,
        "lr",
        &["--health-cmd", "true", "--health-interval", "300ms"],
        &["sleep", "600"],
    );
    assert!(wait_for(10, || health(&d, "lr") == "healthy"));
    let last = |d: &TestDaemon| {
        let log: serde_json::Value =
            serde_json::from_str(&inspect(d, "lr", "{{json .State.Health.Log}}")).unwrap();
        log.as_array().unwrap().last().unwrap()["Start"].clone()
    };
    let before = last(&d);
    assert!(d.stop().success());
    d.restart(&live);
    // A new round ran after the restart.
    assert!(wait_for(10, || last(&d) != before && health(&d, "lr") == "healthy"));
    d.docker_ok(&["rm", "-f", "lr"]);
}
