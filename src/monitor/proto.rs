//! The monitor's wire formats: control and socket messages (one JSON document per line),
//! Docker's stdcopy framing and its json-file log lines.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::spec::ContainerSpec;

/// The monitor's socket, in the container's state dir.
pub const SOCKET_NAME: &str = "monitor.sock";
/// The exit status the monitor leaves in the state dir.
pub const EXIT_FILE: &str = "exit.json";

/// Which streams an attach carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachFlags {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// berthd → monitor on the control socket (descriptor 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CtlRequest {
    /// First message: the container to create. With `join_netns`, the first descriptor
    /// of the same `sendmsg` is the network namespace to join.
    Spec(Box<ContainerSpec>),
    /// Attaches for the container's start; the same `sendmsg` carries one connected
    /// socket per entry (SCM_RIGHTS), in order.
    Attach(Vec<AttachFlags>),
    /// Let the init run.
    Go,
}

/// monitor → berthd on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtlEvent {
    /// The init exists (paused before exec) with this host pid; its namespaces exist.
    /// (berthd sends "go" in the same batch as the spec and needs no reply to it.)
    Ready { pid: i32 },
    /// The container's command is running.
    Started { pid: i32 },
    /// The container could not be started. `exec`: the init failed (bad command, user,
    /// working dir or mount; Docker's text), else the monitor itself failed.
    Failed { message: String, exec: bool },
    /// The container's process exited and its output was written out.
    Exited(ExitStatus),
    /// An exec ([`SockRequest::Exec`]) exited and its output went out to its client;
    /// sent before its stream closes, and before the container's own `Exited`.
    ExecExited { id: String, exit_code: i32 },
}

/// A client's first line on `monitor.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockRequest {
    /// Reply `Ok`, then the stream: output out (stdcopy frames, or raw with a tty),
    /// stdin in.
    Attach(AttachFlags),
    /// Send a signal to the container's init. Reply `Ok` or `Error`.
    Signal { signal: i32 },
    /// Set the tty's window size. Reply `Ok` or `Error`.
    Resize { height: u16, width: u16 },
    /// Reply `Running` now (with the execs the monitor runs, or ran and has not reported
    /// yet), `ExecExited` for each exec that exits later, and `Exited` when the container
    /// exits (or `Exited` at once).
    Watch,
    /// Run a process in the container (`docker exec`). Reply `ExecStarted` once it runs
    /// (then, unless it is detached, the connection carries its stream as an attach
    /// does), `ExecFailed` when it could not be started (Docker's text), or `Error`.
    Exec(Box<ExecSpec>),
    /// Set an exec's tty window size. Reply `Ok` or `Error`.
    ResizeExec { id: String, height: u16, width: u16 },
}

/// The monitor's replies on `monitor.sock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockReply {
    Ok,
    Error {
        message: String,
    },
    Running {
        pid: i32,
        /// The execs running in the container, and those that exited while no berthd
        /// was there to hear it (the monitor forgets those once it has listed them).
        #[serde(default)]
        execs: Vec<ExecState>,
    },
    Exited(ExitStatus),
    /// The exec runs, with this host pid.
    ExecStarted {
        pid: i32,
    },
    /// The exec could not be started: Docker's text (`exec: "x": executable file not
    /// found in $PATH`), which picks the exit code (127, 126).
    ExecFailed {
        message: String,
    },
    /// On a watch: an exec exited.
    ExecExited {
        id: String,
        exit_code: i32,
    },
}

