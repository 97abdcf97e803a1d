//! Resource limits: the container init's `setrlimit` (`--ulimit`), and berthd's own hard
//! limits and whether it may raise them, for the create's check.

use std::io;

/// A limit value as dockerd writes it (`-1`: unlimited) as the kernel takes it.
fn to_rlim(v: i64) -> libc::rlim_t {
    if v < 0 {
        libc::RLIM_INFINITY
    } else {
        libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY)
    }
}

/// Sets the calling process's limit `resource` (an `RLIMIT_*` number) to `soft` and
/// `hard`.
pub fn set(resource: u32, soft: i64, hard: i64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: to_rlim(soft),
        rlim_max: to_rlim(hard),
    };
    // SAFETY: `lim` is a valid rlimit that the kernel only reads during the call; an
    // unknown resource number is refused with EINVAL.
    let r = unsafe { libc::setrlimit(resource, &lim) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling process's hard limit of `resource`; `None` when unlimited.
pub fn hard(resource: u32) -> io::Result<Option<u64>> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, exclusively borrowed rlimit the kernel writes into.
    let r = unsafe { libc::getrlimit(resource, &mut lim) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_max != libc::RLIM_INFINITY).then_some(lim.rlim_max))
}

/// Whether the calling process holds `CAP_SYS_RESOURCE` in its effective set (needed to
/// raise a hard limit), read from `/proc/self/status`.
pub fn may_raise_hard_limits() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|eff| eff & (1 << CAP_SYS_RESOURCE) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_limits_are_read() {
        let h = hard(libc::RLIMIT_NOFILE).unwrap();
        assert!(h.is_none_or(|h| h > 0));
        assert_eq!(to_rlim(-1), libc::RLIM_INFINITY);
        assert_eq!(to_rlim(5), 5);
    }
}
