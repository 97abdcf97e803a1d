//! Checks of the deployment files in `deploy/` and `scripts/`: the Grafana dashboard names
//! only metrics berthd exports (and uses all of them), the systemd units pass
//! `systemd-analyze verify`, `/metrics` passes `promtool check metrics`, the example
//! daemon.json loads, and `scripts/mkbusybox.sh` is deterministic.

// This file is an integration-test crate: every item in it is test code.
#![allow(clippy::tests_outside_test_module)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

#[path = "common/ledger.rs"]
mod ledger;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Whether `tool` can run; if not, the caller prints why and skips.
fn have(tool: &str) -> bool {
    Path::new(tool).is_file()
}

// ------------------------------------------------------------------------------------------
// PromQL metric names
// ------------------------------------------------------------------------------------------

/// Words of PromQL that look like identifiers but are not metric names.
const PROMQL_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
];

/// The metric names a PromQL expression selects. Label matchers (`{...}`), ranges
/// (`[...]`), strings, grouping label lists (`by (...)`), numbers, function names and
/// Grafana variables are not metric names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // After `by`, `without`, `on`, `ignoring`, `group_left` or `group_right`, the next
    // parenthesised group holds label names.
    let mut labels_follow = false;
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if labels_follow => {
                labels_follow = false;
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && is_part(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (is_part(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if is_start(c) => {
                let start = i;
                while i < chars.len() && is_part(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                // `sum(...)`, and also `sum by (...) (...)`: an aggregation, not a metric.
                let rest: String = chars[j..].iter().collect();
                let grouped = ["by", "without"].iter().any(|kw| {
                    rest.strip_prefix(kw)
                        .is_some_and(|after| !after.starts_with(is_part))
                });
                let call = (j < chars.len() && chars[j] == '(') || grouped;
                let lower = word.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    labels_follow = true;
                } else if !call && !PROMQL_KEYWORDS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// A histogram's series name without its `_bucket`, `_sum` or `_count` suffix, when the
/// base name is an exported family.
fn family(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if berth::metrics::EXPORTED.contains(&base) {
                return base;
            }
        }
    }
    name
}

/// Every panel, rows' nested panels included.
fn all_panels(panels: &[Value], out: &mut Vec<Value>) {
    for p in panels {
        out.push(p.clone());
        if let Some(nested) = p.get("panels").and_then(Value::as_array) {
            all_panels(nested, out);
        }
    }
}

#[test]
fn promql_names_are_extracted() {
    let expr = r#"histogram_quantile(0.99, sum by (le, actor) (rate(berth_actor_message_duration_seconds_bucket{job=~"$job", instance=~"a{b}"}[$__rate_interval]))) / on (instance) group_left (x) clamp_min(process_open_fds offset 5m, 1e-9) and bool time() - process_start_time_seconds"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "berth_actor_message_duration_seconds_bucket",
            "process_open_fds",
            "process_start_time_seconds"
        ]
    );
    assert_eq!(
        family("berth_actor_message_duration_seconds_bucket"),
        "berth_actor_message_duration_seconds"
    );
    assert_eq!(
        family("berth_api_requests_total"),
        "berth_api_requests_total"
    );
}

#[test]
fn dashboard_uses_exactly_the_exported_metrics() {
    let text = read("deploy/grafana/berth-dashboard.json");
    let dash: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert!(
        dash["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion {}",
        dash["schemaVersion"]
    );
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
        "no DS_PROMETHEUS datasource variable"
    );

    let mut panels = Vec::new();
    all_panels(dash["panels"].as_array().expect("panels"), &mut panels);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id in {title}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no targets");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: no metric in {expr}");
            for name in names {
                let fam = family(&name);
                assert!(
                    berth::metrics::EXPORTED.contains(&fam),
                    "{title}: {name} is not exported by berthd (expr {expr})"
                );
                used.insert(fam.to_owned());
            }
        }
    }
    for name in berth::metrics::EXPORTED {
        if name.starts_with("berth_") {
            assert!(used.contains(*name), "{name} is on no dashboard panel");
        }
    }
}

// ------------------------------------------------------------------------------------------
// systemd units
// ------------------------------------------------------------------------------------------

