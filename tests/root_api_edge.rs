//! The HTTP edge of a real berthd: hijacked attach on a later request of a keep-alive
//! connection (raw, and through the Python SDK's pooled connections), and a seeded
//! generator of garbage requests that must each get a complete answer (4xx for garbage)
//! while the daemon keeps serving. Root only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::TestDaemon;

/// One HTTP response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The server said it closes the connection after this response.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads from `s` into `buf` until `buf` holds `want` bytes; an early EOF is an error.
fn fill(s: &mut UnixStream, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF after {} of {want} bytes", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads one complete response (the head, then the body by its framing). `pending` holds
/// bytes already read past the previous response. `head_request`: no body follows.
fn read_response(
    s: &mut UnixStream,
    pending: &mut Vec<u8>,
    head_request: bool,
) -> io::Result<Response> {
    let head = loop {
        let end = loop {
            if let Some(p) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let want = pending.len() + 1;
            fill(s, pending, want)?;
        };
        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
        pending.drain(..end);
        // An interim `100 Continue` comes before the response.
        if !head.starts_with("HTTP/1.1 100 ") {
            break head;
        }
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_request || status == 101 || status == 204 || status == 304 || status < 200 {
        return Ok(r);
    }
    if let Some(len) = r.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
        fill(s, pending, len)?;
        r.body = pending.drain(..len).collect();
    } else if r
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let line_end = loop {
                if let Some(p) = pending.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                let want = pending.len() + 1;
                fill(s, pending, want)?;
            };
            let line = String::from_utf8_lossy(&pending[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            pending.drain(..line_end + 2);
            fill(s, pending, size + 2)?;
            r.body.extend(pending.drain(..size));
            pending.drain(..2);
            if size == 0 {
                break;
            }
        }
    } else {
        // Until the server closes.
        s.read_to_end(pending)?;
        r.body = std::mem::take(pending);
    }
    Ok(r)
}

fn connect(d: &TestDaemon) -> UnixStream {
    let s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

const PING: &[u8] = b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n";

/// Docker's stdcopy frames: (stream, payload) pairs.
fn stdcopy(mut raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        out.push((raw[0], raw[8..8 + len].to_vec()));
        raw = &raw[8 + len..];
    }
    assert!(raw.is_empty(), "a partial frame is left: {raw:?}");
    out
}

#[test]
fn attach_on_a_later_request_of_a_keep_alive_connection_gets_101() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    let id = d
        .docker_ok(&[
            "create",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ])
        .trim()
        .to_owned();
    let mut s = connect(&d);
    let mut pending = Vec::new();
    s.write_all(PING).unwrap();
    let r = read_response(&mut s, &mut pending, false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]));
    // A refused attach keeps the connection: the next request on it is served.
    s.write_all(b"POST /v1.41/containers/nosuch/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending, false).unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.body).contains("No such container: nosuch"),
        "{r:?}"
    );
    s.write_all(PING).unwrap();
    let r = read_response(&mut s, &mut pending, false).unwrap();
    assert_eq!(r.status, 200);
    // Now the attach itself, on the same connection.
    let attach = format!(
        "POST /v1.41/containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n"
    );
    s.write_all(attach.as_bytes()).unwrap();
    let r = read_response(&mut s, &mut pending, false).unwrap();
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("upgrade"), Some("tcp"));
    d.docker_ok(&["start", &id]);
    s.read_to_end(&mut pending).unwrap();
    let mut frames = stdcopy(&pending);
    frames.sort();
    assert_eq!(
        frames,
        vec![(1, b"out\n".to_vec()), (2, b"err\n".to_vec())],
        "{:?}",
        String::from_utf8_lossy(&pending)
    );
}

