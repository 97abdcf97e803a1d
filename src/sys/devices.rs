//! The device allow-list on cgroup v2, where it is an eBPF program
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`) attached to the container's cgroup rather than the v1
//! `devices.allow` files. Same policy as on v1 (Docker's defaults): any device node may
//! be created (`mknod`), but only these may be opened: null, zero, full, random, urandom,
//! tty, console, ptmx, the pts, and tun.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::SysError;

/// Character devices a container may read and write: (major, minor or `None` for all).
pub const ALLOWED_CHAR_DEVICES: &[(u32, Option<u32>)] = &[
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
    (10, Some(200)),
];

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND64_K: u8 = 0x57;
const RSH64_K: u8 = 0x77;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const ACC_MKNOD: i32 = 1; // BPF_DEVCG_ACC_MKNOD

#[derive(Clone, Copy)]
enum Target {
    Allow,
    Deny,
}

/// The filter program for `allowed` (see the module docs for the policy).
pub fn device_program(allowed: &[(u32, Option<u32>)]) -> Vec<Insn> {
    // (instruction, jump target to patch)
    let mut p: Vec<(Insn, Option<Target>)> = Vec::new();
    let mut push = |i: Insn, t: Option<Target>| p.push((i, t));
    // r1 = struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    push(insn(LDX_W, 2, 1, 0, 0), None); // r2 = access_type
    push(insn(MOV64_X, 3, 2, 0, 0), None);
    push(insn(AND64_K, 3, 0, 0, 0xffff), None); // r3 = device type
    push(insn(MOV64_X, 4, 2, 0, 0), None);
    push(insn(RSH64_K, 4, 0, 0, 16), None); // r4 = access
    push(insn(LDX_W, 5, 1, 4, 0), None); // r5 = major
    push(insn(LDX_W, 6, 1, 8, 0), None); // r6 = minor
    // mknod of anything is allowed.
    push(insn(AND64_K, 4, 0, 0, !ACC_MKNOD & 0x7), None);
    push(insn(JEQ_K, 4, 0, 0, 0), Some(Target::Allow));
    push(insn(JNE_K, 3, 0, 0, DEV_CHAR), Some(Target::Deny));
    for (major, minor) in allowed {
        let major = i32::try_from(*major).unwrap_or(-1);
        match minor {
            Some(minor) => {
                let minor = i32::try_from(*minor).unwrap_or(-1);
                push(insn(JNE_K, 5, 0, 1, major), None); // skip the next
                push(insn(JEQ_K, 6, 0, 0, minor), Some(Target::Allow));
            }
            None => push(insn(JEQ_K, 5, 0, 0, major), Some(Target::Allow)),
        }
    }
    let deny = p.len();
    p.push((insn(MOV64_K, 0, 0, 0, 0), None));
    p.push((insn(EXIT, 0, 0, 0, 0), None));
    let allow = p.len();
    p.push((insn(MOV64_K, 0, 0, 0, 1), None));
    p.push((insn(EXIT, 0, 0, 0, 0), None));
    p.iter()
        .enumerate()
        .map(|(pc, (i, t))| {
            let mut i = *i;
            if let Some(t) = t {
                let target = match t {
                    Target::Allow => allow,
                    Target::Deny => deny,
                };
                let off = i64::try_from(target).unwrap_or(0) - i64::try_from(pc).unwrap_or(0) - 1;
                i.off = i16::try_from(off).unwrap_or(0);
            }
            i
        })
        .collect()
}

/// `union bpf_attr` for BPF_PROG_LOAD (the fields up to `prog_flags`).
#[repr(C)]
#[derive(Debug, Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Debug, Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// bpf(2) with `attr`, a `#[repr(C)]` prefix of `union bpf_attr`.
///
/// # Safety
/// Every pointer inside `attr` must point to memory that stays valid for the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &T) -> libc::c_long {
    // SAFETY: the caller guarantees `attr`'s pointers; its size is passed with it.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    }
}

fn bpf_err(call: &'static str) -> SysError {
    SysError::Call {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Loads the device filter and attaches it to the cgroup v2 directory `cgroup`.
pub fn attach_device_filter(cgroup: BorrowedFd<'_>) -> Result<(), SysError> {
    let prog = device_program(ALLOWED_CHAR_DEVICES);
    let license = b"Apache-2.0\0";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(prog.len()).unwrap_or(0),
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid, initialised prefix of `union bpf_attr` whose pointers
    // (instructions, license) point to live memory for the duration of the call; the
    // kernel only reads them.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &attr) };
    if fd < 0 {
        return Err(bpf_err("bpf BPF_PROG_LOAD (device filter)"));
    }
    let fd = i32::try_from(fd).map_err(|_| bpf_err("bpf BPF_PROG_LOAD"))?;
    // SAFETY: the kernel just returned this new descriptor; we are its only owner.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let attach = ProgAttachAttr {
        target_fd: u32::try_from(cgroup.as_raw_fd()).unwrap_or(u32::MAX),
        attach_bpf_fd: u32::try_from(prog_fd.as_raw_fd()).unwrap_or(u32::MAX),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: as above; the kernel reads `attach` during the call only. The attached
    // program stays referenced by the cgroup after `prog_fd` is closed.
    let r = unsafe { bpf(BPF_PROG_ATTACH, &attach) };
    if r < 0 {
        return Err(bpf_err("bpf BPF_PROG_ATTACH (device filter)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one request, as the kernel would.
    fn eval(prog: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.regs & 0x0f), usize::from(i.regs >> 4));
            let imm = i.imm as i64 as u64;
            let mut next = pc + 1;
            let jump = |next: &mut usize| *next = (pc as i64 + 1 + i64::from(i.off)) as usize;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1);
                    r[dst] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
                }
                AND64_K => r[dst] &= imm,
                RSH64_K => r[dst] >>= imm,
                MOV64_X => r[dst] = r[src],
                MOV64_K => r[dst] = imm,
                JEQ_K => {
                    if r[dst] == imm {
                        jump(&mut next)
                    }
                }
                JNE_K => {
                    if r[dst] != imm {
                        jump(&mut next)
                    }
                }
                EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
            pc = next;
        }
    }

    fn req(acc: u32, ty: u32) -> u32 {
        (acc << 16) | ty
    }

    #[test]
    fn policy_matches_docker_defaults() {
        let p = device_program(ALLOWED_CHAR_DEVICES);
        let rw = 2 | 4;
        assert_eq!(eval(&p, req(rw, 2), 1, 3), 1, "null");
        assert_eq!(eval(&p, req(rw, 2), 1, 9), 1, "urandom");
        assert_eq!(eval(&p, req(rw, 2), 136, 42), 1, "pts");
        assert_eq!(eval(&p, req(rw, 2), 1, 11), 0, "kmsg");
        assert_eq!(eval(&p, req(2, 1), 8, 0), 0, "block sda read");
        assert_eq!(eval(&p, req(1, 1), 8, 0), 1, "block mknod");
        assert_eq!(eval(&p, req(1 | 2, 2), 1, 11), 0, "mknod+read kmsg");
        assert_eq!(eval(&p, req(rw, 2), 5, 1), 1, "console");
    }
}
