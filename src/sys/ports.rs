//! Host ports held for published container ports: a socket bound (TCP: never listening)
//! to the address and port, so that neither berthd nor any other process can take the
//! port while a container publishes it. The traffic itself never reaches these sockets:
//! the nat table's DNAT sends it to the container first.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};

/// A bound socket; the port is free again when it is dropped.
#[derive(Debug)]
pub enum Reservation {
    Tcp(OwnedFd),
    Udp(UdpSocket),
}

/// Binds `ip:port` (`port` 0: the kernel picks a free one from its ephemeral range) for
/// `proto` (`tcp`, `udp` or `sctp`, which is held as TCP's) and returns the socket and the
/// port it holds. `AddrInUse` when another socket has it.
pub fn reserve(proto: &str, ip: Ipv4Addr, port: u16) -> io::Result<(Reservation, u16)> {
    let addr = SocketAddrV4::new(ip, port);
    if proto == "udp" {
        let s = UdpSocket::bind(addr)?;
        let port = s.local_addr()?.port();
        return Ok((Reservation::Udp(s), port));
    }
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(addr),
    )
    .map_err(io::Error::from)?;
    let bound: SockaddrIn =
        getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(io::Error::from)?;
    Ok((Reservation::Tcp(fd), bound.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_cannot_be_bound_again_until_dropped() {
        let (r, port) = reserve("tcp", Ipv4Addr::LOCALHOST, 0).unwrap();
        assert_ne!(port, 0);
        let again = reserve("tcp", Ipv4Addr::LOCALHOST, port).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        drop(r);
        drop(reserve("tcp", Ipv4Addr::LOCALHOST, port).unwrap());
        let (u, uport) = reserve("udp", Ipv4Addr::LOCALHOST, 0).unwrap();
        assert!(UdpSocket::bind(("127.0.0.1", uport)).is_err());
        drop(u);
    }
}