#[test]
fn the_python_sdk_attaches_over_its_pooled_connection() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    // docker-py keeps a pool of connections per URL (its adapter keys them by the whole
    // request URL, query included), so a hijack goes over a used connection only when the
    // same URL was asked before on a connection that was kept: here a first
    // `attach_socket` by name is refused (no such container yet), its connection goes
    // back to the pool, and the same attach after the create reuses it. (`attach()`
    // inspects the container after its POST and leaves a refused reply unread, so its
    // connection is never reused.) The count of connects shows the reuse.
    let text = d.python_sdk_ok(
        r#"
import docker.transport.unixconn as unixconn
from docker.utils.socket import frames_iter
connects = [0]
connect = unixconn.UnixHTTPConnection.connect
def counting(self):
    connects[0] += 1
    return connect(self)
unixconn.UnixHTTPConnection.connect = counting
params = {'stdout': 1, 'stderr': 1, 'stream': 1}
try:
    c.api.attach_socket('late', params=params)
    print('attached')
except docker.errors.NotFound:
    print('refused')
ct = c.containers.create('busybox', ['sh', '-c', 'echo out; echo err >&2'], network_mode='none', name='late')
before = connects[0]
sock = c.api.attach_socket('late', params=params)
print(connects[0] - before)
ct.start()
print(sorted((s, d.decode().strip()) for s, d in frames_iter(sock, False)))
print(ct.wait()['StatusCode'])
"#,
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["refused", "0", "[(1, 'out'), (2, 'err')]", "0"],
        "{text}"
    );
}

#[test]
fn the_input_that_panicked_the_connection_layer_gets_a_4xx() {
    require_root!();
    let d = TestDaemon::start();
    let mut s = connect(&d);
    s.write_all(b"POST /v1.41/containers/%a\xc3\xa9/attach?stream=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), false).unwrap();
    assert!((400..500).contains(&r.status), "{r:?}");
    assert!(d.ping());
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid() as i32), None).is_ok());
}

/// Pieces that path segments are made of: mostly names a route may know...
const SEGMENT_PIECES: &[&[u8]] = &[
    b"abc",
    b"fuzzme",
    b"fuzzme",
    b"busybox",
    b"busybox:latest",
    b"sha256:",
    b"..",
    b".",
    b"%41",
    b"%2F",
    b"%2e%2E",
    b"%C3%A9",
    b"x",
    b"~",
    b"-",
];

/// ...and sometimes odd bytes: broken escapes, raw multi-byte and invalid UTF-8, bytes
/// that must be escaped.
const ODD_PIECES: &[&[u8]] = &[
    b"%00",
    b"%",
    b"%a",
    b"%zz",
    b"%+1",
    b"%e9",
    "\u{e9}".as_bytes(),
    b"\xc3",
    b"\xff\xfe",
    "\u{1F980}".as_bytes(),
    b"+",
    b"{",
    b"\"",
    b"#",
    b";",
    b"\\",
    b"|",
    b"^",
];

/// The routes, each with the method it is served on.
const TEMPLATES: &[(&str, &str)] = &[
    ("GET", "/_ping"),
    ("HEAD", "/_ping"),
    ("GET", "/version"),
    ("GET", "/info"),
    ("GET", "/containers/json"),
    ("POST", "/containers/create"),
    ("POST", "/containers/create"),
    ("POST", "/containers/create"),
    ("GET", "/containers/{id}/json"),
    ("POST", "/containers/{id}/start"),
    ("POST", "/containers/{id}/stop"),
    ("POST", "/containers/{id}/restart"),
    ("POST", "/containers/{id}/kill"),
    ("POST", "/containers/{id}/wait"),
    ("POST", "/containers/{id}/resize"),
    ("GET", "/containers/{id}/logs"),
    ("POST", "/containers/{id}/attach"),
    ("POST", "/containers/{id}/attach"),
    ("DELETE", "/containers/{id}"),
    ("POST", "/exec/{id}/start"),
    ("GET", "/images/json"),
    ("POST", "/images/create"),
    ("GET", "/images/{id}/json"),
    ("GET", "/{id}"),
    ("GET", "/nope/{id}/x"),
    ("GET", ""),
];

