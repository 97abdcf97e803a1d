//! `berth-bench`: the project's benchmark kit. It measures any daemon that speaks the Docker
//! Engine API on a unix socket (berthd, dockerd), optionally two side by side, and prints a
//! markdown table of every figure with the budget of issue 3.
//!
//! ```text
//! berth-bench --start-berthd --start-dockerd          # both started on temp roots
//! berth-bench --socket /run/berth.sock --vs /var/run/docker.sock
//! berth-bench --start-berthd --quick                   # fast smoke run
//! ```
//!
//! Cases (issue 3): a. `docker run --rm busybox true` through the CLI; b. create + start +
//! wait + delete over the API; c. a burst of 50 concurrent `sleep` containers; d. the
//! daemon tree's memory; e. `GET /containers/json?all=1` load over 8 keep-alive connections;
//! f. import of a 2 MB and a 100 MB rootfs tarball; g. cold start to `/_ping` 200 with an
//! empty data root and with 1000 containers on disk, and SIGTERM to exit; h. `docker exec
//! ctr true` through the CLI and an exec over the API (issue 14); i. load, save, commit and
//! cp of images; j. `docker push` and `docker pull` of case i's ~100 MB three-layer image
//! through a registry (Debian's docker-registry) on 127.0.0.1 in the daemon's network
//! namespace (issue 17); k. the daemon tree's CPU and wakeups while idle (issue 18); l. 10
//! /events subscribers during 50 concurrent starts (issue 16); s. a
//! soak of concurrent clients (issue 18; only with `--cases s`).
//!
//! Every container the kit creates carries the label `berth.bench=1`; cleanup removes only
//! containers with that label, also when a case fails. Daemons started by the kit run on
//! their own temp roots (dockerd in its own network namespace) and are stopped by pid.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Read as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::RngCore;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const LABEL_KEY: &str = "berth.bench";
const LABEL_VAL: &str = "1";
const API: &str = "/v1.41";
const IMAGE: &str = "busybox:latest";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "berth-bench",
    about = "Benchmarks a Docker Engine API daemon (berthd, dockerd), optionally against a second one"
)]
struct Args {
    /// The daemon's unix socket (already running).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// A second daemon's socket: every case alternates between the two, ratios are printed.
    #[arg(long)]
    vs: Option<PathBuf>,
    /// Start berthd on temp roots (and stop it afterwards).
    #[arg(long)]
    start_berthd: bool,
    /// Start dockerd (Debian's docker.io) on temp roots in its own network namespace.
    #[arg(long)]
    start_dockerd: bool,
    /// The berthd binary for --start-berthd (default: `berthd` beside this binary).
    #[arg(long)]
    berthd_bin: Option<PathBuf>,
    /// The dockerd binary for --start-dockerd.
    #[arg(long, default_value = "dockerd")]
    dockerd_bin: PathBuf,
    /// The docker CLI used for case a and for imports.
    #[arg(long, default_value = "docker")]
    docker_cli: PathBuf,
    /// A fast smoke run: few repetitions, short load, 100 containers on disk for case g.
    #[arg(long)]
    quick: bool,
    /// Which cases to run (letters a-j; d runs with c).
    #[arg(long, default_value = "abcdefghijkl")]
    cases: String,
    /// Repetitions for the fast cases (a, b); the slow ones scale from it.
    #[arg(long)]
    reps: Option<usize>,
    /// Seconds of load per run of case e.
    #[arg(long)]
    load_secs: Option<u64>,
    /// Containers on disk for the cold start of case g.
    #[arg(long)]
    disk_containers: Option<usize>,
    /// Case s (soak, not in the default cases): how long each daemon is driven (default
    /// 600 s; 60 s with --quick).
    #[arg(long)]
    soak_secs: Option<u64>,
    /// Case s: concurrent clients.
    #[arg(long, default_value_t = 100)]
    soak_clients: usize,
    /// Where the tarballs are cached (default: bench/.cache in the source tree).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Also write the markdown table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Temp roots for started daemons go under this directory.
    #[arg(long, default_value = "/tmp")]
    tmp: PathBuf,
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client over a unix socket (keep-alive, Content-Length and chunked).

#[derive(Debug)]
struct Resp {
    status: u16,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
    fn ok(self, what: &str) -> Result<Resp, String> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(format!("{what}: HTTP {} {}", self.status, self.message()))
        }
    }
    fn message(&self) -> String {
        self.json()
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| self.text())
    }
}

#[derive(Debug)]
struct Conn {
    r: BufReader<UnixStream>,
    closed: bool,
}

impl Conn {
    async fn connect(sock: &Path) -> io::Result<Conn> {
        let s = UnixStream::connect(sock).await?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, s),
            closed: false,
        })
    }

    async fn get(&mut self, path: &str) -> io::Result<Resp> {
        self.request("GET", path, &[], None).await
    }

    async fn post_json(&mut self, path: &str, body: &Value) -> io::Result<Resp> {
        let b = serde_json::to_vec(body)?;
        self.request("POST", path, &[&b], Some("application/json"))
            .await
    }

    async fn post(&mut self, path: &str) -> io::Result<Resp> {
        self.request("POST", path, &[], None).await
    }

    async fn delete(&mut self, path: &str) -> io::Result<Resp> {
        self.request("DELETE", path, &[], None).await
    }

    /// Sends one request whose body is the concatenation of `body` and reads the reply
    /// (at most 300 s, so a stuck daemon cannot hang the run).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[&[u8]],
        ctype: Option<&str>,
    ) -> io::Result<Resp> {
        match tokio::time::timeout(
            Duration::from_secs(300),
            self.request_inner(method, path, body, ctype),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                self.closed = true;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{method} {path}: no reply in 300 s"),
                ))
            }
        }
    }

    async fn request_inner(
        &mut self,
        method: &str,
        path: &str,
        body: &[&[u8]],
        ctype: Option<&str>,
    ) -> io::Result<Resp> {
        if self.closed {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "closed"));
        }
        let len: usize = body.iter().map(|b| b.len()).sum();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n");
        if let Some(ct) = ctype {
            let _ = write!(head, "Content-Type: {ct}\r\n");
        }
        if len > 0 || method == "POST" {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        head.push_str("\r\n");
        let s = self.r.get_mut();
        s.write_all(head.as_bytes()).await?;
        for b in body {
            s.write_all(b).await?;
        }
        self.read_response(method == "HEAD").await
    }

    async fn read_response(&mut self, head_only: bool) -> io::Result<Resp> {
        let mut line = String::new();
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
        self.r.read_line(&mut line).await?;
        if line.is_empty() {
            self.closed = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut clen: Option<usize> = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                return Err(bad("eof in headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => clen = v.parse().ok(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "connection" if v.eq_ignore_ascii_case("close") => self.closed = true,
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line).await?;
                let size_s = line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_s, 16).map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    // Trailers up to the empty line.
                    loop {
                        line.clear();
                        if self.r.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.r.read_exact(&mut body[start..]).await?;
                line.clear();
                self.r.read_line(&mut line).await?;
            }
        } else if let Some(n) = clen {
            body.resize(n, 0);
            self.r.read_exact(&mut body).await?;
        } else {
            self.r.read_to_end(&mut body).await?;
            self.closed = true;
        }
        Ok(Resp { status, body })
    }
}

async fn ping(sock: &Path) -> bool {
    let Ok(mut c) = Conn::connect(sock).await else {
        return false;
    };
    matches!(c.request("HEAD", "/_ping", &[], None).await, Ok(r) if r.status == 200)
}

/// The pid of the process that listens on `sock` (SO_PEERCRED of a connection).
fn peer_pid(sock: &Path) -> io::Result<i32> {
    let s = std::os::unix::net::UnixStream::connect(sock)?;
    let cred = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    let _ = s.as_raw_fd();
    Ok(cred.pid())
}

// ---------------------------------------------------------------------------------------
// /proc: process trees, memory, CPU.

fn ppid_map() -> HashMap<i32, i32> {
    let mut m = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return m;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(pp) = stat_fields(pid).and_then(|f| f.get(1).and_then(|s| s.parse().ok())) {
            m.insert(pid, pp);
        }
    }
    m
}

/// Fields of /proc/PID/stat after the command name: [0]=state, [1]=ppid, ... [11]=utime,
/// [12]=stime.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The daemon's whole tree: the daemon, its descendants, and the parents of the given
/// container init pids (monitors, shims) with their ancestors up to something already in
/// the tree or pid 1; the containers' own processes (each init and its descendants) are
/// left out.
fn daemon_tree(daemon: i32, container_inits: &[i32]) -> Vec<i32> {
    let pp = ppid_map();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&p, &q) in &pp {
        children.entry(q).or_default().push(p);
    }
    let excluded: HashSet<i32> = container_inits.iter().copied().collect();
    let mut set = HashSet::new();
    let add_subtree = |root: i32, set: &mut HashSet<i32>| {
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            if excluded.contains(&p) || !set.insert(p) {
                continue;
            }
            if let Some(c) = children.get(&p) {
                stack.extend(c);
            }
        }
    };
    add_subtree(daemon, &mut set);
    for &init in container_inits {
        let mut p = pp.get(&init).copied().unwrap_or(0);
        while p > 1 && !set.contains(&p) {
            add_subtree(p, &mut set);
            p = pp.get(&p).copied().unwrap_or(0);
        }
    }
    let mut v: Vec<i32> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// Every thread of `pids`: (pid, tid) → (run time in ns, times scheduled), from
/// /proc/PID/task/TID/schedstat.
fn sched_threads(pids: &[i32]) -> HashMap<(i32, String), (u64, u64)> {
    let mut out = HashMap::new();
    for p in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut f = text
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0));
            let ns = f.next().unwrap_or(0);
            let _wait = f.next();
            let slices = f.next().unwrap_or(0);
            out.insert(
                (*p, task.file_name().to_string_lossy().into_owned()),
                (ns, slices),
            );
        }
    }
    out
}

/// Run time (ns) and times scheduled between two [`sched_threads`] readings: each
/// thread's growth, a thread born in between counted whole. A thread that ended in
/// between (a blocking pool's, after 2 s idle) is not counted: its last figures are gone
/// with it; summing totals instead would make the window's work negative.
fn sched_delta(
    before: &HashMap<(i32, String), (u64, u64)>,
    after: &HashMap<(i32, String), (u64, u64)>,
) -> (u64, u64) {
    after.iter().fold((0, 0), |(ns, n), (k, a)| {
        let b = before.get(k).copied().unwrap_or((0, 0));
        (ns + a.0.saturating_sub(b.0), n + a.1.saturating_sub(b.1))
    })
}

/// Case g's list timings with the containers on disk: the API's list (median of 5) and
/// `docker ps -a` through the CLI (median of 3).
async fn list_times(sock: &Path) -> Result<(Duration, Duration), String> {
    let mut c = Conn::connect(sock).await.map_err(|e| e.to_string())?;
    let mut api = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        c.get(&format!("{API}/containers/json?all=1"))
            .await
            .map_err(|e| e.to_string())?
            .ok("list")?;
        api.push(t0.elapsed());
    }
    let mut cli = Vec::new();
    for _ in 0..3 {
        let mut cmd = Command::new(&ARGS.get().unwrap().docker_cli);
        cmd.env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .args(["ps", "-a", "-q"]);
        let t0 = Instant::now();
        let out = cli_output(cmd).await.map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err("docker ps -a failed".into());
        }
        cli.push(t0.elapsed());
    }
    api.sort();
    cli.sort();
    Ok((api[api.len() / 2], cli[cli.len() / 2]))
}

