//! A container's devices: the allow-list of the devices cgroup (Docker's defaults, the
//! devices of `--device` and the rules of `--device-cgroup-rule`), as v1 `devices.allow`
//! lines or, on cgroup v2, an eBPF program (`BPF_PROG_TYPE_CGROUP_DEVICE`) attached to the
//! container's cgroup; and the host's device nodes that `--device` names, created in the
//! container.
//!
//! Docker's default policy: any device node may be created (`mknod`), but only these may
//! be opened: null, zero, full, random, urandom, tty, console, ptmx, the pts, and tun.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SysError;

/// One rule of a container's device allow-list, as `devices.allow` and
/// `--device-cgroup-rule` write it: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// `a` (any type), `b` (block) or `c` (character).
    pub kind: char,
    /// `None`: any major number (`*`).
    pub major: Option<u32>,
    /// `None`: any minor number (`*`).
    pub minor: Option<u32>,
    /// Read, write and mknod: a non-empty word of `r`, `w` and `m`.
    pub access: String,
}

impl DeviceRule {
    /// Parses a rule as dockerd takes `--device-cgroup-rule`
    /// (`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`); `None` if it is not one.
    pub fn parse(text: &str) -> Option<DeviceRule> {
        let mut parts = text.split(' ');
        let (kind, numbers, access) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let kind = match kind {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            _ => return None,
        };
        let (major, minor) = numbers.split_once(':')?;
        let number = |s: &str| -> Option<Option<u32>> {
            if s == "*" {
                Some(None)
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok().map(Some)
            } else {
                None
            }
        };
        let ok_access = (1..=3).contains(&access.len())
            && access.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'));
        if !ok_access {
            return None;
        }
        Some(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: access.to_owned(),
        })
    }

    /// The line `devices.allow` takes.
    pub fn to_v1(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_owned(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// The access bits the kernel's device hook uses (mknod 1, read 2, write 4).
    fn access_bits(&self) -> i32 {
        self.access.bytes().fold(0, |acc, b| {
            acc | match b {
                b'm' => ACC_MKNOD,
                b'r' => ACC_READ,
                b'w' => ACC_WRITE,
                _ => 0,
            }
        })
    }
}

/// A rule of the static default list.
#[derive(Debug, Clone, Copy)]
struct Rule {
    kind: char,
    major: Option<u32>,
    minor: Option<u32>,
    access: &'static str,
}

impl Rule {
    const fn dev(kind: char, major: u32, minor: Option<u32>, access: &'static str) -> Rule {
        Rule {
            kind,
            major: Some(major),
            minor,
            access,
        }
    }
}

/// Docker's default allow-list: mknod of any device, and the devices every container may
/// open.
const DEFAULT_RULES: &[Rule] = &[
    Rule {
        kind: 'c',
        major: None,
        minor: None,
        access: "m",
    },
    Rule {
        kind: 'b',
        major: None,
        minor: None,
        access: "m",
    },
    Rule::dev('c', 1, Some(3), "rwm"),
    Rule::dev('c', 1, Some(5), "rwm"),
    Rule::dev('c', 1, Some(7), "rwm"),
    Rule::dev('c', 1, Some(8), "rwm"),
    Rule::dev('c', 1, Some(9), "rwm"),
    Rule::dev('c', 5, Some(0), "rwm"),
    Rule::dev('c', 5, Some(1), "rwm"),
    Rule::dev('c', 5, Some(2), "rwm"),
    Rule::dev('c', 136, None, "rwm"),
    Rule::dev('c', 10, Some(200), "rwm"),
];

/// Docker's default allow-list followed by `extra`.
pub fn allow_list(extra: &[DeviceRule]) -> Vec<DeviceRule> {
    DEFAULT_RULES
        .iter()
        .map(|r| DeviceRule {
            kind: r.kind,
            major: r.major,
            minor: r.minor,
            access: r.access.to_owned(),
        })
        .chain(extra.iter().cloned())
        .collect()
}

/// A device node of the host that `--device` puts in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// The node on the host.
    pub host_path: PathBuf,
    /// Where it goes in the container (absolute).
    pub path: String,
    /// `b` or `c`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    /// The node's permission bits on the host.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The cgroup access the container gets (`rwm` or a part of it).
    pub access: String,
}

impl HostDevice {
    /// Its rule in the container's allow-list.
    pub fn rule(&self) -> DeviceRule {
        DeviceRule {
            kind: self.kind,
            major: Some(self.major),
            minor: Some(self.minor),
            access: self.access.clone(),
        }
    }
}

