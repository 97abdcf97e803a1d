//! Pseudo terminals for `docker run -t`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::SysError;

/// Makes `fd` the controlling terminal of the calling process (a session leader).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: TIOCSCTTY takes an int argument by value; `fd` is a valid open descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if r != 0 {
        return Err(SysError::Call {
            call: "ioctl TIOCSCTTY",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Sets a terminal's window size.
pub fn set_winsize(fd: BorrowedFd<'_>, height: u16, width: u16) -> Result<(), SysError> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` through the pointer, which points to a live
    // local value for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r != 0 {
        return Err(SysError::Call {
            call: "ioctl TIOCSWINSZ",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Inside the container (after `pivot_root`): opens a pty from the container's own
/// devpts (`/dev/ptmx`), makes its slave the controlling terminal and stdin, stdout and
/// stderr of the calling session leader, and returns the master (close on exec).
pub fn open_container_pty() -> Result<OwnedFd, SysError> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| SysError::call("open /dev/ptmx", e))?;
    nix::pty::grantpt(&master).map_err(|e| SysError::call("grantpt", e))?;
    nix::pty::unlockpt(&master).map_err(|e| SysError::call("unlockpt", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| SysError::call("ptsname", e))?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::call("open pty slave", e))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    set_controlling_tty(slave.as_fd())?;
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| SysError::call("dup2", e))?;
    }
    // SAFETY: PtyMaster owns its descriptor; into_raw_fd releases it to us alone.
    let master = unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(
            master,
        ))
    };
    Ok(master)
}
