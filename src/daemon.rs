//! Process-level start-up steps that come before the actors: system checks (seed 4.2),
//! work dirs and TMPDIR (4.3), the pidfile, and systemd's notify and socket activation
//! protocols (4.12).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::error::ErrorKind;

/// A start-up step that failed; each Display is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("berthd runs only on Linux")]
    NotLinux,
    #[error("berthd needs to be started as root (euid {euid})")]
    NotRoot { euid: u32 },
    #[error("kernel {version} is too old: berthd needs at least 3.10")]
    KernelTooOld { version: String },
    #[error("kernel version {version} could not be parsed")]
    KernelUnparsable { version: String },
    #[error("architecture {arch} is not supported (x86_64 and aarch64 are)")]
    Architecture { arch: String },
    #[error("data root {path} could not be created")]
    DataRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("exec root {path} could not be created")]
    ExecRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "pid file found, ensure berthd is not running or delete {path} (it names live process {pid})"
    )]
    PidfileLive { path: PathBuf, pid: i32 },
    #[error("engine id {path} could not be read or written")]
    EngineId {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pid file {path} could not be written")]
    Pidfile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "data root {path} is in format {found}, newer than this berthd knows ({known}): use a newer berthd"
    )]
    FormatTooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error(
        "Devices cgroup isn't mounted: berthd found {found} mounted and cannot apply containers' limits without it (mount the cgroup hierarchies at /sys/fs/cgroup; `ip netns exec` remounts /sys without them)"
    )]
    CgroupsMissing { found: String },
    #[error("data root format file {path} could not be used")]
    Format {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StartupError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::System
    }
}

/// The facts that the system checks found, for `/info` and the start-up log.
#[derive(Debug, Clone)]
pub struct SystemFacts {
    pub kernel_version: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    pub operating_system: String,
    pub os_version: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub hostname: String,
    /// The cgroup hierarchies, detected once here (logged, and reported by `/info`).
    pub cgroups: crate::sys::cgroups::CgroupLayout,
}

/// Seed step 4.2: Linux only, root, kernel at least 3.10, a known architecture.
pub fn system_checks() -> Result<SystemFacts, StartupError> {
    if !cfg!(target_os = "linux") {
        return Err(StartupError::NotLinux);
    }
    let euid = crate::sys::host::euid();
    if euid != 0 {
        return Err(StartupError::NotRoot { euid });
    }
    let uts = crate::sys::host::uname().map_err(|_| StartupError::NotLinux)?;
    let release = uts.release;
    check_kernel(&release)?;
    let arch = uts.machine;
    if arch != "x86_64" && arch != "aarch64" {
        return Err(StartupError::Architecture { arch });
    }
    let cgroups = crate::sys::cgroups::CgroupLayout::detect();
    check_cgroups(&cgroups)?;
    let (operating_system, os_version) = os_release();
    Ok(SystemFacts {
        kernel_version: release,
        arch,
        operating_system,
        os_version,
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        mem_total: mem_total(),
        hostname: uts.nodename,
        cgroups,
    })
}

/// Refuses a host whose cgroup hierarchies are not mounted, as dockerd does ("Devices
/// cgroup isn't mounted"): a v2-only host needs its cgroup2 mount, a v1 or hybrid one the
/// v1 `devices` hierarchy. Without them a container would run without its limits and with
/// every device open; a namespace whose /sys was mounted again (`ip netns exec`, a bare
/// `mount -t sysfs`) has none.
pub fn check_cgroups(layout: &crate::sys::cgroups::CgroupLayout) -> Result<(), StartupError> {
    let ok = match layout.version() {
        2 => layout.unified.is_some(),
        _ => layout.v1_mount("devices").is_some(),
    };
    if ok {
        return Ok(());
    }
    let mut found: Vec<String> = layout.v1.iter().map(|(c, _)| format!("v1 {c}")).collect();
    if let Some(u) = &layout.unified {
        found.push(format!("cgroup2 at {}", u.display()));
    }
    Err(StartupError::CgroupsMissing {
        found: if found.is_empty() {
            "no cgroup hierarchy".to_owned()
        } else {
            found.join(", ")
        },
    })
}

/// Accepts `3.10` and later; `6.18.44-fc-v595` parses as 6.18.
pub fn check_kernel(release: &str) -> Result<(), StartupError> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: Option<u32> = parts.next().and_then(|p| p.parse().ok());
    let minor: Option<u32> = parts.next().and_then(|p| p.parse().ok());
    match (major, minor) {
        (Some(ma), Some(mi)) if (ma, mi) >= (3, 10) => Ok(()),
        (Some(_), Some(_)) => Err(StartupError::KernelTooOld {
            version: release.to_owned(),
        }),
        _ => Err(StartupError::KernelUnparsable {
            version: release.to_owned(),
        }),
    }
}

