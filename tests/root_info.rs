//! What `/info`, `/version` and the image views report, through the real docker CLI and
//! the Python SDK: every value measured or configured, every key dockerd prints. Root
//! only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use berth::model::complete::missing_keys;
use common::{Opts, TestDaemon, berthd_bin, busybox_tar};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/dockerd-20.10/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `git rev-parse --short=7 HEAD` of this checkout, if it is one.
fn checkout_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn info_lists_the_seccomp_filter_and_the_native_runtime() {
    require_root!();
    let d = TestDaemon::start();
    let security = d.docker_ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert_eq!(security.trim(), r#"["name=seccomp,profile=default"]"#);
    let runtimes = d.docker_ok(&["info", "--format", "{{.DefaultRuntime}} {{json .Runtimes}}"]);
    let berthd = std::fs::canonicalize(berthd_bin()).unwrap();
    assert_eq!(
        runtimes.trim(),
        format!(
            r#"native {{"native":{{"path":"{}","runtimeArgs":["monitor"]}}}}"#,
            berthd.display()
        )
    );
    // The ID is the one kept in the data root.
    let id = d.docker_ok(&["info", "--format", "{{.ID}}"]);
    let kept = std::fs::read_to_string(d.data_root.join("engine-id")).unwrap();
    assert_eq!(id.trim(), kept.trim());
    assert_eq!(id.trim().len(), 36, "{id}");
    // The CLI's own rendering still works, and shows what berthd does.
    let text = d.docker_ok(&["info"]);
    for line in [
        "Default Runtime: native",
        "  seccomp",
        "   Profile: default",
        "Cgroup Driver: cgroupfs",
        "Logging Driver: json-file",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    assert!(!text.contains("cgroupns"), "{text}");
    assert!(!text.contains("no-new-privileges"), "{text}");
    let warnings = d.docker(&["info"]);
    let stderr = String::from_utf8_lossy(&warnings.stderr);
    // The limit flags are the host's, measured: with memory.memsw (v1) berthd writes
    // --memory-swap, so dockerd's warning shows only on a host without it.
    let swap = d.docker_ok(&[
        "info",
        "--format",
        "{{.SwapLimit}} {{.CPUSet}} {{.OomKillDisable}}",
    ]);
    let v1 = |f: &str| {
        std::path::Path::new("/sys/fs/cgroup/memory")
            .join(f)
            .exists()
    };
    let v2 = !std::path::Path::new("/sys/fs/cgroup/memory").exists();
    if !v2 {
        let cpuset = std::path::Path::new("/sys/fs/cgroup/cpuset").exists();
        let expected = format!(
            "{} {} {}",
            v1("memory.memsw.limit_in_bytes"),
            cpuset,
            v1("memory.oom_control")
        );
        assert_eq!(swap.trim(), expected);
        assert_eq!(
            stderr.contains("WARNING: No swap limit support"),
            !v1("memory.memsw.limit_in_bytes"),
            "{stderr}"
        );
    }
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(
        stderr.contains("WARNING: IPv4 forwarding is disabled"),
        forwarding.trim() == "0",
        "{stderr}"
    );
    assert!(
        stderr.contains("WARNING: networking is disabled (-b none)"),
        "{stderr}"
    );
}

#[test]
fn version_reports_the_build_commit() {
    require_root!();
    let d = TestDaemon::start();
    let commit = d.docker_ok(&["version", "--format", "{{.Server.GitCommit}}"]);
    let commit = commit.trim();
    match checkout_commit() {
        // The build's source of the commit, not the environment's BERTH_GIT_COMMIT: cargo
        // test puts the built value there.
        Some(head) if env!("BERTH_GIT_COMMIT_FROM") != "env" => {
            assert_eq!(commit, head);
            assert_eq!(commit.len(), 7, "{commit}");
        }
        _ => skip_part!("the commit comparison: not a git checkout, or BERTH_GIT_COMMIT is set"),
    }
    let engine = d.docker_ok(&[
        "version",
        "--format",
        "{{range .Server.Components}}{{.Name}} {{index .Details \"GitCommit\"}}{{end}}",
    ]);
    assert_eq!(engine.trim(), format!("Engine {commit}"));
    let text = d.docker_ok(&["version"]);
    assert!(text.contains("Server: berth"), "{text}");
    assert!(text.contains("1.41 (minimum version 1.12)"), "{text}");
}

#[test]
fn image_inspect_names_the_driver_and_the_layer_dirs() {
    require_root!();
    let mut d = TestDaemon::start();
    let id = d.import_busybox();
    let driver = d.docker_ok(&["info", "--format", "{{.Driver}}"]);
    let driver = driver.trim().to_owned();
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.GraphDriver.Name}} {{json .GraphDriver.Data}}",
        "busybox",
    ]);
    let (name, data) = out.trim().split_once(' ').unwrap();
    assert_eq!(name, driver);
    let data: Value = serde_json::from_str(data).unwrap();
    match driver.as_str() {
        "overlay2" => {
            let upper = Path::new(data["UpperDir"].as_str().unwrap());
            assert!(upper.starts_with(d.data_root.join("overlay2")), "{data}");
            assert!(upper.join("bin/busybox").is_file(), "{data}");
            assert_eq!(data.as_object().unwrap().len(), 1, "one layer: {data}");
        }
        "vfs" => assert_eq!(data, Value::Null),
        other => panic!("unknown driver {other}"),
    }
    let fields = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}|{{.Comment}}|{{.Parent}}|{{.DockerVersion}}|{{json .Config.Cmd}}|{{json .ContainerConfig.Cmd}}|{{.RootFS.Type}} {{len .RootFS.Layers}}",
        "busybox",
    ]);
    assert_eq!(
        fields.trim(),
        format!("{id}|Imported from -|||[\"sh\"]|null|layers 1")
    );
    // The tag time is recorded, and kept across a restart.
    let tagged = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Metadata.LastTagTime}}",
        "busybox",
    ]);
    assert!(!tagged.starts_with("0001-01-01"), "{tagged}");
    // An untagged import is dockerd's dangling row in `docker images`.
    let untagged = d.docker_ok(&["import", busybox_tar().to_str().unwrap()]);
    let never = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Metadata.LastTagTime}} {{json .RepoTags}}",
        untagged.trim(),
    ]);
    assert_eq!(never.trim(), "0001-01-01 00:00:00 +0000 UTC []");
    let rows = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let short = |id: &str| id.trim().trim_start_matches("sha256:")[..12].to_owned();
    let mut rows: Vec<&str> = rows.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            format!("<none>:<none> {}", short(&untagged)),
            format!("busybox:latest {}", short(&id)),
        ]
    );
    d.stop();
    d.restart(&Opts::default());
    let again = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Metadata.LastTagTime}}",
        "busybox",
    ]);
    assert_eq!(again, tagged);
}

