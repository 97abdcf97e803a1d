//! Sockets passed by systemd (socket activation: `LISTEN_PID`, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`).

use std::os::fd::{FromRawFd, RawFd};

/// The first fd systemd passes.
const SD_LISTEN_FDS_START: RawFd = 3;

/// A listening socket inherited from systemd.
#[derive(Debug)]
pub enum Inherited {
    Unix {
        fd: RawFd,
        name: String,
        listener: std::os::unix::net::UnixListener,
    },
    Tcp {
        fd: RawFd,
        name: String,
        listener: std::net::TcpListener,
    },
}

impl Inherited {
    pub fn name(&self) -> &str {
        match self {
            Inherited::Unix { name, .. } | Inherited::Tcp { name, .. } => name,
        }
    }

    pub fn fd_number(&self) -> RawFd {
        match self {
            Inherited::Unix { fd, .. } | Inherited::Tcp { fd, .. } => *fd,
        }
    }
}

/// Takes the sockets systemd passed to this process, once. Empty when none were passed
/// (or they were meant for another pid).
pub fn listen_fds() -> Vec<Inherited> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n: RawFd = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_owned)
        .collect();
    let mut out = Vec::new();
    for i in 0..n {
        let fd = SD_LISTEN_FDS_START + i;
        let name = names
            .get(usize::try_from(i).unwrap_or(0))
            .cloned()
            .unwrap_or_default();
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        let family = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd)
            .ok()
            .and_then(|a| nix::sys::socket::SockaddrLike::family(&a));
        match family {
            Some(nix::sys::socket::AddressFamily::Unix) => {
                // SAFETY: systemd passed `fd` to this process as an open listening socket
                // (LISTEN_PID names us) and nothing else in the process owns it; it is
                // taken once, here.
                let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
                out.push(Inherited::Unix { fd, name, listener });
            }
            Some(
                nix::sys::socket::AddressFamily::Inet | nix::sys::socket::AddressFamily::Inet6,
            ) => {
                // SAFETY: as above; the fd is a TCP listening socket owned by no one else.
                let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
                out.push(Inherited::Tcp { fd, name, listener });
            }
            _ => tracing::warn!(fd, "ignoring a systemd socket of an unsupported family"),
        }
    }
    // Children (monitors) must not see these variables.
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        crate::sys::env::remove_var_before_threads(k);
    }
    out
}