#[test]
fn systemd_units_verify() {
    let tool = "/usr/bin/systemd-analyze";
    let service = read("deploy/berthd.service");
    let socket = read("deploy/berthd.socket");
    // What the units promise, checked whether or not systemd-analyze is here.
    assert!(
        service.contains("\nType=notify\n"),
        "service is not Type=notify"
    );
    assert!(service.contains("\nExecStart=/usr/local/bin/berthd -H fd://\n"));
    assert!(service.contains("\nRequires=berthd.socket\n"));
    assert!(service.contains("\nKillMode=process\n"));
    assert!(service.contains("\nDelegate=yes\n"));
    let default_sock = match &berth::config::DaemonConfig::defaults().hosts[..] {
        [berth::config::HostAddr::Unix(p)] => p.display().to_string(),
        other => panic!("unexpected default hosts {other:?}"),
    };
    assert!(
        socket.contains(&format!("\nListenStream={default_sock}\n")),
        "the socket unit does not listen on berthd's default socket {default_sock}"
    );
    assert!(socket.contains("\nSocketMode=0660\n"));

    if !have(tool) {
        return ledger::skip(module_path!(), &format!("{tool} is not installed"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env!("CARGO_BIN_EXE_berthd");
    let service = service.replace(
        "ExecStart=/usr/local/bin/berthd ",
        &format!("ExecStart={exe} "),
    );
    assert!(service.contains(exe), "ExecStart was not rewritten");
    let service_path = dir.path().join("berthd.service");
    let socket_path = dir.path().join("berthd.socket");
    std::fs::write(&service_path, service).expect("write service");
    std::fs::write(&socket_path, socket).expect("write socket");
    let out = Command::new(tool)
        .arg("verify")
        .arg("--man=no")
        .arg(&socket_path)
        .arg(&service_path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Warnings about other units of this host are not ours; every line about ours fails.
    let ours: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains("berthd") || l.contains(&*dir.path().to_string_lossy()))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify failed ({}):\n{stdout}{stderr}",
        out.status
    );
}

// ------------------------------------------------------------------------------------------
// promtool
// ------------------------------------------------------------------------------------------

#[test]
fn metrics_pass_promtool() {
    let tool = "/usr/bin/promtool";
    let m = berth::metrics::metrics();
    // Touch each vector once so that every family has a sample.
    m.api_requests
        .with_label_values(&["GET", "/containers/json", "200"])
        .inc();
    m.api_latency
        .with_label_values(&["GET", "/containers/json"])
        .observe(0.002);
    m.containers.with_label_values(&["running"]).set(1);
    m.container_start
        .with_label_values(&["bridge"])
        .observe(0.2);
    m.actor_messages
        .with_label_values(&["exec", "StartContainer", "ok"])
        .inc();
    m.actor_latency
        .with_label_values(&["exec", "StartContainer"])
        .observe(0.01);
    m.actor_mailbox.with_label_values(&["exec"]).set(0);
    m.actor_up.with_label_values(&["exec"]).set(1);
    let text = berth::metrics::render();
    for name in berth::metrics::EXPORTED {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not rendered"
        );
    }

    if !have(tool) {
        return ledger::skip(module_path!(), &format!("{tool} is not installed"));
    }
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------------------------------------
// daemon.json
// ------------------------------------------------------------------------------------------

#[test]
fn example_daemon_json_loads() {
    let path = repo_file("deploy/daemon.json");
    let args = [
        "berthd".into(),
        "--config-file".into(),
        path.clone().into_os_string(),
    ];
    match berth::config::load(args) {
        Ok(berth::config::Loaded::Run(c)) => {
            assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
            assert_eq!(
                c.metrics_addr,
                Some("127.0.0.1:9323".parse().expect("addr"))
            );
            assert!(!c.live_restore);
        }
        Ok(other) => panic!("deploy/daemon.json: unexpected {other:?}"),
        Err(e) => panic!("deploy/daemon.json does not load: {e}"),
    }
}

// ------------------------------------------------------------------------------------------
// scripts/mkbusybox.sh
// ------------------------------------------------------------------------------------------

#[test]
fn mkbusybox_is_deterministic() {
    if !have("/bin/busybox") {
        return ledger::skip(
            module_path!(),
            "/bin/busybox is missing (apt-get install busybox-static)",
        );
    }
    let script = repo_file("scripts/mkbusybox.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let build = |name: &str| {
        let out = dir.path().join(name);
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("run mkbusybox.sh");
        assert!(status.success(), "mkbusybox.sh {name}: {status}");
        std::fs::read(&out).expect("read tarball")
    };
    let first = build("a.tar");
    let second = build("b.tar");
    assert!(first == second, "two builds differ");

    let mut archive = tar::Archive::new(&first[..]);
    let mut seen = BTreeSet::new();
    let mut passwd = String::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let h = entry.header();
        assert_eq!(h.uid().expect("uid"), 0, "{path}");
        assert_eq!(h.gid().expect("gid"), 0, "{path}");
        assert_eq!(h.mtime().expect("mtime"), 0, "{path}");
        if path.trim_end_matches('/') == "tmp" {
            assert_eq!(h.mode().expect("mode") & 0o7777, 0o1777, "tmp mode");
        }
        if path == "bin/sh" {
            assert_eq!(
                entry.link_name().expect("link").as_deref(),
                Some(Path::new("/bin/busybox"))
            );
        }
        if path == "etc/passwd" {
            std::io::Read::read_to_string(&mut entry, &mut passwd).expect("passwd");
        }
        seen.insert(path.trim_end_matches('/').to_owned());
    }
    for want in [
        "bin",
        "bin/busybox",
        "bin/sh",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/passwd",
        "etc/group",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "var",
        "home",
    ] {
        assert!(seen.contains(want), "{want} missing from the tarball");
    }
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"),
        "{passwd}"
    );
}

#[test]
fn mkbusybox_without_busybox_says_what_to_install() {
    let script = repo_file("scripts/mkbusybox.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir.path().join("x.tar"))
        .env("BUSYBOX", dir.path().join("no-busybox"))
        .output()
        .expect("run mkbusybox.sh");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("apt-get install busybox-static"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("x.tar").exists());
}
