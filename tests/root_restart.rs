//! Restart policies through the real docker CLI against a real berthd: on-failure[:N],
//! always, unless-stopped, the `restarting` state, a user's stop, `docker update
//! --restart`, and what a restart of berthd (clean or SIGKILL) does with each. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Opts, TestDaemon, inspect, wait_for};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_d(d: &TestDaemon, name: &str, restart: &str, cmd: &[&str]) {
    let mut args = vec![
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        "--restart",
        restart,
        "busybox",
    ];
    args.extend_from_slice(cmd);
    d.docker_ok(&args);
}

fn kill_pid(pid: &str) {
    let pid: i32 = pid.parse().unwrap();
    assert!(pid > 0);
    common::signal(pid.try_into().unwrap(), libc::SIGKILL);
}

/// The `die` and `start` events of container `name` so far.
fn events(d: &TestDaemon, name: &str, action: &str) -> usize {
    let out = d.events_so_far(
        &[&format!("container={name}"), &format!("event={action}")],
        "{{.Action}}",
    );
    out.lines().filter(|l| l.trim() == action).count()
}

#[test]
fn on_failure_restarts_n_times_then_stays_exited() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "f2", "on-failure:2", &["sh", "-c", "exit 3"]);
    assert!(
        wait_for(15, || inspect(
            &d,
            "f2",
            "{{.State.Status}} {{.RestartCount}}"
        ) == "exited 2"),
        "{}",
        inspect(&d, "f2", "{{.State.Status}} {{.RestartCount}}")
    );
    assert_eq!(inspect(&d, "f2", "{{.State.ExitCode}}"), "3");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect(&d, "f2", "{{.State.Status}} {{.RestartCount}}"),
        "exited 2"
    );
    // Each run published start and die, as dockerd (no `restart` event).
    assert_eq!(events(&d, "f2", "start"), 3);
    assert_eq!(events(&d, "f2", "die"), 3);
    assert_eq!(events(&d, "f2", "restart"), 0);
    // on-failure: an exit 0 is not restarted.
    run_d(&d, "ok", "on-failure", &["true"]);
    assert!(wait_for(10, || inspect(&d, "ok", "{{.State.Status}}") == "exited"));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        inspect(&d, "ok", "{{.State.Status}} {{.RestartCount}}"),
        "exited 0"
    );
    // `docker run` attached: the CLI returns the first exit's code, as with dockerd.
    let out = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "att",
        "--restart",
        "on-failure:1",
        "busybox",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hi"));
    assert!(wait_for(10, || inspect(
        &d,
        "att",
        "{{.State.Status}} {{.RestartCount}}"
    ) == "exited 1"));
    // --rm with a restart policy: the CLI 28's refusal; the API's, in dockerd's words.
    let out = d.docker(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert!(
        text(&out.stderr).contains("conflicting options: cannot specify both --restart and --rm"),
        "{}",
        text(&out.stderr)
    );
    let reply = d
        .raw(&{
            let body = r#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#;
            format!(
                "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        })
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("can't create 'AutoRemove' container with restart policy"),
        "{reply}"
    );
}

#[test]
fn always_restarts_a_dead_process_and_a_stop_keeps_it_stopped() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "al", "always", &["sleep", "600"]);
    let pid = inspect(&d, "al", "{{.State.Pid}}");
    kill_pid(&pid);
    assert!(
        wait_for(10, || {
            let now = inspect(
                &d,
                "al",
                "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}",
            );
            now.starts_with("running 1 ") && !now.ends_with(&format!(" {pid}"))
        }),
        "{}",
        inspect(
            &d,
            "al",
            "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}"
        )
    );
    // A user's stop: stopped, and it stays stopped.
    d.docker_ok(&["stop", "-t", "1", "al"]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        inspect(&d, "al", "{{.State.Status}} {{.RestartCount}}"),
        "exited 1"
    );
    // A user's start resets the count, as dockerd's.
    d.docker_ok(&["start", "al"]);
    assert_eq!(
        inspect(&d, "al", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    // docker kill as well.
    d.docker_ok(&["kill", "al"]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(inspect(&d, "al", "{{.State.Status}}"), "exited");

    // A process that keeps failing: the back-off grows, and between runs the container
    // is `restarting`, in inspect, in ps and in its filter.
    run_d(&d, "flap", "always", &["sh", "-c", "exit 1"]);
    assert!(
        wait_for(15, || d
            .docker_ok(&[
                "ps",
                "--filter",
                "status=restarting",
                "--format",
                "{{.Names}}"
            ])
            .trim()
            == "flap"
            && inspect(&d, "flap", "{{.RestartCount}}")
                .parse::<u32>()
                .unwrap()
                >= 4),
        "{}",
        d.docker_ok(&["ps", "-a"])
    );
    let status = d.docker_ok(&["ps", "--filter", "name=flap", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Restarting (1) "), "{status}");
    assert_eq!(
        inspect(
            &d,
            "flap",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}"
        ),
        "restarting true true"
    );
    // A stop of a restarting container cancels its restart.
    let count = inspect(&d, "flap", "{{.RestartCount}}");
    d.docker_ok(&["stop", "flap"]);
    assert_eq!(inspect(&d, "flap", "{{.State.Status}}"), "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inspect(
            &d,
            "flap",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"
        ),
        format!("exited {count} 1")
    );
    // docker kill of a restarting container cancels its restart too.
    run_d(&d, "flap3", "unless-stopped", &["sh", "-c", "exit 2"]);
    assert!(wait_for(15, || inspect(&d, "flap3", "{{.State.Status}}")
        == "restarting"));
    d.docker_ok(&["kill", "flap3"]);
    let count = inspect(&d, "flap3", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inspect(
            &d,
            "flap3",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"
        ),
        format!("exited {count} 2")
    );
    // And rm -f of one.
    run_d(&d, "flap2", "always", &["sh", "-c", "exit 1"]);
    assert!(wait_for(15, || inspect(&d, "flap2", "{{.State.Status}}")
        == "restarting"));
    d.docker_ok(&["rm", "-f", "flap2"]);
    assert!(!d.docker(&["inspect", "flap2"]).status.success());
}

#[test]
fn update_changes_the_restart_policy() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "up", "no", &["sleep", "600"]);
    d.docker_ok(&["update", "--restart", "always", "up"]);
    assert_eq!(
        inspect(&d, "up", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    kill_pid(&inspect(&d, "up", "{{.State.Pid}}"));
    assert!(wait_for(10, || inspect(
        &d,
        "up",
        "{{.State.Status}} {{.RestartCount}}"
    ) == "running 1"));
    // dockerd's checks of the policy.
    let out = d.docker(&["update", "--restart", "always:3", "up"]);
    assert!(
        text(&out.stderr).contains("maximum retry count cannot be used with restart policy"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["update", "--restart", "no", "up"]);
    kill_pid(&inspect(&d, "up", "{{.State.Pid}}"));
    assert!(wait_for(10, || inspect(&d, "up", "{{.State.Status}}") == "exited"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "up", "{{.State.Status}}"), "exited");
    // The Python SDK.
    d.python_sdk_ok(
        "ctr = c.containers.run('busybox', 'sh -c \"exit 2\"', detach=True, network_mode='none', name='py', restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 1})",
    );
    assert!(wait_for(10, || inspect(
        &d,
        "py",
        "{{.State.Status}} {{.RestartCount}}"
    ) == "exited 1"));
}

#[test]
fn policies_hold_across_a_restart_and_a_crash_of_berthd() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    run_d(&d, "al", "always", &["sleep", "600"]);
    run_d(&d, "us", "unless-stopped", &["sleep", "600"]);
    run_d(&d, "us2", "unless-stopped", &["sleep", "600"]);
    run_d(&d, "nn", "no", &["sleep", "600"]);
    d.docker_ok(&["stop", "-t", "0", "al", "us"]);
    // A clean stop of berthd stops every container (no live-restore); at its start the
    // policies decide: always even after a user's stop, unless-stopped unless stopped.
    assert!(d.stop().success());
    d.restart(&Opts::default());
    let state = |d: &TestDaemon| {
        d.docker_ok(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.State}}",
            "--filter",
            "name=^(al|us|us2|nn)$",
        ])
    };
    assert!(
        wait_for(10, || {
            let mut l: Vec<String> = state(&d).lines().map(str::to_owned).collect();
            l.sort();
            l == ["al running", "nn exited", "us exited", "us2 running"]
        }),
        "{}",
        state(&d)
    );
    // A crash: the containers run on under their monitors; one that dies while berthd is
    // away is restarted at its start.
    let a_pid = inspect(&d, "al", "{{.State.Pid}}");
    let u2_pid = inspect(&d, "us2", "{{.State.Pid}}");
    d.kill();
    kill_pid(&u2_pid);
    std::thread::sleep(Duration::from_millis(300));
    d.restart(&Opts::default());
    assert_eq!(
        inspect(&d, "al", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {a_pid}")
    );
    assert!(
        wait_for(10, || {
            let now = inspect(&d, "us2", "{{.State.Status}} {{.State.Pid}}");
            now.starts_with("running ") && now != format!("running {u2_pid}")
        }),
        "{}",
        inspect(&d, "us2", "{{.State.Status}} {{.State.Pid}}")
    );
    assert_eq!(inspect(&d, "us", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "-f", "al", "us", "us2", "nn"]);
}

/// With --live-restore a running container with a policy keeps running (same pid)
/// across a restart of berthd, and its policy still holds after.
#[test]
fn live_restore_keeps_a_restartable_container_running() {
    require_root!();
    let live = Opts {
        args: vec!["--live-restore".into()],
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(live.clone());
    d.import_busybox();
    run_d(&d, "lr", "always", &["sleep", "600"]);
    let pid = inspect(&d, "lr", "{{.State.Pid}}");
    assert!(d.stop().success());
    d.restart(&live);
    assert_eq!(
        inspect(&d, "lr", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    kill_pid(&pid);
    assert!(wait_for(10, || inspect(
        &d,
        "lr",
        "{{.State.Status}} {{.RestartCount}}"
    ) == "running 1"));
    d.docker_ok(&["rm", "-f", "lr"]);
}
