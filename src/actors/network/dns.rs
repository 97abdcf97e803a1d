//! The embedded DNS server of user-defined networks (issue 15 part 4), dockerd's
//! (libnetwork's `resolver.go`) behaviour.
//!
//! The network actor keeps one [`Names`] table for the daemon and, for every container
//! with an endpoint on a user-defined network, one [`Server`] made with [`serve`] once its
//! network namespace exists and before its process starts. The container's resolv.conf
//! then names `127.0.0.11` (dockerd's address). A query for a name on one of the
//! container's networks (a container's name, its 12-hex short id, a `--network-alias`) is
//! answered from the table; every other query goes to the container's upstream resolvers
//! (its `--dns`, else the host's), from the host's network namespace, which is why the
//! server lives in berthd and not in the container.
//!
//! Threads: every server's sockets are served by one small tokio runtime on a thread of
//! its own, "berth-dns", started by the first [`serve`] and shared by all servers (so
//! the network actor's arbiter never waits on a query, and an idle server costs nothing:
//! the thread sleeps in `epoll_wait` with no timer armed). The sockets are made inside the
//! container's namespace by a short-lived thread that `setns`-es there and ends (a socket
//! stays in the namespace it was made in); the upstream sockets are made by "berth-dns",
//! which never leaves the host's namespace.
//!
//! Wire format: hickory-proto (`Message::from_vec`/`to_vec`); no hand-written parser.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use super::error::NetworkError;

mod nat;

/// dockerd's address of the embedded server inside every container.
pub const RESOLVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// TTL of the answers from the table (dockerd's `respTTL`).
pub const ANSWER_TTL: u32 = 600;

/// How long one upstream gets to answer before the next is asked (dockerd's
/// `extIOTimeout` is 4 s).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);

/// At most this many upstreams are tried for one query (dockerd's `maxExtDNS`).
const MAX_UPSTREAMS: usize = 3;

/// Forwarded queries in flight per container (dockerd's `maxConcurrent` is 100); past
/// that a query is answered SERVFAIL at once instead of queueing.
pub const MAX_FORWARDS: usize = 100;

/// TCP connections from the container served at once; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 32;

/// An idle TCP connection from the container is closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The UDP payload size the server's answers advertise (DNS flag day 2020's value).
const EDNS_PAYLOAD: u16 = 1232;

/// Largest message read (UDP datagram or TCP frame) from the container or an upstream.
const MAX_MESSAGE: usize = 65535;

/// One container's names on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub container_id: String,
    /// Its name (no leading `/`), its `--network-alias`es on this network; the short id
    /// (first 12 hex digits of the id) is answered too and need not be listed.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
}

impl Entry {
    /// Whether `name` (lower case, no trailing dot) names this entry.
    fn answers_to(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
            || (name.len() == 12
                && self
                    .container_id
                    .get(..12)
                    .is_some_and(|short| short.eq_ignore_ascii_case(name)))
    }

    /// The name a PTR query for its address gets: its first name, else its short id.
    fn ptr_name(&self) -> String {
        match self.names.first() {
            Some(n) => n.clone(),
            None => self.container_id.chars().take(12).collect(),
        }
    }
}

/// The names of every container on every user-defined network, shared by the network
/// actor (which changes it on join and leave) and the servers (which read it).
#[derive(Debug, Default)]
pub struct Names {
    tables: RwLock<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Network id → its containers' entries by container id.
    networks: HashMap<String, HashMap<String, Entry>>,
    /// Container id → the networks it is on.
    joined: HashMap<String, BTreeSet<String>>,
    /// Network id → its name, for `NAME.NETWORK` queries and PTR answers.
    network_names: HashMap<String, String>,
}

impl Tables {
    /// The entries of the networks `container_id` is on, each with its network's name
    /// when known.
    fn visible<'a>(
        &'a self,
        container_id: &str,
    ) -> impl Iterator<Item = (Option<&'a str>, &'a Entry)> + 'a {
        self.joined
            .get(container_id)
            .into_iter()
            .flatten()
            .filter_map(|net| {
                let name = self.network_names.get(net).map(String::as_str);
                self.networks.get(net).map(|entries| (name, entries))
            })
            .flat_map(|(name, entries)| entries.values().map(move |e| (name, e)))
    }
}

