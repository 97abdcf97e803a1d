//! Debian's docker-compose (1.29) against berthd (issue 16 part 7): a project of two
//! services on its user-defined network, a named volume, a published port, `depends_on`
//! with a health check, `logs -f`, `exec`, `--scale`, `restart`, `down -v`. berthd runs in
//! a network namespace of its own (`tests/common/netns.rs`) with its pools in
//! 10.199.100.0-10.199.101.255 only; the published port is reached on that namespace's
//! loopback. Root only; skipped when docker-compose is not installed.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestDaemon, wait_for};
use netns::NetNs;

const PROJECT: &str = r#"version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && cat /data/seed >> /www/index.html; exec httpd -f -p 80 -h /www"]
    volumes: ["data:/data"]
    ports: ["127.0.0.1:18080:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      timeout: 2s
      retries: 20
  client:
    image: busybox
    command: ["sh", "-c", "wget -qO- http://web/ && exec sleep 3600"]
    depends_on:
      web:
        condition: service_healthy
volumes:
  data: {}
"#;

fn compose_cmd(d: &TestDaemon, dir: &Path) -> Command {
    let mut c = Command::new("docker-compose");
    c.current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("COMPOSE_FILE")
        .env("COMPOSE_PROJECT_NAME", "bt")
        .stdin(Stdio::null());
    c
}

fn compose(d: &TestDaemon, dir: &Path, args: &[&str]) -> Output {
    compose_cmd(d, dir).args(args).output().unwrap()
}

fn compose_ok(d: &TestDaemon, dir: &Path, args: &[&str]) -> String {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?}: {}{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        common::tail(&d.log(), 30)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_compose_project_comes_up_works_and_goes_down() {
    require_root!();
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        skip_test!("docker-compose is not installed (apt-get install docker-compose)");
    }
    let n = NetNs::start(
        "berth0",
        &[
            "--bip",
            "10.199.100.1/24",
            "--default-address-pool",
            "base=10.199.101.0/24,size=26",
        ],
        &[],
    );
    let d = n.d();
    d.import_busybox();
    let dir = tempfile::Builder::new()
        .prefix("berth-compose.")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join("docker-compose.yml"), PROJECT).unwrap();

    // Up: the network, the volume, web, then client once web is healthy.
    compose_ok(d, dir.path(), &["up", "-d"]);
    // The client started only once web was healthy, and reached it by its name through
    // the embedded DNS of the project's network.
    assert!(
        wait_for(60, || {
            compose(d, dir.path(), &["logs", "--no-color", "client"])
                .stdout
                .windows(14)
                .any(|w| w == b"hello-from-web")
        }),
        "{}",
        String::from_utf8_lossy(&compose(d, dir.path(), &["logs", "--no-color"]).stdout)
    );
    let web = d.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "bt_web_1"]);
    assert_eq!(web.trim(), "healthy");
    // The project's network and volume, as compose names them.
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.lines().any(|l| l == "bt_default bridge"), "{nets}");
    let subnet = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "bt_default",
    ]);
    assert!(subnet.trim().starts_with("10.199.101."), "{subnet}");
    let vols = d.docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(vols.lines().any(|l| l == "bt_data"), "{vols}");

    // exec, the volume, restart.
    compose_ok(
        d,
        dir.path(),
        &["exec", "-T", "web", "sh", "-c", "echo seeded > /data/seed"],
    );
    compose_ok(d, dir.path(), &["restart", "web"]);
    assert!(wait_for(30, || {
        compose(
            d,
            dir.path(),
            &["exec", "-T", "web", "cat", "/www/index.html"],
        )
        .stdout
            == b"hello-from-web\nseeded\n"
    }));
    // The published port, from the daemon's namespace's loopback.
    assert!(wait_for(30, || {
        n.ns(&["busybox", "wget", "-qO-", "http://127.0.0.1:18080/"])
            .stdout
            .starts_with(b"hello-from-web")
    }));

    // logs -f follows: a line written now arrives while it runs.
    let mut follow = compose_cmd(d, dir.path())
        .args(["logs", "-f", "--no-color", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains("followed-line") {
                let _ = tx.send(());
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    // Into the main process's output: the log the service writes.
    compose_ok(
        d,
        dir.path(),
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo followed-line > /proc/1/fd/1",
        ],
    );
    let got = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    let _ = follow.kill();
    let _ = follow.wait();
    let _ = reader.join();
    assert!(got, "logs -f did not follow");

    // scale
    compose_ok(d, dir.path(), &["up", "-d", "--scale", "client=2"]);
    let started = Instant::now();
    assert!(wait_for(60, || {
        d.docker_ok(&[
            "ps",
            "--filter",
            "label=com.docker.compose.service=client",
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .count()
            == 2
    }));
    assert!(started.elapsed() < Duration::from_secs(60));
    let ps = compose_ok(d, dir.path(), &["ps"]);
    assert!(ps.contains("bt_client_2"), "{ps}");

    // down -v: containers, the network and the volume go.
    compose_ok(d, dir.path(), &["down", "-v"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bt_default"), "{nets}");
    let vols = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains("bt_data"), "{vols}");
}
