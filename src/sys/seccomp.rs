//! seccomp: a filter compiled by libseccomp from resolved rules, and installed by the
//! container's init.
//!
//! berthd resolves a profile in Docker's JSON format (`crate::security::profile`) into
//! [`Filter`]: a default action, the architectures, and one [`Rule`] per system call
//! entry. [`compile`] turns it into a classic BPF program with libseccomp, the library
//! runc uses for the same job (so a profile means here what it means under dockerd: the
//! system call names resolved per architecture, the 64-bit argument comparisons, the
//! x86 and x32 entry points of an x86_64 filter). The program travels to the monitor as
//! bytes; the init installs it with [`install`] just before it execs.

use std::io::{self, Read, Seek};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpSyscall, error::SeccompError};

use super::SysError;

/// The name `/info` gives the built-in default profile, Docker's default
/// (`name=seccomp,profile=default`, as dockerd 20.10 words it).
pub const PROFILE_NAME: &str = "default";

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    /// Fails with this errno.
    Errno(u16),
    KillThread,
    KillProcess,
    /// Sends SIGSYS.
    Trap,
    /// Notifies a tracer with this value.
    Trace(u16),
    /// Allows and logs.
    Log,
}

impl Action {
    fn scmp(self) -> ScmpAction {
        match self {
            Action::Allow => ScmpAction::Allow,
            Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
            Action::KillThread => ScmpAction::KillThread,
            Action::KillProcess => ScmpAction::KillProcess,
            Action::Trap => ScmpAction::Trap,
            Action::Trace(v) => ScmpAction::Trace(v),
            Action::Log => ScmpAction::Log,
        }
    }
}

/// How an argument is compared (`SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    NotEqual,
    Less,
    LessOrEqual,
    Equal,
    GreaterEqual,
    Greater,
    /// `(arg & mask) == value`.
    MaskedEqual {
        mask: u64,
    },
}

/// One argument condition: argument `index` (0-5) compared with `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    pub index: u32,
    pub op: Op,
    pub value: u64,
}

impl ArgCondition {
    fn scmp(self) -> ScmpArgCompare {
        let op = match self.op {
            Op::NotEqual => ScmpCompareOp::NotEqual,
            Op::Less => ScmpCompareOp::Less,
            Op::LessOrEqual => ScmpCompareOp::LessOrEqual,
            Op::Equal => ScmpCompareOp::Equal,
            Op::GreaterEqual => ScmpCompareOp::GreaterEqual,
            Op::Greater => ScmpCompareOp::Greater,
            Op::MaskedEqual { mask } => ScmpCompareOp::MaskedEqual(mask),
        };
        ScmpArgCompare::new(self.index, op, self.value)
    }
}

/// The calls `names` get `action` when all of `args` hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<ArgCondition>,
}

/// A resolved filter, ready to compile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    pub default_action: Action,
    /// libseccomp's architecture names (`SCMP_ARCH_X86_64`, …) besides the native one.
    pub arches: Vec<String>,
    pub rules: Vec<Rule>,
}

/// A filter that libseccomp refused.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("unknown architecture {arch:?}")]
    Arch { arch: String },
    #[error("invalid seccomp rule for {syscall}: {reason}")]
    Rule { syscall: String, reason: String },
    #[error("libseccomp failed to {what}: {reason}")]
    Library { what: &'static str, reason: String },
}

fn lib(what: &'static str) -> impl Fn(SeccompError) -> CompileError {
    move |e| CompileError::Library {
        what,
        reason: e.to_string(),
    }
}

