//! Tests of profile parsing and resolution, and of Docker's default profile compiled and
//! run by a small classic-BPF interpreter, as the kernel would run it.

use super::*;
use crate::security::capabilities::default_mask;
use crate::sys::seccomp::{SockFilter, compile, decode};
use caps::Capability;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;
const KILL_THREAD: u32 = 0;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: u32 = 0x4000_0000;

fn target(caps: CapMask, kernel: (u64, u64)) -> Target {
    Target {
        caps,
        go_arch: "amd64",
        scmp_arch: "SCMP_ARCH_X86_64",
        kernel,
    }
}

fn default_profile() -> Profile {
    parse(DEFAULT_PROFILE).unwrap()
}

/// One system call as the filter sees it (`struct seccomp_data`).
#[derive(Clone, Copy)]
struct Call {
    arch: u32,
    nr: u32,
    args: [u64; 6],
}

fn call(nr: libc::c_long, args: &[u64]) -> Call {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    Call {
        arch: AUDIT_ARCH_X86_64,
        nr: u32::try_from(nr).unwrap(),
        args: a,
    }
}

/// Runs a classic BPF seccomp program on `c`.
fn run(p: &[SockFilter], c: Call) -> u32 {
    let load = |k: u32| -> u32 {
        match k {
            0 => c.nr,
            4 => c.arch,
            8 | 12 => 0,
            k if (16..64).contains(&k) && k % 4 == 0 => {
                let arg = c.args[((k - 16) / 8) as usize];
                if (k - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            k => panic!("load at {k}"),
        }
    };
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = p[pc];
        let src = if i.code & 0x08 != 0 { x } else { i.k };
        pc += 1;
        match i.code & 0x07 {
            0x00 => match i.code & 0xe0 {
                0x20 => a = load(i.k),
                0x00 => a = i.k,
                0x60 => a = mem[i.k as usize],
                m => panic!("ld mode {m:#x}"),
            },
            0x01 => match i.code & 0xe0 {
                0x00 => x = i.k,
                0x60 => x = mem[i.k as usize],
                m => panic!("ldx mode {m:#x}"),
            },
            0x02 => mem[i.k as usize] = a,
            0x03 => mem[i.k as usize] = x,
            0x04 => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a << src,
                    0x70 => a >> src,
                    0xa0 => a ^ src,
                    op => panic!("alu {op:#x}"),
                }
            }
            0x05 => {
                let taken = match i.code & 0xf0 {
                    0x00 => {
                        pc += i.k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    op => panic!("jmp {op:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x06 => return if i.code & 0x18 == 0x10 { a } else { i.k },
            _ => {
                if i.code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    panic!("the program does not end");
}

fn compiled(caps: CapMask) -> Vec<SockFilter> {
    let f = resolve(&default_profile(), &target(caps, (6, 1)))
        .unwrap()
        .unwrap();
    decode(&compile(&f).unwrap()).unwrap()
}

#[test]
fn the_default_profile_parses_with_its_arch_map() {
    let p = default_profile();
    assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(p.default_errno_ret, Some(1));
    assert!(p.syscalls.len() > 20);
    let f = resolve(&p, &target(default_mask(), (6, 1)))
        .unwrap()
        .unwrap();
    assert_eq!(
        f.arches,
        vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    assert_eq!(f.default_action, Action::Errno(1));
    let allowed = |name: &str| {
        f.rules
            .iter()
            .any(|r| r.action == Action::Allow && r.names.iter().any(|n| n == name))
    };
    assert!(allowed("read") && allowed("arch_prctl") && allowed("ptrace"));
    assert!(!allowed("mount") && !allowed("unshare") && !allowed("riscv_flush_icache"));
    // clone3 fails with ENOSYS without CAP_SYS_ADMIN, so that libc falls back to clone.
    assert!(
        f.rules
            .iter()
            .any(|r| r.action == Action::Errno(38) && r.names == ["clone3"])
    );
}

#[test]
fn capabilities_and_the_kernel_choose_the_entries() {
    let p = default_profile();
    let admin = default_mask() | Capability::CAP_SYS_ADMIN.bitmask();
    let f = resolve(&p, &target(admin, (6, 1))).unwrap().unwrap();
    let has = |name: &str, action: Action| {
        f.rules
            .iter()
            .any(|r| r.action == action && r.names.iter().any(|n| n == name))
    };
    assert!(has("mount", Action::Allow) && has("unshare", Action::Allow));
    assert!(!has("clone3", Action::Errno(38)));
    // ptrace without CAP_SYS_PTRACE needs kernel 4.8.
    let old = resolve(&p, &target(default_mask(), (4, 7)))
        .unwrap()
        .unwrap();
    assert!(
        !old.rules
            .iter()
            .any(|r| r.names.iter().any(|n| n == "ptrace"))
    );
    assert_eq!(caps_named(&p) & Capability::CAP_NET_ADMIN.bitmask(), 0);
    assert_ne!(caps_named(&p) & Capability::CAP_SYS_ADMIN.bitmask(), 0);
}

#[test]
fn the_compiled_default_profile_behaves_as_dockers() {
    let p = compiled(default_mask());
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(run(&p, call(libc::SYS_read, &[])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_execve, &[])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_keyctl, &[])), EPERM);
    assert_eq!(run(&p, call(libc::SYS_unshare, &[newuser])), EPERM);
    assert_eq!(run(&p, call(libc::SYS_mount, &[])), EPERM);
    assert_eq!(run(&p, call(libc::SYS_clone3, &[])), ENOSYS);
    assert_eq!(
        run(&p, call(libc::SYS_clone, &[libc::SIGCHLD as u64])),
        ALLOW
    );
    assert_eq!(run(&p, call(libc::SYS_clone, &[newuser])), EPERM);
    assert_eq!(
        run(&p, call(libc::SYS_socket, &[libc::AF_INET as u64])),
        ALLOW
    );
    assert_eq!(
        run(&p, call(libc::SYS_socket, &[libc::AF_VSOCK as u64])),
        EPERM
    );
    assert_eq!(run(&p, call(libc::SYS_personality, &[8])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_personality, &[1])), EPERM);
    assert_eq!(run(&p, call(libc::SYS_personality, &[0xffff_ffff])), ALLOW);
    // The 32-bit entry points: i386's read (3) and keyctl (288), x32's read.
    let i386 = |nr: u32| Call {
        arch: AUDIT_ARCH_I386,
        nr,
        args: [0; 6],
    };
    assert_eq!(run(&p, i386(3)), ALLOW);
    assert_eq!(run(&p, i386(288)), EPERM);
    let mut x32 = call(libc::SYS_read, &[]);
    x32.nr |= X32_BIT;
    assert_eq!(run(&p, x32), ALLOW);
    // An architecture the filter does not know: killed, as under runc.
    let arm = Call {
        arch: 0x4000_0028,
        nr: 3,
        args: [0; 6],
    };
    assert_eq!(run(&p, arm), KILL_THREAD);
}

#[test]
fn cap_sys_admin_opens_the_namespace_calls() {
    let p = compiled(default_mask() | Capability::CAP_SYS_ADMIN.bitmask());
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(run(&p, call(libc::SYS_unshare, &[newuser])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_mount, &[])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_clone, &[newuser])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_clone3, &[])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_keyctl, &[])), EPERM);
}

