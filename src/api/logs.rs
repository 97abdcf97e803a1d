//! `GET /containers/{id}/logs`: the json-file log as Docker's stdcopy frames (raw bytes
//! with a TTY), with `tail`, `timestamps`, `since`/`until`, and `follow` until the
//! container exits or the client goes away.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::oneshot;

use super::{ApiError, AppState, parse_bool};
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
    /// `None`: all lines.
    pub tail: Option<usize>,
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub tty: bool,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

fn unix_secs(time: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
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
            let t = unix_secs(&e.time).unwrap_or(0.0);
            if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
                continue;
            }
        }
        let mut payload = Vec::with_capacity(e.log.len() + 32);
        if o.timestamps {
            payload.extend_from_slice(e.time.as_bytes());
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

fn opt_f64(q: &HashMap<String, String>, key: &str) -> Result<Option<f64>, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid {key} {v}"))),
    }
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
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().query("id").to_owned();
    let q = |k: &str| query.get(k).map(String::as_str);
    let stdout = parse_bool(q("stdout"), false)?;
    let stderr = parse_bool(q("stderr"), false)?;
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = parse_bool(q("follow"), false)?;
    let tail = match q("tail") {
        None | Some("") | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail {n}")))?,
        ),
    };
    let info = state.actors.store.send(GetLogInfo { id }).await??;
    let opts = LogOptions {
        stdout,
        stderr,
        timestamps: parse_bool(q("timestamps"), false)?,
        tail,
        since: opt_f64(&query, "since")?,
        until: opt_f64(&query, "until")?,
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
                since: Some(1_767_225_600.9),
                ..opts()
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:01Z oops\n"
        );
    }
}