impl Names {
    pub fn new() -> Arc<Names> {
        Arc::new(Names::default())
    }

    /// Container `entry.container_id` is on network `network_id` with these names (again:
    /// replaces what it had there).
    pub fn join(&self, network_id: &str, entry: Entry) {
        let mut t = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        t.joined
            .entry(entry.container_id.clone())
            .or_default()
            .insert(network_id.to_owned());
        t.networks
            .entry(network_id.to_owned())
            .or_default()
            .insert(entry.container_id.clone(), entry);
    }

    /// Network `network_id` is called `name`: from then on `CONTAINER.NAME` is answered
    /// too, and a PTR answer is `CONTAINER.NAME` (dockerd's). Optional.
    pub fn name_network(&self, network_id: &str, name: &str) {
        let mut t = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        t.network_names
            .insert(network_id.to_owned(), name.to_owned());
    }

    /// The network is gone (`docker network rm`): its entries and name go.
    pub fn forget_network(&self, network_id: &str) {
        let mut t = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        t.network_names.remove(network_id);
        if let Some(entries) = t.networks.remove(network_id) {
            for id in entries.keys() {
                if let Some(nets) = t.joined.get_mut(id) {
                    nets.remove(network_id);
                    if nets.is_empty() {
                        t.joined.remove(id);
                    }
                }
            }
        }
    }

    /// The container left the network (disconnect, stop, removal). Unknown pairs are fine.
    pub fn leave(&self, network_id: &str, container_id: &str) {
        let mut t = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = t.networks.get_mut(network_id) {
            entries.remove(container_id);
            if entries.is_empty() {
                t.networks.remove(network_id);
            }
        }
        if let Some(nets) = t.joined.get_mut(container_id) {
            nets.remove(network_id);
            if nets.is_empty() {
                t.joined.remove(container_id);
            }
        }
    }

    /// The addresses `name` (case-insensitive, a trailing dot ignored) has on the networks
    /// `container_id` is on; empty when none. `NAME.NETWORK` (a named network's) is
    /// looked up as NAME on that network only, as dockerd does.
    pub fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Vec::new();
        }
        let t = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let mut ips = Vec::new();
        for (net, e) in t.visible(container_id) {
            let on_net = net.and_then(|net| {
                let cut = name.len().checked_sub(net.len() + 1)?;
                let (head, tail) = (name.get(..cut)?, name.get(cut..)?);
                (tail.starts_with('.') && tail[1..].eq_ignore_ascii_case(net)).then_some(head)
            });
            let hit = e.answers_to(name) || on_net.is_some_and(|head| e.answers_to(head));
            if hit && !ips.contains(&e.ip) {
                ips.push(e.ip);
            }
        }
        ips
    }

    /// The name of the container at `ip` on one of the networks `container_id` is on, for
    /// a PTR query (`NAME.NETWORK` when the network is named); `None` when no such
    /// container is visible to it.
    pub fn reverse(&self, container_id: &str, ip: Ipv4Addr) -> Option<String> {
        let t = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        t.visible(container_id)
            .find(|(_, e)| e.ip == ip)
            .map(|(net, e)| match net {
                Some(net) => format!("{}.{net}", e.ptr_name()),
                None => e.ptr_name(),
            })
    }
}

