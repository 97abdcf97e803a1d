//! `docker cp` (both ways) and `docker export` through the real docker CLI and the Python
//! SDK against a real berthd, on running and stopped containers, through symlinks and a
//! named volume; hostile tar streams sent raw. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestDaemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A raw request with a binary body on a fresh connection: the status and the reply.
fn raw_bytes(d: &TestDaemon, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{head} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let reply = text(&out);
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    (status, reply)
}

/// A tar entry whose name is written raw (the tar crate refuses `..` and `/`).
fn entry(out: &mut Vec<u8>, name: &str, typ: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(typ);
    h.set_mode(if typ.is_dir() { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_mtime(1_600_000_000);
    let u = h.as_ustar_mut().unwrap();
    u.name[..name.len()].copy_from_slice(name.as_bytes());
    u.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_of(entries: &[(&str, tar::EntryType, &str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, t, l, d) in entries {
        entry(&mut out, n, *t, l, d.as_bytes());
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// `docker export <c> | tar t`.
fn export_names(d: &TestDaemon, c: &str) -> Vec<String> {
    let mut docker = d
        .docker_cmd()
        .args(["export", c])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new("tar")
        .arg("t")
        .stdin(docker.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(docker.wait().unwrap().success(), "docker export {c}");
    assert!(out.status.success(), "tar t: {}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn cp_both_ways_on_running_and_stopped_containers() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("hostdir/sub")).unwrap();
    std::fs::write(host.join("hostfile"), "from the host\n").unwrap();
    std::fs::write(host.join("hostdir/sub/f"), "deep\n").unwrap();
    let hp = |p: &str| host.join(p).display().to_string();

    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "rc",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "exec",
        "rc",
        "sh",
        "-c",
        "echo hello > /hello && mkdir -p /d/sub && echo deep > /d/sub/f && ln -s /d /link \
         && ln -s /../../../../etc /esc",
    ]);
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "ec",
        "busybox",
        "sh",
        "-c",
        "echo made > /made && mkdir -p /dir/sub && echo x > /dir/sub/f",
    ]);

    // Out of a running container: a file, a dir, through symlinks.
    d.docker_ok(&["cp", "rc:/hello", &hp("hello")]);
    assert_eq!(read(&host.join("hello")), "hello\n");
    d.docker_ok(&["cp", "rc:/d", &hp("d")]);
    assert_eq!(read(&host.join("d/sub/f")), "deep\n");
    d.docker_ok(&["cp", "rc:/link/sub/f", &hp("via-link")]);
    assert_eq!(read(&host.join("via-link")), "deep\n");
    d.docker_ok(&["cp", "rc:/link", &hp("the-link")]);
    assert_eq!(
        std::fs::read_link(host.join("the-link")).unwrap(),
        Path::new("/d")
    );
    d.docker_ok(&["cp", "-L", "rc:/link", &hp("followed")]);
    assert_eq!(read(&host.join("followed/sub/f")), "deep\n");
    d.docker_ok(&["cp", "rc:/d/.", &hp("dot")]);
    assert_eq!(read(&host.join("dot/sub/f")), "deep\n");
    // A symlink that climbs and jumps to / stays in the container's root.
    d.docker_ok(&["cp", "rc:/esc/passwd", &hp("passwd")]);
    assert_eq!(
        read(&host.join("passwd")),
        d.docker_ok(&["exec", "rc", "cat", "/etc/passwd"])
    );
    assert!(read(&host.join("passwd")).contains("nobody:x:65534"));

    // Out of a stopped (exited) container.
    d.docker_ok(&["cp", "ec:/made", &hp("made")]);
    assert_eq!(read(&host.join("made")), "made\n");
    d.docker_ok(&["cp", "ec:/dir", &hp("dir")]);
    assert_eq!(read(&host.join("dir/sub/f")), "x\n");

    // Into a running container: a file, a dir, into a symlinked dir.
    d.docker_ok(&["cp", &hp("hostfile"), "rc:/in.txt"]);
    assert_eq!(
        d.docker_ok(&["exec", "rc", "cat", "/in.txt"]),
        "from the host\n"
    );
    d.docker_ok(&["cp", &hp("hostdir"), "rc:/indir"]);
    assert_eq!(
        d.docker_ok(&["exec", "rc", "cat", "/indir/sub/f"]),
        "deep\n"
    );
    d.docker_ok(&["cp", &hp("hostfile"), "rc:/link/"]);
    assert_eq!(
        d.docker_ok(&["exec", "rc", "cat", "/d/hostfile"]),
        "from the host\n"
    );

    // Into a stopped container, read back, and seen by a start.
    d.docker_ok(&["cp", &hp("hostfile"), "ec:/in.txt"]);
    d.docker_ok(&["cp", &hp("hostdir"), "ec:/indir"]);
    d.docker_ok(&["cp", "ec:/in.txt", &hp("back")]);
    assert_eq!(read(&host.join("back")), "from the host\n");
    d.docker_ok(&["cp", "ec:/indir/sub/f", &hp("back2")]);
    assert_eq!(read(&host.join("back2")), "deep\n");
    // A created container (set up ahead by its create) gets the file before its start.
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "sc",
        "busybox",
        "cat",
        "/in.txt",
    ]);
    d.docker_ok(&["cp", &hp("hostfile"), "sc:/in.txt"]);
    assert_eq!(d.docker_ok(&["start", "-a", "sc"]), "from the host\n");

    // copyUIDGID (`docker cp -a`): the container's user, from its own /etc/passwd.
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "uc",
        "--user",
        "nobody",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["cp", "-a", &hp("hostfile"), "uc:/tmp/owned"]);
    assert_eq!(
        d.docker_ok(&["exec", "uc", "stat", "-c", "%u:%g", "/tmp/owned"]),
        "65534:65534\n"
    );

    // A missing path: dockerd's text, exit 1.
    let out = d.docker(&["cp", "rc:/nope", &hp("nope")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Could not find the file /nope in container rc"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["cp", &hp("hostfile"), "ec:/nodir/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Could not find the file /nodir in container ec"),
        "{}",
        text(&out.stderr)
    );
    d.docker_ok(&["rm", "-f", "rc", "uc"]);
}

#[test]
fn cp_through_a_named_volume() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("one"), "one\n").unwrap();
    std::fs::write(host.join("two"), "two\n").unwrap();
    let hp = |p: &str| host.join(p).display().to_string();

    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "vc",
        "-v",
        "vol:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["cp", &hp("one"), "vc:/data/one"]);
    assert_eq!(d.docker_ok(&["exec", "vc", "cat", "/data/one"]), "one\n");
    d.docker_ok(&["kill", "vc"]);
    // Stopped: the volume is mounted for the copy.
    d.docker_ok(&["cp", &hp("two"), "vc:/data/two"]);
    d.docker_ok(&["cp", "vc:/data/one", &hp("one-back")]);
    assert_eq!(read(&host.join("one-back")), "one\n");
    let vol = d.data_root.join("volumes/vol/_data");
    assert_eq!(read(&vol.join("two")), "two\n");
    d.docker_ok(&["start", "vc"]);
    assert_eq!(d.docker_ok(&["exec", "vc", "cat", "/data/two"]), "two\n");

    // The export holds the layers only: the volume's files are not in it.
    let names = export_names(&d, "vc");
    assert!(names.iter().any(|n| n == "data/"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("data/one")),
        "{names:?}"
    );
    d.docker_ok(&["rm", "-f", "vc"]);
}

