//! The request framing of an HTTP/1 connection, tracked while actix-http reads it.
//!
//! actix-http's dispatcher owns a keep-alive connection and would parse a hijack (`POST
//! /containers/{id}/attach`, `POST /exec/{id}/start`) as an ordinary request and the stdin
//! that follows as the next one. [`Tracked`] sits between the socket and actix: it hands
//! actix the bytes of one request at a time (its head, then its Content-Length or chunked
//! body) and parses every new request head before actix sees it. A hijack head is kept
//! back and actix reads EOF instead; actix then finishes the response it is writing (the
//! connection allows half-closed reads), shuts the IO down (a no-op here) and drops it, and
//! the drop hands the socket, the hijack and the bytes after its head to
//! `server::handle_conn`. Clients do not pipeline, so the previous response is complete
//! by the time a hijack head arrives.
//!
//! A framing this module does not follow (a websocket upgrade, CONNECT, a head or a
//! chunked body actix will refuse) turns the connection opaque: every byte goes to actix
//! as it comes, and no later request of that connection is looked at. actix answers or
//! closes such connections itself.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Conn;
use super::hijack::{self, Hijack};

/// The largest request head looked at (actix-http's own limit); a longer one goes to
/// actix unparsed, which refuses it.
pub const MAX_HEAD: usize = 128 * 1024;
/// As many headers as actix-http parses.
const MAX_HEADERS: usize = 96;
/// How much the head buffer grows by per read.
const READ_CHUNK: usize = 4096;

/// What the bytes after the current position are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A request head starts here (between requests).
    Head,
    /// `left` more bytes of a head already parsed, then the body `then`.
    InHead { left: usize, then: Body },
    /// Inside a body.
    Body(Body),
    /// The framing is no longer followed: everything goes to actix.
    Opaque,
}

/// The body of the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// No body.
    Empty,
    /// `n` more bytes of a Content-Length body.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
}

/// The place in a chunked body (RFC 9112 section 7.1, as actix-http's decoder reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The first hex digit of a chunk size.
    SizeFirst,
    /// More hex digits of the size read so far.
    Size(u64),
    /// Blanks after the size.
    SizeBlank(u64),
    /// A chunk extension, up to its CR.
    Extension(u64),
    /// The LF of the size line.
    SizeLf(u64),
    /// `n` more bytes of chunk data.
    Data(u64),
    /// The CR after the data.
    DataCr,
    /// The LF after the data.
    DataLf,
    /// After the last chunk: the CR of the final empty line, or a trailer field.
    EndCr,
    /// Inside a trailer field, up to its CR.
    Trailer,
    /// The LF of a trailer field.
    TrailerLf,
    /// The LF of the final empty line.
    EndLf,
}

/// What the caller may do with the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Hand the first `n` bytes (`n > 0`) to actix.
    Deliver(usize),
    /// The next request head is not complete: read more.
    NeedMore,
    /// The next request is a hijack; its head is the first `head_len` bytes.
    Hijack {
        hijack: Box<Hijack>,
        head_len: usize,
    },
}

