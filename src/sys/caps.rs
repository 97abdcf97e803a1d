//! Capabilities and the switch to the container's user, done by the init just before exec.

use std::io;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};

use super::SysError;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn caps_err(call: &'static str, e: caps::errors::CapsError) -> SysError {
    SysError::Call {
        call,
        source: io::Error::other(e.to_string()),
    }
}

/// Drops the bounding set to `caps` (a mask: bit `n` is capability `n`), switches to
/// `uid`/`gid` with the supplementary `groups`, then sets the effective and permitted
/// sets to `caps` and clears the inheritable and ambient sets (as Docker does since
/// 20.10.14, so that no file with inheritable capabilities can raise a non-root
/// process's capabilities).
///
/// After exec, root in the container has `caps`; other users have none.
pub fn switch_user_with_caps(
    caps: u64,
    uid: u32,
    gid: u32,
    groups: &[u32],
) -> Result<(), SysError> {
    let keep: CapsHashSet = caps::all()
        .into_iter()
        .filter(|c| caps & c.bitmask() != 0)
        .collect();
    switch_user_to(&keep, uid, gid, groups)
}

fn switch_user_to(keep: &CapsHashSet, uid: u32, gid: u32, groups: &[u32]) -> Result<(), SysError> {
    let bounding = caps::read(None, CapSet::Bounding).map_err(|e| caps_err("capget", e))?;
    for cap in bounding.difference(keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| caps_err("prctl PR_CAPBSET_DROP", e))?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| SysError::call("prctl PR_SET_KEEPCAPS", e))?;
    let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&gids).map_err(|e| SysError::call("setgroups", e))?;
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(|e| SysError::call("setresgid", e))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(|e| SysError::call("setresuid", e))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| SysError::call("prctl PR_SET_KEEPCAPS", e))?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| caps_err("capget", e))?;
    let want: CapsHashSet = keep.intersection(&permitted).copied().collect();
    caps::set(None, CapSet::Effective, &want).map_err(|e| caps_err("capset", e))?;
    caps::set(None, CapSet::Permitted, &want).map_err(|e| caps_err("capset", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| caps_err("capset", e))?;
    // The ambient set may be unsupported on old kernels; nothing to clear then.
    let _ = caps::clear(None, CapSet::Ambient);
    Ok(())
}
