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