#[test]
fn a_custom_profile_with_a_deny_list() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"name": "kill", "action": "SCMP_ACT_KILL_PROCESS", "args": null},
            {"names": ["setns"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 1073741824, "valueTwo": 1073741824, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }"#;
    let f = resolve(&parse(json).unwrap(), &target(0, (6, 1)))
        .unwrap()
        .unwrap();
    let p = decode(&compile(&f).unwrap()).unwrap();
    assert_eq!(run(&p, call(libc::SYS_mkdirat, &[])), 0x0005_000d);
    assert_eq!(run(&p, call(libc::SYS_mkdir, &[])), 0x0005_000d);
    assert_eq!(run(&p, call(libc::SYS_read, &[])), ALLOW);
    assert_eq!(run(&p, call(libc::SYS_kill, &[])), 0x8000_0000);
    assert_eq!(run(&p, call(libc::SYS_setns, &[3, 0x4000_0000])), EPERM);
    assert_eq!(run(&p, call(libc::SYS_setns, &[3, 0x2000_0000])), ALLOW);
}

#[test]
fn profile_errors_in_dockerds_words() {
    let t = target(0, (6, 1));
    let err = |json: &str| resolve(&parse(json).unwrap(), &t).unwrap_err().to_string();
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#
        ),
        "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'"
    );
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#
        ),
        "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
    );
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["b"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"0.0"}}]}"#
        ),
        r#"invalid kernel version: "0.0", expected "<kernel>.<major>": version cannot be 0.0"#
    );
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["b"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#
        ),
        r#"invalid seccomp comparison operator "SCMP_CMP_ABOUT""#
    );
    let e = parse(r#"{"defaultAction": 3}"#).unwrap_err().to_string();
    assert!(e.starts_with("Decoding seccomp profile failed: "), "{e}");
}

#[test]
fn kernel_versions_as_dockerd_reads_them() {
    assert_eq!(kernel_version("6.18.44-fc-v1272"), Some((6, 18)));
    assert_eq!(kernel_version("4.8.0"), Some((4, 8)));
    assert_eq!(kernel_version("3.12-1-amd64"), Some((3, 12)));
    assert_eq!(kernel_version("garbage"), None);
}
