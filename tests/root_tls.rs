//! The API over TLS (`--tls`, `--tlsverify`, issue 18 part 1) through the real docker CLI
//! and the Python SDK, with certificates the test makes (rcgen): a CA, the server's
//! certificate for 127.0.0.1, a client certificate from the CA and one from a foreign CA.
//! The TCP listener is on 127.0.0.1 only. Root only (berthd runs containers).
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Opts, TestDaemon, free_port};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A CA that signs certificates into directories laid out as DOCKER_CERT_PATH wants them.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`: a server certificate for
    /// 127.0.0.1 and localhost, or a client one.
    fn issue(&self, dir: &Path, server: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let names = if server {
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, if server { "berthd" } else { "client" });
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join("ca.pem"), self.issuer.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    }
}

/// A daemon on its unix socket and `tcp://127.0.0.1:PORT` with the server files of
/// `server_dir` and `mode` (`--tlsverify` or `--tls`).
fn tls_daemon(server_dir: &Path, mode: &str) -> (TestDaemon, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let file = |n: &str| server_dir.join(n).display().to_string();
    let d = TestDaemon::start_with(Opts {
        args: vec![
            "-H".into(),
            format!("tcp://{addr}"),
            mode.into(),
            "--tlscacert".into(),
            file("ca.pem"),
            "--tlscert".into(),
            file("cert.pem"),
            "--tlskey".into(),
            file("key.pem"),
        ],
        ..Opts::default()
    });
    (d, addr)
}

/// The docker CLI against `tcp://addr` with `tls_args` and DOCKER_CERT_PATH `certs`.
fn docker_tcp(addr: &str, certs: Option<&Path>, tls_args: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    cmd.env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CONTEXT")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("berth-tls-no-config"),
        )
        .arg("-H")
        .arg(format!("tcp://{addr}"))
        .args(tls_args)
        .args(args);
    match certs {
        Some(dir) => cmd.env("DOCKER_CERT_PATH", dir),
        None => cmd.env_remove("DOCKER_CERT_PATH"),
    };
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Certs {
    _dir: tempfile::TempDir,
    server: PathBuf,
    client: PathBuf,
    foreign: PathBuf,
}

fn certs() -> Certs {
    let dir = tempfile::Builder::new()
        .prefix("berth-tls.")
        .tempdir()
        .unwrap();
    let ca = Ca::new("berth test CA");
    let other = Ca::new("some other CA");
    let c = Certs {
        server: dir.path().join("server"),
        client: dir.path().join("client"),
        foreign: dir.path().join("foreign"),
        _dir: dir,
    };
    ca.issue(&c.server, true);
    ca.issue(&c.client, false);
    other.issue(&c.foreign, false);
    // The foreign client trusts the right CA (it reaches the server) but its own
    // certificate is not signed by it.
    std::fs::copy(c.client.join("ca.pem"), c.foreign.join("ca.pem")).unwrap();
    c
}

#[test]
fn tlsverify_serves_the_cli_with_a_client_certificate_of_the_ca_only() {
    require_root!();
    let c = certs();
    let (d, addr) = tls_daemon(&c.server, "--tlsverify");
    d.import_busybox();
    let ok = |args: &[&str]| {
        let o = docker_tcp(&addr, Some(&c.client), &["--tlsverify"], args);
        assert!(o.status.success(), "docker {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(ok(&["version", "--format", "{{.Server.Os}}"]), "linux");
    // A hijacked attach over TLS: the output comes back and the exit code too.
    assert_eq!(
        ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "over tls"
        ]),
        "over tls"
    );
    let o = docker_tcp(
        &addr,
        Some(&c.client),
        &["--tlsverify"],
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // stdin through the hijacked stream.
    let mut child = Command::new("docker")
        .env("DOCKER_CERT_PATH", &c.client)
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("berth-tls-no-config"),
        )
        .args(["-H", &format!("tcp://{addr}"), "--tlsverify"])
        .args(["run", "--rm", "-i", "--network", "none", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"through stdin\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");

    // A certificate from another CA, no certificate, and plain HTTP are all refused.
    let o = docker_tcp(&addr, Some(&c.foreign), &["--tlsverify"], &["version"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("Server:\n Engine"), "{}", text(&o));
    let o = docker_tcp(
        &addr,
        None,
        &[
            "--tls",
            "--tlscacert",
            &c.client.join("ca.pem").display().to_string(),
        ],
        &["info", "--format", "{{.ID}}"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let o = docker_tcp(&addr, None, &[], &["info", "--format", "{{.ID}}"]);
    assert!(!o.status.success(), "{}", text(&o));
    // berthd still serves afterwards.
    assert_eq!(ok(&["ps", "-aq"]), "");
}

#[test]
fn tls_without_verify_serves_any_client_over_tls() {
    require_root!();
    let c = certs();
    let (_d, addr) = tls_daemon(&c.server, "--tls");
    // No client certificate; the client checks the server against the CA.
    let ca = c.client.join("ca.pem").display().to_string();
    let o = docker_tcp(
        &addr,
        None,
        &[
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            "",
            "--tlskey",
            "",
        ],
        &["version", "--format", "{{.Server.Os}}"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "linux");
    // Plain HTTP is not served on a TLS port.
    let o = docker_tcp(&addr, None, &[], &["version"]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn the_python_sdk_over_tls() {
    require_root!();
    let c = certs();
    let (d, addr) = tls_daemon(&c.server, "--tlsverify");
    d.import_busybox();
    let f = |dir: &Path, n: &str| dir.join(n).display().to_string();
    let script = format!(
        r#"
import docker
tls = docker.tls.TLSConfig(client_cert=("{cert}", "{key}"), ca_cert="{ca}", verify=True)
c = docker.DockerClient(base_url="https://{addr}", tls=tls)
print(c.version()["Os"])
print(c.containers.run("busybox", ["echo", "sdk over tls"], remove=True, network_mode="none").decode().strip())
bad = docker.tls.TLSConfig(client_cert=("{fcert}", "{fkey}"), ca_cert="{ca}", verify=True)
try:
    docker.DockerClient(base_url="https://{addr}", tls=bad).version()
    print("foreign accepted")
except Exception:
    print("foreign refused")
"#,
        cert = f(&c.client, "cert.pem"),
        key = f(&c.client, "key.pem"),
        ca = f(&c.client, "ca.pem"),
        fcert = f(&c.foreign, "cert.pem"),
        fkey = f(&c.foreign, "key.pem"),
    );
    // requests lets these variables override the client's own CA (its known quirk).
    let out = Command::new("python3")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "linux\nsdk over tls\nforeign refused\n"
    );
}

/// `--group`: the unix socket's group (mode 0660 stays).
#[test]
fn the_unix_socket_gets_the_group() {
    require_root!();
    let d = TestDaemon::start_with(Opts {
        args: vec!["--group".into(), "daemon".into()],
        ..Opts::default()
    });
    let meta = std::fs::metadata(&d.sock).unwrap();
    use std::os::unix::fs::MetadataExt;
    let daemon_gid = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(meta.gid(), daemon_gid);
    assert_eq!(meta.mode() & 0o777, 0o660);
}