#[test]
fn export_lists_the_rootfs() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "xc",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["exec", "xc", "sh", "-c", "echo y > /added && rm /bin/ls"]);
    for c in ["running", "stopped"] {
        if c == "stopped" {
            d.docker_ok(&["kill", "xc"]);
        }
        let names = export_names(&d, "xc");
        for want in ["bin/busybox", "etc/passwd", "added", "proc/", "bin/"] {
            assert!(names.iter().any(|n| n == want), "{c}: {want} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "bin/ls"), "{c}: a deleted file");
        assert!(
            !names.iter().any(|n| n.starts_with("proc/") && n != "proc/"),
            "{c}: nothing of /proc"
        );
    }
}

#[test]
fn python_sdk_get_and_put_archive() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "pc",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = d.python_sdk_ok(
        r#"
import io, tarfile
ct = c.containers.get('pc')
bits, stat = ct.get_archive('/etc')
t = tarfile.open(fileobj=io.BytesIO(b''.join(bits)))
print(stat['name'], stat['mode'] & (1 << 31) != 0, 'etc/passwd' in t.getnames())
bits, stat = ct.get_archive('/etc/passwd')
print(stat['name'], stat['size'], stat['mode'])
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w') as t:
    data = b'from the sdk\n'
    info = tarfile.TarInfo('sdk.txt')
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
print(ct.put_archive('/tmp', buf.getvalue()))
print(ct.exec_run('cat /tmp/sdk.txt').output.decode(), end='')
try:
    ct.put_archive('/nonexistent', buf.getvalue())
except docker.errors.NotFound as e:
    print('404', e.explanation)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "etc True True", "{out}");
    let passwd_len = d.docker_ok(&["exec", "pc", "cat", "/etc/passwd"]).len();
    assert_eq!(lines[1], format!("passwd {passwd_len} 420"), "{out}");
    assert_eq!(lines[2], "True");
    assert_eq!(lines[3], "from the sdk");
    // The container as the client named it: the SDK sends the id.
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "pc"]);
    assert_eq!(
        lines[4],
        format!(
            "404 Could not find the file /nonexistent in container {}",
            id.trim()
        )
    );
    d.docker_ok(&["rm", "-f", "pc"]);
}