/// The major and minor numbers of the device at `path` (a symlink followed), as dockerd
/// reads them for the blkio settings (`stat`: any file's `st_rdev`).
pub fn device_numbers(path: &Path) -> io::Result<(u64, u64)> {
    let rdev = fs::metadata(path)?.rdev();
    Ok((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
}

/// The device at `path` (not following a symlink), or `None` when it is not a device node.
pub(super) fn device_at(
    path: &Path,
    in_container: String,
    access: &str,
) -> io::Result<Option<HostDevice>> {
    let md = fs::symlink_metadata(path)?;
    let ft = md.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return Ok(None);
    };
    let rdev = md.rdev();
    Ok(Some(HostDevice {
        host_path: path.to_path_buf(),
        path: in_container,
        kind,
        major: u32::try_from(nix::sys::stat::major(rdev)).unwrap_or(u32::MAX),
        minor: u32::try_from(nix::sys::stat::minor(rdev)).unwrap_or(u32::MAX),
        mode: md.permissions().mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        access: access.to_owned(),
    }))
}

/// The devices `--device on_host:in_container:access` names, as dockerd gathers them: the
/// node at `on_host` (a symlink followed), or every node below it when it is a directory
/// (their paths moved from `on_host` to `in_container`).
pub fn devices_from_path(
    on_host: &str,
    in_container: &str,
    access: &str,
) -> Result<Vec<HostDevice>, SysError> {
    let err = |source: io::Error| SysError::Device {
        path: PathBuf::from(on_host),
        source,
    };
    let resolved = match fs::symlink_metadata(on_host) {
        Ok(md) if md.file_type().is_symlink() => {
            fs::canonicalize(on_host).unwrap_or_else(|_| PathBuf::from(on_host))
        }
        _ => PathBuf::from(on_host),
    };
    if let Some(dev) = device_at(&resolved, in_container.to_owned(), access).map_err(err)? {
        return Ok(vec![dev]);
    }
    let mut out = Vec::new();
    if resolved.is_dir() {
        walk(&resolved, &resolved, in_container, access, &mut out);
    }
    if out.is_empty() {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a device node",
        )));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, in_container: &str, access: &str, out: &mut Vec<HostDevice>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            walk(root, &p, in_container, access, out);
            continue;
        }
        let Ok(rest) = p.strip_prefix(root) else {
            continue;
        };
        let target = Path::new(in_container).join(rest).display().to_string();
        if let Ok(Some(dev)) = device_at(&p, target, access) {
            out.push(dev);
        }
    }
}

/// Makes the nodes of `devices` below `root` (the container's rootfs, before
/// `pivot_root`), with the host node's type, numbers, mode and owner. Without the right to
/// `mknod` (a user namespace), the host's node is bound onto an empty file instead.
pub fn create_nodes(root: &Path, devices: &[HostDevice]) -> Result<(), SysError> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    for d in devices {
        let dest = super::mounts::secure_join(root, &d.path);
        let created = |source| SysError::Create {
            path: PathBuf::from(&d.path),
            source,
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(created)?;
        }
        if fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&dest).map_err(created)?;
        }
        let kind = if d.kind == 'b' {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        let dev = makedev(u64::from(d.major), u64::from(d.minor));
        match mknod(&dest, kind, Mode::from_bits_truncate(d.mode), dev) {
            Ok(()) => {
                fs::set_permissions(&dest, fs::Permissions::from_mode(d.mode)).map_err(created)?;
                nix::unistd::chown(
                    &dest,
                    Some(nix::unistd::Uid::from_raw(d.uid)),
                    Some(nix::unistd::Gid::from_raw(d.gid)),
                )
                .map_err(|e| created(e.into()))?;
            }
            Err(nix::errno::Errno::EPERM) => {
                fs::File::create(&dest).map_err(created)?;
                nix::mount::mount(
                    Some(&d.host_path),
                    &dest,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| SysError::Mount {
                    source_name: d.host_path.display().to_string(),
                    target: PathBuf::from(&d.path),
                    source: e.into(),
                })?;
            }
            Err(e) => return Err(created(e.into())),
        }
    }
    Ok(())
}

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
const JA: u8 = 0x05;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR
const ACC_MKNOD: i32 = 1; // BPF_DEVCG_ACC_MKNOD
const ACC_READ: i32 = 2; // BPF_DEVCG_ACC_READ
const ACC_WRITE: i32 = 4; // BPF_DEVCG_ACC_WRITE