/// Follows the framing of the requests of one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    pub fn new() -> Self {
        Framer { state: State::Head }
    }

    /// Whether the next byte starts a request head.
    pub fn at_head(&self) -> bool {
        self.state == State::Head
    }

    /// Whether the framing is no longer followed.
    pub fn is_opaque(&self) -> bool {
        self.state == State::Opaque
    }

    /// Gives up following the framing (the peer closed in the middle of a head, or a head
    /// grew too long).
    pub fn make_opaque(&mut self) {
        self.state = State::Opaque;
    }

    /// Decides about `data`, the bytes buffered after the current position: at most `room`
    /// bytes are delivered, and never past the end of the current request (the next head
    /// is parsed on the next call). At a head, `data` should hold all the bytes buffered.
    pub fn step(&mut self, data: &[u8], room: usize) -> Step {
        if data.is_empty() {
            return Step::NeedMore;
        }
        if self.state == State::Head {
            match classify(data) {
                Head::Partial if data.len() < MAX_HEAD => return Step::NeedMore,
                Head::Partial | Head::Opaque => self.state = State::Opaque,
                Head::Hijack { hijack, head_len } => return Step::Hijack { hijack, head_len },
                Head::Request { head_len, body } => {
                    self.state = State::InHead {
                        left: head_len,
                        then: body,
                    }
                }
            }
        }
        let limit = data.len().min(room);
        let mut done = 0;
        while done < limit {
            let avail = &data[done..limit];
            match self.state {
                State::Head => break,
                State::Opaque => done = limit,
                State::InHead { left, then } => {
                    let n = left.min(avail.len());
                    done += n;
                    self.state = if n == left {
                        match then {
                            Body::Empty => State::Head,
                            body => State::Body(body),
                        }
                    } else {
                        State::InHead {
                            left: left - n,
                            then,
                        }
                    };
                }
                State::Body(Body::Empty) => self.state = State::Head,
                State::Body(Body::Length(left)) => {
                    let n = usize::try_from(left).map_or(avail.len(), |l| l.min(avail.len()));
                    done += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(Body::Length(left))
                    };
                }
                State::Body(Body::Chunked(chunk)) => {
                    let (n, next) = chunked(chunk, avail);
                    done += n;
                    self.state = match next {
                        Some(ChunkNext::More(c)) => State::Body(Body::Chunked(c)),
                        Some(ChunkNext::End) => State::Head,
                        // actix fails the body and closes the connection.
                        None => State::Opaque,
                    };
                }
            }
        }
        if done == 0 {
            // Only when `room` is 0: the caller has nowhere to put bytes.
            Step::NeedMore
        } else {
            Step::Deliver(done)
        }
    }
}

enum ChunkNext {
    More(Chunk),
    End,
}