/// Compiles `filter` into a BPF program: `struct sock_filter` entries in the machine's
/// byte order. System call names libseccomp does not know are skipped, as runc skips
/// them (a profile may name calls newer than the library). A rule whose action is the
/// default action is skipped too (libseccomp refuses those), and a rule with two
/// conditions on one argument becomes one rule per condition, as in runc.
pub fn compile(filter: &Filter) -> Result<Vec<u8>, CompileError> {
    let default = filter.default_action.scmp();
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("create a filter"))?;
    // The program is exported, not loaded here: the init sets no_new_privs itself when
    // asked.
    ctx.set_ctl_nnp(false).map_err(lib("set an attribute"))?;
    // A binary tree of system call numbers rather than a list: every call a container
    // makes walks a few dozen instructions, not hundreds.
    ctx.set_ctl_optimize(2).map_err(lib("set an attribute"))?;
    for name in &filter.arches {
        let arch: ScmpArch = name
            .parse()
            .map_err(|_| CompileError::Arch { arch: name.clone() })?;
        let present = ctx
            .is_arch_present(arch)
            .map_err(lib("check an architecture"))?;
        if !present {
            ctx.add_arch(arch).map_err(|e| CompileError::Arch {
                arch: format!("{name} ({e})"),
            })?;
        }
    }
    for rule in &filter.rules {
        if rule.action == filter.default_action {
            continue;
        }
        let action = rule.action.scmp();
        let conds: Vec<ScmpArgCompare> = rule.args.iter().map(|a| a.scmp()).collect();
        let mut per_arg = [0u8; 6];
        for a in &rule.args {
            if let Some(n) = usize::try_from(a.index)
                .ok()
                .and_then(|i| per_arg.get_mut(i))
            {
                *n += 1;
            } else {
                return Err(CompileError::Rule {
                    syscall: rule.names.join(","),
                    reason: format!("argument index {} is out of range", a.index),
                });
            }
        }
        let split = per_arg.iter().any(|n| *n > 1);
        for name in &rule.names {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let bad = |e: SeccompError| CompileError::Rule {
                syscall: name.clone(),
                reason: e.to_string(),
            };
            if conds.is_empty() {
                ctx.add_rule(action, nr).map_err(bad)?;
            } else if split {
                for c in &conds {
                    ctx.add_rule_conditional(action, nr, std::slice::from_ref(c))
                        .map_err(bad)?;
                }
            } else {
                ctx.add_rule_conditional(action, nr, &conds).map_err(bad)?;
            }
        }
    }
    export(&ctx)
}

/// The filter's program, through a memfd (libseccomp 2.5 exports to a descriptor only).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, CompileError> {
    let io_err = |what: &'static str| {
        move |e: io::Error| CompileError::Library {
            what,
            reason: e.to_string(),
        }
    };
    let fd = nix::sys::memfd::memfd_create(
        c"berth-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| io_err("export the program")(io::Error::from(e)))?;
    let mut f = std::fs::File::from(fd);
    ctx.export_bpf(&f).map_err(lib("export the program"))?;
    f.rewind().map_err(io_err("read the program"))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(io_err("read the program"))?;
    Ok(out)
}

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
#[derive(Debug)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// The instructions of an exported program (`None` unless it is whole instructions).
pub fn decode(program: &[u8]) -> Option<Vec<SockFilter>> {
    if program.is_empty() || program.len() % 8 != 0 {
        return None;
    }
    let insns = program
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(insns)
}

/// Installs `program` on the calling thread (inherited across exec). Needs
/// CAP_SYS_ADMIN, or no_new_privs set first.
pub fn install(program: &[SockFilter]) -> Result<(), SysError> {
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| SysError::Call {
        call: "prctl PR_SET_SECCOMP",
        source: io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"),
    })?;
    let fprog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `fprog` points to `program`, a valid array of `len` instructions that
    // lives for the duration of the call; the kernel copies the program.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const SockFprog,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(SysError::Call {
            call: "prctl PR_SET_SECCOMP",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Sets no_new_privs on the calling thread: no exec gains privileges after it (setuid
/// bits and file capabilities are ignored).
pub fn set_no_new_privs() -> Result<(), SysError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SysError::call("prctl PR_SET_NO_NEW_PRIVS", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(names: &[&str], action: Action, args: Vec<ArgCondition>) -> Rule {
        Rule {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            action,
            args,
        }
    }

    #[test]
    fn compiles_an_allow_list_into_whole_instructions() {
        let f = Filter {
            default_action: Action::Errno(1),
            arches: vec!["SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()],
            rules: vec![
                rule(
                    &["read", "write", "no_such_call_anywhere"],
                    Action::Allow,
                    vec![],
                ),
                rule(
                    &["personality"],
                    Action::Allow,
                    vec![ArgCondition {
                        index: 0,
                        op: Op::Equal,
                        value: 8,
                    }],
                ),
                rule(&["clone3"], Action::Errno(38), vec![]),
                // The default action: skipped, not refused.
                rule(&["mount"], Action::Errno(1), vec![]),
            ],
        };
        let p = compile(&f).unwrap();
        let insns = decode(&p).unwrap();
        assert!(insns.len() > 10, "{}", insns.len());
        // The last instruction of a libseccomp program returns.
        assert_eq!(insns.last().unwrap().code, 0x06);
    }

    #[test]
    fn an_unknown_architecture_is_an_error() {
        let f = Filter {
            default_action: Action::Allow,
            arches: vec!["SCMP_ARCH_Z80".into()],
            rules: vec![],
        };
        assert!(matches!(compile(&f), Err(CompileError::Arch { .. })));
    }

    #[test]
    fn decode_wants_whole_instructions() {
        assert!(decode(&[]).is_none());
        assert!(decode(&[0; 7]).is_none());
        let one = decode(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap();
        assert_eq!(
            one,
            vec![SockFilter {
                code: 6,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000
            }]
        );
    }
}
