//! Images through the real docker CLI and the Python SDK against a real berthd: `docker
//! tag` and `docker rmi` (untag versus delete, dockerd's conflicts for containers that use
//! an image, -f). Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use common::TestDaemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tags(d: &TestDaemon, reference: &str) -> Vec<String> {
    let out = d.docker_ok(&["image", "inspect", "-f", "{{json .RepoTags}}", reference]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn tag_and_rmi_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    let id = d.import_busybox();
    let short = &id[7..19];

    d.docker_ok(&["tag", "busybox", "mine:1"]);
    d.docker_ok(&["tag", short, "docker.io/library/other"]);
    d.docker_ok(&["image", "tag", "mine:1", "localhost:5000/team/app:v2"]);
    assert_eq!(
        tags(&d, "busybox"),
        [
            "busybox:latest",
            "localhost:5000/team/app:v2",
            "mine:1",
            "other:latest"
        ]
    );
    let listed = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(listed.lines().all(|l| l.ends_with(short)), "{listed}");

    // Errors as dockerd words them.
    let out = d.docker(&["tag", "nosuch", "x"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such image: nosuch:latest"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["rmi", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No such image: nosuch"));

    // A name: only untagged while others remain.
    let out = d.docker_ok(&["rmi", "mine:1"]);
    assert_eq!(out.trim(), "Untagged: mine:1");
    // An id with several tags: must be forced.
    let out = d.docker(&["rmi", short]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{}",
        text(&out.stderr)
    );

    // A container holds its image.
    d.docker_ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let cid = d.docker_ok(&["inspect", "-f", "{{.Id}}", "user"]);
    let cshort = &cid.trim()[..12];
    let out = d.docker(&["rmi", short]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("(must be forced)"), "{err}");
    d.docker_ok(&["rmi", "other", "localhost:5000/team/app:v2"]);
    let out = d.docker(&["rmi", "busybox"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container {cshort} is using its referenced image {short}"
        )),
        "{}",
        text(&out.stderr)
    );
    // Running: not even -f deletes it by id.
    d.docker_ok(&["start", "user"]);
    d.docker_ok(&["wait", "user"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "runner",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    let out = d.docker(&["rmi", "-f", short]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("(cannot be forced) - image is being used by running container"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["rm", "-f", "runner"]);
    // -f with a stopped container: untagged and deleted; the container keeps its files.
    let out = d.docker_ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    d.docker_ok(&["start", "user"]);
    assert_eq!(d.docker_ok(&["wait", "user"]).trim(), "0");
    d.docker_ok(&["rm", "user"]);

    // A fresh import deletes cleanly, layer and all, and the daemon restarts clean.
    let id = d.import_busybox();
    let out = d.docker_ok(&["rmi", "busybox"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: busybox:latest");
    assert_eq!(lines[1], format!("Deleted: {id}"));
    assert_eq!(lines.len(), 3, "the image and its layer: {out}");
}

#[test]
fn python_sdk_tags_and_removes() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "img = c.images.get('busybox')\n\
         assert img.tag('sdk/app', tag='7')\n\
         print(sorted(c.images.get('sdk/app:7').tags))\n\
         c.images.remove('sdk/app:7')\n\
         c.images.remove('busybox')\n\
         print(len(c.images.list()))\n",
    );
    assert_eq!(out, "['busybox:latest', 'sdk/app:7']\n0\n");
}

fn inspect_json(d: &TestDaemon, what: &[&str]) -> serde_json::Value {
    let mut args = vec!["inspect"];
    args.extend_from_slice(what);
    let out = d.docker_ok(&args);
    serde_json::from_str(&out).unwrap()
}

fn volumes(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .docker_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn volumes_and_mounts_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        d.docker_ok(&all)
    };

    // A named volume: created, labelled, inspected as dockerd prints it.
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "team=a", "data"])
            .trim(),
        "data"
    );
    let v = inspect_json(&d, &["--type", "volume", "data"]);
    let v = &v[0];
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::json!({"team": "a"}));
    let mountpoint = v["Mountpoint"].as_str().unwrap().to_owned();
    assert!(mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");
    assert_eq!(
        d.docker_ok(&["volume", "ls", "-q", "--filter", "label=team=a"])
            .trim(),
        "data"
    );
    let out = d.docker(&["volume", "create", "a/b"]);
    assert!(text(&out.stderr).contains("includes invalid characters for a local volume name"));

    // Data lives on across containers; ro is read-only.
    run(&[
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f",
    ]);
    assert_eq!(
        run(&["-v", "data:/data:ro", "busybox", "cat", "/data/f"]),
        "hi\n"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data:ro",
        "busybox",
        "touch",
        "/data/g",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(),
        "hi\n"
    );

    // A new named volume is filled from the image (and sits under /etc/hosts).
    let out = run(&[
        "-v",
        "etc:/etc",
        "busybox",
        "sh",
        "-c",
        "head -1 /etc/passwd; grep -c localhost /etc/hosts",
    ]);
    assert!(out.starts_with("root:"), "{out}");
    let etc = inspect_json(&d, &["--type", "volume", "etc"]);
    let etc_dir = etc[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&etc_dir).join("passwd").is_file());
    // nocopy: left empty.
    assert_eq!(
        run(&[
            "-v",
            "empty:/etc:nocopy",
            "busybox",
            "/bin/ls",
            "-A",
            "/etc"
        ]),
        "hostname\nhosts\nresolv.conf\n"
    );

    // In use: no removal; Mounts as dockerd shows them.
    d.docker_ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "data:/data",
        "-v",
        "/scratch",
        "busybox",
        "true",
    ]);
    let out = d.docker(&["volume", "rm", "data"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("remove data: volume is in use - ["),
        "{}",
        text(&out.stderr)
    );
    let c = inspect_json(&d, &["user"]);
    let mounts = c[0]["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let data = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    assert_eq!(data["Type"], "volume");
    assert_eq!(data["Name"], "data");
    assert_eq!(data["Mode"], "z");
    assert_eq!(data["RW"], true);
    let anon = mounts
        .iter()
        .find(|m| m["Destination"] == "/scratch")
        .unwrap();
    let anon_name = anon["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon_name.len(), 64);
    assert!(volumes(&d).contains(&anon_name));
    // --volumes-from, read-only.
    let out = run(&[
        "--volumes-from",
        "user:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/x || echo ro",
    ]);
    assert!(out.starts_with("hi\n") && out.ends_with("ro\n"), "{out}");
    // An unknown container is a 404 (which the CLI, as with dockerd, takes for a missing
    // image and tries to pull).
    let out = d.docker(&["create", "--volumes-from", "nosuch", "busybox", "true"]);
    assert!(!out.status.success());
    // rm -v: the anonymous volume goes, the named one stays.
    d.docker_ok(&["rm", "-v", "user"]);
    let vols = volumes(&d);
    assert!(
        !vols.contains(&anon_name) && vols.contains(&"data".to_owned()),
        "{vols:?}"
    );
    // --rm takes its anonymous volumes along.
    run(&["-v", "/tmpvol", "busybox", "true"]);
    assert_eq!(volumes(&d), ["data", "empty", "etc"]);

    // --mount of each type, --tmpfs.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host\n").unwrap();
    let bind = format!("type=bind,src={},dst=/b,readonly", host.path().display());
    let out = run(&[
        "--mount",
        &bind,
        "--mount",
        "type=volume,src=mvol,dst=/m,volume-label=k=v",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=1770",
        "--tmpfs",
        "/run:size=2m,exec",
        "busybox",
        "sh",
        "-c",
        "cat /b/h; touch /b/x 2>/dev/null || echo robind; grep -E ' /(t|run) ' /proc/mounts",
    ]);
    assert!(out.starts_with("host\nrobind\n"), "{out}");
    let t = out.lines().find(|l| l.contains(" /t ")).unwrap();
    assert!(
        t.contains("size=1024k") && t.contains("mode=1770") && t.contains("noexec"),
        "{t}"
    );
    let r = out.lines().find(|l| l.contains(" /run ")).unwrap();
    assert!(r.contains("size=2048k") && !r.contains("noexec"), "{r}");
    let m = inspect_json(&d, &["--type", "volume", "mvol"]);
    assert_eq!(m[0]["Labels"], serde_json::json!({"k": "v"}));
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=bind,src=/nonexistent-berth,dst=/x",
        "busybox",
        "true",
    ]);
    assert!(
        text(&out.stderr).contains("invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth"),
        "{}",
        text(&out.stderr)
    );

    // An image's VOLUME: an anonymous volume, filled from the image.
    let tar = common::busybox_tar();
    d.docker_ok(&[
        "import",
        "-c",
        "VOLUME /etc",
        tar.to_str().unwrap(),
        "withvol",
    ]);
    let out = run(&[
        "withvol",
        "sh",
        "-c",
        "head -1 /etc/group; grep -c ' /etc ' /proc/mounts",
    ]);
    assert!(out.starts_with("root:") && out.ends_with("1\n"), "{out}");

    // Prune: what no container uses.
    let out = d.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(volumes(&d).is_empty(), "{:?}", volumes(&d));
}

