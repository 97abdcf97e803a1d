//! `GET /containers/{id}/logs`: the json-file log as Docker's stdcopy frames (raw bytes
//! with a TTY), with `stdout`/`stderr`, `tail`, `timestamps`, `details`, `since`/`until`,
//! and `follow` until the container exits or the client goes away. The parameters are
//! read as dockerd reads them (`daemon/logs.go`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::oneshot;

use super::{ApiError, AppState, QueryParams};
use crate::actors::store::{GetLogInfo, WaitCondition, WaitContainer, WaitOutcome};
use crate::model::logconfig::LogDriver;
use crate::monitor::logfile::{rotated, rotated_gz};
use crate::monitor::proto::{STDERR, STDOUT, stdcopy_frame};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/logs", web::get().to(logs));
}

/// What the client asked for.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// dockerd's `details`: each line led by the entry's extra attributes (from
    /// `--log-opt labels`, `labels-regex`, `env`, `env-regex`) and a space.
    pub details: bool,
    /// `None`: all lines.
    pub tail: Option<usize>,
    /// Nanoseconds since the epoch: lines before `since` and after `until` are left out.
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub tty: bool,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
    /// `--log-opt labels`, `env`, …: shown by `details`.
    #[serde(default)]
    attrs: Option<std::collections::BTreeMap<String, String>>,
}

/// Go's `url.QueryEscape`, which dockerd applies to each attribute's key and value.
fn query_escape(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

fn unix_nanos(time: &str) -> Option<i128> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
}

/// dockerd's `timetypes.ParseTimestamps`: `seconds[.fraction]` as the CLI sends it
/// (it turns `10m` or an RFC 3339 time into that itself), in nanoseconds. A bad value
/// gets Go's `strconv` text.
pub fn parse_timestamp(value: &str) -> Result<i128, ApiError> {
    let syntax =
        |v: &str| ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"));
    let (secs, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let s = secs.parse::<i64>().map_err(|_| syntax(secs))?;
    let n = match frac {
        None => 0,
        Some(f) => {
            let n = f.parse::<i64>().map_err(|_| syntax(f))?;
            // Scaled to nanoseconds by its number of digits, as dockerd does.
            let digits = i32::try_from(f.len()).unwrap_or(i32::MAX);
            (n as f64 * 10f64.powi(9 - digits)) as i128
        }
    };
    Ok(i128::from(s) * 1_000_000_000 + n)
}

/// Renders complete json-file lines as the client's frames.
pub fn render(lines: &[&[u8]], o: &LogOptions, out: &mut Vec<u8>) {
    for line in lines {
        let Ok(e) = serde_json::from_slice::<Entry>(line) else {
            continue;
        };
        let stream = if e.stream == "stderr" { STDERR } else { STDOUT };
        if (stream == STDOUT && !o.stdout) || (stream == STDERR && !o.stderr) {
            continue;
        }
        if o.since.is_some() || o.until.is_some() {
            let t = unix_nanos(&e.time).unwrap_or(0);
            if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
                continue;
            }
        }
        let mut payload = Vec::with_capacity(e.log.len() + 32);
        if o.timestamps {
            payload.extend_from_slice(e.time.as_bytes());
            payload.push(b' ');
        }
        if o.details {
            // dockerd's `attrsByteSlice`: `k=v,k2=v2` in key order, then a space.
            for (i, (k, v)) in e.attrs.iter().flatten().enumerate() {
                if i > 0 {
                    payload.push(b',');
                }
                query_escape(k, &mut payload);
                payload.push(b'=');
                query_escape(v, &mut payload);
            }
            payload.push(b' ');
        }
        payload.extend_from_slice(e.log.as_bytes());
        if o.tty {
            out.extend_from_slice(&payload);
        } else {
            stdcopy_frame(stream, &payload, out);
        }
    }
}