#[test]
fn hostile_tars_are_refused() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "hc",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["exec", "hc", "mkdir", "-p", "/tmp/dest/d"]);
    d.docker_ok(&["create", "--network", "none", "--name", "hs", "busybox"]);
    let marker = format!("berth-escape-{}", std::process::id());
    let host_tmp = Path::new("/tmp");
    use tar::EntryType as T;
    let up = format!("../../../../../../../../tmp/{marker}");
    let abs = format!("/tmp/{marker}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", tar_of(&[(&up, T::Regular, "", "xc")])),
        ("absolute", tar_of(&[(&abs, T::Regular, "", "xc")])),
        (
            "symlink escape",
            tar_of(&[("esc", T::Symlink, "../../../../../../tmp", "")]),
        ),
        (
            "symlinked parent",
            tar_of(&[
                ("up", T::Symlink, "/tmp", ""),
                (&format!("up/{marker}"), T::Regular, "", "xc"),
            ]),
        ),
        (
            "hard link out",
            tar_of(&[("hc", T::Link, "../../../../etc/passwd", "")]),
        ),
        ("device", tar_of(&[("null", T::Char, "", "")])),
    ];
    for (c, dest) in [("hc", "/tmp/dest"), ("hs", "/tmp")] {
        for (what, body) in &cases {
            let (status, reply) = raw_bytes(
                &d,
                &format!("PUT /v1.41/containers/{c}/archive?path={dest}"),
                body,
            );
            assert_eq!(status, 400, "{c} {what}: {reply}");
            assert!(reply.contains("Error processing tar file"), "{reply}");
        }
        assert!(!host_tmp.join(&marker).exists(), "{c}: written on the host");
    }
    let ls = d.docker_ok(&["exec", "hc", "ls", "-a", "/tmp", "/tmp/dest"]);
    assert!(!ls.contains(&marker), "{ls}");
    assert!(!ls.contains("esc") && !ls.contains("null"), "{ls}");
    // An entry before a refused one stays, as with dockerd (the symlink `up`, inside
    // the destination), but nothing under it.
    let stopped = export_names(&d, "hs");
    assert!(stopped.iter().any(|n| n == "tmp/up"), "{stopped:?}");
    assert!(
        !stopped
            .iter()
            .any(|n| n.contains(&marker) || n == "tmp/esc" || n == "tmp/null"),
        "{stopped:?}"
    );

    // dockerd's other refusals.
    let ok_tar = tar_of(&[("d", T::Regular, "", "xc")]);
    let (status, reply) = raw_bytes(
        &d,
        "PUT /v1.41/containers/hc/archive?path=/tmp/dest&noOverwriteDirNonDir=true",
        &ok_tar,
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("cannot overwrite directory"), "{reply}");
    let (status, reply) = raw_bytes(
        &d,
        "PUT /v1.41/containers/hc/archive?path=/etc/passwd",
        &ok_tar,
    );
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.contains("extraction point is not a directory"),
        "{reply}"
    );
    let (status, reply) = raw_bytes(&d, "PUT /v1.41/containers/hc/archive", &ok_tar);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.contains("bad parameter: path cannot be empty"),
        "{reply}"
    );
    let (status, reply) = raw_bytes(&d, "PUT /v1.41/containers/nosuch/archive?path=/", &ok_tar);
    assert_eq!(status, 404, "{reply}");
    assert!(reply.contains("No such container: nosuch"), "{reply}");
    d.docker_ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "ro",
        "--read-only",
        "busybox",
    ]);
    let (status, reply) = raw_bytes(&d, "PUT /v1.41/containers/ro/archive?path=/tmp", &ok_tar);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.contains("container rootfs is marked read-only"),
        "{reply}"
    );
    let (status, reply) = raw_bytes(&d, "HEAD /v1.41/containers/hc/archive?path=/nope", &[]);
    assert_eq!(status, 404, "{reply}");
    // Replaced without the flag, as dockerd.
    let (status, reply) = raw_bytes(
        &d,
        "PUT /v1.41/containers/hc/archive?path=/tmp/dest",
        &ok_tar,
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(d.docker_ok(&["exec", "hc", "cat", "/tmp/dest/d"]), "xc");
    d.docker_ok(&["rm", "-f", "hc"]);
}