/// Case l: `subs` raw `/events` streams count `"status":"start"` while `n` containers
/// are created, then started at once; returns the time from the first start request until
/// every stream has seen `n` starts, and the events delivered to all streams by then.
async fn events_fanout(t: &Target, subs: usize, n: usize) -> Result<(Duration, usize), String> {
    let filters = urlencode(r#"{"type":["container"],"label":["berth.bench=1"]}"#);
    let mut streams = Vec::new();
    for _ in 0..subs {
        let mut s = UnixStream::connect(&t.sock)
            .await
            .map_err(|e| e.to_string())?;
        let req = format!("GET {API}/events?filters={filters} HTTP/1.1\r\nHost: bench\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        streams.push(s);
    }
    // Each reader counts starts and all events it sees, and reports when it has n starts.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, usize)>(subs);
    let mut readers = Vec::new();
    for mut s in streams {
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut tail: Vec<u8> = Vec::new();
            let (mut starts, mut events) = (0usize, 0usize);
            loop {
                let k = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => k,
                };
                tail.extend_from_slice(&buf[..k]);
                // Whole events only: count up to the last newline.
                let Some(end) = tail.iter().rposition(|b| *b == b'\n') else {
                    continue;
                };
                let chunk: Vec<u8> = tail.drain(..=end).collect();
                let text = String::from_utf8_lossy(&chunk);
                starts += text.matches("\"status\":\"start\"").count();
                events += text.matches("\"timeNano\"").count();
                if starts >= n {
                    let _ = tx.send((Instant::now(), events)).await;
                    return;
                }
            }
        }));
    }
    drop(tx);
    // The subscriptions are in place before anything happens.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut made = Vec::new();
    for _ in 0..n {
        let sock = t.sock.clone();
        made.push(tokio::spawn(async move {
            let mut c = Conn::connect(&sock).await.map_err(|e| e.to_string())?;
            let id = create_on(&mut c, &["sleep", "3600"], "none").await?;
            Ok::<_, String>((c, id))
        }));
    }
    let mut conns = Vec::new();
    for m in made {
        conns.push(m.await.map_err(|e| e.to_string())??);
    }
    let t0 = Instant::now();
    let mut starts = Vec::new();
    for (mut c, id) in conns {
        starts.push(tokio::spawn(async move { start_on(&mut c, &id).await }));
    }
    for st in starts {
        st.await.map_err(|e| e.to_string())??;
    }
    let mut last = t0;
    let mut delivered = 0;
    for _ in 0..subs {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some((at, events))) => {
                last = last.max(at);
                delivered += events;
            }
            _ => {
                for r in &readers {
                    r.abort();
                }
                return Err("a subscriber did not see every start in 60 s".into());
            }
        }
    }
    Ok((last - t0, delivered))
}

/// Case s's operations, in the order they are reported.
const SOAK_OPS: [&str; 5] = ["run", "exec", "logs", "inspect", "list"];

/// What case s's clients did: latencies (ms) per operation, failures.
#[derive(Debug, Default)]
struct SoakOut {
    lat: BTreeMap<&'static str, Vec<f64>>,
    failed: usize,
    /// The first few failures' texts.
    errors: Vec<String>,
}

/// What a daemon leaves: its tree's RSS, processes and descriptors, mounts under its
/// temp root (when the kit started it).
#[derive(Debug, Default)]
struct Leftovers {
    rss_kib: u64,
    procs: usize,
    fds: usize,
    mounts: usize,
}

async fn leftovers(t: &Target, root: Option<&Path>) -> Leftovers {
    let tree = t.tree().await;
    let fds = tree
        .iter()
        .map(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum();
    let mounts = match root {
        Some(r) => std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&*r.to_string_lossy()))
            .count(),
        None => 0,
    };
    Leftovers {
        rss_kib: mem_kib(&tree).0,
        procs: tree.len(),
        fds,
        mounts,
    }
}

/// One client's operation `op` on its connection; the shared container `shared` runs
/// `sleep` (exec, logs and inspect use it).
async fn soak_op(c: &mut Conn, op: &str, shared: &str) -> Result<(), String> {
    let e = |e: io::Error| e.to_string();
    match op {
        "run" => run_to_end_on(c, &["sh", "-c", "echo soak"]).await?,
        "exec" => exec_on(c, shared, Duration::from_millis(5)).await?,
        "logs" => {
            c.get(&format!("{API}/containers/{shared}/logs?stdout=1&tail=10"))
                .await
                .map_err(e)?
                .ok("logs")?;
        }
        "inspect" => {
            c.get(&format!("{API}/containers/{shared}/json"))
                .await
                .map_err(e)?
                .ok("inspect")?;
        }
        _ => {
            c.get(&format!("{API}/containers/json?all=1"))
                .await
                .map_err(e)?
                .ok("list")?;
        }
    }
    Ok(())
}

/// Case s's load on one daemon.
async fn soak(t: &Target, clients: usize, dur: Duration) -> Result<SoakOut, String> {
    let mut c = t.conn().await?;
    let shared = run_detached_on(&mut c, &["sh", "-c", "echo ready; exec sleep 3600"]).await?;
    let out = Arc::new(std::sync::Mutex::new(SoakOut::default()));
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let sock = t.sock.clone();
        let shared = shared.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            // run 30 %, exec 20 %, logs, inspect and list 50 % together.
            const MIX: [&str; 10] = [
                "run", "exec", "logs", "run", "inspect", "list", "run", "exec", "logs", "inspect",
            ];
            let mut n = i;
            let mut conn = Conn::connect(&sock).await.ok();
            while Instant::now() < deadline {
                let op = MIX[n % MIX.len()];
                n += 1;
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match Conn::connect(&sock).await {
                        Ok(c) => conn.insert(c),
                        Err(e) => {
                            {
                                let mut o = out.lock().unwrap();
                                o.failed += 1;
                                if o.errors.len() < 5 {
                                    o.errors.push(format!("connect: {e}"));
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let t0 = Instant::now();
                let r = soak_op(c, op, &shared).await;
                let took = ms(t0.elapsed());
                let mut o = out.lock().unwrap();
                match r {
                    Ok(()) => {
                        let key = SOAK_OPS
                            .iter()
                            .find(|k| **k == op)
                            .copied()
                            .unwrap_or("list");
                        o.lat.entry(key).or_default().push(took);
                    }
                    Err(e) => {
                        o.failed += 1;
                        if o.errors.len() < 5 {
                            o.errors.push(format!("{op}: {e}"));
                        }
                        // The connection may be in any state: a fresh one next time.
                        conn = None;
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let _ = c
        .delete(&format!("{API}/containers/{shared}?force=1"))
        .await;
    let out = std::mem::take(&mut *out.lock().unwrap());
    Ok(out)
}

/// Case k's activity before the idle window: 5 containers run to their end and removed,
/// then one `sleep` left running (removed by the case's cleanup).
async fn idle_prelude(t: &Target) -> Result<(), String> {
    let mut c = t.conn().await.map_err(|e| e.to_string())?;
    for _ in 0..5 {
        run_to_end_on(&mut c, &["true"]).await?;
    }
    run_detached_on(&mut c, &["sleep", "3600"]).await?;
    Ok(())
}

/// (RSS, PSS) in KiB summed over `pids` from smaps_rollup.
fn mem_kib(pids: &[i32]) -> (u64, u64) {
    let (mut rss, mut pss) = (0, 0);
    for p in pids {
        let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
            continue;
        };
        for l in s.lines() {
            let mut it = l.split_whitespace();
            let k = it.next().unwrap_or("");
            let v: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match k {
                "Rss:" => rss += v,
                "Pss:" => pss += v,
                _ => {}
            }
        }
    }
    (rss, pss)
}

/// utime+stime of `pids` in clock ticks.
fn cpu_ticks(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|&p| stat_fields(p))
        .map(|f| {
            f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

fn clk_tck() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; treat it as gone.
    stat_fields(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

/// Sends `sig` to `pid`, a process this kit started (or its daemon).
fn kill(pid: i32, sig: i32) {
    if let (true, Ok(sig)) = (pid > 1, nix::sys::signal::Signal::try_from(sig)) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

// ---------------------------------------------------------------------------------------
// Daemons started by the kit.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Berthd,
    Dockerd,
    Other,
}

#[derive(Debug)]
struct Managed {
    kind: Kind,
    sock: PathBuf,
    child: Option<Child>,
    /// The daemon itself (for dockerd: the child of `unshare`).
    pid: i32,
}

#[derive(Debug, Clone)]
struct Launch {
    kind: Kind,
    bin: PathBuf,
    tmp: PathBuf,
}

impl Launch {
    /// A fresh temp root for a daemon.
    fn new_dir(&self) -> io::Result<PathBuf> {
        let name = match self.kind {
            Kind::Berthd => "berthd",
            _ => "dockerd",
        };
        let mut rnd = [0u8; 4];
        rand::rng().fill_bytes(&mut rnd);
        let dir = self.tmp.join(format!(
            "berth-bench.{}.{name}.{}",
            std::process::id(),
            hex::encode(rnd)
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("daemon.json"), "{}")?;
        Ok(dir)
    }

    fn command(&self, dir: &Path) -> Command {
        let sock = dir.join("api.sock");
        match self.kind {
            Kind::Berthd => {
                // Its own network namespace too, as dockerd: its berth0 bridge and
                // iptables rules stay in there, and both daemons pay the same unshare.
                let mut c = Command::new("unshare");
                c.args(["--net", "--fork", "--kill-child"])
                    .arg(&self.bin)
                    .arg("--data-root")
                    .arg(dir.join("data"))
                    .arg("--exec-root")
                    .arg(dir.join("exec"))
                    .arg("--pidfile")
                    .arg(dir.join("daemon.pid"))
                    .arg("-H")
                    .arg(format!("unix://{}", sock.display()))
                    .arg("--config-file")
                    .arg(dir.join("daemon.json"));
                c
            }
            _ => {
                // Its own network namespace: docker0 and its iptables rules stay in there.
                let mut c = Command::new("unshare");
                c.args(["--net", "--fork", "--kill-child"])
                    .arg(&self.bin)
                    .arg("--data-root")
                    .arg(dir.join("data"))
                    .arg("--exec-root")
                    .arg(dir.join("exec"))
                    .arg("-p")
                    .arg(dir.join("daemon.pid"))
                    .arg("-H")
                    .arg(format!("unix://{}", sock.display()))
                    .arg("--config-file")
                    .arg(dir.join("daemon.json"))
                    .arg("--containerd-namespace")
                    .arg("berth-bench")
                    .arg("--containerd-plugins-namespace")
                    .arg("berth-bench-plugins")
                    .arg("--cgroup-parent")
                    .arg(cgroup_parent(dir));
                c
            }
        }
    }

    /// Spawns the daemon on `dir` (fresh or reused) and waits for `/_ping` 200; returns it
    /// and the time from spawn to the first 200.
    async fn start(&self, dir: &Path) -> Result<(Managed, Duration), String> {
        let sock = dir.join("api.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = self.command(dir);
        // Its own process group: a Ctrl-C in the terminal reaches the kit only, which then
        // cleans up and stops the daemon itself.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let mut m = Managed {
            kind: self.kind,
            sock: sock.clone(),
            pid: child.id() as i32,
            child: Some(child),
        };
        let deadline = t0 + Duration::from_secs(120);
        loop {
            if ping(&sock).await {
                break;
            }
            if let Some(st) = m.child.as_mut().unwrap().try_wait().ok().flatten() {
                m.child = None;
                return Err(format!(
                    "{:?} exited early ({st}); log: {}",
                    self.kind,
                    tail_file(&dir.join("daemon.log"), 15)
                ));
            }
            if Instant::now() > deadline {
                m.stop();
                return Err(format!("{:?} not ready in 120 s", self.kind));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = t0.elapsed();
        // Both daemons run under `unshare`: the daemon is the socket's peer.
        m.pid = peer_pid(&sock).map_err(|e| format!("SO_PEERCRED: {e}"))?;
        Ok((m, took))
    }
}

fn cgroup_parent(dir: &Path) -> String {
    format!(
        "/{}",
        dir.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .replace('.', "-")
    )
}

fn tail_file(p: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(n)..].join("\n")
}

impl Managed {
    /// SIGTERM to the daemon and wait for the spawned process to exit (60 s, then
    /// SIGKILL); the time from the signal to the exit.
    fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        let t0 = Instant::now();
        kill(self.pid, libc::SIGTERM);
        let deadline = t0 + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("berth-bench: {:?} did not exit in 60 s; SIGKILL", self.kind);
                kill(self.pid, libc::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let took = t0.elapsed();
        // `unshare` exits with its child; the daemon pid must be gone too.
        while alive(self.pid) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(500));
        }
        Some(took)
    }
}

/// Ends what is left of a daemon's temp root (processes mentioning it, mounts under it,
/// its cgroup parent) and removes it.
fn remove_root(dir: &Path, kind: Kind) {
    let needle = dir.display().to_string();
    let me = std::process::id() as i32;
    for _ in 0..2 {
        let mut any = false;
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline"))
                    && String::from_utf8_lossy(&cmd).contains(&needle)
                {
                    kill(pid, libc::SIGKILL);
                    any = true;
                }
            }
        }
        if !any {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&needle))
            .map(str::to_owned)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    if kind == Kind::Dockerd {
        let parent = cgroup_parent(dir);
        for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let Ok(rd) = std::fs::read_dir(base) else {
                continue;
            };
            let _ = std::fs::remove_dir(format!("{base}{parent}"));
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(parent.trim_start_matches('/')));
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("berth-bench: removing {}: {e}", dir.display());
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Targets and their API helpers.

#[derive(Debug)]
struct Target {
    name: String,
    kind: Kind,
    sock: PathBuf,
    /// The daemon process (SO_PEERCRED).
    pid: i32,
    /// Whether containers may use the default (bridge) network; else why not.
    bridge: Result<(), String>,
    managed: Option<Managed>,
    launch: Option<Launch>,
    docker_config: PathBuf,
}

impl Target {
    async fn conn(&self) -> Result<Conn, String> {
        Conn::connect(&self.sock)
            .await
            .map_err(|e| format!("connect {}: {e}", self.sock.display()))
    }

    fn docker(&self) -> Command {
        let mut c = Command::new(&ARGS.get().unwrap().docker_cli);
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        c
    }

    /// Running containers' init pids (to leave them out of the daemon tree).
    async fn container_inits(&self) -> Vec<i32> {
        let Ok(mut c) = self.conn().await else {
            return vec![];
        };
        let Ok(r) = c.get(&format!("{API}/containers/json")).await else {
            return vec![];
        };
        let mut pids = vec![];
        for ct in r.json().as_array().cloned().unwrap_or_default() {
            let Some(id) = ct.get("Id").and_then(Value::as_str) else {
                continue;
            };
            if let Ok(r) = c.get(&format!("{API}/containers/{id}/json")).await
                && let Some(p) = r.json().pointer("/State/Pid").and_then(Value::as_i64)
                && p > 0
            {
                pids.push(p as i32);
            }
        }
        pids
    }

    async fn tree(&self) -> Vec<i32> {
        let inits = self.container_inits().await;
        daemon_tree(self.pid, &inits)
    }

    /// The ids of the containers that carry our label (checked on each record, so a daemon
    /// that ignored the filter still loses nothing else).
    async fn labelled(&self) -> Result<Vec<String>, String> {
        let mut c = self.conn().await?;
        let filters = r#"{"label":["berth.bench=1"]}"#;
        let r = c
            .get(&format!(
                "{API}/containers/json?all=1&filters={}",
                urlencode(filters)
            ))
            .await
            .map_err(|e| e.to_string())?
            .ok("list")?;
        Ok(r.json()
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|ct| {
                ct.pointer("/Labels/berth.bench").and_then(Value::as_str) == Some(LABEL_VAL)
            })
            .filter_map(|ct| ct.get("Id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// Forced removal of `ids` over `conns` concurrent connections.
    async fn remove_all(&self, ids: Vec<String>, conns: usize) -> Result<(), String> {
        let ids = Arc::new(tokio::sync::Mutex::new(ids));
        let mut tasks = vec![];
        for _ in 0..conns.max(1) {
            let ids = ids.clone();
            let sock = self.sock.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::connect(&sock).await.map_err(|e| e.to_string())?;
                let mut first_err = None;
                loop {
                    let Some(id) = ids.lock().await.pop() else {
                        break;
                    };
                    let r = c
                        .delete(&format!("{API}/containers/{id}?force=1&v=1"))
                        .await
                        .map_err(|e| e.to_string());
                    match r {
                        Ok(r) if r.status == 204 || r.status == 200 || r.status == 404 => {}
                        Ok(r) => {
                            first_err = first_err.or(Some(format!("remove {id}: {}", r.message())))
                        }
                        Err(e) => {
                            first_err = first_err.or(Some(e));
                            c = Conn::connect(&sock).await.map_err(|e| e.to_string())?;
                        }
                    }
                }
                first_err.map_or(Ok(()), Err)
            }));
        }
        let mut res = Ok(());
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                res = Err(e);
            }
        }
        res
    }

    /// Removes every container carrying our label.
    async fn cleanup(&self) {
        match self.labelled().await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                let n = ids.len();
                if let Err(e) = self.remove_all(ids, 8).await {
                    eprintln!("berth-bench: {}: cleanup of {n} containers: {e}", self.name);
                }
            }
            Err(e) => eprintln!("berth-bench: {}: cleanup: {e}", self.name),
        }
    }

    /// Creates `n` labelled stopped containers over 8 connections.
    async fn create_many(
        &self,
        n: usize,
        cmd: &'static [&'static str],
    ) -> Result<Vec<String>, String> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = vec![];
        for _ in 0..8 {
            let next = next.clone();
            let sock = self.sock.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::connect(&sock).await.map_err(|e| e.to_string())?;
                let mut ids = vec![];
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    ids.push(create_on(&mut c, cmd, "none").await?);
                }
                Ok::<_, String>(ids)
            }));
        }
        let mut all = vec![];
        let mut err = None;
        for t in tasks {
            match t.await {
                Ok(Ok(ids)) => all.extend(ids),
                Ok(Err(e)) => err = Some(e),
                Err(e) => err = Some(e.to_string()),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }
}