/// The log's current file, held open, and how far it has been read. The monitor
/// rotates the file by renaming it (`<id>-json.log` to `.1`, `.1` to `.2`, …) or, with
/// `max-file` 1, removes it and starts a new one: a read goes on to the end of the file it holds, and when
/// the path names another file it finds its own among the rotated ones, reads the newer
/// ones in order, then the new current file.
struct Reader {
    path: PathBuf,
    max_file: u32,
    file: Option<File>,
    /// `(dev, ino)` of `file`.
    id: (u64, u64),
    offset: u64,
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Appends the complete lines of `f` from `offset` to `out`; returns the offset after
/// them (a partial last line is left for the next read).
fn read_lines(f: &mut File, offset: u64, out: &mut Vec<u8>) -> std::io::Result<u64> {
    f.seek(SeekFrom::Start(offset))?;
    let start = out.len();
    f.read_to_end(out)?;
    let complete = out[start..]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    out.truncate(start + complete);
    Ok(offset + complete as u64)
}

/// Appends the complete lines of a gzipped rotated file (`compress`), if it exists.
fn read_gz(path: &std::path::Path, out: &mut Vec<u8>) -> std::io::Result<()> {
    let Some(f) = open_existing(path)? else {
        return Ok(());
    };
    let start = out.len();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)).read_to_end(out)?;
    let complete = out[start..]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    out.truncate(start + complete);
    Ok(())
}