/// A running server for one container; dropping it stops it and closes its sockets.
///
/// Its sockets hold the container's network namespace (a socket keeps the namespace it
/// was made in): drop the server when the container stops, or the namespace, its veth
/// and its address live on until then.
#[derive(Debug)]
pub struct Server {
    tasks: Vec<AbortHandle>,
    /// Where its sockets are bound inside the namespace (UDP, TCP).
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The tasks own the sockets; aborting drops them (and their forwards in flight)
        // on the "berth-dns" thread.
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn dns_err(what: &'static str) -> impl FnOnce(io::Error) -> NetworkError {
    move |source| NetworkError::Dns { what, source }
}

/// The "berth-dns" runtime, started on first use.
fn runtime() -> Result<tokio::runtime::Handle, NetworkError> {
    static RUNTIME: Mutex<Option<tokio::runtime::Handle>> = Mutex::new(None);
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(h) = slot.as_ref() {
        return Ok(h.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(dns_err("its runtime"))?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("berth-dns".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(dns_err("its thread"))?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// The sockets of one server, made inside the container's namespace.
struct Sockets {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
}

/// Binds the server's UDP and TCP sockets on 127.0.0.11:`port`, non-blocking.
fn bind(port: u16) -> Result<(std::net::UdpSocket, std::net::TcpListener), NetworkError> {
    let at = SocketAddr::from((RESOLVER_IP, port));
    let udp = std::net::UdpSocket::bind(at).map_err(dns_err("binding UDP"))?;
    let tcp = std::net::TcpListener::bind(at).map_err(dns_err("binding TCP"))?;
    udp.set_nonblocking(true).map_err(dns_err("binding UDP"))?;
    tcp.set_nonblocking(true).map_err(dns_err("binding TCP"))?;
    Ok((udp, tcp))
}

/// Makes the sockets in `netns`. Runs on a thread of its own, which enters `netns` and
/// ends afterwards (a thread that serves anything else must never change namespace).
fn make_sockets(netns: BorrowedFd<'_>) -> Result<Sockets, NetworkError> {
    crate::sys::namespaces::enter_netns(netns)
        .map_err(|e| dns_err("entering the container's namespace")(io::Error::other(e)))?;
    // 127.0.0.11 needs `lo` up (a sandbox has it; two ioctls make sure).
    crate::sys::namespaces::loopback_up()
        .map_err(|e| dns_err("bringing lo up")(io::Error::other(e)))?;
    // Ports the kernel picks, port 53 being redirected to them: a process of the
    // container may bind port 53 itself (dockerd's way).
    let (udp, tcp) = bind(0)?;
    let port = |a: io::Result<SocketAddr>| a.map(|a| a.port());
    let udp_port = port(udp.local_addr()).map_err(dns_err("binding UDP"))?;
    let tcp_port = port(tcp.local_addr()).map_err(dns_err("binding TCP"))?;
    if let Err(e) = nat::redirect_port_53(RESOLVER_IP, udp_port, tcp_port) {
        // A kernel without nf_tables NAT: names still resolve, but port 53 of
        // 127.0.0.11 is taken in the container.
        tracing::warn!(
            error = %e,
            "embedded DNS: port 53 could not be redirected (nf_tables); binding it"
        );
        drop((udp, tcp));
        let (udp, tcp) = bind(53)?;
        return Ok(Sockets { udp, tcp });
    }
    Ok(Sockets { udp, tcp })
}

fn ns_thread() -> std::thread::Builder {
    std::thread::Builder::new().name("berth-dns-ns".into())
}

/// Starts the DNS server of container `container_id`, whose network namespace is `netns`:
/// from then on `127.0.0.11:53` (UDP and TCP) inside that namespace answers. `upstreams`:
/// where other names go (port 53 unless given).
///
/// Returns once the sockets exist, so a query sent after it is answered; the call itself
/// waits for the short thread that makes them inside the namespace (about 0.5 ms; see
/// [`serve_async`] for a caller that must not wait at all).
pub fn serve(
    netns: BorrowedFd<'_>,
    names: Arc<Names>,
    container_id: &str,
    upstreams: Vec<SocketAddr>,
) -> Result<Server, NetworkError> {
    let rt = runtime()?;
    let socks = std::thread::scope(|s| {
        ns_thread()
            .spawn_scoped(s, move || make_sockets(netns))
            .map_err(dns_err("its namespace thread"))?
            .join()
            .map_err(|_| dns_err("its namespace thread")(io::Error::other("panicked")))?
    })?;
    start(&rt, socks, names, container_id, upstreams)
}

/// [`serve`] as a future that does not hold the calling thread while the sockets are
/// made (`netns` is duplicated, so the caller's descriptor may go at once).
pub fn serve_async(
    netns: BorrowedFd<'_>,
    names: Arc<Names>,
    container_id: &str,
    upstreams: Vec<SocketAddr>,
) -> impl std::future::Future<Output = Result<Server, NetworkError>> + Send + 'static {
    let container_id = container_id.to_owned();
    let made = netns
        .try_clone_to_owned()
        .map_err(dns_err("duplicating the namespace descriptor"))
        .and_then(|netns| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            ns_thread()
                .spawn(move || {
                    let _ = tx.send(make_sockets(netns.as_fd()));
                })
                .map_err(dns_err("its namespace thread"))?;
            Ok(rx)
        });
    async move {
        let rt = runtime()?;
        let socks = made?
            .await
            .map_err(|_| dns_err("its namespace thread")(io::Error::other("ended")))??;
        start(&rt, socks, names, &container_id, upstreams)
    }
}

/// Hands the sockets to the "berth-dns" runtime and starts serving them.
fn start(
    rt: &tokio::runtime::Handle,
    socks: Sockets,
    names: Arc<Names>,
    container_id: &str,
    upstreams: Vec<SocketAddr>,
) -> Result<Server, NetworkError> {
    let udp_at = socks.udp.local_addr().map_err(dns_err("binding UDP"))?;
    let tcp_at = socks.tcp.local_addr().map_err(dns_err("binding TCP"))?;
    let _in_rt = rt.enter();
    let udp = UdpSocket::from_std(socks.udp).map_err(dns_err("registering UDP"))?;
    let tcp = TcpListener::from_std(socks.tcp).map_err(dns_err("registering TCP"))?;
    let shared = Arc::new(Shared {
        names,
        container_id: container_id.to_owned(),
        upstreams,
        forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        rotation: AtomicUsize::new(0),
    });
    let span = tracing::debug_span!("dns", container = %container_id);
    let udp_task = rt.spawn(tracing::Instrument::instrument(
        serve_udp(Arc::new(udp), shared.clone()),
        span.clone(),
    ));
    let tcp_task = rt.spawn(tracing::Instrument::instrument(
        serve_tcp(tcp, shared),
        span,
    ));
    Ok(Server {
        tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()],
        udp: udp_at,
        tcp: tcp_at,
    })
}

/// What one server knows.
#[derive(Debug)]
struct Shared {
    names: Arc<Names>,
    container_id: String,
    upstreams: Vec<SocketAddr>,
    forwards: Arc<Semaphore>,
    /// Turns the order of several addresses from one answer to the next.
    rotation: AtomicUsize,
}

/// What to do with one message from the container.
#[derive(Debug)]
enum Handled {
    /// Send this back.
    Reply(Vec<u8>),
    /// Not ours: ask the upstreams (the parsed query, for the SERVFAIL and the size).
    Forward(Message),
    /// Not a query (a response, or too short to have an id): say nothing.
    Ignore,
}

/// The reply header of `query`: same id, opcode, RD and CD; RA set (dockerd's).
fn reply_to(query: &Message) -> Message {
    let mut m = Message::new();
    m.set_header(Header::response_from_request(query.header()));
    m.set_recursion_available(true);
    m.add_queries(query.queries().iter().cloned());
    if query.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(edns);
    }
    m
}

fn error_reply(query: &Message, code: ResponseCode) -> Vec<u8> {
    let mut m = reply_to(query);
    m.set_response_code(code);
    m.to_vec().unwrap_or_default()
}

/// FORMERR for bytes hickory could not parse, when they carry a query's id.
fn formerr_of_raw(raw: &[u8]) -> Handled {
    match raw {
        // A header is 12 bytes; the QR bit (top bit of byte 2) set means a response,
        // which never gets a reply (no loops between two servers).
        [a, b, flags, ..] if raw.len() >= 12 && flags & 0x80 == 0 => {
            let m = Message::error_msg(
                u16::from_be_bytes([*a, *b]),
                OpCode::Query,
                ResponseCode::FormErr,
            );
            m.to_vec().map_or(Handled::Ignore, Handled::Reply)
        }
        _ => Handled::Ignore,
    }
}

impl Shared {
    /// Answers `raw` from the table when it asks for a name there (or is malformed).
    fn handle(&self, raw: &[u8]) -> Handled {
        let Ok(query) = Message::from_vec(raw) else {
            return formerr_of_raw(raw);
        };
        if query.message_type() != MessageType::Query {
            return Handled::Ignore;
        }
        if query.op_code() != OpCode::Query {
            return Handled::Reply(error_reply(&query, ResponseCode::NotImp));
        }
        let [q] = query.queries() else {
            return Handled::Reply(error_reply(&query, ResponseCode::FormErr));
        };
        if q.query_class() != DNSClass::IN {
            return Handled::Forward(query);
        }
        let name = q.name().to_ascii();
        let answers: Vec<Record> = match q.query_type() {
            RecordType::A => {
                let mut ips = self.names.lookup(&self.container_id, &name);
                if ips.is_empty() {
                    return Handled::Forward(query);
                }
                let turn = self.rotation.fetch_add(1, Ordering::Relaxed) % ips.len();
                ips.rotate_left(turn);
                ips.into_iter()
                    .map(|ip| Record::from_rdata(q.name().clone(), ANSWER_TTL, RData::A(A(ip))))
                    .collect()
            }
            // dockerd's networks here have no IPv6: a known name has no AAAA, and saying
            // so (NOERROR, no answer) keeps the resolver from asking upstream.
            RecordType::AAAA => {
                if self.names.lookup(&self.container_id, &name).is_empty() {
                    return Handled::Forward(query);
                }
                Vec::new()
            }
            RecordType::PTR => {
                let ip = match q.name().parse_arpa_name() {
                    Ok(net) if net.prefix_len() == 32 => match net.addr() {
                        std::net::IpAddr::V4(ip) => ip,
                        std::net::IpAddr::V6(_) => return Handled::Forward(query),
                    },
                    _ => return Handled::Forward(query),
                };
                let Some(target) = self.names.reverse(&self.container_id, ip) else {
                    return Handled::Forward(query);
                };
                let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                    return Handled::Forward(query);
                };
                vec![Record::from_rdata(
                    q.name().clone(),
                    ANSWER_TTL,
                    RData::PTR(PTR(target)),
                )]
            }
            _ => return Handled::Forward(query),
        };
        let mut m = reply_to(&query);
        m.set_authoritative(true);
        m.add_answers(answers);
        match m.to_vec() {
            Ok(v) => Handled::Reply(v),
            Err(_) => Handled::Reply(error_reply(&query, ResponseCode::ServFail)),
        }
    }

