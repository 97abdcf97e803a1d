//! A container process's security settings applied, last thing before its exec: the
//! container's init uses it, and so does a process run in a running container.
//!
//! [`prepare`] decodes the seccomp program ahead (before the init waits for "go");
//! [`enter`] then applies, in runc's order: without no_new_privs the filter is installed
//! while the process still has CAP_SYS_ADMIN, then the capabilities are dropped and the
//! user switched; with no_new_privs, that bit is set first and the filter comes last, so
//! that it need not allow the calls of the switch.

use super::spec::SecuritySpec;
use crate::sys;
use crate::sys::seccomp::SockFilter;

/// The settings, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub capabilities: u64,
    pub no_new_privs: bool,
    /// `None`: no filter.
    pub seccomp: Option<Vec<SockFilter>>,
}

/// Decodes `s` (the program's hex); the error is the init's message.
pub fn prepare(s: &SecuritySpec) -> Result<Prepared, String> {
    let seccomp = if s.seccomp.is_empty() {
        None
    } else {
        let bytes = hex::decode(&s.seccomp).map_err(|e| format!("invalid seccomp program: {e}"))?;
        let insns = sys::seccomp::decode(&bytes)
            .ok_or_else(|| "invalid seccomp program: not whole instructions".to_owned())?;
        Some(insns)
    };
    Ok(Prepared {
        capabilities: s.capabilities,
        no_new_privs: s.no_new_privs,
        seccomp,
    })
}

/// Applies `p` and becomes `uid`/`gid` with the supplementary `groups`.
pub fn enter(p: &Prepared, uid: u32, gid: u32, groups: &[u32]) -> Result<(), sys::SysError> {
    if p.no_new_privs {
        sys::seccomp::set_no_new_privs()?;
    } else if let Some(prog) = &p.seccomp {
        sys::seccomp::install(prog)?;
    }
    sys::caps::switch_user_with_caps(p.capabilities, uid, gid, groups)?;
    if p.no_new_privs {
        if let Some(prog) = &p.seccomp {
            sys::seccomp::install(prog)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_decodes_the_program() {
        let mut s = SecuritySpec::default();
        let p = prepare(&s).unwrap();
        assert!(p.seccomp.is_none());
        assert_eq!(p.capabilities, crate::model::spec::DEFAULT_CAP_MASK);
        s.seccomp = "060000000000ff7f".into();
        let p = prepare(&s).unwrap();
        assert_eq!(p.seccomp.unwrap().len(), 1);
        s.seccomp = "06000000".into();
        assert!(prepare(&s).unwrap_err().contains("not whole instructions"));
        s.seccomp = "zz".into();
        assert!(prepare(&s).is_err());
    }
}