fn hex(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

/// Walks a chunked body over `data`: the bytes consumed and the place after them (`None`
/// for a malformed body; `End` once the final empty line is through).
fn chunked(mut c: Chunk, data: &[u8]) -> (usize, Option<ChunkNext>) {
    let mut i = 0;
    while i < data.len() {
        if let Chunk::Data(left) = c {
            let n = usize::try_from(left).map_or(data.len() - i, |l| l.min(data.len() - i));
            i += n;
            let left = left - n as u64;
            c = if left == 0 {
                Chunk::DataCr
            } else {
                Chunk::Data(left)
            };
            continue;
        }
        let b = data[i];
        i += 1;
        c = match (c, b) {
            (Chunk::SizeFirst, _) => match hex(b) {
                Some(d) => Chunk::Size(d),
                None => return (i, None),
            },
            (Chunk::Size(n), b' ' | b'\t') => Chunk::SizeBlank(n),
            (Chunk::Size(n), b';') | (Chunk::SizeBlank(n), b';') => Chunk::Extension(n),
            (Chunk::Size(n), b'\r') | (Chunk::SizeBlank(n), b'\r') => Chunk::SizeLf(n),
            (Chunk::Size(n), _) => match hex(b).zip(n.checked_mul(16)) {
                Some((d, m)) => Chunk::Size(m + d),
                None => return (i, None),
            },
            (Chunk::SizeBlank(n), b' ' | b'\t') => Chunk::SizeBlank(n),
            (Chunk::Extension(n), b'\r') => Chunk::SizeLf(n),
            (Chunk::Extension(_), 0x00..=0x08 | 0x0a..=0x1f | 0x7f) => return (i, None),
            (Chunk::Extension(n), _) => Chunk::Extension(n),
            (Chunk::SizeLf(0), b'\n') => Chunk::EndCr,
            (Chunk::SizeLf(n), b'\n') => Chunk::Data(n),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => Chunk::SizeFirst,
            (Chunk::EndCr, b'\r') => Chunk::EndLf,
            (Chunk::EndCr, _) | (Chunk::Trailer, _) if b != b'\r' => Chunk::Trailer,
            (Chunk::Trailer, _) => Chunk::TrailerLf,
            (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
            (Chunk::EndLf, b'\n') => return (i, Some(ChunkNext::End)),
            _ => return (i, None),
        };
    }
    (i, Some(ChunkNext::More(c)))
}

/// A request head, classified.
enum Head {
    Partial,
    /// A head actix will refuse, or a framing not followed here.
    Opaque,
    Hijack {
        hijack: Box<Hijack>,
        head_len: usize,
    },
    Request {
        head_len: usize,
        body: Body,
    },
}

/// Parses the request head at the start of `data` and finds its body's framing, with the
/// rules of actix-http's decoder (which refuses what is ambiguous).
fn classify(data: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Opaque,
    };
    let http11 = req.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut keep_alive = http11;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).map(str::trim);
        if h.name.eq_ignore_ascii_case("content-length") {
            match value.map(|v| (v, v.parse::<u64>())) {
                Ok((v, Ok(n))) if length.is_none() && !v.starts_with('+') => length = Some(n),
                _ => return Head::Opaque,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            match value {
                Ok(v) if http11 && !chunked && v.eq_ignore_ascii_case("chunked") => chunked = true,
                _ => return Head::Opaque,
            }
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            if value.is_ok_and(|v| v.eq_ignore_ascii_case("websocket")) {
                // actix streams the body until EOF.
                return Head::Opaque;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.unwrap_or("");
            if v.split(',').any(|o| o.trim().eq_ignore_ascii_case("close")) {
                keep_alive = false;
            } else if v
                .split(',')
                .any(|o| o.trim().eq_ignore_ascii_case("keep-alive"))
            {
                keep_alive = true;
            }
        }
    }
    let body = match (chunked, length) {
        (true, Some(_)) => return Head::Opaque,
        (true, None) => Body::Chunked(Chunk::SizeFirst),
        (false, Some(n)) if n > 0 => Body::Length(n),
        _ => Body::Empty,
    };
    let method = req.method.unwrap_or("");
    if method == "CONNECT" && body == Body::Empty {
        return Head::Opaque;
    }
    if method == "POST" {
        if let Some(mut hj) = hijack::hijack_of(&req) {
            // An error reply before the hijack can keep the connection only when no body
            // is in the way.
            hj.reusable = keep_alive && body == Body::Empty;
            hj.keep_alive = keep_alive;
            hj.body_len = match body {
                Body::Empty => Some(0),
                Body::Length(n) => Some(n),
                Body::Chunked(_) => None,
            };
            return Head::Hijack {
                hijack: Box::new(hj),
                head_len,
            };
        }
    }
    Head::Request { head_len, body }
}

/// What [`Tracked`] leaves behind when actix drops it after a hijack head.
#[derive(Debug)]
pub struct Handback {
    pub conn: Conn,
    pub hijack: Hijack,
    /// The bytes after the hijack's head (stdin, or the next request after a refusal).
    pub rest: BytesMut,
}

/// The slot a [`Tracked`] fills when it is dropped after a hijack head.
pub type HandbackSlot = Rc<RefCell<Option<Handback>>>;

/// The IO actix-http gets: the connection, read one request at a time (see the module
/// docs).
#[derive(Debug)]
pub struct Tracked {
    /// `None` only once dropped.
    conn: Option<Conn>,
    /// Bytes read from the client and not handed to actix yet.
    buf: BytesMut,
    framer: Framer,
    /// Set once a hijack head is found: actix reads EOF from then on.
    hijack: Option<Box<Hijack>>,
    handback: HandbackSlot,
}

impl Tracked {
    /// Wraps `conn`; `buf` holds bytes already read from it (a request after a refused
    /// hijack).
    pub fn new(conn: Conn, buf: BytesMut, handback: HandbackSlot) -> Self {
        Tracked {
            conn: Some(conn),
            buf,
            framer: Framer::new(),
            hijack: None,
            handback,
        }
    }

    fn conn(&mut self) -> io::Result<Pin<&mut Conn>> {
        self.conn
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.hijack.is_some() {
                return Poll::Ready(Ok(()));
            }
            if !me.buf.is_empty() {
                match me.framer.step(&me.buf, out.remaining()) {
                    Step::Deliver(n) => {
                        out.put_slice(&me.buf[..n]);
                        me.buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Step::Hijack { hijack, head_len } => {
                        me.buf.advance(head_len);
                        me.hijack = Some(hijack);
                        return Poll::Ready(Ok(()));
                    }
                    Step::NeedMore if !me.framer.at_head() => return Poll::Ready(Ok(())),
                    Step::NeedMore => {}
                }
            } else if !me.framer.at_head() {
                // Body bytes (or an opaque stream) go straight into actix's buffer; what
                // follows the end of this request is kept back.
                let before = out.filled().len();
                ready!(me.conn()?.poll_read(cx, out))?;
                let got = &out.filled()[before..];
                if got.is_empty() || me.framer.is_opaque() {
                    return Poll::Ready(Ok(()));
                }
                let kept = match me.framer.step(got, got.len()) {
                    Step::Deliver(n) => n,
                    _ => 0,
                };
                if kept < got.len() {
                    me.buf.extend_from_slice(&got[kept..]);
                    out.set_filled(before + kept);
                }
                if kept > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // At a head: read until it is complete.
            me.buf.reserve(READ_CHUNK);
            let buf = &mut me.buf;
            let conn = me
                .conn
                .as_mut()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            let n = ready!(tokio_util::io::poll_read_buf(Pin::new(conn), cx, buf))?;
            if n == 0 {
                if me.buf.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                // EOF inside a head: actix gets it as it is, and answers or drops it.
                me.framer.make_opaque();
            }
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().conn()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().conn()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().conn()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.hijack.is_some() {
            // The connection goes on as the hijacked stream.
            return me.conn()?.poll_flush(cx);
        }
        me.conn()?.poll_shutdown(cx)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(hijack), Some(conn)) = (self.hijack.take(), self.conn.take()) {
            *self.handback.borrow_mut() = Some(Handback {
                conn,
                hijack: *hijack,
                rest: std::mem::take(&mut self.buf),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a stream turns into: the requests actix gets (as text), then the hijack's head
    /// length and the bytes after it, if one came. `room` caps each delivery.
    fn run(stream: &[u8], room: usize) -> (Vec<String>, Option<(String, Vec<u8>)>) {
        let mut f = Framer::new();
        let mut pos = 0;
        let mut requests = Vec::new();
        let mut current = Vec::new();
        while pos < stream.len() {
            match f.step(&stream[pos..], room) {
                Step::Deliver(n) => {
                    current.extend_from_slice(&stream[pos..pos + n]);
                    pos += n;
                    if f.at_head() {
                        requests.push(String::from_utf8_lossy(&current).into_owned());
                        current.clear();
                    }
                }
                Step::NeedMore => break,
                Step::Hijack { hijack, head_len } => {
                    assert!(current.is_empty());
                    return (
                        requests,
                        Some((hijack.id.clone(), stream[pos + head_len..].to_vec())),
                    );
                }
            }
        }
        if !current.is_empty() {
            requests.push(String::from_utf8_lossy(&current).into_owned());
        }
        (requests, None)
    }

    const PING: &str = "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
    const ATTACH: &str = "POST /v1.41/containers/c1/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

    #[test]
    fn content_length_bodies_end_where_they_say() {
        let create =
            "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"Cmd\":[]}";
        let stream = format!("{create}{PING}");
        for room in [1, 3, 7, 4096] {
            let (reqs, hj) = run(stream.as_bytes(), room);
            assert_eq!(
                reqs,
                vec![create.to_owned(), PING.to_owned()],
                "room {room}"
            );
            assert!(hj.is_none());
        }
    }

    #[test]
    fn a_zero_length_body_is_no_body() {
        let req = "POST /containers/x/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        let (reqs, _) = run(format!("{req}{PING}").as_bytes(), 4096);
        assert_eq!(reqs, vec![req.to_owned(), PING.to_owned()]);
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let chunked = "POST /images/create?fromSrc=- HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\n1A \t\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n";
        let plain = "POST /images/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\n\r\n\r\r\n0\r\n\r\n";
        let stream = format!("{chunked}{plain}{PING}");
        for room in [1, 2, 5, 4096] {
            let (reqs, hj) = run(stream.as_bytes(), room);
            assert_eq!(
                reqs,
                vec![chunked.to_owned(), plain.to_owned(), PING.to_owned()],
                "room {room}"
            );
            assert!(hj.is_none());
        }
    }

    #[test]
    fn pipelined_requests_are_split() {
        let stream = format!("{PING}{PING}\r\n{PING}");
        let (reqs, _) = run(stream.as_bytes(), 4096);
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[2], format!("\r\n{PING}"));
    }

    #[test]
    fn a_hijack_after_a_chunked_request_is_found() {
        let chunked = "POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let stream = format!("{PING}{chunked}{ATTACH}stdin bytes");
        for room in [1, 9, 4096] {
            let (reqs, hj) = run(stream.as_bytes(), room);
            assert_eq!(reqs, vec![PING.to_owned(), chunked.to_owned()]);
            let (id, rest) = hj.unwrap();
            assert_eq!(id, "c1");
            assert_eq!(rest, b"stdin bytes");
        }
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let mut f = Framer::new();
        assert_eq!(f.step(b"GET /_ping HTTP/1.1\r\nHo", 4096), Step::NeedMore);
        assert_eq!(f.step(&ATTACH.as_bytes()[..40], 4096), Step::NeedMore);
        assert!(matches!(
            f.step(ATTACH.as_bytes(), 4096),
            Step::Hijack { head_len, .. } if head_len == ATTACH.len()
        ));
    }

    #[test]
    fn what_actix_refuses_turns_the_connection_opaque() {
        for head in [
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT x:1 HTTP/1.1\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
        ] {
            let stream = format!("{head}{ATTACH}");
            let (reqs, hj) = run(stream.as_bytes(), 4096);
            assert_eq!(reqs, vec![stream.clone()], "{head:?}");
            assert!(hj.is_none(), "{head:?}");
        }
        // A malformed chunk: the rest of the connection goes to actix as it is.
        let bad = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let (reqs, hj) = run(format!("{bad}{ATTACH}").as_bytes(), 4096);
        assert_eq!(reqs.concat(), format!("{bad}{ATTACH}"));
        assert!(hj.is_none());
    }

    #[test]
    fn an_oversized_head_goes_to_actix() {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(MAX_HEAD + 10, b'a');
        let mut f = Framer::new();
        assert_eq!(f.step(&head, 4096), Step::Deliver(4096));
        assert!(f.is_opaque());
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut f = Framer::new();
        let head = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\nabc", u64::MAX);
        assert_eq!(f.step(head.as_bytes(), 4096), Step::Deliver(head.len()));
        let mut f = Framer::new();
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n";
        assert!(matches!(f.step(head.as_bytes(), 4096), Step::Deliver(_)));
        assert!(f.is_opaque());
    }

    #[test]
    fn reuse_after_a_refused_hijack_needs_an_empty_body_and_keep_alive() {
        let reusable = |head: &str| match Framer::new().step(head.as_bytes(), 4096) {
            Step::Hijack { hijack, .. } => hijack.reusable,
            other => panic!("{other:?}"),
        };
        assert!(reusable(ATTACH));
        assert!(!reusable(
            "POST /exec/e/start HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(!reusable(
            "POST /containers/c/attach HTTP/1.1\r\nConnection: close\r\n\r\n"
        ));
        assert!(!reusable("POST /containers/c/attach HTTP/1.0\r\n\r\n"));
        assert!(reusable(
            "POST /containers/c/attach HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        ));
    }
}