    /// The upstreams' answer to `raw` (the container's query as sent), or SERVFAIL when
    /// none answers. `tcp`: the container asked over TCP, so do we.
    async fn forward(&self, query: &Message, raw: &[u8], tcp: bool) -> Vec<u8> {
        for &up in self.upstreams.iter().take(MAX_UPSTREAMS) {
            let got = if tcp {
                tcp_exchange(up, raw, query.id()).await
            } else {
                match udp_exchange(up, raw, query.id()).await {
                    // Too big for UDP: the whole answer over TCP, else the cut one.
                    Ok((bytes, true)) => match tcp_exchange(up, raw, query.id()).await {
                        Ok(full) => Ok(full),
                        Err(_) => Ok((bytes, true)),
                    },
                    other => other,
                }
            };
            match got {
                Ok((bytes, _)) => return bytes,
                Err(e) => tracing::debug!(upstream = %up, error = %e, "upstream did not answer"),
            }
        }
        error_reply(query, ResponseCode::ServFail)
    }
}

/// Checks that `bytes` answer query `id`; returns whether the answer is truncated.
fn check_answer(bytes: &[u8], id: u16) -> io::Result<bool> {
    let m = Message::from_vec(bytes).map_err(|e| io::Error::other(e.to_string()))?;
    if m.message_type() != MessageType::Response || m.id() != id {
        return Err(io::Error::other("not the answer to the query"));
    }
    Ok(m.truncated())
}

