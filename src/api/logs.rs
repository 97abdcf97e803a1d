//! `GET /containers/{id}/logs`: the json-file log as Docker's stdcopy frames (raw bytes
//! with a TTY), with `stdout`/`stderr`, `tail`, `timestamps`, `details`, `since`/`until`,
//! and `follow` until the container exits or the client goes away. The parameters are
//! read as dockerd reads them (`daemon/logs.go`).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::oneshot;

use super::{ApiError, AppState, QueryParams};
use crate::actors::store::{GetLogInfo, WaitCondition, WaitContainer, WaitOutcome};
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
    /// dockerd's `details`: each line led by the log's extra attributes and a space. The
    /// attributes come from log options (`labels`, `env`), which berthd has none of, so
    /// the lead is the space alone, as dockerd writes it for a log without attributes.
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

/// Reads the complete lines after `offset`; returns them and the new offset (a partial
/// last line is left for the next read).
fn read_from(path: &PathBuf, offset: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(complete);
    let next = offset + complete as u64;
    Ok((buf, next))
}

fn lines(buf: &[u8]) -> Vec<&[u8]> {
    buf.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

struct Follow {
    path: PathBuf,
    offset: u64,
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
    // The backlog (with `tail`) is read before the reply starts.
    let path = info.path.clone();
    let (backlog, offset) = tokio::task::spawn_blocking(move || read_from(&path, 0))
        .await
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, e.to_string()))?
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, format!("log: {e}")))?;
    let mut first = Vec::new();
    {
        let all = lines(&backlog);
        let start = opts.tail.map_or(0, |n| all.len().saturating_sub(n));
        render(&all[start..], &opts, &mut first);
    }
    let state = Follow {
        path: info.path,
        offset,
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
            let path = st.path.clone();
            let offset = st.offset;
            let read = tokio::task::spawn_blocking(move || read_from(&path, offset)).await;
            let Ok(Ok((buf, next))) = read else {
                return None;
            };
            st.offset = next;
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
