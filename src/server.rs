//! Listeners and the connection layer below actix-http.
//!
//! actix-http switches a connection to raw bytes only for websocket upgrades, but the
//! Engine API hijacks `POST /containers/{id}/attach` and `POST /exec/{id}/start` with
//! `Upgrade: tcp`: actix would read the stdin that follows as the next request. So every
//! accepted connection is read here until the end of its first request head. A hijack is
//! served by [`serve_hijack`]; any other connection is handed, with the bytes already
//! read, to actix-web's HTTP/1 service. Docker clients (the CLI, the Go SDK, docker-py)
//! open a fresh connection for every hijack, so looking at the first request suffices.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::HttpService;
use actix_rt::net::{TcpStream, UnixStream};
use actix_server::ServerHandle;
use actix_service::IntoServiceFactory;
use actix_service::{ServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config};
use actix_web::ResponseError;
use actix_web::dev::{AppConfig, Service};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::actors::exec::AttachOptions;
use crate::actors::store::{AttachStream, AttachToContainer};
use crate::api::{self, ApiError, AppState};
use crate::config::HostAddr;
use crate::error::ErrorKind;

/// Errors binding the API's listeners.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("socket {path} is in use by another process")]
    InUse { path: PathBuf },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("-H fd:// was given but systemd passed no sockets (LISTEN_FDS)")]
    NoSystemdSockets,
    #[error("systemd socket {name} not found")]
    NoSuchSystemdSocket { name: String },
}

impl ListenError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::System
    }
}

/// A bound listener, ready for the server.
#[derive(Debug)]
pub enum Listener {
    Unix {
        listener: std::os::unix::net::UnixListener,
        /// Removed at shutdown; `None` for systemd's sockets, which systemd owns.
        path: Option<PathBuf>,
    },
    Tcp(std::net::TcpListener),
}