fn os_release() -> (String, String) {
    let text = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_owned())
    };
    (
        field("PRETTY_NAME=").unwrap_or_else(|| "Linux".to_owned()),
        field("VERSION_ID=").unwrap_or_default(),
    )
}

fn mem_total() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Seed step 4.3: resolves the data root (following symlinks), creates it 0700 and its
/// `tmp/`, points TMPDIR there, and creates the exec root 0700. Returns the resolved
/// data root.
pub fn prepare_work_dirs(data_root: &Path, exec_root: &Path) -> Result<PathBuf, StartupError> {
    let data_err = |source| StartupError::DataRoot {
        path: data_root.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_root)
        .map_err(data_err)?;
    let resolved = fs::canonicalize(data_root).map_err(data_err)?;
    fs::set_permissions(&resolved, fs::Permissions::from_mode(0o700)).map_err(data_err)?;
    let tmp = resolved.join("tmp");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tmp)
        .map_err(data_err)?;
    // Probe that the data root is writable now rather than at the first container.
    let probe = tmp.join(format!(".probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(data_err)?;
    let _ = fs::remove_file(&probe);
    set_tmpdir(&tmp);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(exec_root)
        .map_err(|source| StartupError::ExecRoot {
            path: exec_root.to_owned(),
            source,
        })?;
    Ok(resolved)
}

/// The format of the data root that this berthd writes. 1: the records of berthd before
/// the typed models (no format file); 2: records written from the Engine API's types, and
/// this file. A data root in an older format is migrated at start (the container store
/// rewrites every record it loads); one in a newer format is refused.
pub const DATA_ROOT_FORMAT: u32 = 2;

/// The file in the data root that names its format.
const FORMAT_FILE: &str = "format-version";

/// The format of a data root, as berthd found it at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRootFormat {
    /// The format its files are in.
    pub found: u32,
    /// The format file says so already (nothing to write once started).
    pub recorded: bool,
}

impl DataRootFormat {
    /// Whether the records must be rewritten in the current format.
    pub fn migrates(self) -> bool {
        self.found < DATA_ROOT_FORMAT
    }
}

/// The format the data root at `data_root` is in: the format file's number; without it,
/// 1 if berthd has written anything there before, else the current format (a new data
/// root). Refuses a format newer than [`DATA_ROOT_FORMAT`].
pub fn data_root_format(data_root: &Path) -> Result<DataRootFormat, StartupError> {
    let path = data_root.join(FORMAT_FILE);
    let format_err = |source| StartupError::Format {
        path: path.clone(),
        source,
    };
    // Without the file: format 1 if berthd has written anything there before (a data root
    // of format 2 that lost its file migrates again, which changes nothing), else new.
    let guess = || {
        let used = ["containers", "image", "linkgraph.db"]
            .iter()
            .any(|n| data_root.join(n).exists());
        (if used { 1 } else { DATA_ROOT_FORMAT }, false)
    };
    let (found, recorded) = match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            let n = text.trim().parse::<u32>().map_err(|e| {
                format_err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })?;
            (n, true)
        }
        // Missing, or left empty by a crash (it is not fsynced).
        Ok(_) => guess(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => guess(),
        Err(e) => return Err(format_err(e)),
    };
    if found > DATA_ROOT_FORMAT {
        return Err(StartupError::FormatTooNew {
            path: data_root.to_owned(),
            found,
            known: DATA_ROOT_FORMAT,
        });
    }
    Ok(DataRootFormat { found, recorded })
}

/// Records that the data root is in the current format (atomically): once every actor has
/// started, so a start that fails part way migrates again next time. Not fsynced: a cold
/// start of a new data root must not wait for the disk, and a file a crash lost or left
/// empty only makes the next start migrate again, which rewrites records of the current
/// format as they are.
pub fn write_data_root_format(data_root: &Path) -> Result<(), StartupError> {
    let path = data_root.join(FORMAT_FILE);
    crate::util::write_atomic_nosync(&path, format!("{DATA_ROOT_FORMAT}\n").as_bytes())
        .map_err(|source| StartupError::Format { path, source })
}