#[derive(Clone, Copy)]
enum Target {
    Allow,
    /// The first instruction after the current rule's block.
    Next,
}

/// The filter program for the allow-list `rules`: a request is allowed when one rule
/// matches its type, numbers and every access it asks for, and denied otherwise.
pub fn device_program(rules: &[DeviceRule]) -> Vec<Insn> {
    // (instruction, jump target, the rule block it belongs to)
    let mut p: Vec<(Insn, Option<Target>, usize)> = Vec::new();
    // r1 = struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    let prologue = [
        insn(LDX_W, 2, 1, 0, 0), // r2 = access_type
        insn(MOV64_X, 3, 2, 0, 0),
        insn(AND64_K, 3, 0, 0, 0xffff), // r3 = device type
        insn(MOV64_X, 4, 2, 0, 0),
        insn(RSH64_K, 4, 0, 0, 16), // r4 = access
        insn(LDX_W, 5, 1, 4, 0),    // r5 = major
        insn(LDX_W, 6, 1, 8, 0),    // r6 = minor
    ];
    p.extend(prologue.iter().map(|i| (*i, None, 0)));
    let mut allows_all = false;
    for (n, rule) in rules.iter().enumerate() {
        let block = n + 1;
        let mut conditional = false;
        let ty = match rule.kind {
            'b' => Some(DEV_BLOCK),
            'c' => Some(DEV_CHAR),
            _ => None,
        };
        if let Some(ty) = ty {
            p.push((insn(JNE_K, 3, 0, 0, ty), Some(Target::Next), block));
            conditional = true;
        }
        if let Some(major) = rule.major {
            let major = i32::try_from(major).unwrap_or(-1);
            p.push((insn(JNE_K, 5, 0, 0, major), Some(Target::Next), block));
            conditional = true;
        }
        if let Some(minor) = rule.minor {
            let minor = i32::try_from(minor).unwrap_or(-1);
            p.push((insn(JNE_K, 6, 0, 0, minor), Some(Target::Next), block));
            conditional = true;
        }
        let access = rule.access_bits() & 0x7;
        if access == 0x7 {
            if !conditional {
                // Everything is allowed: what follows could never run (and the verifier
                // refuses unreachable code).
                allows_all = true;
                break;
            }
            p.push((insn(JA, 0, 0, 0, 0), Some(Target::Allow), block));
        } else {
            // Allowed when the request asks for nothing beyond the rule's access.
            p.push((insn(MOV64_X, 7, 4, 0, 0), None, block));
            p.push((insn(AND64_K, 7, 0, 0, !access & 0x7), None, block));
            p.push((insn(JEQ_K, 7, 0, 0, 0), Some(Target::Allow), block));
        }
    }
    let last = rules.len() + 1;
    if !allows_all {
        p.push((insn(MOV64_K, 0, 0, 0, 0), None, last));
        p.push((insn(EXIT, 0, 0, 0, 0), None, last));
    }
    let allow = p.len();
    p.push((insn(MOV64_K, 0, 0, 0, 1), None, last));
    p.push((insn(EXIT, 0, 0, 0, 0), None, last));
    // Where each block ends: the first instruction of a later block.
    let end_of = |block: usize| {
        p.iter()
            .position(|(_, _, b)| *b > block)
            .unwrap_or(p.len() - 1)
    };
    p.iter()
        .enumerate()
        .map(|(pc, (i, t, block))| {
            let mut i = *i;
            if let Some(t) = t {
                let target = match t {
                    Target::Allow => allow,
                    Target::Next => end_of(*block),
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
pub fn attach_device_filter(cgroup: BorrowedFd<'_>, rules: &[DeviceRule]) -> Result<(), SysError> {
    let prog = device_program(rules);
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
                JA => jump(&mut next),
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
        let p = device_program(&allow_list(&[]));
        let rw = 2 | 4;
        assert_eq!(eval(&p, req(rw, 2), 1, 3), 1, "null");
        assert_eq!(eval(&p, req(rw, 2), 1, 9), 1, "urandom");
        assert_eq!(eval(&p, req(rw, 2), 136, 42), 1, "pts");
        assert_eq!(eval(&p, req(rw, 2), 1, 11), 0, "kmsg");
        assert_eq!(eval(&p, req(2, 1), 8, 0), 0, "block sda read");
        assert_eq!(eval(&p, req(1, 1), 8, 0), 1, "block mknod");
        assert_eq!(eval(&p, req(1, 2), 1, 11), 1, "char mknod");
        assert_eq!(eval(&p, req(1 | 2, 2), 1, 11), 0, "mknod+read kmsg");
        assert_eq!(eval(&p, req(rw, 2), 5, 1), 1, "console");
    }

    #[test]
    fn extra_rules_allow_what_they_name_and_no_more() {
        let extra = [
            DeviceRule::parse("c 1:11 r").unwrap(),
            DeviceRule::parse("b 8:* rw").unwrap(),
        ];
        let p = device_program(&allow_list(&extra));
        assert_eq!(eval(&p, req(2, 2), 1, 11), 1, "kmsg read");
        assert_eq!(eval(&p, req(4, 2), 1, 11), 0, "kmsg write");
        assert_eq!(eval(&p, req(2 | 4, 1), 8, 3), 1, "sda3 rw");
        assert_eq!(eval(&p, req(2, 2), 8, 3), 0, "char 8:3 is not block 8:3");
        assert_eq!(eval(&p, req(2, 1), 9, 0), 0, "another block major");
        // A rule that allows everything ends the program.
        let all = device_program(&[DeviceRule::parse("a *:* rwm").unwrap()]);
        assert_eq!(all.len(), 9);
        assert_eq!(eval(&all, req(7, 1), 8, 0), 1);
        // Nothing allowed: everything denied.
        let none = device_program(&[]);
        assert_eq!(eval(&none, req(2, 2), 1, 3), 0);
    }

    #[test]
    fn rules_parse_as_dockerd_takes_them() {
        let r = DeviceRule::parse("c 1:5 rwm").unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor, r.access.as_str()),
            ('c', Some(1), Some(5), "rwm")
        );
        assert_eq!(r.to_v1(), "c 1:5 rwm");
        let r = DeviceRule::parse("a *:* m").unwrap();
        assert_eq!(r.to_v1(), "a *:* m");
        for bad in [
            "",
            "c 1:5",
            "x 1:5 rwm",
            "c 1-5 rwm",
            "c 1:5 rwmx",
            "c a:5 r",
            "c 1:5  r",
            "c :5 r",
        ] {
            assert!(DeviceRule::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn devices_from_a_path_as_dockerd_gathers_them() {
        let d = devices_from_path("/dev/null", "/dev/xnull", "rw").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].kind, d[0].major, d[0].minor), ('c', 1, 3));
        assert_eq!(d[0].path, "/dev/xnull");
        assert_eq!(d[0].rule().to_v1(), "c 1:3 rw");
        let e = devices_from_path("/etc/hostname", "/x", "rwm").unwrap_err();
        assert_eq!(
            crate::util::error_chain(&e),
            "error gathering device information while adding custom device \"/etc/hostname\": not a device node"
        );
        let e = devices_from_path("/dev/nope-nope", "/x", "rwm").unwrap_err();
        assert!(crate::util::error_chain(&e).contains("No such file"), "{e}");
        // A directory: every node below it, moved to the container's path.
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", t.path().join("link")).unwrap();
        let e = devices_from_path(&t.path().display().to_string(), "/d", "r").unwrap_err();
        assert!(e.to_string().contains("custom device"), "{e}");
    }

    /// The kernel's verifier takes the programs (the defaults, extra rules, allow-all) on a
    /// real cgroup2 directory: the unified hierarchy of this host, v2-only or hybrid.
    #[test]
    fn the_kernel_loads_and_attaches_the_programs() {
        if !crate::test_ledger::root_or_skip(module_path!(), "needs root") {
            return;
        }
        let layout = crate::sys::cgroups::CgroupLayout::detect();
        let Some(root) = layout.unified else {
            return crate::test_ledger::skip(module_path!(), "no cgroup2 mount");
        };
        let dir = root.join(format!("berth-bpf-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let extra = [
            DeviceRule::parse("c 1:11 r").unwrap(),
            DeviceRule::parse("b 7:* rw").unwrap(),
            DeviceRule::parse("a *:* m").unwrap(),
        ];
        let res: Vec<_> = [
            allow_list(&[]),
            allow_list(&extra),
            vec![DeviceRule::parse("a *:* rwm").unwrap()],
        ]
        .iter()
        .map(|rules| {
            let d = fs::File::open(&dir).unwrap();
            attach_device_filter(std::os::fd::AsFd::as_fd(&d), rules)
                .map_err(|e| crate::util::error_chain(&e))
        })
        .collect();
        let _ = fs::remove_dir(&dir);
        for r in res {
            r.unwrap();
        }
    }
}