const VERSIONS: &[&str] = &[
    "",
    "",
    "",
    "/v1.41",
    "/v1.41",
    "/v1.41",
    "/v1.24",
    "/v1.12",
    "/v1.11",
    "/v1.42",
    "/v1.99999999999999999999",
    "/v99999999999999999999.1",
    "/v4294967296.0",
    "/v1.",
    "/v.1",
    "/v1.4x",
    "/v1.41.1",
    "/vv",
    "/v-1.2",
    "/v+1.41",
];

/// Methods other than the route's.
const METHODS: &[&str] = &[
    "GET", "POST", "DELETE", "HEAD", "PUT", "OPTIONS", "PATCH", "get", "TRACE", "BREW", "CONNECT",
];

const QUERY_KEYS: &[&str] = &[
    "all",
    "limit",
    "filters",
    "size",
    "stream",
    "stdin",
    "stdout",
    "stderr",
    "logs",
    "t",
    "timeout",
    "signal",
    "condition",
    "h",
    "w",
    "force",
    "v",
    "link",
    "tail",
    "follow",
    "since",
    "until",
    "timestamps",
    "name",
    "fromSrc",
    // Not `fromImage`: a pull reaches out to a registry (Docker Hub for a bare name),
    // whose absence is a 500 as with dockerd; root_registry tests pulls.
    "repo",
    "tag",
    "changes",
    "message",
    "x%zz",
];

const QUERY_VALUES: &[&str] = &[
    "",
    "1",
    "0",
    "true",
    "False",
    "yes",
    "-1",
    "-99999999999999999999",
    "99999999999999999999",
    "1e400",
    "NaN",
    "%zz",
    "%",
    "%7B",
    "{",
    "%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D",
    "%7B%22status%22%3A5%7D",
    "%5B%5D",
    "SIGKILL",
    "KILL",
    "65",
    "not-running",
    "next-exit",
    "removed",
    "bogus",
    "-",
    "http%3A%2F%2Fx",
    "busybox",
    "a+b",
    "%C3%A9",
    "all",
    "ENV%20A%3D1",
];