#[test]
fn python_sdk_volumes() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let out = d.python_sdk_ok(
        "v = c.volumes.create('sdkvol', labels={'a': 'b'})\n\
         print(v.name, c.volumes.get('sdkvol').attrs['Labels'])\n\
         out = c.containers.run('busybox', 'sh -c \"echo x > /d/f; cat /d/f\"', volumes={'sdkvol': {'bind': '/d', 'mode': 'rw'}}, network_mode='none', remove=True)\n\
         print(out.decode().strip())\n\
         print([x.name for x in c.volumes.list()])\n\
         v.remove()\n\
         print(len(c.volumes.list()))\n",
    );
    assert_eq!(out, "sdkvol {'a': 'b'}\nx\n['sdkvol']\n0\n");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(if name.ends_with('/') { 0o755 } else { 0o644 });
        h.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A three-layer docker-archive: busybox, then a layer adding files, then one with a
/// whiteout, an opaque directory and a changed file; its second layer is named through a
/// symlink, as old archives do. Returns the archive and the image id.
fn three_layer_archive() -> (Vec<u8>, String) {
    three_layer_archive_with(0)
}

/// As [`three_layer_archive`], with `mib` MiB of random files in the second layer.
fn three_layer_archive_with(mib: usize) -> (Vec<u8>, String) {
    let l1 = std::fs::read(common::busybox_tar()).unwrap();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..mib {
        let data: Vec<u8> = (0..1 << 20)
            .map(|j: usize| (j.wrapping_mul(2654435761) >> 13) as u8 ^ i as u8)
            .collect();
        blobs.push((format!("opt/blob{i}"), data));
    }
    let mut l2_entries: Vec<(&str, &[u8])> = vec![("etc/motd", b"one\n"), ("home/a", b"a")];
    for (n, b) in &blobs {
        l2_entries.push((n.as_str(), b.as_slice()));
    }
    let l2 = tar_of(&l2_entries);
    let l3 = tar_of(&[
        ("etc/.wh.group", b""),
        ("home/.wh..wh..opq", b""),
        ("home/b", b"b"),
        ("etc/motd", b"two\n"),
    ]);
    let diff: Vec<String> = [&l1, &l2, &l3]
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff},
    }))
    .unwrap();
    let id = format!("sha256:{}", sha256_hex(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "cfg.json",
        "RepoTags": ["multi:1"],
        "Layers": ["l1/layer.tar", "l2link/layer.tar", "l3/layer.tar"],
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("l1/layer.tar", &l1);
    add("l2/layer.tar", &l2);
    add("l3/layer.tar", &l3);
    add("cfg.json", &config);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "l2link/layer.tar", "../l2/layer.tar")
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", manifest.as_slice())
        .unwrap();
    (b.into_inner().unwrap(), id)
}

