//! `POST /exec/{id}/start`: the body first (`{"Detach":..,"Tty":..}`), then either a
//! plain 200 (detached, and the connection serves more requests) or the hijacked stream
//! between the client and the exec's monitor, as dockerd's `postContainerExecStart`.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Conn;
use super::hijack::{Hijack, Served, splice, status_line, write_error};
use crate::actors::store::{InspectExec, StartExec};
use crate::api::{self, ApiError, AppState};
use crate::model::exec::parse_exec_start;
use crate::monitor::proto::{STDOUT, stdcopy_frame};

/// The largest start body read (the CLI's is 29 bytes).
const MAX_BODY: u64 = 64 * 1024;

/// How long the end of an exec's stream waits for its exit code to be recorded, so that
/// the client's `GET /exec/{id}/json` right after sees it.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// An error reply before any stream; the connection serves more requests when it can.
async fn refuse(
    mut conn: Conn,
    err: &ApiError,
    reusable: bool,
    rest: BytesMut,
) -> io::Result<Served> {
    write_error(&mut conn, err, reusable).await?;
    Ok(if reusable {
        Served::Refused(conn, rest)
    } else {
        Served::Done
    })
}

/// Serves one exec start. `rest` holds the bytes after the request's head: its body,
/// then the exec's stdin (or the next request, when detached).
pub async fn serve_exec_start(
    state: &AppState,
    mut conn: Conn,
    hj: Hijack,
    mut rest: BytesMut,
) -> io::Result<Served> {
    if let Some(e) = api::version_error(&hj.path) {
        return refuse(conn, &e, hj.reusable, rest).await;
    }
    let Some(len) = hj.body_len.filter(|n| *n <= MAX_BODY) else {
        let e = ApiError::bad_request(
            "berthd reads an exec start body with a Content-Length of at most 64 KiB",
        );
        return refuse(conn, &e, false, rest).await;
    };
    let len = usize::try_from(len).unwrap_or(0);
    while rest.len() < len {
        if conn.read_buf(&mut rest).await? == 0 {
            return Ok(Served::Done);
        }
    }
    let body = rest.split_to(len);
    let reusable = hj.keep_alive;
    let start = match parse_exec_start(&body) {
        Ok(s) => s,
        Err(e) => return refuse(conn, &e.into(), reusable, rest).await,
    };
    let detach = start.config.detach.unwrap_or(false);
    let tty = start.config.tty.unwrap_or(false);
    if !detach {
        // As dockerd: a missing exec is the request's error; then the stream's head goes
        // out before the process starts (a client that reads the head through a buffer,
        // as docker-py does, must not find the exec's first output in it), and any later
        // error is written into the stream.
        let known = state
            .actors
            .store
            .send(InspectExec { id: hj.id.clone() })
            .await;
        match known {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return refuse(conn, &e.into(), reusable, rest).await,
            Err(e) => return refuse(conn, &e.into(), reusable, rest).await,
        }
        conn.write_all(status_line(hj.upgrade).as_bytes()).await?;
        conn.flush().await?;
    }
    let res = state
        .actors
        .store
        .send(StartExec {
            id: hj.id.clone(),
            detach,
            raw_stream: tty,
            console_size: start.console_size,
        })
        .await;
    let started = match res {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if detach => return refuse(conn, &e.into(), reusable, rest).await,
        Err(e) if detach => return refuse(conn, &e.into(), reusable, rest).await,
        // The head went out: the error's text goes into the stream (a failed start's exit
        // code, 126 or 127, is the exec's).
        Ok(Err(e)) => return stream_error(conn, &e.to_string(), tty).await,
        Err(e) => return stream_error(conn, &e.to_string(), tty).await,
    };
    let Some(monitor) = started.stream else {
        // Detached: dockerd's handler returns without a body.
        let head = format!(
            "HTTP/1.1 200 OK\r\nApi-Version: {}\r\nOstype: linux\r\nDocker-Experimental: false\r\nContent-Length: 0\r\n{}\r\n",
            api::API_VERSION,
            if reusable {
                ""
            } else {
                "Connection: close\r\n"
            }
        );
        conn.write_all(head.as_bytes()).await?;
        conn.flush().await?;
        if reusable {
            return Ok(Served::Refused(conn, rest));
        }
        conn.shutdown().await?;
        return Ok(Served::Done);
    };
    monitor.set_nonblocking(true)?;
    let monitor = actix_rt::net::UnixStream::from_std(monitor)?;
    let exited = started.exited;
    let before_close = async move {
        let _ = tokio::time::timeout(EXIT_WAIT, exited).await;
    };
    splice(conn, monitor, rest, Some(Box::pin(before_close))).await?;
    Ok(Served::Done)
}

/// Writes an error into an exec's stream as dockerd does (its text and CRLF, in a stdout
/// frame unless the stream is raw), and ends the stream.
async fn stream_error(mut conn: Conn, message: &str, raw: bool) -> io::Result<Served> {
    let text = format!("{message}\r\n");
    if raw {
        conn.write_all(text.as_bytes()).await?;
    } else {
        let mut frame = Vec::new();
        stdcopy_frame(STDOUT, text.as_bytes(), &mut frame);
        conn.write_all(&frame).await?;
    }
    conn.shutdown().await?;
    Ok(Served::Done)
}