async fn udp_exchange(up: SocketAddr, raw: &[u8], id: u16) -> io::Result<(Vec<u8>, bool)> {
    let local: SocketAddr = if up.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        loop {
            let n = sock.recv(&mut buf).await?;
            // Anything else on this connected socket (a stray or late datagram) is
            // skipped; the timeout bounds the wait.
            if let Ok(tc) = check_answer(&buf[..n], id) {
                return Ok((buf[..n].to_vec(), tc));
            }
        }
    })
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

async fn tcp_exchange(up: SocketAddr, raw: &[u8], id: u16) -> io::Result<(Vec<u8>, bool)> {
    tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        let mut s = TcpStream::connect(up).await?;
        write_frame(&mut s, raw).await?;
        let bytes = read_frame(&mut s).await?;
        let tc = check_answer(&bytes, id)?;
        Ok((bytes, tc))
    })
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

async fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let len = usize::from(s.read_u16().await?);
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame(s: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| io::Error::other("message too long"))?;
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    s.write_all(&out).await
}

/// A UDP answer cut to what the asker takes (512 bytes, or its EDNS size): header and
/// question with TC set, so it asks again over TCP.
fn fit_udp(answer: Vec<u8>, query: &Message) -> Vec<u8> {
    if answer.len() <= usize::from(query.max_payload()) {
        return answer;
    }
    match Message::from_vec(&answer) {
        Ok(m) => m.truncate().to_vec().unwrap_or_default(),
        Err(_) => error_reply(query, ResponseCode::ServFail),
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    // Forwards in flight; dropped (aborted) with this task when the server stops.
    let mut forwards = JoinSet::new();
    loop {
        tokio::select! {
            got = sock.recv_from(&mut buf) => {
                let Ok((n, peer)) = got else { continue };
                match shared.handle(&buf[..n]) {
                    Handled::Ignore => {}
                    Handled::Reply(bytes) => {
                        let _ = sock.send_to(&bytes, peer).await;
                    }
                    Handled::Forward(query) => {
                        let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                            let _ = sock.send_to(&error_reply(&query, ResponseCode::ServFail), peer).await;
                            continue;
                        };
                        let raw = buf[..n].to_vec();
                        let (sock, shared) = (sock.clone(), shared.clone());
                        forwards.spawn(async move {
                            let answer = shared.forward(&query, &raw, false).await;
                            drop(permit);
                            let _ = sock.send_to(&fit_udp(answer, &query), peer).await;
                        });
                    }
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            got = listener.accept() => {
                let Ok((stream, _)) = got else { continue };
                if conns.len() < MAX_TCP_CONNECTIONS {
                    conns.spawn(serve_tcp_connection(stream, shared.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Queries on one TCP connection, one after the other, until it closes or idles.
async fn serve_tcp_connection(mut s: TcpStream, shared: Arc<Shared>) {
    loop {
        let Ok(Ok(raw)) = tokio::time::timeout(TCP_IDLE, read_frame(&mut s)).await else {
            return;
        };
        let answer = match shared.handle(&raw) {
            Handled::Ignore => continue,
            Handled::Reply(bytes) => bytes,
            Handled::Forward(query) => match shared.forwards.clone().try_acquire_owned() {
                Ok(_permit) => shared.forward(&query, &raw, true).await,
                Err(_) => error_reply(&query, ResponseCode::ServFail),
            },
        };
        if write_frame(&mut s, &answer).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, names: &[&str], ip: [u8; 4]) -> Entry {
        Entry {
            container_id: id.to_owned(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: Ipv4Addr::from(ip),
        }
    }

    const ID_A: &str = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
    const ID_B: &str = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";
    const ID_C: &str = "cccccccccccc3333333333333333333333333333333333333333333333333333";

    #[test]
    fn names_answer_by_name_alias_and_short_id_case_insensitively() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["web", "frontend"], [10, 1, 0, 2]));
        n.join("net1", entry(ID_B, &["db"], [10, 1, 0, 3]));
        let ip = vec![Ipv4Addr::new(10, 1, 0, 2)];
        assert_eq!(n.lookup(ID_B, "web"), ip);
        assert_eq!(n.lookup(ID_B, "WEB."), ip);
        assert_eq!(n.lookup(ID_B, "frontend"), ip);
        assert_eq!(n.lookup(ID_B, "AAAAAAAAAAAA"), ip);
        assert_eq!(n.lookup(ID_A, "db"), vec![Ipv4Addr::new(10, 1, 0, 3)]);
        assert!(
            n.lookup(ID_B, "aaaaaaaaaaa").is_empty(),
            "11 hex digits are no short id"
        );
        assert!(n.lookup(ID_B, "nope").is_empty());
        assert!(n.lookup(ID_B, "").is_empty());
        assert!(n.lookup(ID_B, ".").is_empty());
    }

    #[test]
    fn names_on_other_networks_are_not_seen() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["web"], [10, 1, 0, 2]));
        n.join("net2", entry(ID_B, &["db"], [10, 2, 0, 2]));
        assert!(n.lookup(ID_A, "db").is_empty());
        assert!(n.lookup(ID_B, "web").is_empty());
        assert!(n.lookup("unknown", "web").is_empty());
        assert_eq!(n.reverse(ID_A, Ipv4Addr::new(10, 2, 0, 2)), None);
        assert_eq!(
            n.reverse(ID_B, Ipv4Addr::new(10, 2, 0, 2)),
            Some("db".to_owned())
        );
    }

    #[test]
    fn a_container_on_two_networks_sees_both() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["web"], [10, 1, 0, 2]));
        n.join("net2", entry(ID_B, &["db"], [10, 2, 0, 2]));
        n.join("net1", entry(ID_C, &["app"], [10, 1, 0, 3]));
        n.join("net2", entry(ID_C, &["app"], [10, 2, 0, 3]));
        assert_eq!(n.lookup(ID_C, "web"), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        assert_eq!(n.lookup(ID_C, "db"), vec![Ipv4Addr::new(10, 2, 0, 2)]);
        // Each sees the address of the network it shares.
        assert_eq!(n.lookup(ID_A, "app"), vec![Ipv4Addr::new(10, 1, 0, 3)]);
        assert_eq!(n.lookup(ID_B, "app"), vec![Ipv4Addr::new(10, 2, 0, 3)]);
        let mut both = n.lookup(ID_C, "app");
        both.sort();
        assert_eq!(
            both,
            vec![Ipv4Addr::new(10, 1, 0, 3), Ipv4Addr::new(10, 2, 0, 3)]
        );
    }

    #[test]
    fn an_alias_shared_by_several_gives_each_address() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["a", "svc"], [10, 1, 0, 2]));
        n.join("net1", entry(ID_B, &["b", "svc"], [10, 1, 0, 3]));
        n.join("net1", entry(ID_C, &["c"], [10, 1, 0, 4]));
        let mut ips = n.lookup(ID_C, "svc");
        ips.sort();
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)]
        );
    }

    #[test]
    fn join_again_replaces_and_leave_forgets() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["web"], [10, 1, 0, 2]));
        n.join("net1", entry(ID_B, &["db"], [10, 1, 0, 3]));
        n.join("net1", entry(ID_A, &["web2"], [10, 1, 0, 9]));
        assert!(n.lookup(ID_B, "web").is_empty());
        assert_eq!(n.lookup(ID_B, "web2"), vec![Ipv4Addr::new(10, 1, 0, 9)]);
        n.leave("net1", ID_A);
        assert!(n.lookup(ID_B, "web2").is_empty());
        assert!(
            n.lookup(ID_A, "db").is_empty(),
            "a container that left sees nothing"
        );
        n.leave("net1", ID_A);
        n.leave("nonet", "nobody");
        assert_eq!(n.lookup(ID_B, "db"), vec![Ipv4Addr::new(10, 1, 0, 3)]);
    }

    #[test]
    fn a_named_network_answers_name_dot_network_and_ptr_with_it() {
        let n = Names::new();
        n.join("id1", entry(ID_A, &["web"], [10, 1, 0, 2]));
        n.join("id1", entry(ID_B, &["db"], [10, 1, 0, 3]));
        n.join("id2", entry(ID_B, &["db"], [10, 2, 0, 3]));
        n.join("id2", entry(ID_C, &["app"], [10, 2, 0, 4]));
        n.name_network("id1", "front");
        n.name_network("id2", "back");
        assert_eq!(
            n.lookup(ID_A, "web.front"),
            vec![Ipv4Addr::new(10, 1, 0, 2)]
        );
        assert_eq!(n.lookup(ID_B, "DB.Back."), vec![Ipv4Addr::new(10, 2, 0, 3)]);
        assert_eq!(n.lookup(ID_B, "db.front"), vec![Ipv4Addr::new(10, 1, 0, 3)]);
        assert!(n.lookup(ID_A, "app.back").is_empty(), "not on that network");
        assert!(n.lookup(ID_A, "web.back").is_empty());
        assert!(n.lookup(ID_A, ".front").is_empty());
        assert_eq!(
            n.reverse(ID_A, Ipv4Addr::new(10, 1, 0, 3)),
            Some("db.front".to_owned())
        );
        n.forget_network("id2");
        assert!(n.lookup(ID_B, "app").is_empty());
        assert!(n.lookup(ID_C, "db").is_empty());
        assert_eq!(n.lookup(ID_A, "db"), vec![Ipv4Addr::new(10, 1, 0, 3)]);
    }

    fn shared(names: Arc<Names>, id: &str) -> Shared {
        Shared {
            names,
            container_id: id.to_owned(),
            upstreams: Vec::new(),
            forwards: Arc::new(Semaphore::new(1)),
            rotation: AtomicUsize::new(0),
        }
    }

    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0x4242).set_recursion_desired(true);
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii(name).expect("name"),
            rtype,
        ));
        m.to_vec().expect("encode")
    }

    fn reply(h: Handled) -> Message {
        match h {
            Handled::Reply(b) => Message::from_vec(&b).expect("decode"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn queries_are_answered_from_the_table_or_forwarded() {
        let n = Names::new();
        n.join("net1", entry(ID_A, &["web", "svc"], [10, 1, 0, 2]));
        n.join("net1", entry(ID_B, &["db", "svc"], [10, 1, 0, 3]));
        let s = shared(n, ID_B);

        let r = reply(s.handle(&query("Web.", RecordType::A)));
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
        assert_eq!(r.answers()[0].ttl(), ANSWER_TTL);
        assert_eq!(
            *r.answers()[0].data(),
            RData::A(A(Ipv4Addr::new(10, 1, 0, 2)))
        );

        // Several addresses turn from one answer to the next.
        let first = |r: Message| r.answers()[0].data().clone();
        let one = first(reply(s.handle(&query("svc", RecordType::A))));
        let two = first(reply(s.handle(&query("svc", RecordType::A))));
        assert_ne!(one, two);

        let r = reply(s.handle(&query("web", RecordType::AAAA)));
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty());

        let r = reply(s.handle(&query("2.0.1.10.in-addr.arpa.", RecordType::PTR)));
        assert_eq!(
            *r.answers()[0].data(),
            RData::PTR(PTR(Name::from_ascii("web.").expect("name")))
        );

        assert!(matches!(
            s.handle(&query("example.com.", RecordType::A)),
            Handled::Forward(_)
        ));
        assert!(matches!(
            s.handle(&query("web", RecordType::MX)),
            Handled::Forward(_)
        ));
    }

    #[test]
    fn bad_packets_get_formerr_or_nothing() {
        let s = shared(Names::new(), ID_A);
        assert!(matches!(s.handle(&[]), Handled::Ignore));
        assert!(matches!(s.handle(&[1, 2, 3]), Handled::Ignore));
        // A header claiming one question and no question.
        let bad = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let r = reply(s.handle(&bad));
        assert_eq!(r.id(), 0x1234);
        assert_eq!(r.response_code(), ResponseCode::FormErr);
        // The same as a response: never answered.
        let bad = [0x12, 0x34, 0x81, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(matches!(s.handle(&bad), Handled::Ignore));
        // No question at all.
        let none = [0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            reply(s.handle(&none)).response_code(),
            ResponseCode::FormErr
        );
        // Random garbage of every length up to 64 never panics.
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(len))
                .collect();
            let _ = s.handle(&junk);
        }
    }
}
