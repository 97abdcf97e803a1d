//! Listeners and the connection layer below actix-http.
//!
//! actix-http switches a connection to raw bytes only for websocket upgrades, but the
//! Engine API hijacks `POST /containers/{id}/attach` and `POST /exec/{id}/start` with
//! `Upgrade: tcp`: actix would read the stdin that follows as the next request. So every
//! accepted connection reaches actix-web's HTTP/1 service through [`framing::Tracked`],
//! which follows the request framing and parses each request head before actix sees it.
//! When a hijack comes, on the first request of a connection or on any later one (docker-py
//! and docker-compose send them over pooled keep-alive connections), actix is made to let
//! go of the connection and [`hijack::serve_hijack`] serves it.

mod exec_start;
mod framing;
mod hijack;
pub mod tls;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::HttpService;
use actix_rt::net::{TcpStream, UnixStream};
use actix_server::ServerHandle;
use actix_service::IntoServiceFactory;
use actix_service::{ServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config};
use actix_web::dev::{AppConfig, Service};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::{self, AppState};
use crate::config::HostAddr;
use crate::error::ErrorKind;
use framing::{HandbackSlot, Tracked};
use hijack::{Served, serve_hijack};

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
    #[error("can't create unix socket: group {group} not found")]
    NoSuchGroup { group: String },
}

impl ListenError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::System
    }
}

/// `--group`'s default, whose absence only warns.
const DEFAULT_GROUP: &str = "docker";

/// How long a TLS client has for its handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

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

/// Checks every `-H` and `--group` before the actors start, so a taken socket or a
/// missing group fails fast.
pub fn precheck(hosts: &[HostAddr], group: &str) -> Result<(), ListenError> {
    if hosts.iter().any(|h| matches!(h, HostAddr::Unix(_))) {
        socket_group(group)?;
    }
    for h in hosts {
        if let HostAddr::Unix(p) = h {
            check_unix_path(p)?;
        }
    }
    Ok(())
}

/// The group of the unix sockets (`--group`): `None` for root's. dockerd's rule: a
/// missing group is an error, except its default `docker`, which only warns.
fn socket_group(group: &str) -> Result<Option<nix::unistd::Gid>, ListenError> {
    if group.is_empty() {
        return Ok(None);
    }
    let found = match group.parse::<u32>() {
        Ok(gid) => Some(nix::unistd::Gid::from_raw(gid)),
        Err(_) => nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid),
    };
    match found {
        Some(gid) => Ok(Some(gid)),
        None if group == DEFAULT_GROUP => {
            tracing::warn!(
                "could not change the group of the unix sockets to {group}: group {group} not found"
            );
            Ok(None)
        }
        None => Err(ListenError::NoSuchGroup {
            group: group.to_owned(),
        }),
    }
}

/// Binds every `-H` address; unix sockets get `group` (`--group`).
pub fn bind_all(hosts: &[HostAddr], group: &str) -> Result<Vec<Listener>, ListenError> {
    let gid = if hosts.iter().any(|h| matches!(h, HostAddr::Unix(_))) {
        socket_group(group)?
    } else {
        None
    };
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
                if let Some(gid) = gid {
                    nix::unistd::chown(path.as_path(), None, Some(gid))
                        .map_err(|e| bind_err(io::Error::from(e)))?;
                }
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
    /// A TCP connection after its TLS handshake (`--tls`, `--tlsverify`).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
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
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

async fn handle_conn<S>(mut conn: Conn, state: AppState, h1: Rc<S>)
where
    S: Service<(Tracked, Option<SocketAddr>)>,
    S::Error: std::fmt::Debug,
{
    let mut read_ahead = BytesMut::new();
    loop {
        let slot: HandbackSlot = Rc::new(RefCell::new(None));
        let io = Tracked::new(conn, read_ahead, slot.clone());
        if let Err(e) = h1.call((io, None)).await {
            tracing::debug!(error = ?e, "connection error");
        }
        // actix has dropped the IO: it left the connection here if a hijack came.
        let Some(back) = slot.borrow_mut().take() else {
            return;
        };
        match serve_hijack(&state, back.conn, back.hijack, back.rest).await {
            Ok(Served::Done) => return,
            Ok(Served::Refused(c, rest)) => {
                conn = c;
                read_ahead = rest;
            }
            Err(e) => {
                tracing::debug!(error = %e, "hijacked stream ended");
                return;
            }
        }
    }
}

/// Builds the per-worker service: one actix-web App and one HTTP/1 service per worker.
///
/// `wrap` turns an accepted stream into a [`Conn`]: at once for plain ones, after the
/// handshake for TLS; a stream it refuses is dropped (the reason logged at debug).
fn conn_factory<T, F, Fut>(
    state: AppState,
    wrap: F,
) -> impl ServiceFactory<T, Config = (), Response = (), Error = (), InitError = ()>
where
    T: 'static,
    F: Fn(T) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = io::Result<Conn>> + 'static,
{
    fn_factory(move || {
        let state = state.clone();
        let wrap = wrap.clone();
        async move {
            let app = api::app(state.clone())
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            let h1 = HttpService::<Tracked, _, _>::build()
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
                    match conn.await {
                        Ok(conn) => handle_conn(conn, state, h1).await,
                        Err(e) => tracing::debug!(error = %e, "connection refused before HTTP"),
                    }
                    Ok::<(), ()>(())
                }
            }))
        }
    })
}

/// Starts the API server on `listeners` with `workers` threads. Signals are berthd's
/// own business (the supervisor), so actix-server's handling is off.
///
/// `tls`: the TLS every TCP listener serves (`--tls`, `--tlsverify`); `None`: plain TCP.
pub fn start(
    listeners: Vec<Listener>,
    state: AppState,
    workers: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
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
                    conn_factory(state.clone(), |s| std::future::ready(Ok(Conn::Unix(s))))
                })?;
            }
            Listener::Tcp(listener) => {
                let state = state.clone();
                let name = format!("api-tcp-{i}");
                builder = match &tls {
                    None => builder.listen(name, listener, move || {
                        conn_factory(state.clone(), |s| std::future::ready(Ok(Conn::Tcp(s))))
                    })?,
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                        builder.listen(name, listener, move || {
                            let acceptor = acceptor.clone();
                            conn_factory(state.clone(), move |s| {
                                let accepting = acceptor.accept(s);
                                async move {
                                    // A client that never finishes its handshake does
                                    // not hold the connection for ever.
                                    match tokio::time::timeout(TLS_HANDSHAKE, accepting).await {
                                        Ok(Ok(t)) => Ok(Conn::Tls(Box::new(t))),
                                        Ok(Err(e)) => Err(e),
                                        Err(_) => Err(io::Error::new(
                                            io::ErrorKind::TimedOut,
                                            "TLS handshake timed out",
                                        )),
                                    }
                                }
                            })
                        })?
                    }
                };
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