/// The daemon's ID (`/info`'s `ID`): a random UUID kept in `<data-root>/engine-id`, made
/// at the first start on a data root, as dockerd 23 keeps its own (20.10 derived it from a
/// key file). It names this daemon and its data root, so two daemons on one host differ.
/// A new one is only made here; [`write_engine_id`] keeps it, once the daemon is ready.
pub fn engine_id(data_root: &Path) -> Result<EngineId, StartupError> {
    let path = data_root.join(ENGINE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok(EngineId {
                id: text.trim().to_owned(),
                is_new: false,
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(StartupError::EngineId { path, source }),
    }
    Ok(EngineId {
        id: new_uuid(rand::random()),
        is_new: true,
    })
}

/// The file in the data root that keeps the daemon's ID.
const ENGINE_ID_FILE: &str = "engine-id";

/// The daemon's ID, and whether it was made at this start (and is not kept yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineId {
    pub id: String,
    pub is_new: bool,
}

/// Keeps a new engine ID in the data root (atomically). Written after the daemon is ready
/// and not fsynced, so that the cold start of a new data root waits for neither: a crash
/// that loses the file gives the daemon a new ID at its next start, nothing worse.
pub fn write_engine_id(data_root: &Path, id: &EngineId) -> Result<(), StartupError> {
    if !id.is_new {
        return Ok(());
    }
    let path = data_root.join(ENGINE_ID_FILE);
    crate::util::write_atomic_nosync(&path, id.id.as_bytes())
        .map_err(|source| StartupError::EngineId { path, source })
}

/// A version 4 (random) UUID from 16 random bytes, in its hyphenated form.
fn new_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn set_tmpdir(tmp: &Path) {
    crate::sys::env::set_var_before_threads("TMPDIR", tmp.as_os_str());
}

/// A pidfile that is removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Creates `path` with our pid. Refuses when it names a live process; replaces a stale
    /// one.
    pub fn create(path: &Path) -> Result<Pidfile, StartupError> {
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid > 0
                    && pid != std::process::id() as i32
                    && Path::new(&format!("/proc/{pid}")).exists()
                {
                    return Err(StartupError::PidfileLive {
                        path: path.to_owned(),
                        pid,
                    });
                }
            }
        }
        let err = |source| StartupError::Pidfile {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(err)?;
        }
        crate::util::write_atomic_nosync(path, format!("{}\n", std::process::id()).as_bytes())
            .map_err(err)?;
        Ok(Pidfile {
            path: path.to_owned(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Sends `state` (`READY=1`, `STOPPING=1`, …) to systemd when `$NOTIFY_SOCKET` is set.
/// Does nothing otherwise. Abstract sockets (`@name`) are supported.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = sd_notify_to(Path::new(&path), state) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

fn sd_notify_to(path: &Path, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_os_str().as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let new = engine_id(dir.path()).unwrap();
        assert!(new.is_new);
        let id = new.id.clone();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "{id}");
        write_engine_id(dir.path(), &new).unwrap();
        let kept = engine_id(dir.path()).unwrap();
        assert_eq!((kept.id.as_str(), kept.is_new), (id.as_str(), false));
        assert_eq!(
            fs::read_to_string(dir.path().join("engine-id")).unwrap(),
            id
        );
        assert_ne!(
            engine_id(tempfile::tempdir().unwrap().path()).unwrap().id,
            id
        );
    }

    #[test]
    fn uuids_carry_version_and_variant() {
        assert_eq!(new_uuid([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(new_uuid([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    #[test]
    fn a_host_without_its_cgroup_hierarchies_is_refused() {
        use crate::sys::cgroups::CgroupLayout;
        let v1 = "32 31 0:29 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n";
        let v2 = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let hybrid_no_devices = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert!(check_cgroups(&CgroupLayout::from_mountinfo(v1)).is_ok());
        assert!(check_cgroups(&CgroupLayout::from_mountinfo(v2)).is_ok());
        let none = check_cgroups(&CgroupLayout::from_mountinfo("")).unwrap_err();
        assert!(
            none.to_string()
                .starts_with("Devices cgroup isn't mounted: berthd found no cgroup hierarchy"),
            "{none}"
        );
        let partial = check_cgroups(&CgroupLayout::from_mountinfo(hybrid_no_devices))
            .unwrap_err()
            .to_string();
        assert!(
            partial.contains("found v1 memory, cgroup2 at /sys/fs/cgroup/unified"),
            "{partial}"
        );
    }

    #[test]
    fn kernel_versions() {
        assert!(check_kernel("6.18.44-fc-v595").is_ok());
        assert!(check_kernel("3.10.0-1160.el7.x86_64").is_ok());
        assert!(matches!(
            check_kernel("3.9.11"),
            Err(StartupError::KernelTooOld { .. })
        ));
        assert!(matches!(
            check_kernel("2.6.32"),
            Err(StartupError::KernelTooOld { .. })
        ));
        assert!(matches!(
            check_kernel("garbage"),
            Err(StartupError::KernelUnparsable { .. })
        ));
    }

    #[test]
    fn pidfile_refuses_a_live_pid_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berthd.pid");
        // Pid 1 is always alive.
        fs::write(&p, "1\n").unwrap();
        assert!(matches!(
            Pidfile::create(&p),
            Err(StartupError::PidfileLive { pid: 1, .. })
        ));
        // A pid that cannot exist (above pid_max) is stale.
        fs::write(&p, "999999999\n").unwrap();
        let pf = Pidfile::create(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(pf);
        assert!(!p.exists());
    }

    #[test]
    fn sd_notify_reaches_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&p).unwrap();
        sd_notify_to(&p, "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