/// Creates a labelled container on connection `c`; returns its id.
async fn create_on(c: &mut Conn, cmd: &[&str], network: &str) -> Result<String, String> {
    let body = json!({
        "Image": IMAGE,
        "Cmd": cmd,
        "Labels": {LABEL_KEY: LABEL_VAL},
        "HostConfig": {"NetworkMode": network},
    });
    let r = c
        .post_json(&format!("{API}/containers/create"), &body)
        .await
        .map_err(|e| e.to_string())?
        .ok("create")?;
    r.json()
        .get("Id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "create: no Id".to_owned())
}

/// `POST /containers/{id}/start` on `c`.
async fn start_on(c: &mut Conn, id: &str) -> Result<(), String> {
    c.post(&format!("{API}/containers/{id}/start"))
        .await
        .map_err(|e| e.to_string())?
        .ok("start")
        .map(|_| ())
}

/// A labelled container running `cmd` without a network, started; its id.
async fn run_detached_on(c: &mut Conn, cmd: &[&str]) -> Result<String, String> {
    let id = create_on(c, cmd, "none").await?;
    start_on(c, &id).await?;
    Ok(id)
}

/// A labelled container running `cmd` without a network, to its end: created, started,
/// waited for, its log read, removed.
async fn run_to_end_on(c: &mut Conn, cmd: &[&str]) -> Result<(), String> {
    let e = |e: io::Error| e.to_string();
    let id = run_detached_on(c, cmd).await?;
    c.post(&format!("{API}/containers/{id}/wait"))
        .await
        .map_err(e)?
        .ok("wait")?;
    c.get(&format!("{API}/containers/{id}/logs?stdout=1"))
        .await
        .map_err(e)?
        .ok("logs")?;
    c.delete(&format!("{API}/containers/{id}?force=1"))
        .await
        .map_err(e)?
        .ok("remove")?;
    Ok(())
}

/// `true` exec'd in running container `id` over the API: created, started detached, and
/// its exit seen by polling its inspect every `poll` (at most 60 s); exit 0 required.
async fn exec_on(c: &mut Conn, id: &str, poll: Duration) -> Result<(), String> {
    let e = |e: io::Error| e.to_string();
    let body = json!({"Cmd": ["true"], "AttachStdout": false, "AttachStderr": false});
    let r = c
        .post_json(&format!("{API}/containers/{id}/exec"), &body)
        .await
        .map_err(e)?
        .ok("exec create")?;
    let exec = r
        .json()
        .get("Id")
        .and_then(Value::as_str)
        .ok_or("exec create: no Id")?
        .to_owned();
    c.post_json(
        &format!("{API}/exec/{exec}/start"),
        &json!({"Detach": true, "Tty": false}),
    )
    .await
    .map_err(e)?
    .ok("exec start")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = c
            .get(&format!("{API}/exec/{exec}/json"))
            .await
            .map_err(e)?
            .ok("exec inspect")?
            .json();
        if v.get("Running") == Some(&Value::Bool(false)) && v.get("Pid").is_some_and(|p| p != 0) {
            return match v.get("ExitCode").and_then(Value::as_i64) {
                Some(0) => Ok(()),
                other => Err(format!("exec exit code {other:?}")),
            };
        }
        if Instant::now() > deadline {
            return Err("exec: no exit in 60 s".into());
        }
        tokio::time::sleep(poll).await;
    }
}

fn urlencode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

static ARGS: std::sync::OnceLock<Args> = std::sync::OnceLock::new();

// ---------------------------------------------------------------------------------------
// Figures.

#[derive(Debug, Clone, Copy)]
enum Budget {
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Debug)]
struct Figure {
    label: String,
    unit: &'static str,
    budget: Option<Budget>,
    dockerd_ref: Option<&'static str>,
    /// Per target: the samples.
    values: Vec<Vec<f64>>,
    /// Per target: runs that failed (the first message and how many).
    errors: Vec<Option<(String, usize)>>,
}

#[derive(Debug, Default)]
struct Report {
    figures: Vec<Figure>,
    index: BTreeMap<String, usize>,
    ntargets: usize,
}

impl Report {
    fn fig(
        &mut self,
        key: &str,
        unit: &'static str,
        budget: Option<Budget>,
        dref: Option<&'static str>,
    ) -> &mut Figure {
        if let Some(&i) = self.index.get(key) {
            return &mut self.figures[i];
        }
        self.index.insert(key.to_owned(), self.figures.len());
        self.figures.push(Figure {
            label: key.to_owned(),
            unit,
            budget,
            dockerd_ref: dref,
            values: vec![vec![]; self.ntargets],
            errors: vec![None; self.ntargets],
        });
        self.figures.last_mut().unwrap()
    }

    fn add(&mut self, key: &str, unit: &'static str, t: usize, v: f64) {
        let f = self.fig(key, unit, None, None);
        f.values[t].push(v);
    }

    fn fail(&mut self, key: &str, unit: &'static str, t: usize, why: String) {
        let f = self.fig(key, unit, None, None);
        match &mut f.errors[t] {
            // A figure that cannot be measured here is said once, not counted.
            Some((e, _)) if e.starts_with("unsupported") || e.starts_with("n/a") => {}
            Some((_, n)) => *n += 1,
            e @ None => *e = Some((why, 1)),
        }
    }

    fn declare(
        &mut self,
        key: &str,
        unit: &'static str,
        budget: Option<Budget>,
        dref: Option<&'static str>,
    ) {
        let f = self.fig(key, unit, budget, dref);
        f.budget = budget;
        f.dockerd_ref = dref;
    }

    fn table(&self, names: &[String]) -> String {
        let mut o = String::new();
        let _ = write!(o, "| figure |");
        for n in names {
            let _ = write!(o, " {n} (median, min..max) |");
        }
        if names.len() == 2 {
            let _ = write!(o, " ratio {}/{} |", names[0], names[1]);
        }
        let _ = writeln!(
            o,
            " issue 3 reference (dockerd 20.10) | budget for berth | {} meets budget |",
            names[0]
        );
        let _ = write!(o, "|---|");
        for _ in names {
            o.push_str("---|");
        }
        if names.len() == 2 {
            o.push_str("---|");
        }
        o.push_str("---|---|---|\n");
        for f in &self.figures {
            let _ = write!(o, "| {} ({}) |", f.label, f.unit);
            let mut medians = vec![];
            for (vs, err) in f.values.iter().zip(&f.errors) {
                let err = err.as_ref().map(|(e, n)| {
                    let e = e.replace('|', "/");
                    if *n > 1 { format!("{e} (x{n})") } else { e }
                });
                match vs {
                    vs if !vs.is_empty() => {
                        let (med, lo, hi) = stats(vs);
                        medians.push(Some(med));
                        if vs.len() == 1 {
                            let _ = write!(o, " {} |", fmtv(med));
                        } else {
                            let _ = write!(
                                o,
                                " {} ({}..{}, n={}) |",
                                fmtv(med),
                                fmtv(lo),
                                fmtv(hi),
                                vs.len()
                            );
                        }
                        if let Some(e) = err {
                            o.pop();
                            o.pop();
                            let _ = write!(o, "; **failed runs**: {e} |");
                        }
                    }
                    _ => {
                        medians.push(None);
                        let _ = write!(o, " {} |", err.as_deref().unwrap_or("—"));
                    }
                }
            }
            if names.len() == 2 {
                match (medians[0], medians[1]) {
                    (Some(a), Some(b)) if b != 0.0 => {
                        let _ = write!(o, " {:.3} |", a / b);
                    }
                    _ => o.push_str(" — |"),
                }
            }
            let _ = write!(o, " {} |", f.dockerd_ref.unwrap_or("—"));
            match f.budget {
                Some(Budget::AtMost(b)) => {
                    let _ = write!(o, " ≤ {b} |");
                }
                Some(Budget::AtLeast(b)) => {
                    let _ = write!(o, " ≥ {b} |");
                }
                None => o.push_str(" — |"),
            }
            let met = match (f.budget, medians[0]) {
                (Some(Budget::AtMost(b)), Some(m)) => {
                    if m <= b {
                        "yes"
                    } else {
                        "**no**"
                    }
                }
                (Some(Budget::AtLeast(b)), Some(m)) => {
                    if m >= b {
                        "yes"
                    } else {
                        "**no**"
                    }
                }
                (Some(_), None) => "n/a",
                _ => "",
            };
            let _ = writeln!(o, " {met} |");
        }
        o
    }
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

fn fmtv(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The order of targets for repetition `rep` (alternating who goes first).
fn order(n: usize, rep: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if rep % 2 == 1 {
        v.reverse();
    }
    v
}

fn say(msg: impl AsRef<str>) {
    eprintln!(
        "[{}] {}",
        chrono::Local::now().format("%H:%M:%S"),
        msg.as_ref()
    );
}

// ---------------------------------------------------------------------------------------
// Tarballs.

/// The repository's root (the kit's package is its `bench/` directory), where
/// `scripts/` and the default cache live.
fn source_dir() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.parent().unwrap_or(bench).to_path_buf()
}

fn busybox_tar(cache: &Path) -> Result<PathBuf, String> {
    let out = cache.join("busybox.tar");
    if !out.exists() {
        let st = Command::new(source_dir().join("scripts/mkbusybox.sh"))
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("scripts/mkbusybox.sh: {e}"))?;
        if !st.success() {
            return Err("scripts/mkbusybox.sh failed".into());
        }
    }
    Ok(out)
}