/// Create bodies of the wrong shapes.
fn bodies(rng: &mut StdRng) -> Vec<u8> {
    const FIXED: &[&str] = &[
        "",
        "{}",
        "[]",
        "\"x\"",
        "5",
        "null",
        "true",
        "{\"HostConfig\": 5}",
        "{\"HostConfig\": []}",
        "{\"HostConfig\": {\"Memory\": \"x\"}}",
        "{\"HostConfig\": {\"Binds\": 5}}",
        "{\"Cmd\": {}}",
        "{\"Cmd\": [1, 2]}",
        "{\"Image\": 5}",
        "{\"Image\": \"busybox\", \"Cmd\": 5}",
        "{\"Image\": \"busybox\", \"Env\": [1]}",
        "{\"Image\": \"busybox\", \"Labels\": []}",
        "{\"Image\": \"busybox\", \"ExposedPorts\": \"80\"}",
        "{\"Image\": \"busybox\", \"NetworkingConfig\": 7}",
        "{\"Image\": \"busybox\", \"StopTimeout\": \"x\"}",
        "{\"Image\": \"nosuch\"}",
        "{\"Image\": \"bus",
        "{\"Image\": \"busybox\",",
        "{\"Image\": \"\\ud800\"}",
        "{\"Detach\": false, \"Tty\": false}",
        // Valid ones (the daemon runs with -b none).
        "{\"Image\": \"busybox\", \"HostConfig\": {\"NetworkMode\": \"none\"}}",
        "{\"Image\": \"busybox\", \"Cmd\": [\"true\"], \"HostConfig\": {\"NetworkMode\": \"none\"}}",
        "{\"Image\": \"busybox\", \"HostConfig\": {\"NetworkMode\": \"none\", \"Memory\": -1}}",
    ];
    match rng.random_range(0..10) {
        0 => {
            // Deep nesting.
            let depth = rng.random_range(100..20_000);
            let mut b = "[".repeat(depth);
            b.push_str(&"]".repeat(depth));
            b.into_bytes()
        }
        1 => {
            let depth = rng.random_range(100..5_000);
            let mut b = "{\"a\":".repeat(depth);
            b.push('1');
            b.push_str(&"}".repeat(depth));
            b.into_bytes()
        }
        2 => (0..rng.random_range(1..200))
            .map(|_| rng.random::<u8>())
            .collect(),
        _ => FIXED[rng.random_range(0..FIXED.len())].as_bytes().to_vec(),
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// One generated request: its bytes, and whether it is a HEAD request (no body back).
fn generate(rng: &mut StdRng) -> (Vec<u8>, bool) {
    let (route_method, template) = *pick(rng, TEMPLATES);
    let method = if rng.random_bool(0.8) {
        route_method
    } else {
        *pick(rng, METHODS)
    };
    let mut target = pick(rng, VERSIONS).as_bytes().to_vec();
    let (before, after) = template.split_once("{id}").unwrap_or((template, ""));
    target.extend_from_slice(before.as_bytes());
    if template.contains("{id}") {
        let segment: Vec<u8> = (0..rng.random_range(1..4))
            .flat_map(|_| {
                let pieces = if rng.random_bool(0.2) {
                    ODD_PIECES
                } else {
                    SEGMENT_PIECES
                };
                pick(rng, pieces).to_vec()
            })
            .collect();
        // No container is attached to or waited for: the answer would wait for its
        // start or its exit. (Generated creates name containers too, so the id of these
        // routes never names one.)
        if template.ends_with("/attach") || template.ends_with("/wait") {
            target.extend_from_slice(b"nosuch");
        }
        target.extend_from_slice(&segment);
    }
    target.extend_from_slice(after.as_bytes());
    if target.is_empty() {
        target.push(b'/');
    }
    if rng.random_bool(0.6) {
        target.push(b'?');
        for i in 0..rng.random_range(1..5) {
            if i > 0 {
                target.push(b'&');
            }
            target.extend_from_slice(pick(rng, QUERY_KEYS).as_bytes());
            if rng.random_bool(0.9) {
                target.push(b'=');
                target.extend_from_slice(pick(rng, QUERY_VALUES).as_bytes());
            }
        }
        // `follow` on a running container would stream until it exits.
        if target.windows(6).any(|w| w == b"follow") {
            target.extend_from_slice(b"&follow=0");
        }
    }
    let mut req = format!("{method} ").into_bytes();
    req.extend_from_slice(&target);
    req.extend_from_slice(b" HTTP/1.1\r\n");
    if rng.random_bool(0.95) {
        req.extend_from_slice(b"Host: berth\r\n");
    }
    if rng.random_bool(0.2) {
        req.extend_from_slice(b"Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    match rng.random_range(0..60) {
        0 => req.extend_from_slice(b"X-Odd: a\x01b\r\n"),
        1 => req.extend_from_slice(b"Bad Header: 1\r\n"),
        2 => req.extend_from_slice("X-Utf8: \u{e9}\r\n".as_bytes()),
        3 => req.extend_from_slice(b"Expect: 100-continue\r\n"),
        _ => {}
    }
    let body = if method == "POST" && (template.ends_with("create") || rng.random_bool(0.2))
        || rng.random_bool(0.05)
    {
        bodies(rng)
    } else {
        Vec::new()
    };
    if !body.is_empty() || rng.random_bool(0.3) {
        req.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    match rng.random_range(0..60) {
        0 => req.extend_from_slice(b"Content-Length: abc\r\n\r\n"),
        1 => {
            req.extend_from_slice(
                format!(
                    "Content-Length: {}\r\nContent-Length: {}\r\n\r\n",
                    body.len(),
                    body.len() + 1
                )
                .as_bytes(),
            );
            req.extend_from_slice(&body);
        }
        2..=5 => {
            req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for part in body.chunks(rng.random_range(1..64)) {
                req.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
                req.extend_from_slice(part);
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
        }
        _ => {
            if !body.is_empty() || rng.random_bool(0.5) {
                req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(&body);
        }
    }
    (req, method == "HEAD")
}

/// Sends `req` on a fresh connection and reads the answer; when the connection stays
/// open, a ping on it must be answered too (the framing held).
fn exchange(d: &TestDaemon, req: &[u8], head: bool) -> Result<u16, String> {
    let mut s = connect(d);
    // The server may answer and close before it has read a body it refuses.
    let _ = s.write_all(req);
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending, head).map_err(|e| format!("no answer: {e}"))?;
    if r.status == 101 {
        return Err("a garbage request was hijacked".into());
    }
    if !r.closes() && s.write_all(PING).is_ok() {
        match read_response(&mut s, &mut pending, false) {
            Ok(p) if p.status == 200 && p.body == b"OK" => {}
            Ok(p) => return Err(format!("the next request got {p:?}")),
            // The server may drop a connection it will not reuse (actix closes one
            // whose request body it did not read); the ping is then sent anew.
            Err(_) if !pending.is_empty() => {
                return Err(format!(
                    "garbage after the response: {:?}",
                    String::from_utf8_lossy(&pending)
                ));
            }
            Err(_) => {}
        }
    }
    Ok(r.status)
}

#[test]
fn every_garbage_request_gets_an_answer_and_the_daemon_keeps_serving() {
    require_root!();
    let d = TestDaemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "create",
        "--name",
        "fuzzme",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let cases: usize = std::env::var("BERTH_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    eprintln!("fuzz seed {seed} ({cases} cases; BERTH_FUZZ_SEED={seed} replays them)");
    let verbose = std::env::var_os("BERTH_FUZZ_VERBOSE").is_some();
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..cases {
        let (req, head) = generate(&mut rng);
        let shown = String::from_utf8_lossy(&req[..req.len().min(600)]).into_owned();
        match exchange(&d, &req, head) {
            // 501 is berthd's "not supported yet"; every other 5xx is a failure.
            Ok(status) if status < 500 || status == 501 => {
                *statuses.entry(status).or_insert(0) += 1;
                if verbose {
                    eprintln!("{status} {shown:?}");
                }
            }
            Ok(status) => panic!(
                "case {i} (seed {seed}) got {status} for:\n{shown:?}\ndaemon log tail:\n{}",
                common::tail(&d.log(), 20)
            ),
            Err(e) => panic!(
                "case {i} (seed {seed}): {e} for:\n{shown:?}\ndaemon log tail:\n{}",
                common::tail(&d.log(), 20)
            ),
        }
    }
    eprintln!(
        "{cases} cases in {:.1} s; statuses {statuses:?}",
        started.elapsed().as_secs_f64()
    );
    // A body above the 4 MiB JSON limit.
    let big = vec![b' '; (4 << 20) + 1];
    let mut req = format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    assert_eq!(exchange(&d, &req, false), Ok(413));
    // Huge and malformed versions.
    for (target, want) in [
        ("/v1.99999999999999999999/info", 400),
        ("/v99999999999999999999.0/containers/json", 400),
        ("/v1.4x/info", 404),
        (
            "/v1.99999999999999999999/containers/fuzzme/attach?stream=1",
            400,
        ),
    ] {
        let req = format!("{} {target} HTTP/1.1\r\nHost: berth\r\n\r\n", "POST");
        let req = if target.ends_with("/info") || target.ends_with("/json") {
            req.replacen("POST", "GET", 1)
        } else {
            req
        };
        assert_eq!(exchange(&d, req.as_bytes(), false), Ok(want), "{target}");
    }
    assert!(d.ping());
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid() as i32), None).is_ok());
    // A client's garbage is no operator's error: actix-http's parse errors stay out of
    // the log at the default level.
    let noisy: Vec<_> = d
        .log_records()
        .into_iter()
        .filter(|r| {
            r["level"] == "ERROR" && r["target"].as_str().is_some_and(|t| t.starts_with("actix"))
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    // The created container is still known (or was removed by a generated DELETE).
    let ps = d.docker(&["ps", "-a"]);
    assert!(ps.status.success());
}
