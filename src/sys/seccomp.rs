//! A seccomp filter in the spirit of Docker's default profile, as a deny list: the calls
//! that let a process with Docker's default capabilities reach the kernel's more
//! dangerous interfaces (new namespaces, keyrings, bpf, perf, mounting, modules, kexec,
//! io_uring, clock setting…) fail with EPERM; `clone3` fails with ENOSYS so that libc
//! falls back to `clone`, whose namespace flags are checked. Other architectures' system
//! call entry points (i386 via `int 0x80`, x32) are refused outright.

use std::io;

use super::SysError;

/// The name `/info` gives this filter (`name=seccomp,profile=berth-default`): berth's own
/// default, which is not Docker's default profile (an allow list of its own), so it does
/// not take that name.
pub const PROFILE_NAME: &str = "berth-default";

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
#[derive(Debug)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO

/// `seccomp_data` offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

/// The namespace flags `clone` may not use.
const NS_FLAGS: u32 = 0x7E02_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Calls that fail with EPERM.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn denied() -> Vec<libc::c_long> {
    #[allow(unused_mut)]
    let mut v = vec![
        libc::SYS_acct,
        libc::SYS_add_key,
        libc::SYS_bpf,
        libc::SYS_clock_adjtime,
        libc::SYS_clock_settime,
        libc::SYS_delete_module,
        libc::SYS_finit_module,
        libc::SYS_init_module,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_io_uring_setup,
        libc::SYS_kcmp,
        libc::SYS_kexec_file_load,
        libc::SYS_kexec_load,
        libc::SYS_keyctl,
        libc::SYS_lookup_dcookie,
        libc::SYS_mount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_name_to_handle_at,
        libc::SYS_nfsservctl,
        libc::SYS_open_by_handle_at,
        libc::SYS_perf_event_open,
        libc::SYS_pivot_root,
        libc::SYS_quotactl,
        libc::SYS_reboot,
        libc::SYS_request_key,
        libc::SYS_setns,
        libc::SYS_settimeofday,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_syslog,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_userfaultfd,
        libc::SYS_fanotify_init,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_ioperm,
        libc::SYS_iopl,
        libc::SYS__sysctl,
        libc::SYS_uselib,
        libc::SYS_ustat,
    ]);
    v
}

#[derive(Clone, Copy)]
enum To {
    Eperm,
    Enosys,
    CloneCheck,
}

/// The filter program.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn default_filter() -> Vec<SockFilter> {
    let nr = |n: libc::c_long| u32::try_from(n).unwrap_or(u32::MAX);
    // (code, k, jump-if-true target, jump-if-false target); None = next instruction.
    let mut p: Vec<(u16, u32, Option<To>, Option<To>)> = vec![
        (LD_W_ABS, OFF_ARCH, None, None),
        (JEQ_K, AUDIT_ARCH, None, Some(To::Eperm)),
        (LD_W_ABS, OFF_NR, None, None),
    ];
    #[cfg(target_arch = "x86_64")]
    p.push((JGE_K, 0x4000_0000, Some(To::Eperm), None)); // the x32 ABI
    p.push((JEQ_K, nr(libc::SYS_clone3), Some(To::Enosys), None));
    p.push((JEQ_K, nr(libc::SYS_clone), Some(To::CloneCheck), None));
    for n in denied() {
        p.push((JEQ_K, nr(n), Some(To::Eperm), None));
    }
    p.push((RET_K, RET_ALLOW, None, None));
    let clone_check = p.len();
    p.push((LD_W_ABS, OFF_ARG0, None, None));
    p.push((JSET_K, NS_FLAGS, Some(To::Eperm), None));
    p.push((RET_K, RET_ALLOW, None, None));
    let eperm = p.len();
    p.push((
        RET_K,
        RET_ERRNO | u32::try_from(libc::EPERM).unwrap_or(1),
        None,
        None,
    ));
    let enosys = p.len();
    p.push((
        RET_K,
        RET_ERRNO | u32::try_from(libc::ENOSYS).unwrap_or(38),
        None,
        None,
    ));
    let resolve = |pc: usize, t: Option<To>| -> u8 {
        let Some(t) = t else { return 0 };
        let target = match t {
            To::Eperm => eperm,
            To::Enosys => enosys,
            To::CloneCheck => clone_check,
        };
        u8::try_from(target - pc - 1).unwrap_or(0)
    };
    p.iter()
        .enumerate()
        .map(|(pc, (code, k, jt, jf))| SockFilter {
            code: *code,
            jt: resolve(pc, *jt),
            jf: resolve(pc, *jf),
            k: *k,
        })
        .collect()
}

/// Installs [`default_filter`] on the calling thread (inherited across exec). Needs
/// CAP_SYS_ADMIN (the init still has it) since no_new_privs is not set, as in Docker.
pub fn install_default_filter() -> Result<(), SysError> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let prog = default_filter();
        let fprog = SockFprog {
            len: libc::c_ushort::try_from(prog.len()).unwrap_or(0),
            filter: prog.as_ptr(),
        };
        // SAFETY: `fprog` points to `prog`, a valid array of `len` instructions that
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
    }
    Ok(())
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::*;

    /// Runs the filter on one call, as the kernel would.
    fn eval(p: &[SockFilter], arch: u32, nr: u32, arg0: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0 => arg0,
                        k => panic!("load {k}"),
                    }
                }
                JEQ_K | JGE_K | JSET_K => {
                    let t = match i.code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if t { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn filter_denies_the_dangerous_and_allows_the_rest() {
        let p = default_filter();
        let n = |x: libc::c_long| x as u32;
        let eperm = RET_ERRNO | libc::EPERM as u32;
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_read), 0), RET_ALLOW);
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_execve), 0), RET_ALLOW);
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_keyctl), 0), eperm);
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_unshare), 0), eperm);
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_mount), 0), eperm);
        assert_eq!(
            eval(&p, AUDIT_ARCH, n(libc::SYS_clone3), 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        // fork-like clone is fine, a new user namespace is not.
        assert_eq!(eval(&p, AUDIT_ARCH, n(libc::SYS_clone), 0x11), RET_ALLOW);
        assert_eq!(
            eval(
                &p,
                AUDIT_ARCH,
                n(libc::SYS_clone),
                libc::CLONE_NEWUSER as u32
            ),
            eperm
        );
        assert_eq!(eval(&p, 0x4000_0003, 1, 0), eperm, "i386 entry");
        assert_eq!(eval(&p, AUDIT_ARCH, 0x4000_0001, 0), eperm, "x32");
    }
}