/// Refuses a unix socket path that a live process listens on. A stale socket file (no
/// one listening) is fine; it is replaced at bind time.
pub fn check_unix_path(path: &Path) -> Result<(), ListenError> {
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Checks every `-H` before the actors start, so a taken socket fails fast.
pub fn precheck(hosts: &[HostAddr]) -> Result<(), ListenError> {
    for h in hosts {
        if let HostAddr::Unix(p) = h {
            check_unix_path(p)?;
        }
    }
    Ok(())
}

/// Binds every `-H` address.
pub fn bind_all(hosts: &[HostAddr]) -> Result<Vec<Listener>, ListenError> {
    let mut out = Vec::new();
    for h in hosts {
        match h {
            HostAddr::Unix(path) => {
                check_unix_path(path)?;
                let bind_err = |source| ListenError::Bind {
                    addr: format!("unix://{}", path.display()),
                    source,
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(bind_err)?;
                }
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(bind_err(e)),
                    _ => {}
                }
                let listener = std::os::unix::net::UnixListener::bind(path).map_err(bind_err)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                    .map_err(bind_err)?;
                out.push(Listener::Unix {
                    listener,
                    path: Some(path.clone()),
                });
            }
            HostAddr::Tcp(addr) => {
                let listener =
                    std::net::TcpListener::bind(addr).map_err(|source| ListenError::Bind {
                        addr: format!("tcp://{addr}"),
                        source,
                    })?;
                out.push(Listener::Tcp(listener));
            }
            HostAddr::Fd(name) => {
                let fds = crate::sys::systemd::listen_fds();
                if fds.is_empty() {
                    return Err(ListenError::NoSystemdSockets);
                }
                let chosen: Vec<_> = match name.as_deref() {
                    None | Some("") => fds,
                    Some(n) => {
                        let picked: Vec<_> = fds
                            .into_iter()
                            .filter(|s| s.name() == n || s.fd_number().to_string() == n)
                            .collect();
                        if picked.is_empty() {
                            return Err(ListenError::NoSuchSystemdSocket { name: n.to_owned() });
                        }
                        picked
                    }
                };
                for s in chosen {
                    match s {
                        crate::sys::systemd::Inherited::Unix { listener, .. } => {
                            out.push(Listener::Unix {
                                listener,
                                path: None,
                            })
                        }
                        crate::sys::systemd::Inherited::Tcp { listener, .. } => {
                            out.push(Listener::Tcp(listener))
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// One accepted connection of either kind.
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A connection whose first bytes were already read: they are replayed first.
#[derive(Debug)]
pub struct Prefixed {
    prefix: bytes::Bytes,
    inner: Conn,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.prefix.is_empty() {
            let n = buf.remaining().min(me.prefix.len());
            buf.put_slice(&me.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its first request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads until the end of the first request head (or EOF). Returns the bytes read and
/// the head's length if complete.
async fn read_head(conn: &mut Conn) -> io::Result<(Vec<u8>, Option<usize>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, None));
        }
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[scan_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, Some(scan_from + pos + 4)));
        }
        if buf.len() > MAX_HEAD {
            return Ok((buf, None));
        }
    }
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HijackKind {
    Attach,
    ExecStart,
}

/// Whether the request head in `head` is a hijack (attach or exec start).
pub fn parse_hijack(head: &[u8]) -> Option<Hijack> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    if req.method? != "POST" {
        return None;
    }
    let target = req.path?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut rest = path;
    if let Some(r) = path.strip_prefix("/v") {
        let (ver, tail) = r.split_once('/')?;
        api::parse_version(ver)?;
        rest = &path[2 + ver.len()..];
        let _ = tail;
    }
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (kind, id) = match parts.as_slice() {
        ["containers", id, "attach"] => (HijackKind::Attach, *id),
        ["exec", id, "start"] => (HijackKind::ExecStart, *id),
        _ => return None,
    };
    let upgrade = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    let query = url_pairs(query);
    Some(Hijack {
        path: path.to_owned(),
        kind,
        id: percent_decode(id),
        query,
        upgrade,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn query_bool(q: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    api::parse_bool(
        q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
        false,
    )
}

/// Writes an error reply in dockerd's shape and closes.
async fn write_error(conn: &mut Conn, err: &ApiError) -> io::Result<()> {
    let status = err.status_code();
    let body = serde_json::json!({"message": err.message}).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\nApi-Version: {}\r\nOstype: linux\r\nDocker-Experimental: false\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        api::API_VERSION,
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

/// Serves one hijacked request: the status line, then raw bytes both ways until the
/// container's output ends. `rest` holds bytes the client sent after the head (stdin).
pub async fn serve_hijack(
    state: &AppState,
    mut conn: Conn,
    hj: Hijack,
    rest: Vec<u8>,
) -> io::Result<()> {
    if let Some(resp) = api::check_version(&hj.path) {
        let msg = if resp.status().as_u16() == 404 {
            format!("page not found: {}", hj.path)
        } else {
            format!("unsupported API version in {}", hj.path)
        };
        let kind = if resp.status().as_u16() == 404 {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidParameter
        };
        return write_error(&mut conn, &ApiError::new(kind, msg)).await;
    }
    let stream = match hj.kind {
        HijackKind::ExecStart => {
            let err = ApiError::new(
                ErrorKind::NotFound,
                format!("No such exec instance: {}", hj.id),
            );
            return write_error(&mut conn, &err).await;
        }
        HijackKind::Attach => {
            let opts = (|| -> Result<AttachOptions, ApiError> {
                Ok(AttachOptions {
                    stdin: query_bool(&hj.query, "stdin")?,
                    stdout: query_bool(&hj.query, "stdout")?,
                    stderr: query_bool(&hj.query, "stderr")?,
                })
            })();
            let opts = match opts {
                Ok(o) => o,
                Err(e) => return write_error(&mut conn, &e).await,
            };
            let res = state
                .actors
                .store
                .send(AttachToContainer {
                    id: hj.id.clone(),
                    options: opts,
                })
                .await;
            match res {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return write_error(&mut conn, &ApiError::from(e)).await,
                Err(e) => return write_error(&mut conn, &ApiError::from(e)).await,
            }
        }
    };
    let status = if hj.upgrade {
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    } else {
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    };
    conn.write_all(status.as_bytes()).await?;
    conn.flush().await?;
    let monitor = match stream {
        AttachStream::Ready(s) => s,
        AttachStream::Pending(rx) => match rx.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "attach ended before the container started");
                return conn.shutdown().await;
            }
            // The container was removed before it started.
            Err(_) => return conn.shutdown().await,
        },
    };
    monitor.set_nonblocking(true)?;
    let monitor = UnixStream::from_std(monitor)?;
    splice(conn, monitor, rest).await
}

/// Copies client → monitor (then half-closes the monitor side, which ends the container's
/// stdin) and monitor → client; returns when the monitor's side ends.
async fn splice(client: Conn, monitor: UnixStream, rest: Vec<u8>) -> io::Result<()> {
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

async fn handle_conn<S>(mut conn: Conn, state: AppState, h1: Rc<S>)
where
    S: Service<(Prefixed, Option<SocketAddr>)>,
    S::Error: std::fmt::Debug,
{
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut conn)).await;
    let (buf, head_len) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection closed before a request");
            return;
        }
        Err(_) => return,
    };
    if buf.is_empty() {
        return;
    }
    if let Some(len) = head_len {
        if let Some(hj) = parse_hijack(&buf[..len]) {
            let rest = buf[len..].to_vec();
            if let Err(e) = serve_hijack(&state, conn, hj, rest).await {
                tracing::debug!(error = %e, "hijacked stream ended");
            }
            return;
        }
    }
    let io = Prefixed {
        prefix: bytes::Bytes::from(buf),
        inner: conn,
    };
    if let Err(e) = h1.call((io, None)).await {
        tracing::debug!(error = ?e, "connection error");
    }
}

/// Builds the per-worker service: one actix-web App and one HTTP/1 service per worker.
fn conn_factory<T, F>(
    state: AppState,
    wrap: F,
) -> impl ServiceFactory<T, Config = (), Response = (), Error = (), InitError = ()>
where
    T: 'static,
    F: Fn(T) -> Conn + Clone + 'static,
{
    fn_factory(move || {
        let state = state.clone();
        let wrap = wrap.clone();
        async move {
            let app = api::app(state.clone())
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let h1 = HttpService::<Prefixed, _, _>::build()
                .keep_alive(Duration::from_secs(120))
                .client_request_timeout(Duration::from_secs(60))
                .h1_allow_half_closed(true)
                .h1(map_config(app, |_: ()| AppConfig::default()));
            let handler = Rc::new(h1.new_service(()).await?);
            Ok(fn_service(move |io: T| {
                let conn = wrap(io);
                let state = state.clone();
                let h1 = handler.clone();
                async move {
                    handle_conn(conn, state, h1).await;
                    Ok::<(), ()>(())
                }
            }))
        }
    })
}

/// Starts the API server on `listeners` with `workers` threads. Signals are berthd's
/// own business (the supervisor), so actix-server's handling is off.
pub fn start(
    listeners: Vec<Listener>,
    state: AppState,
    workers: usize,
) -> io::Result<(ServerHandle, Vec<PathBuf>)> {
    let mut builder = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(2);
    let mut paths = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        match l {
            Listener::Unix { listener, path } => {
                if let Some(p) = path {
                    paths.push(p);
                }
                let state = state.clone();
                builder = builder.listen_uds(format!("api-unix-{i}"), listener, move || {
                    conn_factory(state.clone(), Conn::Unix)
                })?;
            }
            Listener::Tcp(listener) => {
                let state = state.clone();
                builder = builder.listen(format!("api-tcp-{i}"), listener, move || {
                    conn_factory(state.clone(), Conn::Tcp)
                })?;
            }
        }
    }
    let server = builder.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((handle, paths))
}

/// Serves `GET /metrics` on `addr` with one worker.
pub fn start_metrics(addr: SocketAddr, state: AppState) -> io::Result<ServerHandle> {
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(state.clone()))
            .route(
                "/metrics",
                actix_web::web::get().to(api::system::metrics_handler),
            )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hijacks_are_recognised() {
        let head = b"POST /v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
        let hj = parse_hijack(head).unwrap();
        assert_eq!(hj.kind, HijackKind::Attach);
        assert_eq!(hj.id, "abc");
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
        ] {
            assert!(parse_hijack(other).is_none());
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3A1"), "a:1");
        assert_eq!(percent_decode("%7B%22x%22%7D"), "{\"x\"}");
        assert_eq!(percent_decode("%"), "%");
    }
}