fn docker_with_stdin(d: &TestDaemon, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = d
        .docker_cmd()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn save_and_load_round_trip_ids_and_tags() {
    require_root!();
    let d = TestDaemon::start();
    let id = d.import_busybox();
    d.docker_ok(&["tag", "busybox", "mine:2"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("both.tar");
    d.docker_ok(&["save", "-o", file.to_str().unwrap(), "busybox", "mine:2"]);
    // Every blob's name is its digest; the manifest names both tags.
    let bytes = std::fs::read(&file).unwrap();
    let mut ar = tar::Archive::new(bytes.as_slice());
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            assert_eq!(sha256_hex(&data), hex, "{path}");
        }
        names.push(path);
    }
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }
    d.docker_ok(&["rmi", "busybox", "mine:2"]);
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    let out = d.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(out.contains("Loaded image: mine:2"), "{out}");
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "mine:2"])
            .trim(),
        id
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "mine:2", "echo", "ok"]),
        "ok\n"
    );

    // A three-layer archive from stdin: whiteouts and an opaque dir as layers stack.
    let (archive, multi_id) = three_layer_archive();
    let out = docker_with_stdin(&d, &["load"], &archive);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Loaded image: multi:1"));
    let inspect = inspect_json(&d, &["multi:1"]);
    assert_eq!(inspect[0]["Id"], multi_id);
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "multi:1",
        "sh",
        "-c",
        "cat /etc/motd; ls /etc/group 2>/dev/null || echo gone; ls /home",
    ]);
    assert_eq!(out, "two\ngone\nb\n");
    // Saved and loaded again: the same id, layer by layer.
    let saved = d.docker(&["save", "multi"]);
    assert!(saved.status.success());
    d.docker_ok(&["rmi", "multi:1"]);
    let out = docker_with_stdin(&d, &["load", "-q"], &saved.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "multi:1"])
            .trim(),
        multi_id
    );
    // Loading what is there already changes nothing.
    let out = docker_with_stdin(&d, &["load"], &archive);
    assert!(out.status.success());

    // Bad archives: refused, nothing left behind.
    d.docker_ok(&["rmi", "multi:1"]);
    let before = d.docker_ok(&["images", "-q", "--no-trunc"]);
    let mut hostile = archive.clone();
    // A layer whose content is not what the config says.
    let (good, _) = three_layer_archive();
    let pos = good.windows(4).position(|w| w == b"two\n").unwrap();
    hostile[pos] = b'T';
    let out = docker_with_stdin(&d, &["load"], &hostile);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not the sha256:"),
        "{}",
        text(&out.stderr)
    );
    // A path that leaves the archive (written raw: the tar crate refuses to).
    let evil = {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..7].copy_from_slice(b"../evil");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let out = docker_with_stdin(&d, &["load"], &evil);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("invalid archive"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(d.docker_ok(&["images", "-q", "--no-trunc"]), before);
    let out = d.docker(&["save", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such image: nosuch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn diff_commit_and_history_as_dockerd() {
    require_root!();
    let d = TestDaemon::start();
    let base = d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "cc",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile; rm /bin/true; mkdir -p /root/d; echo x >> /etc/group",
    ]);
    let diff = d.docker_ok(&["diff", "cc"]);
    // (/etc itself is unchanged: a file in it changed, none was added or removed.)
    for want in [
        "A /newfile",
        "C /root",
        "A /root/d",
        "C /bin",
        "D /bin/true",
        "C /etc/group",
    ] {
        assert!(diff.lines().any(|l| l == want), "{want} in {diff}");
    }
    assert!(!diff.contains("/etc/hosts"), "{diff}");

    let id = d.docker_ok(&[
        "commit",
        "-m",
        "msg",
        "-a",
        "me",
        "-c",
        "ENV X=1",
        "-c",
        "CMD [\"cat\", \"/newfile\"]",
        "cc",
        "committed:1",
    ]);
    let id = id.trim().to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "committed:1"]),
        "data\n"
    );
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:1",
        "sh",
        "-c",
        "echo $X; ls /bin/true 2>/dev/null || echo gone; tail -1 /etc/group",
    ]);
    assert_eq!(out, "1\ngone\nx\n");
    let inspect = inspect_json(&d, &["committed:1"]);
    assert_eq!(inspect[0]["Author"], "me");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // History: the commit's step, then the parent's, with ids and tags.
    let h = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "committed:1",
    ]);
    let rows: Vec<&str> = h.lines().collect();
    assert_eq!(rows.len(), 2, "{h}");
    assert!(rows[0].starts_with(&format!("{id}|sh -c echo data")), "{h}");
    assert!(rows[0].ends_with("|msg"), "{h}");
    assert_eq!(rows[1], format!("{base}||Imported from -"));

    // The parent has a child now: its name is untagged, the image stays.
    d.docker_ok(&["rm", "cc"]);
    let out = d.docker_ok(&["rmi", "busybox"]);
    assert_eq!(out.trim(), "Untagged: busybox:latest");
    let out = d.docker(&["rmi", &base]);
    assert!(
        text(&out.stderr).contains("image has dependent child images"),
        "{}",
        text(&out.stderr)
    );

    // A commit of a running container, paused meanwhile, and of one without changes.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--network",
        "none",
        "committed:1",
        "sleep",
        "100",
    ]);
    d.docker_ok(&["commit", "rr", "running:1"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "rr"])
            .trim(),
        "running"
    );
    let l = inspect_json(&d, &["running:1"]);
    assert_eq!(
        l[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        2,
        "no changes, no layer"
    );
    d.docker_ok(&["rm", "-f", "rr"]);

    // Saved and loaded again: the same id.
    let saved = d.docker(&["save", "committed:1"]);
    assert!(saved.status.success());
    d.docker_ok(&["rmi", "running:1", "committed:1"]);
    let out = docker_with_stdin(&d, &["load"], &saved.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "committed:1"])
            .trim(),
        id
    );
}