/// A process to run in a running container (`docker exec`), as berthd hands it to the
/// container's monitor. The monitor forks it into the container's cgroup and namespaces,
/// and it takes the same last steps as the container's init (user, capabilities, seccomp
/// filter), with its own command, environment, working directory and user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The exec instance's id (64 hex digits).
    pub id: String,
    /// argv; `args[0]` is looked up in the exec's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// The whole environment (berthd merged the container's and the exec's).
    pub env: Vec<String>,
    /// Working directory ("" means `/`); not made when missing, as with dockerd.
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]` ("" means root).
    pub user: String,
    /// Keep every capability of the bounding set (`docker exec --privileged`).
    pub privileged: bool,
    /// A pty for stdio (`docker exec -t`).
    pub tty: bool,
    /// Which streams the client gets (`AttachStdin`, `AttachStdout`, `AttachStderr`);
    /// the others are /dev/null.
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Started detached: no stream, stdio /dev/null (a tty's output is read and dropped).
    pub detach: bool,
    /// The stream carries raw bytes (the start request's `Tty`), else stdcopy frames.
    pub raw_stream: bool,
    /// The tty's rows and columns at the start (0: the kernel's default).
    pub console_size: (u16, u16),
}

/// An exec as the monitor lists it to a berthd that watches the container again after a
/// restart: what `GET /exec/{id}/json` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    pub id: String,
    pub args: Vec<String>,
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub pid: i32,
    /// `None` while it runs.
    pub exit_code: Option<i32>,
}

impl ExecState {
    /// The listing of `spec`, started as `pid`.
    pub fn of(spec: &ExecSpec, pid: i32, exit_code: Option<i32>) -> Self {
        ExecState {
            id: spec.id.clone(),
            args: spec.args.clone(),
            user: spec.user.clone(),
            privileged: spec.privileged,
            tty: spec.tty,
            stdin: spec.stdin,
            stdout: spec.stdout,
            stderr: spec.stderr,
            pid,
            exit_code,
        }
    }
}

/// How a container ended; also the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    pub oom_killed: bool,
}

/// Encodes one message as a JSON line.
pub fn encode_line<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain types cannot fail.
    let mut v = serde_json::to_vec(msg).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Collects bytes and yields complete lines (without the newline).
#[derive(Debug, Default)]
pub struct LineBuf {
    buf: Vec<u8>,
}

impl LineBuf {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let pos = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        Some(line)
    }

    /// Bytes after the last complete line.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Stream ids of Docker's multiplexed attach stream.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Appends one stdcopy frame: `[stream, 0, 0, 0, len (u32 big endian)]` + payload.
pub fn stdcopy_frame(stream: u8, data: &[u8], out: &mut Vec<u8>) {
    // A frame length is a u32; split absurdly large chunks. Empty frames are not sent.
    for chunk in data.chunks(u32::MAX as usize) {
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&[stream, 0, 0, 0]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

#[derive(Serialize)]
struct LogEntry<'a> {
    log: &'a str,
    stream: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attrs: Option<&'a LogAttrs>,
    time: &'a str,
}

/// The extra attributes of each entry (`--log-opt labels`, `env`, …), in key order.
pub type LogAttrs = std::collections::BTreeMap<String, String>;

/// One json-file log line: `{"log":"hi\n","stream":"stdout","time":"…Z"}\n`, with
/// `"attrs":{…}` before the time when there are any (dockerd's order).
pub fn log_line(stream: u8, data: &[u8], attrs: Option<&LogAttrs>, time: &str, out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(data);
    let entry = LogEntry {
        log: &text,
        stream: if stream == STDERR { "stderr" } else { "stdout" },
        attrs,
        time,
    };
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

/// The time format of Docker's logs: RFC 3339, nanoseconds, `Z`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Splits output into Docker's log entries: one per line (newline included); a partial
/// line is held back until its newline comes, the stream ends, or it reaches 16 KiB.
#[derive(Debug, Default)]
pub struct LogSplitter {
    partial: [Vec<u8>; 2],
    /// Written into every entry (`--log-opt labels`, `env`, …); `None`: no `attrs` key.
    pub attrs: Option<LogAttrs>,
}

/// Longest partial line kept back, as Docker's copier does.
pub const MAX_PARTIAL: usize = 16 * 1024;

impl LogSplitter {
    /// Appends the log lines for `data` from `stream` (1 or 2) to `out`.
    pub fn push(&mut self, stream: u8, data: &[u8], time: &str, out: &mut Vec<u8>) {
        let idx = usize::from(stream == STDERR);
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            if self.partial[idx].is_empty() {
                log_line(stream, line, self.attrs.as_ref(), time, out);
            } else {
                self.partial[idx].extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial[idx]);
                log_line(stream, &whole, self.attrs.as_ref(), time, out);
            }
            rest = tail;
        }
        self.partial[idx].extend_from_slice(rest);
        if self.partial[idx].len() >= MAX_PARTIAL {
            let whole = std::mem::take(&mut self.partial[idx]);
            log_line(stream, &whole, self.attrs.as_ref(), time, out);
        }
    }

    /// Writes out whatever partial lines are held (at the end of the streams).
    pub fn flush(&mut self, time: &str, out: &mut Vec<u8>) {
        for (idx, stream) in [(0, STDOUT), (1, STDERR)] {
            if !self.partial[idx].is_empty() {
                let whole = std::mem::take(&mut self.partial[idx]);
                log_line(stream, &whole, self.attrs.as_ref(), time, out);
            }
        }
    }
}

/// Connects to a unix socket, also when its path is longer than `sun_path` allows (the
/// exec root may be deep): then through `/proc/self/fd/<dir>/<name>`.
pub fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path);
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no name"))?;
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    UnixStream::connect(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_docker_header() {
        let mut out = Vec::new();
        stdcopy_frame(STDOUT, b"hi\n", &mut out);
        assert_eq!(out, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n");
        out.clear();
        stdcopy_frame(STDERR, &[7u8; 300], &mut out);
        assert_eq!(&out[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(out.len(), 308);
    }

    #[test]
    fn log_lines_are_docker_json_file() {
        let mut out = Vec::new();
        log_line(
            STDOUT,
            b"hi\n",
            None,
            "2026-01-01T00:00:00.000000001Z",
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.000000001Z\"}\n"
        );
        let attrs: LogAttrs = [
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]
        .into_iter()
        .collect();
        let mut out = Vec::new();
        log_line(STDERR, b"x\n", Some(&attrs), "T", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"attrs\":{\"a\":\"1\",\"b\":\"2\"},\"time\":\"T\"}\n"
        );
    }

    #[test]
    fn splitter_makes_one_entry_per_line() {
        let mut s = LogSplitter::default();
        let mut out = Vec::new();
        s.push(STDOUT, b"a\nb", "t", &mut out);
        s.push(STDERR, b"e\n", "t", &mut out);
        s.push(STDOUT, b"c\nd", "t", &mut out);
        s.flush("t", &mut out);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let logs: Vec<(&str, &str)> = lines
            .iter()
            .map(|v| (v["log"].as_str().unwrap(), v["stream"].as_str().unwrap()))
            .collect();
        assert_eq!(
            logs,
            vec![
                ("a\n", "stdout"),
                ("e\n", "stderr"),
                ("bc\n", "stdout"),
                ("d", "stdout")
            ]
        );
    }

    #[test]
    fn line_buffer_splits_and_keeps_rest() {
        let mut b = LineBuf::default();
        b.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(b.next_line().unwrap(), b"{\"a\":1}");
        assert!(b.next_line().is_none());
        b.push(b":2}\nraw");
        assert_eq!(b.next_line().unwrap(), b"{\"b\":2}");
        assert_eq!(b.take_rest(), b"raw");
    }

    #[test]
    fn messages_round_trip() {
        let reqs = vec![
            SockRequest::Attach(AttachFlags {
                stdin: true,
                stdout: true,
                stderr: false,
            }),
            SockRequest::Signal { signal: 9 },
            SockRequest::Resize {
                height: 24,
                width: 80,
            },
            SockRequest::Watch,
        ];
        for r in reqs {
            let line = encode_line(&r);
            assert_eq!(*line.last().unwrap(), b'\n');
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            let back: SockRequest = serde_json::from_slice(&line[..line.len() - 1]).unwrap();
            assert_eq!(back, r);
        }
        let ev = CtlEvent::Exited(ExitStatus {
            exit_code: 137,
            finished_at: now_rfc3339(),
            oom_killed: false,
        });
        let line = encode_line(&ev);
        let back: CtlEvent = serde_json::from_slice(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, ev);
    }
}