fn open_existing(path: &std::path::Path) -> std::io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Reader {
    /// Opens the log and reads all of it, the rotated files first, oldest first.
    fn backlog(path: PathBuf, max_file: u32) -> std::io::Result<(Vec<u8>, Reader)> {
        let mut r = Reader {
            path,
            max_file: max_file.max(1),
            file: None,
            id: (0, 0),
            offset: 0,
        };
        r.open_current()?;
        let mut out = Vec::new();
        for n in (1..r.max_file).rev() {
            let Some(mut f) = open_existing(&rotated(&r.path, n))? else {
                read_gz(&rotated_gz(&r.path, n), &mut out)?;
                continue;
            };
            // The current file rotated since it was opened: it and the newer ones are
            // read by `read_new`, in order.
            if r.file.is_some() && file_id(&f.metadata()?) == r.id {
                break;
            }
            read_lines(&mut f, 0, &mut out)?;
        }
        out.extend(r.read_new()?);
        Ok((out, r))
    }

    fn open_current(&mut self) -> std::io::Result<()> {
        if let Some(f) = open_existing(&self.path)? {
            self.id = file_id(&f.metadata()?);
            self.file = Some(f);
            self.offset = 0;
        }
        Ok(())
    }

    /// The complete lines written since the last read, across rotations.
    fn read_new(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Bounded: a writer faster than the reader could otherwise keep it here.
        for _ in 0..=self.max_file {
            if self.file.is_none() {
                self.open_current()?;
            }
            let Some(f) = self.file.as_mut() else {
                return Ok(out);
            };
            // Truncated (`max-file` 1): from its start again.
            if f.metadata()?.len() < self.offset {
                self.offset = 0;
            }
            self.offset = read_lines(f, self.offset, &mut out)?;
            match std::fs::metadata(&self.path) {
                Ok(m) if file_id(&m) == self.id => return Ok(out),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            // Renamed away: what was written to it before the rename, then the files
            // rotated after it, newest last.
            read_lines(f, self.offset, &mut out)?;
            let mut ours = None;
            for n in 1..self.max_file {
                if let Ok(m) = std::fs::metadata(rotated(&self.path, n)) {
                    if file_id(&m) == self.id {
                        ours = Some(n);
                        break;
                    }
                }
            }
            for n in (1..ours.unwrap_or(1)).rev() {
                match open_existing(&rotated(&self.path, n))? {
                    Some(mut f) => {
                        read_lines(&mut f, 0, &mut out)?;
                    }
                    None => read_gz(&rotated_gz(&self.path, n), &mut out)?,
                }
            }
            self.file = None;
        }
        Ok(out)
    }
}

fn lines(buf: &[u8]) -> Vec<&[u8]> {
    buf.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

struct Follow {
    reader: Option<Reader>,
    opts: LogOptions,
    exited: Option<oneshot::Receiver<WaitOutcome>>,
    done: bool,
}

async fn logs(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().query("id").to_owned();
    let stdout = query.flag("stdout");
    let stderr = query.flag("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = query.flag("follow");
    // dockerd: a tail that is not a number (`all`) or is negative means every line.
    let tail = query
        .get("tail")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok());
    let since = query.non_empty("since").map(parse_timestamp).transpose()?;
    let until = query
        .non_empty("until")
        .filter(|u| *u != "0")
        .map(parse_timestamp)
        .transpose()?;
    let info = state.actors.store.send(GetLogInfo { id }).await??;
    let opts = LogOptions {
        stdout,
        stderr,
        timestamps: query.flag("timestamps"),
        details: query.flag("details"),
        tail,
        since,
        until,
        tty: info.tty,
    };
    let exited = if follow && info.running {
        Some(
            state
                .actors
                .store
                .send(WaitContainer {
                    id: info.id.clone(),
                    condition: WaitCondition::NotRunning,
                })
                .await??,
        )
    } else {
        None
    };
    if info.driver == LogDriver::None {
        return Err(ApiError::new(
            crate::error::ErrorKind::NotImplemented,
            "configured logging driver does not support reading",
        ));
    }
    // The backlog (with `tail`) is read before the reply starts.
    let (path, max_file) = (info.path.clone(), info.max_file);
    let (backlog, reader) = tokio::task::spawn_blocking(move || Reader::backlog(path, max_file))
        .await
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, e.to_string()))?
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, format!("log: {e}")))?;
    let mut first = Vec::new();
    {
        let all = lines(&backlog);
        let start = opts.tail.map_or(0, |n| all.len().saturating_sub(n));
        render(&all[start..], &opts, &mut first);
    }
    drop(backlog);
    let state = Follow {
        reader: Some(reader),
        opts,
        exited,
        done: !follow || !info.running,
    };
    let head = stream::once(async move { Ok::<_, actix_web::Error>(Bytes::from(first)) });
    let tail_stream = stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let exited_now = match &mut st.exited {
                Some(rx) => {
                    tokio::select! {
                        _ = rx => true,
                        () = tokio::time::sleep(Duration::from_millis(100)) => false,
                    }
                }
                None => true,
            };
            if exited_now {
                st.exited = None;
                st.done = true;
            }
            let mut reader = st.reader.take()?;
            let read = tokio::task::spawn_blocking(move || {
                let r = reader.read_new();
                (r, reader)
            })
            .await;
            let Ok((Ok(buf), reader)) = read else {
                return None;
            };
            st.reader = Some(reader);
            if !buf.is_empty() {
                let mut out = Vec::new();
                render(&lines(&buf), &st.opts, &mut out);
                if !out.is_empty() {
                    return Some((Ok::<_, actix_web::Error>(Bytes::from(out)), st));
                }
            }
        }
    });
    let body = futures_util::StreamExt::chain(head, tail_stream);
    Ok(HttpResponse::Ok().streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            timestamps: false,
            details: false,
            tail: None,
            since: None,
            until: None,
            tty: false,
        }
    }

    #[test]
    fn frames_and_filters() {
        let a = br#"{"log":"hi\n","stream":"stdout","time":"2026-01-01T00:00:00.5Z"}"#;
        let b = br#"{"log":"oops\n","stream":"stderr","time":"2026-01-01T00:00:01Z"}"#;
        let mut out = Vec::new();
        render(&[a, b], &opts(), &mut out);
        assert_eq!(&out[..11], b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n");
        assert_eq!(out[11], 2);
        let mut out = Vec::new();
        render(
            &[a, b],
            &LogOptions {
                stderr: false,
                tty: true,
                ..opts()
            },
            &mut out,
        );
        assert_eq!(out, b"hi\n");
        let mut out = Vec::new();
        render(
            &[a, b],
            &LogOptions {
                timestamps: true,
                tty: true,
                since: Some(parse_timestamp("1767225600.9").unwrap()),
                ..opts()
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:01Z oops\n"
        );
    }

    #[test]
    fn details_lead_each_line_with_a_space() {
        let a = br#"{"log":"hi\n","stream":"stdout","time":"2026-01-01T00:00:00.5Z"}"#;
        let mut out = Vec::new();
        render(
            &[a],
            &LogOptions {
                details: true,
                timestamps: true,
                tty: true,
                ..opts()
            },
            &mut out,
        );
        assert_eq!(out, b"2026-01-01T00:00:00.5Z  hi\n");
        let b = br#"{"log":"hi\n","stream":"stdout","attrs":{"b":"x y","a":"1"},"time":"T"}"#;
        let mut out = Vec::new();
        render(
            &[b],
            &LogOptions {
                details: true,
                tty: true,
                ..opts()
            },
            &mut out,
        );
        assert_eq!(out, b"a=1,b=x+y hi\n");
    }

    #[test]
    fn the_reader_follows_the_writer_across_rotations() {
        use crate::model::logconfig::LogSpec;
        use crate::monitor::logfile::LogFile;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let spec = LogSpec {
            max_size: Some(20),
            max_file: 3,
            ..LogSpec::default()
        };
        let mut w = LogFile::open(&path, &spec).unwrap();
        let line = |i: usize| format!("{i:09}aaaaaaaaaa\n");
        for i in 0..5 {
            w.write(line(i).as_bytes()).unwrap();
        }
        // Three files of one line each: lines 2, 3, 4.
        let (backlog, mut r) = Reader::backlog(path.clone(), 3).unwrap();
        assert_eq!(
            String::from_utf8(backlog).unwrap(),
            line(2) + &line(3) + &line(4)
        );
        // One rotation, then two between reads: nothing lost while the files last.
        w.write(line(5).as_bytes()).unwrap();
        assert_eq!(String::from_utf8(r.read_new().unwrap()).unwrap(), line(5));
        w.write(line(6).as_bytes()).unwrap();
        w.write(line(7).as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(r.read_new().unwrap()).unwrap(),
            line(6) + &line(7)
        );
        assert!(r.read_new().unwrap().is_empty());
        // compress: the rotated files are read gzipped, in order.
        let gz = t.path().join("g-json.log");
        let spec = LogSpec {
            max_size: Some(20),
            max_file: 3,
            compress: true,
            ..LogSpec::default()
        };
        let mut w = LogFile::open(&gz, &spec).unwrap();
        for i in 0..5 {
            w.write(line(i).as_bytes()).unwrap();
        }
        let (backlog, _) = Reader::backlog(gz.clone(), 3).unwrap();
        assert_eq!(
            String::from_utf8(backlog).unwrap(),
            line(2) + &line(3) + &line(4)
        );
        // max-file 1: the truncated file is read from its start.
        let one = t.path().join("d-json.log");
        let spec = LogSpec {
            max_size: Some(20),
            max_file: 1,
            ..LogSpec::default()
        };
        let mut w = LogFile::open(&one, &spec).unwrap();
        w.write(line(0).as_bytes()).unwrap();
        let (_, mut r) = Reader::backlog(one.clone(), 1).unwrap();
        w.write(line(1).as_bytes()).unwrap();
        assert_eq!(String::from_utf8(r.read_new().unwrap()).unwrap(), line(1));
    }

    #[test]
    fn timestamps_parse_as_dockerd() {
        assert_eq!(parse_timestamp("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_timestamp("12.5").unwrap(), 12_500_000_000);
        assert_eq!(parse_timestamp("12.000000001").unwrap(), 12_000_000_001);
        let e = parse_timestamp("10m").unwrap_err();
        assert_eq!(
            e.message,
            "strconv.ParseInt: parsing \"10m\": invalid syntax"
        );
        assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter);
        assert!(parse_timestamp("1.x").is_err());
    }
}