#[test]
fn image_prune_and_system_df() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let tar = common::busybox_tar();
    // An untagged image (dangling), and one with a label.
    let dangling = d
        .docker_ok(&["import", tar.to_str().unwrap()])
        .trim()
        .to_owned();
    d.docker_ok(&[
        "import",
        "-c",
        "LABEL keep=yes",
        tar.to_str().unwrap(),
        "labelled",
    ]);
    d.docker_ok(&[
        "run",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "dfvol:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 1048576 /dev/zero > /big; head -c 2048 /dev/zero > /data/f",
    ]);

    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ]);
    assert!(df.contains("Images|3|1"), "{df}");
    assert!(df.contains("Containers|1|0"), "{df}");
    assert!(df.contains("Local Volumes|1|1"), "{df}");
    let v = d.docker_ok(&["system", "df", "-v"]);
    assert!(v.contains("dfvol"), "{v}");
    assert!(v.contains("1.05MB"), "the container's 1 MiB: {v}");

    // Dangling only by default; -a everything unused; label! keeps the labelled one.
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = d.docker_ok(&["image", "prune", "-a", "-f", "--filter", "until=24h"]);
    assert!(!out.contains("deleted:"), "nothing is a day old: {out}");
    let out = d.docker_ok(&["image", "prune", "-a", "-f", "--filter", "label!=keep"]);
    assert!(!out.contains("labelled"), "{out}");
    assert_eq!(
        d.docker_ok(&["images", "-q"]).lines().count(),
        2,
        "busybox is in use"
    );
    d.docker_ok(&["rm", "user"]);
    let out = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: busybox:latest") && out.contains("untagged: labelled:latest"),
        "{out}"
    );
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    let out = d.docker(&["image", "prune", "-f", "--filter", "until=soon"]);
    assert!(!out.status.success());
}