/// A tarball as its entries without the end-of-archive blocks, so that each import can
/// append one unique file (the daemon cannot recognise a layer it has seen).
struct Tarball {
    open: Vec<u8>,
}

impl Tarball {
    /// The busybox rootfs plus `extra_mib` MiB of random-content files (1 MiB each).
    fn build(busybox: &Path, extra_mib: usize, cache: &Path) -> Result<Tarball, String> {
        let name = if extra_mib == 0 {
            "busybox-open.tar".to_owned()
        } else {
            format!("rootfs-{extra_mib}m-open.tar")
        };
        let path = cache.join(&name);
        if let Ok(b) = std::fs::read(&path) {
            return Ok(Tarball { open: b });
        }
        let f = std::fs::File::open(busybox).map_err(|e| e.to_string())?;
        let mut ar = tar::Archive::new(f);
        let mut b = tar::Builder::new(Vec::new());
        for e in ar.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            let mut h = e.header().clone();
            let mut data = vec![];
            e.read_to_end(&mut data).map_err(|e| e.to_string())?;
            let path = e.path().map_err(|e| e.to_string())?.into_owned();
            if h.entry_type().is_symlink() || h.entry_type().is_hard_link() {
                let link = e
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default()
                    .into_owned();
                b.append_link(&mut h, &path, &link)
                    .map_err(|e| e.to_string())?;
            } else {
                b.append_data(&mut h, &path, &data[..])
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut rng = rand::rng();
        let mut buf = vec![0u8; 1 << 20];
        if extra_mib > 0 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            b.append_data(&mut h, "opt/bench/", io::empty())
                .map_err(|e| e.to_string())?;
        }
        for i in 0..extra_mib {
            rng.fill_bytes(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(buf.len() as u64);
            h.set_mtime(0);
            b.append_data(&mut h, format!("opt/bench/blob{i:03}"), &buf[..])
                .map_err(|e| e.to_string())?;
        }
        let mut bytes = b.into_inner().map_err(|e| e.to_string())?;
        // tar::Builder::finish writes exactly two zero blocks.
        bytes.truncate(bytes.len() - 1024);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        Ok(Tarball { open: bytes })
    }

    /// One unique entry plus the end-of-archive blocks.
    fn tail(tag: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let content = format!("{tag}\n");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, "etc/berth-bench-tag", content.as_bytes())
            .unwrap();
        b.into_inner().unwrap()
    }

    fn size_mb(&self) -> f64 {
        self.open.len() as f64 / 1e6
    }
}

/// A docker-archive of a three-layer image (`berth-bench-load:1`): busybox, then two
/// layers of 48 MiB of random files each. Built once into the cache.
fn load_archive(busybox: &Path, cache: &Path) -> Result<Vec<u8>, String> {
    let path = cache.join("load-3layers.tar");
    if let Ok(b) = std::fs::read(&path) {
        return Ok(b);
    }
    let base = Tarball::build(busybox, 0, cache)?;
    let mut l1 = base.open.clone();
    l1.extend_from_slice(&[0u8; 1024]);
    let mut rng = rand::rng();
    let mut layer = |dir: &str| -> Result<Vec<u8>, String> {
        let mut b = tar::Builder::new(Vec::new());
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..48 {
            rng.fill_bytes(&mut buf);
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(buf.len() as u64);
            h.set_mtime(0);
            b.append_data(&mut h, format!("opt/{dir}/blob{i:02}"), &buf[..])
                .map_err(|e| e.to_string())?;
        }
        b.into_inner().map_err(|e| e.to_string())
    };
    let (l2, l3) = (layer("l2")?, layer("l3")?);
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    let diff: Vec<String> = [&l1, &l2, &l3]
        .iter()
        .map(|l| format!("sha256:{}", sha(l)))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff},
    }))
    .map_err(|e| e.to_string())?;
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json", "RepoTags": ["berth-bench-load:1"],
        "Layers": ["l1/layer.tar", "l2/layer.tar", "l3/layer.tar"],
    }]))
    .map_err(|e| e.to_string())?;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("l1/layer.tar", &l1),
        ("l2/layer.tar", &l2),
        ("l3/layer.tar", &l3),
        ("config.json", &config),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data.as_slice())
            .map_err(|e| e.to_string())?;
    }
    let bytes = b.into_inner().map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The daemon's peak RSS since the last reset, in MiB; resets it for the next reading.
fn peak_rss(pid: i32, reset: bool) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    if reset {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
    Some(kb / 1024.0)
}

/// Time and peak daemon RSS of each step of [`image_round`].
struct ImageRound {
    load: (Duration, Option<f64>),
    save: (Duration, Option<f64>),
    commit: (Duration, Option<f64>),
    cp: (Duration, Option<f64>),
}

/// Load, save and commit on one daemon, then removal of what they made.
async fn image_round(t: &Target, archive: &[u8]) -> Result<ImageRound, String> {
    let mut c = t.conn().await?;
    let step = |r: io::Result<Resp>, what: &str| -> Result<Resp, String> {
        r.map_err(|e| e.to_string())?.ok(what)
    };
    peak_rss(t.pid, true);
    let t0 = Instant::now();
    let r = step(
        c.request(
            "POST",
            &format!("{API}/images/load?quiet=1"),
            &[archive],
            Some("application/x-tar"),
        )
        .await,
        "load",
    )?;
    let load = (t0.elapsed(), peak_rss(t.pid, true));
    if r.text().contains("errorDetail") {
        return Err(format!("load: {}", r.text()));
    }
    let t0 = Instant::now();
    let r = step(
        c.get(&format!("{API}/images/get?names=berth-bench-load:1"))
            .await,
        "save",
    )?;
    let save = (t0.elapsed(), peak_rss(t.pid, true));
    if r.body.len() < archive.len() / 2 {
        return Err(format!("save: {} bytes", r.body.len()));
    }
    let id = create_on(
        &mut c,
        &[
            "sh",
            "-c",
            "mkdir /d; for i in $(seq 1 50); do head -c 1048576 /dev/urandom > /d/f$i; done",
        ],
        "none",
    )
    .await?;
    step(
        c.post(&format!("{API}/containers/{id}/start")).await,
        "start",
    )?;
    step(c.post(&format!("{API}/containers/{id}/wait")).await, "wait")?;
    peak_rss(t.pid, true);
    let t0 = Instant::now();
    step(
        c.post(&format!(
            "{API}/commit?container={id}&repo=berth-bench-commit&tag=1"
        ))
        .await,
        "commit",
    )?;
    let commit = (t0.elapsed(), peak_rss(t.pid, true));
    let t0 = Instant::now();
    let r = step(
        c.get(&format!("{API}/containers/{id}/archive?path=/d"))
            .await,
        "cp",
    )?;
    let cp = (t0.elapsed(), peak_rss(t.pid, true));
    if r.body.len() < 50 << 20 {
        return Err(format!("cp: {} bytes", r.body.len()));
    }
    let _ = c.delete(&format!("{API}/containers/{id}?force=1")).await;
    let _ = c
        .delete(&format!("{API}/images/berth-bench-commit:1?force=1"))
        .await;
    let _ = c
        .delete(&format!("{API}/images/berth-bench-load:1?force=1"))
        .await;
    Ok(ImageRound {
        load,
        save,
        commit,
        cp,
    })
}

/// A registry (Debian's docker-registry) for case j, on 127.0.0.1 in a daemon's network
/// namespace, with its storage in a temp dir; stopped by pid and removed on drop.
struct BenchRegistry {
    dir: PathBuf,
    addr: String,
    child: Child,
}

impl BenchRegistry {
    const BIN: &'static str = "/usr/bin/docker-registry";

