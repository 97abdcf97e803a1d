//! Hijacked requests: `POST /containers/{id}/attach` and `POST /exec/{id}/start` with
//! `Upgrade: tcp`. The reply is 101 UPGRADED (200 without `Upgrade`), then raw bytes both
//! ways between the client and the container's monitor.

use std::io;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::Conn;
use crate::actors::exec::AttachOptions;
use crate::actors::store::{AttachStream, AttachToContainer};
use crate::api::{self, ApiError, AppState};
use crate::error::ErrorKind;

/// A hijacked request: what and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hijack {
    /// The full path including the version prefix (for the version check).
    pub path: String,
    pub kind: HijackKind,
    pub id: String,
    pub query: Vec<(String, String)>,
    /// `Upgrade: tcp` was asked for (then the reply is 101, else 200).
    pub upgrade: bool,
    /// The connection may serve more requests after an error reply (HTTP/1.1 or
    /// keep-alive, no `Connection: close`, no request body). Set by the framer.
    pub reusable: bool,
    /// HTTP/1.1 or keep-alive, without `Connection: close`. Set by the framer.
    pub keep_alive: bool,
    /// The request body's length (`Content-Length`, 0 without one); `None` when it is
    /// chunked. An exec start reads its body (`{"Detach":..,"Tty":..}`) before the stream.
    pub body_len: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HijackKind {
    Attach,
    ExecStart,
}

/// Whether the request head in `head` is a hijack (attach or exec start).
#[cfg(test)]
pub fn parse_hijack(head: &[u8]) -> Option<Hijack> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => hijack_of(&req),
        _ => None,
    }
}

/// Whether a parsed request head is a hijack. A request target actix-http would refuse
/// (bytes that must be escaped, a bad version prefix) is not: actix answers it.
pub fn hijack_of(req: &httparse::Request<'_, '_>) -> Option<Hijack> {
    if req.method? != "POST" {
        return None;
    }
    let uri = actix_web::http::Uri::try_from(req.path?).ok()?;
    let path = uri.path();
    let mut rest = path;
    if let Some(r) = path.strip_prefix("/v") {
        let (ver, _) = r.split_once('/')?;
        api::parse_version(ver)?;
        rest = &r[ver.len()..];
    }
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (kind, id) = match parts.as_slice() {
        ["containers", id, "attach"] if !id.is_empty() => (HijackKind::Attach, *id),
        ["exec", id, "start"] if !id.is_empty() => (HijackKind::ExecStart, *id),
        _ => return None,
    };
    let upgrade = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    Some(Hijack {
        path: path.to_owned(),
        kind,
        id: percent_decode(id.as_bytes(), false),
        query: url_pairs(uri.query().unwrap_or("")),
        upgrade,
        reusable: false,
        keep_alive: false,
        body_len: Some(0),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query). A `%` that does not start a
/// valid escape stays as it is, as actix-web's router leaves it; bytes that are not UTF-8
/// after decoding become U+FFFD.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex_value);
            let lo = s.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The `key=value` pairs of a query string, decoded.
pub fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(k.as_bytes(), true),
                percent_decode(v.as_bytes(), true),
            )
        })
        .collect()
}

pub fn query_bool(q: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    api::parse_bool(
        q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
        false,
    )
}

/// Writes an error reply in dockerd's shape. With `keep_alive` the connection is left open
/// for the next request, else it is closed.
pub(super) async fn write_error(
    conn: &mut Conn,
    err: &ApiError,
    keep_alive: bool,
) -> io::Result<()> {
    let status = actix_web::ResponseError::status_code(err);
    let body = serde_json::json!({"message": err.message}).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\nApi-Version: {}\r\nOstype: linux\r\nDocker-Experimental: false\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        api::API_VERSION,
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    if keep_alive {
        conn.flush().await
    } else {
        conn.shutdown().await
    }
}

