//! The Python docker SDK's high-level client (docker 7.1) against a real berthd:
//! tests/python/test_sdk.py, plain unittest, one of its classes per test here (each on its
//! own daemon, so they run in parallel), with DOCKER_HOST pointing at the daemon. A
//! failure shows the script's output and the daemon's log tail. Root only; skipped when
//! python3 or its `docker` package is missing.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDaemon;

/// Runs the unittest classes `class` (space-separated) of tests/python/test_sdk.py against a fresh daemon
/// with busybox:latest; fails with the script's output on a failure or after 150 s.
fn run_class(class: &str) {
    let sdk = Command::new("python3")
        .args(["-c", "import docker; print(docker.__version__)"])
        .output();
    match sdk {
        Ok(o) if o.status.success() => {}
        _ => skip_test!("python3 with the docker package is not installed"),
    }
    let d = TestDaemon::start();
    d.import_busybox();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_sdk.py");
    let mut child = Command::new("python3")
        .args(["-W", "ignore::ResourceWarning", script, "-v"])
        .args(class.split_whitespace())
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_API_VERSION")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    // Both pipes read on threads, so a chatty script cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (t_out.join().unwrap(), t_err.join().unwrap());
    assert!(
        status.is_some_and(|s| s.success()),
        "test_sdk.py {class} failed ({}):\n{stdout}{stderr}\ndaemon log tail:\n{}",
        status.map_or("timed out".to_owned(), |s| s.to_string()),
        common::tail(&d.log(), 40)
    );
    eprintln!("{stderr}");
    // Nothing the suite made is left running.
    let left = d.docker_ok(&["ps", "-q"]);
    assert_eq!(left.trim(), "", "containers left running by {class}");
}

/// containers.run/create/start/list/get/logs/exec_run/attach/stop/restart/kill/remove/
/// wait/stats/top/update/rename/pause/unpause/commit/diff/put_archive/get_archive/export.
#[test]
fn python_sdk_containers() {
    require_root!();
    run_class("Containers");
}

/// images list/get/tag/remove/history/save/load/prune.
#[test]
fn python_sdk_images() {
    require_root!();
    run_class("Images");
}

/// volumes create/list/get/remove/prune.
#[test]
fn python_sdk_volumes() {
    require_root!();
    run_class("Volumes");
}

/// info, version, ping, df, and events (since/until, decode=True, a live stream); what
/// the SDK can call that berthd refuses (build, swarm, plugins, search, storage_opt,
/// ports without a network, tmpfs volumes): errors naming it.
#[test]
fn python_sdk_system_events_and_refusals() {
    require_root!();
    run_class("System Refusals");
}