    fn start(daemon: i32, tmp: &Path) -> Result<BenchRegistry, String> {
        if !Path::new(Self::BIN).exists() {
            return Err(format!(
                "{} is missing (scripts/deps.sh installs docker-registry)",
                Self::BIN
            ));
        }
        let netns = format!("--net=/proc/{daemon}/ns/net");
        // A fresh network namespace has its loopback down.
        let _ = Command::new("nsenter")
            .args([netns.as_str(), "ip", "link", "set", "lo", "up"])
            .status();
        let mut rnd = [0u8; 4];
        rand::rng().fill_bytes(&mut rnd);
        let dir = tmp.join(format!(
            "berth-bench.{}.registry.{}",
            std::process::id(),
            hex::encode(rnd)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // A port from the host's free ones; the namespace's own are all free.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("nsenter")
            .arg(&netns)
            .arg(Self::BIN)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start the registry: {e}"))?;
        let mut r = BenchRegistry { dir, addr, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = Command::new("nsenter")
                .args([netns.as_str(), "curl", "-sf", "-o", "/dev/null"])
                .arg(format!("http://{}/v2/", r.addr))
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return Ok(r);
            }
            if let Ok(Some(st)) = r.child.try_wait() {
                return Err(format!(
                    "the registry exited ({st}): {}",
                    tail_file(&r.dir.join("registry.log"), 5)
                ));
            }
            if Instant::now() > deadline {
                return Err("the registry did not answer in 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One round of case j on `t`: load, tag, push (timed), remove, pull (timed, with the
/// daemon's peak RSS), remove.
async fn registry_round(
    t: &Target,
    archive: &[u8],
    addr: &str,
    rep: usize,
) -> Result<(Duration, Duration, Option<f64>), String> {
    let mut c = t.conn().await?;
    let step = |r: io::Result<Resp>, what: &str| -> Result<Resp, String> {
        let r = r.map_err(|e| e.to_string())?.ok(what)?;
        if r.text().contains("errorDetail") {
            return Err(format!("{what}: {}", r.text().lines().last().unwrap_or("")));
        }
        Ok(r)
    };
    step(
        c.request(
            "POST",
            &format!("{API}/images/load?quiet=1"),
            &[archive],
            Some("application/x-tar"),
        )
        .await,
        "load",
    )?;
    let repo = format!("{addr}/bench{rep}-{}", rand::rng().next_u32());
    step(
        c.post(&format!(
            "{API}/images/berth-bench-load:1/tag?repo={}&tag=1",
            urlencode(&repo)
        ))
        .await,
        "tag",
    )?;
    // dockerd reads the credentials from the body when the header is missing.
    let t0 = Instant::now();
    step(
        c.post_json(&format!("{API}/images/{repo}/push?tag=1"), &json!({}))
            .await,
        "push",
    )?;
    let push = t0.elapsed();
    for name in [format!("{repo}:1"), "berth-bench-load:1".to_owned()] {
        step(
            c.delete(&format!("{API}/images/{name}?force=1")).await,
            "rmi",
        )?;
    }
    peak_rss(t.pid, true);
    let t0 = Instant::now();
    step(
        c.post(&format!(
            "{API}/images/create?fromImage={}&tag=1",
            urlencode(&repo)
        ))
        .await,
        "pull",
    )?;
    let pull = t0.elapsed();
    let rss = peak_rss(t.pid, true);
    let _ = c.delete(&format!("{API}/images/{repo}:1?force=1")).await;
    Ok((push, pull, rss))
}

/// `docker import` over the API (what the CLI sends); the time until the reply ends.
async fn api_import(
    t: &Target,
    tb: &Tarball,
    repo: &str,
    tag: &str,
    changes: Option<&str>,
) -> Result<Duration, String> {
    let tail = Tarball::tail(&format!("{repo}:{tag}:{}", rand::rng().next_u64()));
    let mut path = format!("{API}/images/create?fromSrc=-&repo={repo}&tag={tag}");
    if let Some(c) = changes {
        let _ = write!(path, "&changes={}", urlencode(c));
    }
    let mut c = t.conn().await?;
    let t0 = Instant::now();
    let r = c
        .request("POST", &path, &[&tb.open, &tail], Some("application/x-tar"))
        .await
        .map_err(|e| e.to_string())?
        .ok("import")?;
    let took = t0.elapsed();
    let body = r.text();
    if body.contains("\"error\"") || body.contains("errorDetail") {
        return Err(format!("import: {}", body.lines().last().unwrap_or("")));
    }
    Ok(took)
}

// ---------------------------------------------------------------------------------------
// The cases.

struct Ctx {
    args: Args,
    targets: Vec<Target>,
    report: Report,
    reps: usize,
    cache: PathBuf,
    /// The load average as each case began.
    loads: Vec<(char, String)>,
}

impl Ctx {
    fn names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }

    async fn cleanup_all(&self) {
        for t in &self.targets {
            t.cleanup().await;
        }
    }

    /// a. `docker run --rm busybox true` through the CLI.
    async fn case_a(&mut self) {
        let reps = self.reps;
        // The CLI's own floor: one `docker version` (process start, one API round trip).
        let kf = "a. CLI floor: docker version (for reference)";
        self.report.declare(kf, "ms", None, None);
        for rep in 0..=reps {
            for ti in order(self.targets.len(), rep) {
                let mut cmd = self.targets[ti].docker();
                cmd.args(["version", "--format", "{{.Server.Version}}"]);
                let t0 = Instant::now();
                let out = cli_output(cmd).await;
                let took = t0.elapsed();
                match out {
                    Ok(o) if o.status.success() => {
                        if rep > 0 {
                            self.report.add(kf, "ms", ti, ms(took));
                        }
                    }
                    _ => self.report.fail(kf, "ms", ti, "failed".into()),
                }
            }
        }
        for (net, key, budget, dref) in [
            (
                "default",
                "a. docker run --rm busybox true, CLI, default network",
                50.0,
                "355 ms",
            ),
            (
                "none",
                "a. docker run --rm busybox true, CLI, --network none",
                40.0,
                "275 ms",
            ),
        ] {
            self.report
                .declare(key, "ms", Some(Budget::AtMost(budget)), Some(dref));
            say(format!(
                "case a: docker run --rm, network {net}, {reps} runs"
            ));
            for rep in 0..=reps {
                for ti in order(self.targets.len(), rep) {
                    let t = &self.targets[ti];
                    if net == "default"
                        && let Err(e) = &t.bridge
                    {
                        self.report
                            .fail(key, "ms", ti, format!("unsupported ({e})"));
                        continue;
                    }
                    let mut cmd = t.docker();
                    cmd.args(["run", "--rm", "--label", "berth.bench=1"]);
                    if net == "none" {
                        cmd.args(["--network", "none"]);
                    }
                    cmd.args([IMAGE, "true"]);
                    let t0 = Instant::now();
                    let out = cli_output(cmd).await;
                    let took = t0.elapsed();
                    match out {
                        Ok(o) if o.status.success() => {
                            if rep > 0 {
                                self.report.add(key, "ms", ti, ms(took));
                            }
                        }
                        Ok(o) => {
                            let e = String::from_utf8_lossy(&o.stderr).trim().to_owned();
                            self.report
                                .fail(key, "ms", ti, format!("failed: {}", first_line(&e)));
                        }
                        Err(e) => self.report.fail(key, "ms", ti, format!("docker CLI: {e}")),
                    }
                }
            }
        }
        self.cleanup_all().await;
    }

    /// b. create + start + wait + delete over the API.
    async fn case_b(&mut self) {
        let reps = self.reps * 2;
        for (net, key, budget) in [
            (
                "default",
                "b. API create+start+wait+delete, default network",
                Some(Budget::AtMost(15.0)),
            ),
            (
                "none",
                "b. API create+start+wait+delete, --network none",
                None,
            ),
        ] {
            self.report.declare(
                key,
                "ms",
                budget,
                if net == "default" {
                    Some("347 ms")
                } else {
                    None
                },
            );
            say(format!("case b: API cycle, network {net}, {reps} runs"));
            for rep in 0..=reps {
                for ti in order(self.targets.len(), rep) {
                    let t = &self.targets[ti];
                    if net == "default"
                        && let Err(e) = &t.bridge
                    {
                        self.report
                            .fail(key, "ms", ti, format!("unsupported ({e})"));
                        continue;
                    }
                    let r = async {
                        let mut c = t.conn().await?;
                        let _ = c.get("/_ping").await;
                        let t0 = Instant::now();
                        let id = create_on(&mut c, &["true"], net).await?;
                        let t1 = Instant::now();
                        start_on(&mut c, &id).await?;
                        let t2 = Instant::now();
                        let w = tokio::time::timeout(
                            Duration::from_secs(30),
                            c.post(&format!("{API}/containers/{id}/wait")),
                        )
                        .await
                        .map_err(|_| "wait: no reply in 30 s".to_owned())?
                        .map_err(|e| e.to_string())?
                        .ok("wait")?;
                        let t3 = Instant::now();
                        c.delete(&format!("{API}/containers/{id}?force=1"))
                            .await
                            .map_err(|e| e.to_string())?
                            .ok("delete")?;
                        let t4 = Instant::now();
                        let code = w.json().get("StatusCode").and_then(Value::as_i64);
                        if code != Some(0) {
                            return Err(format!("exit status {code:?}"));
                        }
                        Ok::<_, String>([t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3])
                    }
                    .await;
                    match r {
                        Ok(d) if rep > 0 => {
                            self.report.add(key, "ms", ti, ms(d[0]));
                            for (i, step) in
                                ["create", "start", "wait", "delete"].iter().enumerate()
                            {
                                let k = format!("b. … of which {step}, --network {net}");
                                self.report.add(&k, "ms", ti, ms(d[i + 1]));
                            }
                        }
                        Ok(_) => {}
                        Err(e) => self.report.fail(key, "ms", ti, format!("failed: {e}")),
                    }
                }
            }
        }
        self.cleanup_all().await;
    }

    /// c + d. A burst of 50 concurrent `sleep` containers; the daemon tree's memory idle and
    /// with the 50 running.
    async fn case_c(&mut self) {
        let reps = if self.args.quick { 1 } else { 3 };
        const N: usize = 50;
        self.report
            .declare("c. create 50 concurrently", "ms", None, None);
        self.report.declare(
            "c. start 50 concurrently (burst)",
            "containers/s",
            Some(Budget::AtLeast(100.0)),
            Some("8/s"),
        );
        self.report
            .declare("c. start 50 concurrently, wall", "ms", None, None);
        self.report
            .declare("c. forced removal of the 50", "ms", None, None);
        self.report.declare(
            "d. daemon tree RSS, idle",
            "MiB",
            Some(Budget::AtMost(15.0)),
            Some("147 MiB"),
        );
        self.report
            .declare("d. daemon tree PSS, idle", "MiB", None, None);
        self.report
            .declare("d. daemon tree RSS, 50 running", "MiB", None, None);
        self.report
            .declare("d. daemon tree PSS, 50 running", "MiB", None, None);
        self.report.declare(
            "d. daemon tree RSS per running container",
            "MiB",
            None,
            None,
        );
        self.report.declare(
            "d. daemon tree PSS per running container",
            "MiB",
            Some(Budget::AtMost(0.5)),
            Some("2.8 MiB"),
        );
        self.report
            .declare("d. daemon tree processes, 50 running", "count", None, None);
        say(format!("case c/d: burst of {N}, {reps} runs"));
        for rep in 0..reps {
            for ti in order(self.targets.len(), rep) {
                let t = &self.targets[ti];
                let r = burst(t, N).await;
                match r {
                    Ok(b) => {
                        let rp = &mut self.report;
                        rp.add("c. create 50 concurrently", "ms", ti, ms(b.create));
                        rp.add(
                            "c. start 50 concurrently (burst)",
                            "containers/s",
                            ti,
                            N as f64 / b.start.as_secs_f64(),
                        );
                        rp.add("c. start 50 concurrently, wall", "ms", ti, ms(b.start));
                        rp.add("c. forced removal of the 50", "ms", ti, ms(b.remove));
                        let mib = |k: u64| k as f64 / 1024.0;
                        rp.add("d. daemon tree RSS, idle", "MiB", ti, mib(b.idle.0));
                        rp.add("d. daemon tree PSS, idle", "MiB", ti, mib(b.idle.1));
                        rp.add("d. daemon tree RSS, 50 running", "MiB", ti, mib(b.full.0));
                        rp.add("d. daemon tree PSS, 50 running", "MiB", ti, mib(b.full.1));
                        rp.add(
                            "d. daemon tree RSS per running container",
                            "MiB",
                            ti,
                            (mib(b.full.0) - mib(b.idle.0)) / N as f64,
                        );
                        rp.add(
                            "d. daemon tree PSS per running container",
                            "MiB",
                            ti,
                            (mib(b.full.1) - mib(b.idle.1)) / N as f64,
                        );
                        rp.add(
                            "d. daemon tree processes, 50 running",
                            "count",
                            ti,
                            b.procs as f64,
                        );
                    }
                    Err(e) => {
                        for k in [
                            "c. start 50 concurrently (burst)",
                            "d. daemon tree RSS, idle",
                        ] {
                            self.report.fail(k, "", ti, format!("failed: {e}"));
                        }
                    }
                }
                t.cleanup().await;
            }
        }
    }

    /// e. `GET /containers/json?all=1` with 100 containers, 8 keep-alive connections.
    async fn case_e(&mut self) {
        let reps = if self.args.quick { 1 } else { 3 };
        let secs = self
            .args
            .load_secs
            .unwrap_or(if self.args.quick { 3 } else { 10 });
        let k_rps = "e. list 100 containers, 8 connections";
        let k_p50 = "e. list latency p50";
        let k_p99 = "e. list latency p99";
        let k_cpu = "e. daemon CPU per list request";
        self.report.declare(
            k_rps,
            "req/s",
            Some(Budget::AtLeast(2000.0)),
            Some("224 req/s"),
        );
        self.report.declare(k_p50, "ms", None, None);
        self.report.declare(k_p99, "ms", None, None);
        self.report.declare(k_cpu, "ms", None, Some("7 ms"));
        say(format!(
            "case e: list load, 100 containers, {reps} runs of {secs} s"
        ));
        let mut ready = vec![];
        for (ti, t) in self.targets.iter().enumerate() {
            match t.create_many(100, &["true"]).await {
                Ok(_) => ready.push(ti),
                Err(e) => self.report.fail(k_rps, "req/s", ti, format!("failed: {e}")),
            }
        }
        for rep in 0..reps {
            for ti in order(self.targets.len(), rep) {
                if !ready.contains(&ti) {
                    continue;
                }
                let t = &self.targets[ti];
                match list_load(t, Duration::from_secs(secs)).await {
                    Ok(l) => {
                        self.report.add(k_rps, "req/s", ti, l.rps);
                        self.report.add(k_p50, "ms", ti, l.p50);
                        self.report.add(k_p99, "ms", ti, l.p99);
                        self.report.add(k_cpu, "ms", ti, l.cpu_ms);
                    }
                    Err(e) => self.report.fail(k_rps, "req/s", ti, format!("failed: {e}")),
                }
            }
        }
        self.cleanup_all().await;
    }

    /// h. `docker exec ctr true` through the CLI into a running container (network none),
    /// and the same over the API: exec create + detached start, then inspect until the
    /// exit code is there.
    async fn case_h(&mut self) {
        let reps = self.reps;
        let k_cli = "h. docker exec ctr true, CLI";
        let k_api = "h. API exec create+start (detached)+exit seen";
        self.report.declare(k_cli, "ms", None, None);
        self.report.declare(k_api, "ms", None, None);
        say(format!("case h: docker exec, {reps} runs"));
        let mut ctrs: Vec<Option<String>> = vec![None; self.targets.len()];
        for (ti, t) in self.targets.iter().enumerate() {
            let r = async {
                let mut c = t.conn().await?;
                run_detached_on(&mut c, &["sleep", "600"]).await
            }
            .await;
            match r {
                Ok(id) => ctrs[ti] = Some(id),
                Err(e) => self.report.fail(k_cli, "ms", ti, format!("failed: {e}")),
            }
        }
        for rep in 0..=reps {
            for ti in order(self.targets.len(), rep) {
                let Some(id) = ctrs[ti].clone() else {
                    continue;
                };
                let t = &self.targets[ti];
                let mut cmd = t.docker();
                cmd.args(["exec", &id, "true"]);
                let t0 = Instant::now();
                let out = cli_output(cmd).await;
                let took = t0.elapsed();
                match out {
                    Ok(o) if o.status.success() => {
                        if rep > 0 {
                            self.report.add(k_cli, "ms", ti, ms(took));
                        }
                    }
                    Ok(o) => {
                        let e = String::from_utf8_lossy(&o.stderr).trim().to_owned();
                        self.report
                            .fail(k_cli, "ms", ti, format!("failed: {}", first_line(&e)));
                    }
                    Err(e) => self
                        .report
                        .fail(k_cli, "ms", ti, format!("docker CLI: {e}")),
                }
                match api_exec(t, &id).await {
                    Ok(d) if rep > 0 => self.report.add(k_api, "ms", ti, ms(d)),
                    Ok(_) => {}
                    Err(e) => self.report.fail(k_api, "ms", ti, format!("failed: {e}")),
                }
            }
        }
        self.cleanup_all().await;
    }

    /// f. Import of a 2 MB (busybox) and a 100 MB rootfs tarball.
    async fn case_f(&mut self) {
        let bb = match busybox_tar(&self.cache) {
            Ok(p) => p,
            Err(e) => {
                self.report.fail("f. import busybox tarball", "s", 0, e);
                return;
            }
        };
        let small = Tarball::build(&bb, 0, &self.cache);
        let big = Tarball::build(&bb, 93, &self.cache);
        let (Ok(small), Ok(big)) = (small, big) else {
            say("case f: could not build the tarballs");
            return;
        };
        let ks = format!(
            "f. import {:.1} MB rootfs tarball (busybox)",
            small.size_mb()
        );
        let kb = format!("f. import {:.0} MB rootfs tarball", big.size_mb());
        self.report.declare(&ks, "s", None, None);
        self.report
            .declare(&kb, "s", Some(Budget::AtMost(0.35)), Some("0.71 s"));
        let (rs, rb) = if self.args.quick { (2, 1) } else { (5, 3) };
        say(format!(
            "case f: imports, {rs} x {:.1} MB, {rb} x {:.0} MB",
            small.size_mb(),
            big.size_mb()
        ));
        for (tb, key, reps) in [(&small, &ks, rs), (&big, &kb, rb)] {
            for rep in 0..reps {
                for ti in order(self.targets.len(), rep) {
                    let t = &self.targets[ti];
                    let tag = format!("r{rep}-{}", rand::rng().next_u32());
                    match api_import(t, tb, "berth-bench-import", &tag, None).await {
                        Ok(d) => self.report.add(key, "s", ti, d.as_secs_f64()),
                        Err(e) => self.report.fail(key, "s", ti, format!("failed: {e}")),
                    }
                    // Best effort: berthd has no image removal yet.
                    if let Ok(mut c) = t.conn().await {
                        let _ = c
                            .delete(&format!("{API}/images/berth-bench-import:{tag}?force=1"))
                            .await;
                    }
                }
            }
        }
    }

    /// i. Images: `docker load` of a three-layer ~100 MB image, `docker save` of it,
    /// `docker commit` of a container that wrote 50 MB, and `docker cp` of that 50 MB
    /// directory out; time and the daemon's peak RSS during each (VmHWM of the daemon
    /// process, reset before each operation).
    async fn case_i(&mut self) {
        let bb = match busybox_tar(&self.cache) {
            Ok(p) => p,
            Err(e) => {
                self.report.fail("i. docker load", "s", 0, e);
                return;
            }
        };
        let archive = match load_archive(&bb, &self.cache) {
            Ok(a) => a,
            Err(e) => {
                self.report.fail("i. docker load", "s", 0, e);
                return;
            }
        };
        let mb = archive.len() as f64 / 1e6;
        let kl = format!("i. docker load, three layers, {mb:.0} MB");
        let ks = format!("i. docker save of it, {mb:.0} MB");
        let kc = "i. docker commit, 50 MB changed".to_owned();
        let kp = "i. docker cp of a 50 MB directory out".to_owned();
        for k in [&kl, &ks, &kc, &kp] {
            self.report.declare(k, "s", None, None);
            self.report.declare(
                &format!("{k}: peak daemon RSS"),
                "MiB",
                Some(Budget::AtMost(64.0)),
                None,
            );
        }
        let reps = if self.args.quick { 1 } else { 3 };
        say(format!("case i: load, save, commit, {reps} x"));
        for rep in 0..reps {
            for ti in order(self.targets.len(), rep) {
                let t = &self.targets[ti];
                let r = image_round(t, &archive).await;
                match r {
                    Ok(round) => {
                        for (k, (d, rss)) in [
                            (&kl, round.load),
                            (&ks, round.save),
                            (&kc, round.commit),
                            (&kp, round.cp),
                        ] {
                            self.report.add(k, "s", ti, d.as_secs_f64());
                            if let Some(rss) = rss {
                                self.report
                                    .add(&format!("{k}: peak daemon RSS"), "MiB", ti, rss);
                            }
                        }
                    }
                    Err(e) => self.report.fail(&kl, "s", ti, format!("failed: {e}")),
                }
            }
        }
        self.cleanup_all().await;
    }

    /// j. Registries: case i's image loaded, pushed to a fresh registry on 127.0.0.1 in
    /// the daemon's network namespace (so every blob is uploaded), removed, and pulled
    /// back; time of the push and of the pull, and the
    /// daemon's peak RSS during the pull.
    async fn case_j(&mut self) {
        let kpush = "j. docker push, three layers".to_owned();
        let kpull = "j. docker pull of it from 127.0.0.1".to_owned();
        let krss = format!("{kpull}: peak daemon RSS");
        self.report.declare(&kpush, "s", None, None);
        self.report.declare(&kpull, "s", None, None);
        self.report
            .declare(&krss, "MiB", Some(Budget::AtMost(64.0)), None);
        let archive = match busybox_tar(&self.cache).and_then(|bb| load_archive(&bb, &self.cache)) {
            Ok(a) => a,
            Err(e) => {
                self.report.fail(&kpull, "s", 0, e);
                return;
            }
        };
        let reps = if self.args.quick { 1 } else { 3 };
        say(format!("case j: push and pull, {reps} x"));
        for rep in 0..reps {
            for ti in order(self.targets.len(), rep) {
                let t = &self.targets[ti];
                // A fresh registry each round: every blob is uploaded (no daemon can
                // skip or mount one), and its start is not timed.
                let reg = match BenchRegistry::start(t.pid, &self.args.tmp) {
                    Ok(r) => r,
                    Err(e) => {
                        self.report.fail(&kpull, "s", ti, e);
                        continue;
                    }
                };
                match registry_round(t, &archive, &reg.addr, rep).await {
                    Ok((push, pull, rss)) => {
                        self.report.add(&kpush, "s", ti, push.as_secs_f64());
                        self.report.add(&kpull, "s", ti, pull.as_secs_f64());
                        if let Some(rss) = rss {
                            self.report.add(&krss, "MiB", ti, rss);
                        }
                    }
                    Err(e) => self.report.fail(&kpull, "s", ti, format!("failed: {e}")),
                }
            }
        }
        self.cleanup_all().await;
    }

    /// l. Events fan-out (issue 16): 10 subscribers on `GET /events` (container events)
    /// while 50 containers are created and started at once; reported: the time from the
    /// first start request until every subscriber has seen all 50 `start` events, and the
    /// events delivered per second over all subscribers in that time.
    async fn case_l(&mut self) {
        const SUBS: usize = 10;
        const N: usize = 50;
        let reps = if self.args.quick { 1 } else { 3 };
        let kt = "l. 10 /events subscribers see 50 concurrent starts";
        let kr = "l. events delivered to 10 subscribers";
        self.report.declare(kt, "ms", None, None);
        self.report.declare(kr, "events/s", None, None);
        say(format!(
            "case l: {SUBS} subscribers, {N} starts, {reps} runs"
        ));
        for rep in 0..reps {
            for ti in order(self.targets.len(), rep) {
                let t = &self.targets[ti];
                match events_fanout(t, SUBS, N).await {
                    Ok((took, delivered)) => {
                        self.report.add(kt, "ms", ti, ms(took));
                        self.report
                            .add(kr, "events/s", ti, delivered as f64 / took.as_secs_f64());
                    }
                    Err(e) => self.report.fail(kt, "ms", ti, format!("failed: {e}")),
                }
                t.cleanup().await;
            }
        }
    }

    /// s. Soak (issue 18 part 5; only when asked for with `--cases s`): `--soak-clients`
    /// concurrent API clients, each on its own keep-alive connection, doing a mix of run
    /// (create, start, wait, logs, remove), exec (create, detached start, exit seen),
    /// logs, inspect and list against one daemon at a time for `--soak-secs`. Reported:
    /// requests/s, p99 per operation, failed requests, and what is left afterwards (daemon
    /// tree RSS against the idle figure before, processes, descriptors, mounts under the
    /// daemon's temp root) once everything was removed and the machine settled.
    async fn case_s(&mut self) {
        let secs = self
            .args
            .soak_secs
            .unwrap_or(if self.args.quick { 60 } else { 600 });
        let clients = self.args.soak_clients.max(1);
        let kreq = "s. soak requests served";
        let krate = "s. soak throughput";
        let kfail = "s. soak failed requests";
        let krss0 = "s. daemon tree RSS before (idle)";
        let krss1 = "s. daemon tree RSS after (idle)";
        let kleak = "s. left after: processes, fds, mounts (delta)";
        self.report.declare(kreq, "requests", None, None);
        self.report.declare(krate, "requests/s", None, None);
        self.report
            .declare(kfail, "requests", Some(Budget::AtMost(0.0)), None);
        self.report.declare(krss0, "MiB", None, None);
        self.report.declare(krss1, "MiB", None, None);
        self.report
            .declare(kleak, "count", Some(Budget::AtMost(0.0)), None);
        for op in SOAK_OPS {
            self.report
                .declare(&format!("s. p99 {op}"), "ms", None, None);
        }
        say(format!("case s: {clients} clients for {secs} s per daemon"));
        for ti in 0..self.targets.len() {
            settle().await;
            let t = &self.targets[ti];
            let root = t
                .managed
                .as_ref()
                .and(t.sock.parent().map(Path::to_path_buf));
            let before = leftovers(t, root.as_deref()).await;
            let out = soak(t, clients, Duration::from_secs(secs)).await;
            t.cleanup().await;
            settle().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let after = leftovers(t, root.as_deref()).await;
            let rp = &mut self.report;
            match out {
                Ok(o) => {
                    let served: usize = o.lat.values().map(Vec::len).sum();
                    rp.add(kreq, "requests", ti, served as f64);
                    rp.add(krate, "requests/s", ti, served as f64 / secs as f64);
                    rp.add(kfail, "requests", ti, o.failed as f64);
                    for (op, mut v) in o.lat {
                        v.sort_by(f64::total_cmp);
                        rp.add(&format!("s. p99 {op}"), "ms", ti, percentile(&v, 0.99));
                    }
                    if !o.errors.is_empty() {
                        say(format!(
                            "{}: first failures: {}",
                            t.name,
                            o.errors.join(" | ")
                        ));
                    }
                }
                Err(e) => rp.fail(kreq, "", ti, format!("failed: {e}")),
            }
            let mib = |k: u64| k as f64 / 1024.0;
            rp.add(krss0, "MiB", ti, mib(before.rss_kib));
            rp.add(krss1, "MiB", ti, mib(after.rss_kib));
            let delta = |a: usize, b: usize| a.saturating_sub(b);
            let left = delta(after.procs, before.procs)
                + delta(after.fds, before.fds)
                + delta(after.mounts, before.mounts);
            say(format!(
                "{}: before {before:?}, after {after:?}",
                self.targets[ti].name
            ));
            rp.add(kleak, "count", ti, left as f64);
        }
    }

    /// k. The daemon idle (issue 18 part 6): CPU time and wakeups of the daemon tree over
    /// a window (60 s; 15 s with `--quick`) that starts after a little activity (5 short
    /// containers run and removed, one `sleep` left running) and after the machine settled.
    /// Every target is measured in the same window. CPU is the tasks' run time from
    /// /proc/PID/task/TID/schedstat; wakeups are the number of times they were scheduled
    /// (its third field), per second.
    async fn case_k(&mut self) {
        let window = Duration::from_secs(if self.args.quick { 15 } else { 60 });
        let kcpu = "k. daemon tree CPU while idle";
        let kwake = "k. daemon tree wakeups while idle";
        self.report
            .declare(kcpu, "% of a CPU", Some(Budget::AtMost(0.1)), None);
        self.report.declare(kwake, "/s", None, None);
        say(format!("case k: idle for {} s", window.as_secs()));
        let mut trees = Vec::new();
        for (ti, t) in self.targets.iter().enumerate() {
            match idle_prelude(t).await {
                Ok(()) => trees.push((ti, t.tree().await)),
                Err(e) => {
                    self.report.fail(kcpu, "", ti, format!("failed: {e}"));
                }
            }
        }
        settle().await;
        let before: Vec<_> = trees.iter().map(|(_, pids)| sched_threads(pids)).collect();
        tokio::time::sleep(window).await;
        for ((ti, pids), b) in trees.iter().zip(before) {
            let (ns, slices) = sched_delta(&b, &sched_threads(pids));
            let secs = window.as_secs_f64();
            let cpu = ns as f64 / 1e9 / secs * 100.0;
            let wakes = slices as f64 / secs;
            self.report.add(kcpu, "% of a CPU", *ti, cpu);
            self.report.add(kwake, "/s", *ti, wakes);
        }
        for t in &self.targets {
            t.cleanup().await;
        }
    }

    /// g. Cold start to `/_ping` 200, empty and with N containers on disk; SIGTERM to exit.
    async fn case_g(&mut self) {
        let n = self
            .args
            .disk_containers
            .unwrap_or(if self.args.quick { 100 } else { 1000 });
        let (re, rn) = if self.args.quick { (2, 1) } else { (5, 3) };
        let k_empty = "g. cold start to /_ping 200, empty data root";
        let k_term_empty = "g. SIGTERM to exit, empty";
        let k_full = format!("g. cold start to /_ping 200, {n} containers on disk");
        let k_term_full = format!("g. SIGTERM to exit, {n} containers on disk");
        self.report
            .declare(k_empty, "ms", Some(Budget::AtMost(20.0)), Some("178 ms"));
        self.report.declare(k_term_empty, "ms", None, None);
        self.report.declare(&k_full, "ms", None, None);
        self.report.declare(&k_term_full, "ms", None, None);
        let k_list_api = format!("g. GET /containers/json?all=1, {n} containers");
        let k_list_cli = format!("g. docker ps -a, {n} containers");
        self.report.declare(&k_list_api, "ms", None, None);
        self.report.declare(&k_list_cli, "ms", None, None);
        let launches: Vec<Option<Launch>> = self.targets.iter().map(|t| t.launch.clone()).collect();
        for (ti, l) in launches.iter().enumerate() {
            if l.is_none() {
                for k in [k_empty, k_term_empty, &k_full, &k_term_full] {
                    self.report
                        .fail(k, "ms", ti, "n/a (daemon not started by the kit)".into());
                }
            }
        }
        say(format!("case g: cold start, {re} runs empty"));
        for rep in 0..re {
            for ti in order(self.targets.len(), rep) {
                let Some(l) = &launches[ti] else { continue };
                // The other daemon's exit (dockerd: containerd and its namespaces) settles
                // before this one starts.
                settle().await;
                let r = async {
                    let dir = l.new_dir().map_err(|e| e.to_string())?;
                    let res = l.start(&dir).await;
                    let out = match res {
                        Ok((mut m, up)) => {
                            let down = m.stop();
                            Ok((up, down))
                        }
                        Err(e) => Err(e),
                    };
                    remove_root(&dir, l.kind);
                    out
                }
                .await;
                match r {
                    Ok((up, down)) => {
                        self.report.add(k_empty, "ms", ti, ms(up));
                        match down {
                            Some(d) => self.report.add(k_term_empty, "ms", ti, ms(d)),
                            None => self.report.fail(
                                k_term_empty,
                                "ms",
                                ti,
                                "did not exit in 60 s".into(),
                            ),
                        }
                    }
                    Err(e) => self.report.fail(k_empty, "ms", ti, format!("failed: {e}")),
                }
            }
        }
        // With n containers on disk: one root per daemon, filled once, restarted rn times.
        let mut roots: Vec<Option<PathBuf>> = vec![None; self.targets.len()];
        for (ti, l) in launches.iter().enumerate() {
            let Some(l) = l else { continue };
            say(format!(
                "case g: {}: creating {n} containers on a fresh root",
                self.targets[ti].name
            ));
            let r = async {
                let dir = l.new_dir().map_err(|e| e.to_string())?;
                roots[ti] = Some(dir.clone());
                let (mut m, _) = l.start(&dir).await?;
                let t = Target {
                    name: self.targets[ti].name.clone(),
                    kind: l.kind,
                    sock: m.sock.clone(),
                    pid: m.pid,
                    bridge: Ok(()),
                    managed: None,
                    launch: None,
                    docker_config: self.targets[ti].docker_config.clone(),
                };
                let bb = busybox_tar(&self.cache)?;
                let small = Tarball::build(&bb, 0, &self.cache)?;
                api_import(&t, &small, "busybox", "latest", Some("CMD [\"sh\"]")).await?;
                let t0 = Instant::now();
                t.create_many(n, &["true"]).await?;
                say(format!(
                    "  {n} created in {:.1} s",
                    t0.elapsed().as_secs_f64()
                ));
                m.stop().ok_or("did not exit in 60 s")?;
                Ok::<_, String>(())
            }
            .await;
            if let Err(e) = r {
                self.report.fail(&k_full, "ms", ti, format!("failed: {e}"));
                if let Some(d) = roots[ti].take() {
                    remove_root(&d, l.kind);
                }
            }
        }
        say(format!("case g: cold start with {n} containers, {rn} runs"));
        for rep in 0..rn {
            for ti in order(self.targets.len(), rep) {
                let (Some(l), Some(dir)) = (&launches[ti], &roots[ti]) else {
                    continue;
                };
                settle().await;
                match l.start(dir).await {
                    Ok((mut m, up)) => {
                        // Confirm the daemon sees them all.
                        if let Ok(mut c) = Conn::connect(&m.sock).await
                            && let Ok(r) = c.get(&format!("{API}/containers/json?all=1")).await
                        {
                            let seen = r.json().as_array().map_or(0, Vec::len);
                            if seen < n {
                                say(format!(
                                    "  warning: {} lists {seen} of {n} containers",
                                    self.targets[ti].name
                                ));
                            }
                        }
                        self.report.add(&k_full, "ms", ti, ms(up));
                        match list_times(&m.sock).await {
                            Ok((api, cli)) => {
                                self.report.add(&k_list_api, "ms", ti, ms(api));
                                self.report.add(&k_list_cli, "ms", ti, ms(cli));
                            }
                            Err(e) => {
                                self.report
                                    .fail(&k_list_api, "ms", ti, format!("failed: {e}"))
                            }
                        }
                        match m.stop() {
                            Some(d) => self.report.add(&k_term_full, "ms", ti, ms(d)),
                            None => self.report.fail(
                                &k_term_full,
                                "ms",
                                ti,
                                "did not exit in 60 s".into(),
                            ),
                        }
                    }
                    Err(e) => self.report.fail(&k_full, "ms", ti, format!("failed: {e}")),
                }
            }
        }
        for (ti, r) in roots.into_iter().enumerate() {
            if let (Some(d), Some(l)) = (r, &launches[ti]) {
                remove_root(&d, l.kind);
            }
        }
    }
}

/// Runs the CLI (killed after 60 s, so a container that never exits cannot hang the run).
/// One exec of `true` in container `id` over the API: create, detached start, then
/// `GET /exec/{id}/json` until it has exited with 0 (polled every 0.2 ms).
async fn api_exec(t: &Target, id: &str) -> Result<Duration, String> {
    let mut c = t.conn().await?;
    let _ = c.get("/_ping").await;
    let t0 = Instant::now();
    exec_on(&mut c, id, Duration::from_micros(200)).await?;
    Ok(t0.elapsed())
}

async fn cli_output(cmd: Command) -> io::Result<std::process::Output> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no exit in 60 s")),
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or("").chars().take(160).collect()
}

struct BurstOut {
    idle: (u64, u64),
    full: (u64, u64),
    procs: usize,
    create: Duration,
    start: Duration,
    remove: Duration,
}

async fn burst(t: &Target, n: usize) -> Result<BurstOut, String> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = mem_kib(&t.tree().await);
    // Create n concurrently (one connection each), then start them concurrently.
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..n {
        let sock = t.sock.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(&sock).await.map_err(|e| e.to_string())?;
            let id = create_on(&mut c, &["sleep", "3600"], "none").await?;
            Ok::<_, String>((c, id))
        }));
    }
    let mut made = vec![];
    let mut err = None;
    for tk in tasks {
        match tk.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(x) => made.push(x),
            Err(e) => err = Some(e),
        }
    }
    let create = t0.elapsed();
    if let Some(e) = err {
        return Err(e);
    }
    let t1 = Instant::now();
    let mut tasks = vec![];
    for (mut c, id) in made {
        tasks.push(tokio::spawn(async move {
            start_on(&mut c, &id).await?;
            Ok::<_, String>(id)
        }));
    }
    let mut ids = vec![];
    for tk in tasks {
        match tk.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(id) => ids.push(id),
            Err(e) => err = Some(e),
        }
    }
    let start = t1.elapsed();
    if let Some(e) = err {
        return Err(e);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let tree = t.tree().await;
    let full = mem_kib(&tree);
    let t2 = Instant::now();
    t.remove_all(ids, n).await?;
    let remove = t2.elapsed();
    Ok(BurstOut {
        idle,
        full,
        procs: tree.len(),
        create,
        start,
        remove,
    })
}