/// How a hijacked request ended.
#[derive(Debug)]
pub enum Served {
    /// The stream ran (or the connection is closed).
    Done,
    /// It was refused with an error reply before the hijack (or answered without one: a
    /// detached exec start), and the connection serves more requests: these bytes were
    /// read after the request.
    Refused(Conn, BytesMut),
}

/// Serves one hijacked request: the status line, then raw bytes both ways until the
/// container's output ends. `rest` holds bytes the client sent after the head (stdin).
pub async fn serve_hijack(
    state: &AppState,
    mut conn: Conn,
    hj: Hijack,
    rest: BytesMut,
) -> io::Result<Served> {
    if hj.kind == HijackKind::ExecStart {
        return super::exec_start::serve_exec_start(state, conn, hj, rest).await;
    }
    let stream = match start_hijack(state, &hj).await {
        Ok(s) => s,
        Err(e) => {
            write_error(&mut conn, &e, hj.reusable).await?;
            return Ok(if hj.reusable {
                Served::Refused(conn, rest)
            } else {
                Served::Done
            });
        }
    };
    conn.write_all(status_line(hj.upgrade).as_bytes()).await?;
    conn.flush().await?;
    let monitor = match stream {
        AttachStream::Ready(s) => s,
        AttachStream::Pending(rx) => match rx.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "attach ended before the container started");
                conn.shutdown().await?;
                return Ok(Served::Done);
            }
            // The container was removed before it started.
            Err(_) => {
                conn.shutdown().await?;
                return Ok(Served::Done);
            }
        },
    };
    monitor.set_nonblocking(true)?;
    let monitor = actix_rt::net::UnixStream::from_std(monitor)?;
    splice(conn, monitor, rest, None).await?;
    Ok(Served::Done)
}

/// The reply head of a hijacked stream: 101 when `Upgrade` was asked for, else 200.
pub(super) fn status_line(upgrade: bool) -> &'static str {
    if upgrade {
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    } else {
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    }
}

/// Checks the request and asks for the container's stream.
async fn start_hijack(state: &AppState, hj: &Hijack) -> Result<AttachStream, ApiError> {
    if let Some(e) = api::version_error(&hj.path) {
        return Err(e);
    }
    match hj.kind {
        // Served by `exec_start`.
        HijackKind::ExecStart => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("No such exec instance: {}", hj.id),
        )),
        HijackKind::Attach => {
            let options = AttachOptions {
                stdin: query_bool(&hj.query, "stdin")?,
                stdout: query_bool(&hj.query, "stdout")?,
                stderr: query_bool(&hj.query, "stderr")?,
            };
            // No timeout: the store answers at once (the stream may come later).
            Ok(state
                .actors
                .store
                .send(AttachToContainer {
                    id: hj.id.clone(),
                    options,
                })
                .await??)
        }
    }
}

