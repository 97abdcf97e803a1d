//! Small helpers shared by every subsystem: error chains, atomic file writes, ids.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Renders an error and its sources as `outer: inner: root`, skipping a source whose text
/// the outer message already contains.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// fsyncs every file at once, from scoped threads: the filesystem serves fsyncs that wait
/// together with one journal commit (ext4's jbd2, XFS's log force), where one after the
/// other each waits for a commit of its own. The first error wins.
pub fn sync_all_concurrently(files: &[&fs::File]) -> io::Result<()> {
    let Some((first, rest)) = files.split_first() else {
        return Ok(());
    };
    std::thread::scope(|s| {
        let others: Vec<_> = rest.iter().map(|f| s.spawn(move || f.sync_all())).collect();
        let mut res = first.sync_all();
        for h in others {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")));
            if res.is_ok() {
                res = r;
            }
        }
        res
    })
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename,
/// fsync of the directory. A crash leaves the old or the new content, never a torn file.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_inner(path, data, true)
}

/// The dir under the data root where corrupt records are moved aside at start.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Moves `path` (a file or dir under `data_root` that cannot be parsed) aside to
/// `<data_root>/quarantine/<kind>/<name>.<UTC time>`, so that the daemon starts without
/// it, never deletes it, and does not meet it again at the next start. Returns where it
/// went; the caller logs both paths.
pub fn quarantine(data_root: &Path, kind: &str, path: &Path) -> io::Result<PathBuf> {
    let dir = data_root.join(QUARANTINE_DIR).join(kind);
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut to = dir.join(name).into_os_string();
    to.push(format!(
        ".{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    ));
    let to = PathBuf::from(to);
    fs::rename(path, &to)?;
    Ok(to)
}

/// What [`quarantine`] moved under `kind`: the names they had (the part before the
/// time).
pub fn quarantined_names(data_root: &Path, kind: &str) -> Vec<String> {
    let Ok(rd) = fs::read_dir(data_root.join(QUARANTINE_DIR).join(kind)) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.split_once('.').map(|(id, _)| id.to_owned())
        })
        .collect()
}

/// As [`write_atomic`], without the fsyncs: the rename is still atomic, but a power cut may
/// lose the new content. For files under the exec root (tmpfs) and caches.
pub fn write_atomic_nosync(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_inner(path, data, false)
}

fn write_atomic_inner(path: &Path, data: &[u8], sync: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if sync {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// A new 64-hex-digit id, as Docker makes for containers and exec instances.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Go's `time.ParseDuration` for non-negative durations: `300ms`, `1.5h`, `2h45m`,
/// `0`; `None` for anything else.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let ns = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += num * ns;
    }
    if !total.is_finite() || total > 9.2e18 {
        return None;
    }
    Some(std::time::Duration::from_nanos(total as u64))
}

/// Go's `time.Duration.String`: `200ms`, `1.5s`, `1m30s`, `0s`.
pub fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let frac = |v: u128, unit: u128, suffix: &str| {
        let whole = v / unit;
        let part = v % unit;
        if part == 0 {
            return format!("{whole}{suffix}");
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{part:0width$}");
        format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let (h, m) = (mins / 60, mins % 60);
    let s = frac(secs_ns, 1_000_000_000, "s");
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// True for a full 64-digit lowercase hex id.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The names in `dir`, sorted (tests' view of what a directory holds).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_both_ways() {
        use std::time::Duration;
        assert_eq!(parse_go_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_syncs_of_nothing_and_of_files() {
        assert!(sync_all_concurrently(&[]).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let a = fs::File::create(dir.path().join("a")).unwrap();
        let d = fs::File::open(dir.path()).unwrap();
        assert!(sync_all_concurrently(&[&a, &d]).is_ok());
    }

    #[test]
    fn ids_are_full() {
        let id = new_id();
        assert!(is_full_id(&id));
        assert!(!is_full_id("abc"));
    }
}

/// A blocking `Write` whose bytes go, in chunks of up to 256 KiB, to an async task (a
/// response body streamed from work on a blocking thread: `docker save`). A receiver that
/// went away (the client left) is a broken pipe.
#[derive(Debug)]
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    buf: Vec<u8>,
}

const WRITER_CHUNK: usize = 256 << 10;

/// A bounded channel of body chunks and the writer at its start.
pub fn response_channel(
    capacity: usize,
) -> (ChannelWriter, tokio::sync::mpsc::Receiver<bytes::Bytes>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(WRITER_CHUNK),
        },
        rx,
    )
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(WRITER_CHUNK),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(WRITER_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == WRITER_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A blocking `Read` over byte chunks that an async task sends, for streaming a request
/// body into work that runs on a blocking thread (a layer import).
#[derive(Debug)]
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

/// A bounded channel of body chunks and the reader at its end.
pub fn body_channel(
    capacity: usize,
) -> (
    tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    ChannelReader,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (
        tx,
        ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        },
    )
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.cur = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}