struct LoadOut {
    rps: f64,
    p50: f64,
    p99: f64,
    cpu_ms: f64,
}

async fn list_load(t: &Target, dur: Duration) -> Result<LoadOut, String> {
    let path = format!("{API}/containers/json?all=1");
    {
        let mut c = t.conn().await?;
        let r = c.get(&path).await.map_err(|e| e.to_string())?.ok("list")?;
        let n = r.json().as_array().map_or(0, Vec::len);
        if n < 100 {
            return Err(format!("list shows {n} containers, expected 100"));
        }
    }
    let tree = t.tree().await;
    let mut conns = vec![];
    for _ in 0..8 {
        let mut c = t.conn().await?;
        c.get(&path).await.map_err(|e| e.to_string())?.ok("list")?;
        conns.push(c);
    }
    let cpu0 = cpu_ticks(&tree);
    let t0 = Instant::now();
    let deadline = t0 + dur;
    let mut tasks = vec![];
    for mut c in conns {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let s = Instant::now();
                let r = c.get(&path).await.map_err(|e| e.to_string())?;
                if r.status != 200 {
                    return Err(format!("list: HTTP {}", r.status));
                }
                lat.push(ms(s.elapsed()));
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = vec![];
    for tk in tasks {
        all.extend(tk.await.map_err(|e| e.to_string())??);
    }
    let el = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_ticks(&tree);
    all.sort_by(|a, b| a.total_cmp(b));
    let n = all.len() as f64;
    Ok(LoadOut {
        rps: n / el,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        cpu_ms: (cpu1.saturating_sub(cpu0)) as f64 / clk_tck() * 1000.0 / n.max(1.0),
    })
}

// ---------------------------------------------------------------------------------------
// Setup and main.

async fn make_target(
    name: String,
    sock: PathBuf,
    managed: Option<Managed>,
    launch: Option<Launch>,
    cfg: &Path,
    cache: &Path,
) -> Result<Target, String> {
    if !ping(&sock).await {
        return Err(format!("{name}: no /_ping 200 on {}", sock.display()));
    }
    let pid = peer_pid(&sock).map_err(|e| format!("{name}: SO_PEERCRED: {e}"))?;
    let kind =
        match exe_of(pid).and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned())) {
            Some(n) if n.starts_with("berthd") => Kind::Berthd,
            Some(n) if n.starts_with("dockerd") => Kind::Dockerd,
            _ => Kind::Other,
        };
    let docker_config = cfg.join(format!("docker-config-{}", name.replace('/', "_")));
    std::fs::create_dir_all(&docker_config).map_err(|e| e.to_string())?;
    let mut t = Target {
        name,
        kind,
        sock,
        pid,
        bridge: Ok(()),
        managed,
        launch,
        docker_config,
    };
    // The image: import busybox with the CLI when missing.
    let mut c = t.conn().await?;
    let r = c
        .get(&format!("{API}/images/{IMAGE}/json"))
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        let tar = busybox_tar(cache)?;
        let out = t
            .docker()
            .args(["import", "-c", "CMD [\"sh\"]"])
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .map_err(|e| format!("docker import: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{}: docker import failed: {}",
                t.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    // Does the default network work here?
    let body = json!({
        "Image": IMAGE, "Cmd": ["true"], "Labels": {LABEL_KEY: LABEL_VAL},
        "HostConfig": {"NetworkMode": "default"},
    });
    let r = c
        .post_json(&format!("{API}/containers/create"), &body)
        .await
        .map_err(|e| e.to_string())?;
    if (200..300).contains(&r.status) {
        if let Some(id) = r.json().get("Id").and_then(Value::as_str) {
            let _ = c.delete(&format!("{API}/containers/{id}?force=1")).await;
        }
    } else {
        t.bridge = Err(format!("default network: HTTP {}", r.status));
    }
    Ok(t)
}

async fn run(ctx: &mut Ctx) {
    let cases = ctx.args.cases.clone();
    for case in ['a', 'b', 'c', 'e', 'f', 'h', 'i', 'j', 'k', 'l', 'g', 's'] {
        let wanted = cases.contains(case) || (case == 'c' && cases.contains('d'));
        if !wanted {
            continue;
        }
        // The previous case's aftermath (dockerd's shims exiting, namespaces being torn
        // down, writeback) must not be measured as this case's cost, for either daemon.
        settle().await;
        ctx.loads.push((case, loadavg()));
        match case {
            'a' => ctx.case_a().await,
            'b' => ctx.case_b().await,
            'c' => ctx.case_c().await,
            'e' => ctx.case_e().await,
            'f' => ctx.case_f().await,
            'g' => ctx.case_g().await,
            'i' => ctx.case_i().await,
            'j' => ctx.case_j().await,
            'k' => ctx.case_k().await,
            'l' => ctx.case_l().await,
            's' => ctx.case_s().await,
            _ => ctx.case_h().await,
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} CPUs ({cpu}), {:.1} GiB memory, kernel {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

/// The OCI runtime floor of issue 3 on this machine: `unshare` of all namespaces running
/// `true` (median and min..max of 10, after one warm-up).
fn unshare_floor() -> Option<String> {
    let mut v = vec![];
    for i in 0..11 {
        let t0 = Instant::now();
        let st = Command::new("unshare")
            .args([
                "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "--cgroup",
            ])
            .arg("true")
            .stdin(Stdio::null())
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
        if i > 0 {
            v.push(ms(t0.elapsed()));
        }
    }
    let (med, lo, hi) = stats(&v);
    Some(format!(
        "unshare of all namespaces + true {} ms ({}..{})",
        fmtv(med),
        fmtv(lo),
        fmtv(hi)
    ))
}

/// The 1-, 5- and 15-minute load averages (other work on the machine skews the figures).
/// The CPU time of all CPUs so far, as (busy, total) jiffies from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Waits (at most 30 s) until the machine is quiet: a 500 ms window with the CPUs busy
/// less than 10 % of the time.
async fn settle() {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = cpu_jiffies();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_jiffies();
        let busy = match (last, now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        last = now;
        if busy < 0.10 || Instant::now() >= deadline {
            return;
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn version_of(t: &Target) -> String {
    let Ok(mut c) = t.conn().await else {
        return String::new();
    };
    let Ok(r) = c.get(&format!("{API}/version")).await else {
        return String::new();
    };
    let v = r.json();
    format!(
        "{} {} (API {})",
        v.pointer("/Components/0/Name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        v.get("Version").and_then(Value::as_str).unwrap_or("?"),
        v.get("ApiVersion").and_then(Value::as_str).unwrap_or("?")
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Installed first: from here on SIGINT/SIGTERM no longer end the kit before it cleans up
    // (one that arrives while the daemons start is acted on as soon as they are up).
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("berth-bench: cannot install signal handlers");
        std::process::exit(2);
    };
    let _ = ARGS.set(args.clone());
    if !nix::unistd::geteuid().is_root() && (args.start_berthd || args.start_dockerd) {
        eprintln!("berth-bench: starting daemons needs root");
        std::process::exit(2);
    }
    let cache = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| source_dir().join("bench/.cache"));
    if let Err(e) = std::fs::create_dir_all(&cache) {
        eprintln!("berth-bench: {}: {e}", cache.display());
        std::process::exit(2);
    }
    let scratch = match tempfile_dir(&args.tmp) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("berth-bench: {e}");
            std::process::exit(2);
        }
    };

    let run_docker_existed = Path::new("/run/docker").exists();
    let mut plan: Vec<(String, Option<PathBuf>, Option<Launch>)> = vec![];
    if args.start_berthd {
        let bin = args.berthd_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("berthd")))
                .unwrap_or_else(|| PathBuf::from("berthd"))
        });
        plan.push((
            "berthd".into(),
            None,
            Some(Launch {
                kind: Kind::Berthd,
                bin,
                tmp: args.tmp.clone(),
            }),
        ));
    }
    if args.start_dockerd {
        plan.push((
            "dockerd".into(),
            None,
            Some(Launch {
                kind: Kind::Dockerd,
                bin: args.dockerd_bin.clone(),
                tmp: args.tmp.clone(),
            }),
        ));
    }
    for s in [&args.socket, &args.vs].into_iter().flatten() {
        plan.push((s.display().to_string(), Some(s.clone()), None));
    }
    if plan.is_empty() || plan.len() > 2 {
        eprintln!(
            "berth-bench: give one or two daemons (--socket, --vs, --start-berthd, --start-dockerd)"
        );
        std::process::exit(2);
    }

    let mut targets = vec![];
    let mut roots = vec![];
    let mut failed = false;
    for (name, sock, launch) in plan {
        let (sock, managed) = match (&sock, &launch) {
            (Some(s), _) => (s.clone(), None),
            (None, Some(l)) => {
                let dir = match l.new_dir() {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("berth-bench: {e}");
                        failed = true;
                        break;
                    }
                };
                roots.push((dir.clone(), l.kind));
                say(format!("starting {name} on {}", dir.display()));
                match l.start(&dir).await {
                    Ok((m, took)) => {
                        say(format!(
                            "  {name} ready in {:.0} ms (pid {})",
                            ms(took),
                            m.pid
                        ));
                        (m.sock.clone(), Some(m))
                    }
                    Err(e) => {
                        eprintln!("berth-bench: {name}: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            _ => unreachable!(),
        };
        match make_target(name, sock, managed, launch, scratch.path(), &cache).await {
            Ok(t) => targets.push(t),
            Err(e) => {
                eprintln!("berth-bench: {e}");
                failed = true;
                break;
            }
        }
    }

    let mut ctx = Ctx {
        reps: args.reps.unwrap_or(if args.quick { 3 } else { 10 }),
        report: Report {
            ntargets: targets.len(),
            ..Report::default()
        },
        args: args.clone(),
        targets,
        cache,
        loads: vec![],
    };
    let started = Instant::now();
    let load0 = loadavg();
    let floor = if failed { None } else { unshare_floor() };
    let date = chrono::Local::now().format("%Y-%m-%d %H:%M %Z").to_string();
    if !failed {
        for t in &ctx.targets {
            say(format!(
                "{}: {} pid {} ({:?}); default network: {}",
                t.name,
                version_of(t).await,
                t.pid,
                t.kind,
                match &t.bridge {
                    Ok(()) => "yes".to_owned(),
                    Err(e) => format!("unsupported ({e})"),
                }
            ));
        }
        tokio::select! {
            _ = run(&mut ctx) => {}
            _ = sigint.recv() => { eprintln!("berth-bench: interrupted; cleaning up"); failed = true; }
            _ = sigterm.recv() => { eprintln!("berth-bench: terminated; cleaning up"); failed = true; }
        }
    }
    // Cleanup: our labelled containers, then the daemons we started and their roots.
    // (A fresh context: the cases' futures were dropped above.)
    for t in &ctx.targets {
        t.cleanup().await;
    }
    let mut versions = vec![];
    for t in &ctx.targets {
        versions.push(format!("{}: {}", t.name, version_of(t).await));
    }
    for t in &mut ctx.targets {
        if let Some(mut m) = t.managed.take() {
            m.stop();
        }
    }
    for (d, k) in roots {
        remove_root(&d, k);
    }
    // dockerd makes /run/docker/plugins whatever its exec root; remove it when it was not
    // there before (rmdir: only when empty).
    if !run_docker_existed {
        let _ = std::fs::remove_dir("/run/docker/plugins");
        let _ = std::fs::remove_dir("/run/docker");
    }
    if ctx.targets.is_empty() {
        drop(scratch);
        std::process::exit(1);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run of {date}, {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if args.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(out, "Machine: {}", machine());
    if let Some(f) = &floor {
        let _ = writeln!(out, "Floor on this machine: {f}");
    }
    let _ = writeln!(out, "Load average at start: {load0}; at end: {}", loadavg());
    let by_case: Vec<String> = ctx.loads.iter().map(|(c, l)| format!("{c}: {l}")).collect();
    let _ = writeln!(
        out,
        "Load average as each case began: {}",
        by_case.join("; ")
    );
    for v in versions {
        let _ = writeln!(out, "Daemon {v}");
    }
    out.push('\n');
    out.push_str(&ctx.report.table(&ctx.names()));
    println!("{out}");
    if let Some(p) = &args.out
        && let Err(e) = std::fs::write(p, &out)
    {
        eprintln!("berth-bench: {}: {e}", p.display());
    }
    if failed {
        drop(scratch);
        std::process::exit(1);
    }
}

/// A scratch directory (docker CLI configs), removed on drop.
fn tempfile_dir(base: &Path) -> Result<ScratchDir, String> {
    let mut rnd = [0u8; 4];
    rand::rng().fill_bytes(&mut rnd);
    let p = base.join(format!(
        "berth-bench.{}.{}",
        std::process::id(),
        hex::encode(rnd)
    ));
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(ScratchDir(p))
}

#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_min_max() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn percentile_picks_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
    }

    #[test]
    fn order_alternates() {
        assert_eq!(order(2, 0), vec![0, 1]);
        assert_eq!(order(2, 1), vec![1, 0]);
    }

    #[test]
    fn urlencode_filters() {
        assert_eq!(urlencode(r#"{"a":1}"#), "%7B%22a%22%3A1%7D");
    }

    #[test]
    fn tarball_tail_is_a_valid_archive() {
        let t = Tarball::tail("x");
        assert_eq!(t.len() % 512, 0);
        let mut ar = tar::Archive::new(&t[..]);
        assert_eq!(ar.entries().unwrap().count(), 1);
    }

    #[tokio::test]
    async fn client_reads_chunked_and_length_bodies() {
        let dir = std::env::temp_dir().join(format!("berth-bench-test.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s");
        let _ = std::fs::remove_file(&sock);
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut r = BufReader::new(s);
            for reply in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..],
                &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
            ] {
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).await.unwrap();
                    if line == "\r\n" {
                        break;
                    }
                }
                r.get_mut().write_all(reply).await.unwrap();
            }
        });
        let mut c = Conn::connect(&sock).await.unwrap();
        assert_eq!(c.get("/a").await.unwrap().body, b"hello");
        assert_eq!(c.get("/b").await.unwrap().body, b"abcde");
        assert_eq!(c.delete("/c").await.unwrap().status, 204);
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