#[test]
fn the_python_sdk_reads_every_key_dockerd_prints() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "import json\n\
         print(json.dumps(c.info()))\n\
         print(json.dumps(c.version()))\n\
         print(json.dumps(c.images.get('busybox').attrs))\n\
         print(json.dumps(c.api.images()))\n",
    );
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let [info, version, image, images] = docs.as_slice() else {
        panic!("{out}");
    };
    // Members of maps are each daemon's own (runtimes, registries, driver dirs).
    let own = |k: &String| {
        !k.starts_with("Runtimes.")
            && !k.starts_with("RegistryConfig.IndexConfigs.")
            && !k.starts_with("GraphDriver.Data.")
    };
    let mut missing = missing_keys(info, &fixture("info.json"));
    missing.extend(missing_keys(image, &fixture("image-inspect.json")));
    missing.extend(missing_keys(images, &fixture("images.json")));
    // `omitempty` in dockerd, and empty in a build without SOURCE_DATE_EPOCH.
    missing.extend(
        missing_keys(version, &fixture("version.json"))
            .into_iter()
            .filter(|k| k != "BuildTime"),
    );
    missing.retain(own);
    assert_eq!(missing, Vec::<String>::new());
    assert_eq!(info["DefaultRuntime"], "native");
    assert_eq!(version["ApiVersion"], "1.41");
    assert_eq!(image["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(images[0]["RepoDigests"], Value::Null);
}