/// Waited for after the monitor's side ended and before the client's is closed.
pub(super) type BeforeClose = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Copies client → monitor (then half-closes the monitor side, which ends the container's
/// stdin) and monitor → client; returns when the monitor's side ends (and `before_close`
/// is done: an exec's exit code is recorded before its client sees the end).
pub(super) async fn splice(
    client: Conn,
    monitor: actix_rt::net::UnixStream,
    rest: BytesMut,
    before_close: Option<BeforeClose>,
) -> io::Result<()> {
    let (mut c_rd, mut c_wr) = tokio::io::split(client);
    let (mut m_rd, mut m_wr) = monitor.into_split();
    let upstream = async move {
        if !rest.is_empty() {
            m_wr.write_all(&rest).await?;
        }
        let _ = tokio::io::copy(&mut c_rd, &mut m_wr).await;
        m_wr.shutdown().await
    };
    let downstream = async move {
        let res = tokio::io::copy(&mut m_rd, &mut c_wr).await;
        if let Some(f) = before_close {
            f.await;
        }
        let _ = c_wr.shutdown().await;
        res.map(|_| ())
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut downstream => return r,
            r = &mut upstream, if !up_done => {
                up_done = true;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "attach stdin copy ended");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hijacks_are_recognised() {
        let head = b"POST /v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
        let hj = parse_hijack(head).unwrap();
        assert_eq!(hj.kind, HijackKind::Attach);
        assert_eq!(hj.id, "abc");
        assert_eq!(hj.path, "/v1.41/containers/abc/attach");
        assert!(hj.upgrade);
        assert!(query_bool(&hj.query, "stdin").unwrap());
        let head = b"POST /exec/e1/start HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let hj = parse_hijack(&head[..head.len() - 2]).unwrap();
        assert_eq!(hj.kind, HijackKind::ExecStart);
        assert!(!hj.upgrade);
        for other in [
            &b"GET /containers/abc/attach HTTP/1.1\r\n\r\n"[..],
            b"POST /containers/abc/start HTTP/1.1\r\n\r\n",
            b"POST /containers/create HTTP/1.1\r\n\r\n",
            b"POST /containers//attach HTTP/1.1\r\n\r\n",
            b"POST /v+1.41/containers/abc/attach HTTP/1.1\r\n\r\n",
            b"POST /vx/containers/abc/attach HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_hijack(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_target_actix_refuses_is_left_to_actix() {
        // The input that panicked the connection layer: a broken escape before a
        // multi-byte character, raw.
        let head = b"POST /v1.41/containers/%a\xc3\xa9/attach?stream=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(parse_hijack(head).is_none());
        // Escaped, it is an id like any other (and no container has it).
        let head = b"POST /v1.41/containers/%a%C3%A9/attach?stream=1 HTTP/1.1\r\n\r\n";
        assert_eq!(parse_hijack(head).unwrap().id, "%a\u{e9}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%3A1", false), "a:1");
        assert_eq!(percent_decode(b"%7B%22x%22%7D", false), "{\"x\"}");
        assert_eq!(percent_decode(b"%", false), "%");
        assert_eq!(percent_decode(b"%4", false), "%4");
        assert_eq!(percent_decode(b"%+a", false), "%+a");
        assert_eq!(percent_decode("%a\u{e9}".as_bytes(), false), "%a\u{e9}");
        assert_eq!(percent_decode(b"%ff", false), "\u{fffd}");
        assert_eq!(percent_decode(b"a+b", true), "a b");
        assert_eq!(percent_decode(b"a+b", false), "a+b");
    }

    #[test]
    fn query_pairs() {
        assert_eq!(
            url_pairs("stream=1&&logs&x=a%20b=c"),
            vec![
                ("stream".into(), "1".into()),
                ("logs".into(), "".into()),
                ("x".into(), "a b=c".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_keeps_plain_text(s in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = percent_decode(&s, true);
            let _ = percent_decode(&s, false);
            if let Ok(text) = std::str::from_utf8(&s) {
                if !text.contains('%') {
                    prop_assert_eq!(percent_decode(&s, false), text);
                }
                let _ = url_pairs(text);
            }
        }

        #[test]
        fn escapes_round_trip(s in "\\PC{0,24}") {
            let escaped: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_decode(escaped.as_bytes(), false), s);
        }

        #[test]
        fn any_head_is_parsed_without_panic(
            method in prop_oneof![Just("POST".to_owned()), Just("GET".to_owned()), "[A-Z]{1,7}"],
            path in proptest::collection::vec(any::<u8>(), 0..48),
            tail in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut head = format!("{method} /v1.41/containers/").into_bytes();
            head.extend_from_slice(&path);
            head.extend_from_slice(b"/attach?");
            head.extend_from_slice(&tail);
            head.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\n\r\n");
            if let Some(hj) = parse_hijack(&head) {
                // Only targets actix would accept are hijacked.
                prop_assert_eq!(method.as_str(), "POST");
                prop_assert!(head.iter().take_while(|b| **b != b'\r').all(|b| b.is_ascii()));
                let _ = query_bool(&hj.query, "stdin");
            }
        }

        #[test]
        fn any_bytes_are_parsed_without_panic(head in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_hijack(&head);
        }
    }
}
