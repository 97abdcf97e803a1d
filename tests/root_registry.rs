//! Registries through the real docker CLI and the Python SDK against a real berthd and a
//! real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1: push, pull by
//! tag and by digest, a multi-platform index, a corrupted blob, a download cut half-way,
//! concurrent pulls and pushes, login with basic auth and with token auth (a token service
//! in Python signing with openssl), a mirror. Root only; without /usr/bin/docker-registry (scripts/deps.sh
//! installs it) each test prints why and skips.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Opts, TestDaemon, free_port};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

macro_rules! require_registry {
    () => {
        require_root!();
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!(
                "skipped: {REGISTRY_BIN} is missing (scripts/deps.sh installs docker-registry)"
            );
            return;
        }
    };
}

/// A registry on 127.0.0.1 with its own storage under a temp dir; killed (by pid) and
/// removed on drop.
struct Registry {
    dir: tempfile::TempDir,
    addr: String,
    child: Child,
    /// Files the registry reads (a password file, a certificate), removed with it.
    keep: Vec<tempfile::TempDir>,
}

impl Registry {
    /// Without `auth` anyone may pull and push; with it, htpasswd (bcrypt) basic auth.
    fn start(auth: Option<(&str, &str)>) -> Registry {
        let Some((user, pass)) = auth else {
            return Registry::start_configured("");
        };
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, pass])
            .output()
            .expect("run htpasswd (apache2-utils)");
        assert!(out.status.success());
        let keep = tempfile::Builder::new()
            .prefix("berth-htpasswd.")
            .tempdir()
            .unwrap();
        let file = keep.path().join("htpasswd");
        std::fs::write(&file, &out.stdout).unwrap();
        let mut reg = Registry::start_configured(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            file.display()
        ));
        reg.keep.push(keep);
        reg
    }

    /// A registry whose config ends with `extra` (an `auth:` section).
    fn start_configured(extra: &str) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry.")
            .tempdir()
            .unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        config.push_str(extra);
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            dir,
            addr,
            child,
            keep: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.get("/v2/", "").0 == 0 {
            assert!(
                Instant::now() < deadline,
                "registry not up in 10 s:\n{}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many times the blob `digest` was downloaded (GET, as the access log has it).
    fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest} ")))
            .count()
    }

    /// The file the registry keeps blob `digest` in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// A plain HTTP/1.0 GET: (status, body).
    fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        self.request("GET", path, &[("Accept", accept)], &[])
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let Ok(mut s) = TcpStream::connect(&self.addr) else {
            return (0, Vec::new());
        };
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            if !v.is_empty() {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        if s.write_all(req.as_bytes()).is_err() || s.write_all(body).is_err() {
            return (0, Vec::new());
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (0, Vec::new());
        };
        let head = String::from_utf8_lossy(&out[..end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, out[end + 4..].to_vec())
    }

    /// The schema 2 manifest of `repo:reference` as the registry stores it.
    fn manifest(&self, repo: &str, reference: &str) -> (Vec<u8>, serde_json::Value) {
        let (status, body) = self.get(
            &format!("/v2/{repo}/manifests/{reference}"),
            "application/vnd.docker.distribution.manifest.v2+json",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let doc = serde_json::from_slice(&body).unwrap();
        (body, doc)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sha256_of(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

fn image_id(d: &TestDaemon, reference: &str) -> String {
    d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", reference])
        .trim()
        .to_owned()
}

fn repo_digests(d: &TestDaemon, reference: &str) -> Vec<String> {
    let out = d.docker_ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", reference]);
    serde_json::from_str(out.trim()).unwrap()
}

/// The `TAG: digest: sha256:… size: N` line of a push's output.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.split_once(": digest: ")
                .map(|(_, r)| r.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap_or_else(|| panic!("no digest line in:\n{out}"))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn push_rmi_pull_by_tag_and_digest_then_run() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start_with(Opts {
        args: vec![
            "--registry-mirror".into(),
            format!("http://{}", reg.addr),
            "--insecure-registry".into(),
            "10.99.0.0/16".into(),
        ],
        ..Opts::default()
    });
    let id = d.import_busybox();
    let name = format!("{}/bb", reg.addr);
    d.docker_ok(&["tag", "busybox", &format!("{name}:1")]);
    let out = d.docker_ok(&["push", &format!("{name}:1")]);
    assert!(
        out.contains(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    let (raw, _) = reg.manifest("bb", "1");
    assert_eq!(
        sha256_of(&raw),
        digest,
        "the registry has the manifest pushed"
    );
    assert_eq!(repo_digests(&d, "busybox"), [format!("{name}@{digest}")]);
    // Again: the registry has every blob.
    let out = d.docker_ok(&["push", &format!("{name}:1")]);
    assert!(out.contains("Layer already exists"), "{out}");
    assert_eq!(pushed_digest(&out), digest);

    d.docker_ok(&["rmi", &format!("{name}:1"), "busybox"]);
    assert!(!d.docker(&["image", "inspect", &id]).status.success());
    let out = d.docker_ok(&["pull", &format!("{name}:1")]);
    for want in [
        "1: Pulling from bb",
        "Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {name}:1"),
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    // The same config: the same image id.
    assert_eq!(image_id(&d, &format!("{name}:1")), id);
    assert_eq!(
        repo_digests(&d, &format!("{name}:1")),
        [format!("{name}@{digest}")]
    );
    let out = d.docker_ok(&["pull", &format!("{name}:1")]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}:1")),
        "{out}"
    );

    // By digest: no tag, the digest in RepoDigests, and it runs.
    d.docker_ok(&["rmi", &format!("{name}:1")]);
    let by_digest = format!("{name}@{digest}");
    let out = d.docker_ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    assert_eq!(image_id(&d, &by_digest), id);
    let listed = d.docker_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert_eq!(listed.trim(), format!("{name} <none> {digest}"));
    let hi = d.docker_ok(&["run", "--rm", "--network", "none", &by_digest, "echo", "hi"]);
    assert_eq!(hi.trim(), "hi");
    // A digest names the image: not pruned as dangling (dockerd's rule).
    d.docker_ok(&["image", "prune", "-f"]);
    assert_eq!(image_id(&d, &by_digest), id);
    let out = d.docker_ok(&["rmi", &by_digest]);
    assert!(out.contains(&format!("Untagged: {by_digest}")), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    d.docker_ok(&["pull", &by_digest]);
    let missing = d.docker(&["pull", &format!("{name}:nope")]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains(&format!(
            "manifest for {name}:nope not found: manifest unknown"
        )),
        "{}",
        text(&missing.stderr)
    );

    // Every tag at once.
    d.docker_ok(&["tag", &by_digest, &format!("{name}:2")]);
    d.docker_ok(&["push", &format!("{name}:2")]);
    d.docker_ok(&["rmi", "-f", &id]);
    let out = d.docker_ok(&["pull", "--all-tags", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(image_id(&d, &format!("{name}:1")), id);
    assert_eq!(image_id(&d, &format!("{name}:2")), id);

    // A Docker Hub name comes from the mirror.
    d.docker_ok(&[
        "tag",
        &by_digest,
        &format!("{}/library/mirrored:2", reg.addr),
    ]);
    let out = d.docker_ok(&["push", &format!("{}/library/mirrored:2", reg.addr)]);
    // The layer pulled from bb is mounted, not uploaded again.
    assert!(out.contains("Mounted from bb"), "{out}");
    d.docker_ok(&["rmi", "-f", &id]);
    let out = d.docker_ok(&["pull", "mirrored:2"]);
    assert!(
        out.contains("Status: Downloaded newer image for mirrored:2"),
        "{out}"
    );
    assert_eq!(image_id(&d, "mirrored:2"), id);

    let events = d.events_so_far(&["type=image"], "{{.Action}} {{.ID}}");
    assert!(events.contains(&format!("push {name}:1")), "{events}");
    assert!(events.contains(&format!("pull {name}:1")), "{events}");
    assert!(events.contains("pull mirrored:2"), "{events}");
}

#[test]
fn a_multi_platform_index_pulls_this_hosts_manifest() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start();
    let id_a = d.import_busybox();
    let tar = common::busybox_tar();
    let id_b = d
        .docker_ok(&[
            "import",
            "-c",
            "ENV OTHER=1",
            tar.to_str().unwrap(),
            "other:1",
        ])
        .trim()
        .to_owned();
    assert_ne!(id_a, id_b);
    let name = format!("{}/mp", reg.addr);
    d.docker_ok(&["tag", "busybox", &format!("{name}:a")]);
    d.docker_ok(&["tag", "other:1", &format!("{name}:b")]);
    d.docker_ok(&["push", &format!("{name}:a")]);
    d.docker_ok(&["push", &format!("{name}:b")]);
    let (raw_a, _) = reg.manifest("mp", "a");
    let (raw_b, _) = reg.manifest("mp", "b");
    let entry = |raw: &[u8], arch: &str, variant: Option<&str>| {
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        serde_json::json!({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": sha256_of(raw),
            "size": raw.len(),
            "platform": platform,
        })
    };
    let other_arch = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            entry(&raw_b, other_arch, (other_arch == "arm64").then_some("v8")),
            entry(&raw_a, host_arch(), None),
        ],
    }))
    .unwrap();
    let (status, body) = reg.request(
        "PUT",
        "/v2/mp/manifests/multi",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &index,
    );
    assert_eq!(status, 201, "{}", text(&body));
    d.docker_ok(&["rmi", "-f", &id_a, &id_b]);

    let out = d.docker_ok(&["pull", &format!("{name}:multi")]);
    assert!(
        out.contains(&format!("Digest: {}", sha256_of(&index))),
        "{out}"
    );
    assert_eq!(image_id(&d, &format!("{name}:multi")), id_a);
    assert_eq!(
        repo_digests(&d, &format!("{name}:multi")),
        [format!("{name}@{}", sha256_of(&index))]
    );
    let out = d.docker_ok(&[
        "pull",
        "--platform",
        &format!("linux/{other_arch}"),
        &format!("{name}:multi"),
    ]);
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(image_id(&d, &format!("{name}:multi")), id_b);
    let none = d.docker(&[
        "pull",
        "--platform",
        "linux/s390x",
        &format!("{name}:multi"),
    ]);
    assert!(!none.status.success());
    assert!(
        text(&none.stderr)
            .contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        text(&none.stderr)
    );
}

#[test]
fn a_corrupted_blob_fails_the_pull_and_leaves_no_image() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start();
    let id = d.import_busybox();
    let name = format!("{}/bad", reg.addr);
    d.docker_ok(&["tag", "busybox", &format!("{name}:1")]);
    d.docker_ok(&["push", &format!("{name}:1")]);
    let (_, m) = reg.manifest("bad", "1");
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_owned();
    // Same size, other bytes.
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(&file, &bytes).unwrap();
    d.docker_ok(&["rmi", "-f", &id]);

    let out = d.docker(&["pull", &format!("{name}:1")]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains(&format!(
            "filesystem layer verification failed for digest {layer}"
        )),
        "{all}"
    );
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    assert!(
        !d.docker(&["image", "inspect", &format!("{name}:1")])
            .status
            .success()
    );
    // A digest that does not match is not downloaded again.
    assert_eq!(reg.blob_gets(&layer), 1, "{}", reg.log());
    let work = d.data_root.join("image/overlay2/tmp/pull");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "blobs left behind: {left:?}");
    // The layer extracted while it downloaded is gone too (its `<id>-tmp` dir removed
    // before the pull answered; nothing of it was made a layer).
    let staged: Vec<_> = std::fs::read_dir(d.data_root.join("overlay2"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with("-tmp"))
                .collect()
        })
        .unwrap_or_default();
    assert!(staged.is_empty(), "staged layers left behind: {staged:?}");
    let layers = d.data_root.join("image/overlay2/layerdb/sha256");
    let made = std::fs::read_dir(&layers).map_or(0, |r| r.flatten().count());
    assert_eq!(made, 0, "layers recorded after a failed pull");
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start();
    d.import_busybox();
    // A second image over busybox, with a layer of 8 MB that does not compress.
    d.docker_ok(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "head -c 8000000 /dev/urandom > /big",
    ]);
    let two = format!("{}/two:1", reg.addr);
    let one = format!("{}/one:1", reg.addr);
    d.docker_ok(&["commit", "big", &two]);
    d.docker_ok(&["rm", "big"]);
    d.docker_ok(&["tag", "busybox", &one]);
    // Two pushes of one image at once upload each blob once.
    let pushes: Vec<_> = (0..2)
        .map(|_| {
            d.docker_cmd()
                .args(["push", two.as_str()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pushes {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("1: digest: sha256:"));
    }
    let uploads = reg
        .log()
        .lines()
        .filter(|l| l.contains("\"PUT /v2/two/blobs/uploads/"))
        .count();
    assert_eq!(
        uploads,
        3,
        "config and two layers, once each:\n{}",
        reg.log()
    );
    d.docker_ok(&["push", &one]);
    let (_, m_two) = reg.manifest("two", "1");
    let (_, m_one) = reg.manifest("one", "1");
    let mut blobs: Vec<String> = vec![m_two["config"]["digest"].as_str().unwrap().to_owned()];
    for l in m_two["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_owned());
    }
    assert_eq!(blobs.len(), 3);
    assert_eq!(
        m_one["layers"][0]["digest"], m_two["layers"][0]["digest"],
        "the two images share their base layer"
    );
    d.docker_ok(&["rmi", &two, &one, "busybox"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");

    let pulls: Vec<_> = [&two, &two, &one]
        .iter()
        .map(|r| {
            d.docker_cmd()
                .args(["pull", r.as_str()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    for b in &blobs {
        assert_eq!(reg.blob_gets(b), 1, "blob {b} downloaded other than once");
    }
    let hi = d.docker_ok(&["run", "--rm", "--network", "none", &two, "ls", "-l", "/big"]);
    assert!(hi.contains("8000000"), "{hi}");
    assert_eq!(d.docker_ok(&["images", "-q"]).lines().count(), 2);
}

#[test]
fn login_and_pull_push_with_basic_auth() {
    require_registry!();
    let reg = Registry::start(Some(("alice", "s3cret")));
    let d = TestDaemon::start();
    let id = d.import_busybox();
    let name = format!("{}/private:1", reg.addr);
    d.docker_ok(&["tag", "busybox", &name]);

    let denied = d.docker(&["push", &name]);
    assert!(!denied.status.success());
    assert!(
        text(&denied.stdout).contains("unauthorized")
            || text(&denied.stderr).contains("unauthorized"),
        "{}{}",
        text(&denied.stdout),
        text(&denied.stderr)
    );
    let wrong = d.docker(&["login", &reg.addr, "-u", "alice", "-p", "wrong"]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("401 Unauthorized"),
        "{}",
        text(&wrong.stderr)
    );
    let mut login = d
        .docker_cmd()
        .args(["login", &reg.addr, "-u", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Login Succeeded"));

    d.docker_ok(&["push", &name]);
    d.docker_ok(&["rmi", "-f", &id]);
    d.docker_ok(&["pull", &name]);
    assert_eq!(image_id(&d, &name), id);

    d.docker_ok(&["logout", &reg.addr]);
    d.docker_ok(&["rmi", &name]);
    let out = d.docker(&["pull", &name]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("pull access denied"),
        "{}",
        text(&out.stderr)
    );
    // The Python SDK's login: POST /auth, a 401 it raises on a wrong password.
    let out = d.python_sdk_ok(&format!(
        r#"
import docker.errors
try:
    c.login(username='alice', password='wrong', registry='{addr}', reauth=True)
    raise SystemExit('a wrong password logged in')
except docker.errors.APIError as e:
    assert e.status_code == 401, e
print(c.login(username='alice', password='s3cret', registry='{addr}', reauth=True)['Status'])
"#,
        addr = reg.addr
    ));
    assert_eq!(out.trim(), "Login Succeeded");
    let search = d.docker(&["search", "busybox"]);
    assert!(!search.status.success());
    assert!(
        text(&search.stderr).contains("berthd does not search registries"),
        "{}",
        text(&search.stderr)
    );
}

#[test]
fn python_sdk_pulls_and_pushes() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start();
    let id = d.import_busybox();
    let out = d.python_sdk_ok(&format!(
        r#"
repo = '{addr}/py'
c.images.get('busybox').tag(repo, 'v1')
lines = list(c.images.push(repo, tag='v1', stream=True, decode=True))
assert any('aux' in l and l['aux']['Tag'] == 'v1' for l in lines), lines
assert not any('error' in l for l in lines), lines
c.images.remove(repo + ':v1')
c.images.remove('busybox')
img = c.images.pull(repo, tag='v1')
print(img.id)
print(img.attrs['RepoDigests'][0])
"#,
        addr = reg.addr
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), id);
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(&format!("{}/py@sha256:", reg.addr)),
        "{out}"
    );
}

/// A TCP proxy to `target` that cuts, once, the connection that downloads blob `digest`
/// after 64 KiB of the answer: a download that breaks half-way, as a network does.
fn flaky_proxy(target: String, digest: String) -> String {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut_done = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            // Set once this connection has asked for the blob (the first time only).
            let cutting = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (cut_up, done_up, digest_up) = (cutting.clone(), cut_done.clone(), digest.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let seen = String::from_utf8_lossy(&buf[..n]);
                    if seen.contains(&format!("/blobs/{digest_up}"))
                        && !done_up.swap(true, Ordering::SeqCst)
                    {
                        cut_up.store(true, Ordering::SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                let mut after_cut = 0usize;
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if cutting.load(Ordering::SeqCst) {
                        after_cut += n;
                        if after_cut > 64 * 1024 {
                            let _ = c_out.shutdown(std::net::Shutdown::Both);
                            let _ = s_in.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[test]
fn a_download_cut_half_way_is_retried() {
    require_registry!();
    let reg = Registry::start(None);
    let d = TestDaemon::start();
    let id = d.import_busybox();
    d.docker_ok(&["tag", "busybox", &format!("{}/flaky:1", reg.addr)]);
    d.docker_ok(&["push", &format!("{}/flaky:1", reg.addr)]);
    let (_, m) = reg.manifest("flaky", "1");
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_owned();
    d.docker_ok(&["rmi", "-f", &id]);

    let proxy = flaky_proxy(reg.addr.clone(), layer.clone());
    let name = format!("{proxy}/flaky:1");
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(image_id(&d, &name), id);
    assert_eq!(
        reg.blob_gets(&layer),
        2,
        "one cut, one whole:\n{}",
        reg.log()
    );
    assert!(
        d.log().contains("blob download failed"),
        "the cut download is logged"
    );
}

/// A token service (distribution's token auth) for `registry`: a Python HTTP server that
/// grants what is asked to `user:pass` (basic auth) and nothing to anyone else, signing
/// RS256 JWTs with `key.pem` (`openssl dgst`), its certificate in the `x5c` header.
struct TokenServer {
    child: Child,
    realm: String,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN_SERVER: &str = r#"
import base64, http.server, json, subprocess, sys, time, urllib.parse
port, key, cert, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
der = "".join(l for l in open(cert).read().splitlines() if "-----" not in l)
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        access = []
        if auth:
            given = base64.b64decode(auth.split(" ", 1)[1]).decode()
            if given != user + ":" + password:
                self.send_response(401); self.end_headers(); self.wfile.write(b'{"details":"bad credentials"}'); return
            for s in q.get("scope", []):
                for one in s.split(" "):
                    t, name, actions = one.split(":")
                    access.append({"type": t, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        head = {"typ": "JWT", "alg": "RS256", "x5c": [der]}
        claims = {"iss": "berth-issuer", "sub": user if auth else "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(time.time_ns()), "access": access}
        signing = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(), capture_output=True, check=True).stdout
        token = signing + "." + b64(sig)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H).serve_forever()
"#;

impl Registry {
    /// A registry with token auth, and its token service.
    fn start_with_tokens(user: &str, pass: &str) -> (Registry, TokenServer) {
        let dir = tempfile::Builder::new()
            .prefix("berth-token.")
            .tempdir()
            .unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=berth-token", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl req");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-c", TOKEN_SERVER, &port.to_string()])
            .arg(&key)
            .arg(&cert)
            .args([user, pass])
            .spawn()
            .unwrap();
        let realm = format!("http://127.0.0.1:{port}/token");
        let tokens = TokenServer { child, realm };
        let mut reg = Registry::start_configured(&format!(
            "auth:\n  token:\n    realm: {}\n    service: berth-registry\n    issuer: berth-issuer\n    rootcertbundle: {}\n",
            tokens.realm,
            cert.display()
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
            assert!(Instant::now() < deadline, "token server not up");
            std::thread::sleep(Duration::from_millis(20));
        }
        reg.keep.push(dir);
        (reg, tokens)
    }
}

#[test]
fn token_auth_login_push_and_pull() {
    require_registry!();
    let (reg, _tokens) = Registry::start_with_tokens("bob", "t0ken");
    let d = TestDaemon::start();
    let id = d.import_busybox();
    let name = format!("{}/tok:1", reg.addr);
    d.docker_ok(&["tag", "busybox", &name]);
    let wrong = d.docker(&["login", &reg.addr, "-u", "bob", "-p", "nope"]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("401 Unauthorized"),
        "{}",
        text(&wrong.stderr)
    );
    let out = d.docker_ok(&["login", &reg.addr, "-u", "bob", "-p", "t0ken"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    d.docker_ok(&["push", &name]);
    d.docker_ok(&["rmi", "-f", &id]);
    d.docker_ok(&["pull", &name]);
    assert_eq!(image_id(&d, &name), id);
    d.docker_ok(&["logout", &reg.addr]);
    d.docker_ok(&["rmi", &name]);
    let denied = d.docker(&["pull", &name]);
    assert!(!denied.status.success());
    assert!(
        text(&denied.stderr).contains("pull access denied"),
        "{}",
        text(&denied.stderr)
    );
}
