//! The host as the daemon sees it: its effective user and the kernel's `uname`.

use std::io;

/// The effective user id of the calling process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether the calling process runs as root (effective user id 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What `uname` reports about the kernel and the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uname {
    /// The kernel release (`6.1.0-18-amd64`).
    pub release: String,
    /// The hardware name (`x86_64`, `aarch64`).
    pub machine: String,
    /// The host name.
    pub nodename: String,
}

/// The kernel's `uname`.
pub fn uname() -> io::Result<Uname> {
    let uts = nix::sys::utsname::uname().map_err(io::Error::from)?;
    Ok(Uname {
        release: uts.release().to_string_lossy().into_owned(),
        machine: uts.machine().to_string_lossy().into_owned(),
        nodename: uts.nodename().to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_reports_a_release_and_a_machine() {
        let u = uname().unwrap();
        assert!(u.release.chars().next().is_some_and(|c| c.is_ascii_digit()));
        assert!(!u.machine.is_empty());
        assert_eq!(is_root(), euid() == 0);
    }
}