/// The layer dirs and layer metadata of the daemon's graph, sorted.
fn graph_entries(d: &TestDaemon) -> Vec<String> {
    let data = d.data_root.clone();
    let driver = if data.join("overlay2").is_dir() {
        "overlay2"
    } else {
        "vfs"
    };
    let mut out = Vec::new();
    for (label, dir) in [
        ("dir", data.join(driver)),
        (
            "meta",
            data.join("image").join(driver).join("layerdb/sha256"),
        ),
        (
            "image",
            data.join("image")
                .join(driver)
                .join("imagedb/content/sha256"),
        ),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            out.push(format!("{label}:{}", e.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

/// Kills berthd with SIGKILL as soon as `busy` says the operation is under way (or once
/// it finished), restarts it, and returns whether the kill came in time.
fn crash_during(
    d: &mut TestDaemon,
    mut op: std::process::Child,
    busy: impl Fn(&TestDaemon) -> bool,
) -> bool {
    let t0 = std::time::Instant::now();
    let mut hit = false;
    while t0.elapsed() < std::time::Duration::from_secs(60) {
        if busy(d) {
            hit = true;
            break;
        }
        if op.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    d.kill();
    let _ = op.wait();
    d.restart(&common::Opts::default());
    hit
}

#[test]
fn a_crash_during_a_load_or_a_commit_leaves_nothing_half_made() {
    require_root!();
    let mut d = TestDaemon::start();
    d.import_busybox();
    let clean = graph_entries(&d);
    let dir = tempfile::tempdir().unwrap();
    // A load of three layers, killed while the archive is unpacked or its layers made.
    let (archive, _) = three_layer_archive_with(24);
    let file = dir.path().join("big.tar");
    std::fs::write(&file, &archive).unwrap();
    for _ in 0..3 {
        let op = d
            .docker_cmd()
            .args(["load", "-i", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let data = d.data_root.clone();
        let hit = crash_during(&mut d, op, |_| {
            std::fs::read_dir(data.join("image"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.path().join("tmp").exists())
        });
        // Whatever the kill interrupted, a complete image or nothing: once it is removed
        // the graph is as before.
        let _ = d.docker(&["rmi", "multi:1"]);
        assert_eq!(
            graph_entries(&d),
            clean,
            "a load killed (in time: {hit}) left something"
        );
    }
    d.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    d.docker_ok(&["rmi", "multi:1"]);

    // A commit of 48 MiB of changes, killed while its layer is made.
    d.docker_ok(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "head -c 50331648 /dev/urandom > /big",
    ]);
    let with_container = graph_entries(&d);
    let op = d
        .docker_cmd()
        .args(["commit", "big", "bigimg"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let before = with_container.len();
    let hit = crash_during(&mut d, op, |d| graph_entries(d).len() > before);
    let _ = d.docker(&["rmi", "bigimg"]);
    assert_eq!(
        graph_entries(&d),
        with_container,
        "a commit killed (in time: {hit}) left something"
    );
    // The container and its changes are intact, and a commit now works.
    d.docker_ok(&["commit", "big", "bigimg"]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bigimg",
        "sh",
        "-c",
        "wc -c < /big",
    ]);
    assert_eq!(out.trim(), "50331648");
}

#[test]
fn export_then_import_gives_the_containers_files() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--name",
        "ex",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept; rm /etc/group",
    ]);
    let exported = d.docker(&["export", "ex"]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let out = docker_with_stdin(&d, &["import", "-", "flat:1"], &exported.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "flat:1",
        "/bin/sh",
        "-c",
        "cat /kept; ls /etc/group 2>/dev/null || echo gone",
    ]);
    assert_eq!(out, "kept\ngone\n");
}
