//! A container's security settings as dockerd computes them: the capabilities
//! (`HostConfig.CapAdd`, `CapDrop`, `Privileged`), the seccomp filter (Docker's default
//! profile, a profile given in `SecurityOpt`, or none), no_new_privs (`SecurityOpt` and
//! the daemon's `--no-new-privileges`), the masked and read-only paths, and what
//! `--privileged` opens (every device, /sys writable).
//!
//! [`for_container`] turns a record's HostConfig into the monitor's
//! [`SecuritySpec`]; a process run in a running container (`docker exec`) gets the same
//! from its monitor, with `--privileged` widening only its capabilities to [`host`]'s
//! bounding set (`monitor::exec`). The create checks a request with [`check`], which also compiles its filter
//! ahead, so that a start finds it made.
//!
//! Compiling a filter (libseccomp, `sys::seccomp::compile`) takes about a millisecond, so
//! berthd does it once per distinct profile and capability set and keeps the program
//! ([`PROGRAMS`]): for Docker's default profile the key is the part of the capability
//! set that the profile looks at, so `--cap-add NET_ADMIN` shares the default program.
//! The store has the default program made at its Init, off any request's path.
//!
//! Not here: SELinux labels and AppArmor profiles, which berthd does not apply
//! (`label=disable` and `apparmor=unconfined` are what every container gets already;
//! other values are refused).

pub mod capabilities;
pub mod profile;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use parking_lot::Mutex;

use self::capabilities::CapMask;
use self::profile::{Profile, Target};
use crate::error::ErrorKind;
use crate::model::api::HostConfig;
pub use crate::model::spec::SecuritySpec;
use crate::model::spec::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};

/// What the field table calls `SecurityOpt` in a refusal.
const FIELD: &str = "HostConfig.SecurityOpt (--security-opt)";

/// A security setting that cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// dockerd's words for a `SecurityOpt` entry that is neither `key=value` nor a bare
    /// `no-new-privileges`/`disable`.
    #[error("invalid --security-opt 1: {opt:?}")]
    OptForm { opt: String },
    /// dockerd's words for an unknown key or a bad `no-new-privileges` value.
    #[error("invalid --security-opt 2: {opt:?}")]
    OptKey { opt: String },
    #[error("unknown capability: {name:?}")]
    UnknownCapability { name: String },
    #[error("capability {name} cannot be added: berthd's own bounding set does not hold it")]
    NotInBounding { name: String },
    #[error("berthd does not support {FIELD} {opt:?}: berthd applies no SELinux labels")]
    Label { opt: String },
    #[error(
        "berthd does not support {FIELD} {opt:?}: berthd applies no AppArmor profile (only apparmor=unconfined is accepted)"
    )]
    AppArmor { opt: String },
    /// A profile that cannot be used (dockerd's words where it has them).
    #[error("{reason}")]
    Profile { reason: String },
    #[error("seccomp profile could not be compiled")]
    Compile(#[source] crate::sys::seccomp::CompileError),
    #[error("seccomp profiles are not supported on this machine ({arch})")]
    Machine { arch: &'static str },
}

impl SecurityError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SecurityError::OptForm { .. }
            | SecurityError::OptKey { .. }
            | SecurityError::UnknownCapability { .. }
            | SecurityError::NotInBounding { .. }
            | SecurityError::Label { .. }
            | SecurityError::AppArmor { .. }
            | SecurityError::Profile { .. }
            | SecurityError::Compile(_)
            | SecurityError::Machine { .. } => ErrorKind::InvalidParameter,
        }
    }
}

/// The seccomp profile a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// Nothing said: Docker's default profile, or none for a privileged container.
    Default,
    /// Docker's default profile, asked for by name (`seccomp=builtin`, the name newer
    /// dockerd versions and CLIs use), also for a privileged container.
    Builtin,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's JSON format (the CLI sends the file's content).
    Custom(String),
}

/// `HostConfig.SecurityOpt`, read as dockerd's `parseSecurityOpt` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `no-new-privileges[=bool]`; `None`: not said (the daemon's default applies).
    pub no_new_privileges: Option<bool>,
    pub seccomp: Seccomp,
    /// `apparmor=<profile>` (the last one).
    pub apparmor: Option<String>,
}

/// Parses `SecurityOpt` and refuses what berthd cannot do (SELinux labels but
/// `disable`, AppArmor profiles but `unconfined`).
pub fn parse_opts(opts: &[String]) -> Result<SecurityOpts, SecurityError> {
    let mut out = SecurityOpts {
        no_new_privileges: None,
        seccomp: Seccomp::Default,
        apparmor: None,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = Some(true);
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((key, value)) = split else {
            return Err(SecurityError::OptForm { opt: opt.clone() });
        };
        match key {
            "label" if value == "disable" => {}
            "label" => return Err(SecurityError::Label { opt: opt.clone() }),
            "apparmor" if value.is_empty() || value == "unconfined" => {
                out.apparmor = Some(value.to_owned());
            }
            "apparmor" => return Err(SecurityError::AppArmor { opt: opt.clone() }),
            "seccomp" => {
                out.seccomp = match value {
                    "" => Seccomp::Default,
                    "builtin" => Seccomp::Builtin,
                    "unconfined" => Seccomp::Unconfined,
                    json => Seccomp::Custom(json.to_owned()),
                }
            }
            "no-new-privileges" => {
                let b = crate::api::parse_bool(Some(value), false)
                    .map_err(|_| SecurityError::OptKey { opt: opt.clone() })?;
                out.no_new_privileges = Some(b);
            }
            _ => return Err(SecurityError::OptKey { opt: opt.clone() }),
        }
    }
    Ok(out)
}

/// The daemon's settings that a container's security depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaemonDefaults {
    /// `--no-new-privileges`: no_new_privs for containers that do not say.
    pub no_new_privileges: bool,
}

/// What berthd itself runs with: read once.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    /// berthd's bounding set: the most a container can get.
    pub bounding: CapMask,
    /// The kernel's version and major revision (0.0 if unreadable).
    pub kernel: (u64, u64),
}

/// berthd's bounding set and kernel version, read on first use.
pub fn host() -> &'static HostFacts {
    static HOST: OnceLock<HostFacts> = OnceLock::new();
    HOST.get_or_init(|| {
        let bounding = caps::read(None, caps::CapSet::Bounding)
            .map(|set| capabilities::mask_of(&set))
            .unwrap_or_else(|_| capabilities::default_mask());
        let kernel = crate::sys::host::uname()
            .ok()
            .and_then(|u| profile::kernel_version(&u.release))
            .unwrap_or((0, 0));
        HostFacts { bounding, kernel }
    })
}

/// The capabilities of a container's processes (see [`capabilities::effective`]).
pub fn container_caps(h: &HostConfig, bounding: CapMask) -> Result<CapMask, SecurityError> {
    let none = Vec::new();
    capabilities::effective(
        h.cap_add.as_ref().unwrap_or(&none),
        h.cap_drop.as_ref().unwrap_or(&none),
        h.privileged == Some(true),
        bounding,
    )
}

/// Checks a create's security settings and compiles its filter ahead (see the module
/// docs): what a start needs is then known to work.
pub fn check(h: &HostConfig) -> Result<(), SecurityError> {
    let opts = parse_opts(h.security_opt.as_deref().unwrap_or(&[]))?;
    let caps = container_caps(h, host().bounding)?;
    program(&filter_of(&opts, h.privileged == Some(true)), caps).map(drop)
}

/// The filter a container gets: what it asked for; nothing said means Docker's default
/// profile, or none for a privileged container (as dockerd does).
fn filter_of(opts: &SecurityOpts, privileged: bool) -> Seccomp {
    match &opts.seccomp {
        Seccomp::Default if privileged => Seccomp::Unconfined,
        other => other.clone(),
    }
}

/// A container's security settings for its monitor.
pub fn for_container(h: &HostConfig, d: DaemonDefaults) -> Result<SecuritySpec, SecurityError> {
    let opts = parse_opts(h.security_opt.as_deref().unwrap_or(&[]))?;
    let privileged = h.privileged == Some(true);
    let caps = container_caps(h, host().bounding)?;
    let filter = filter_of(&opts, privileged);
    let seccomp = program(&filter, caps)?
        .map(|p| p.to_string())
        .unwrap_or_default();
    let seccomp_profile = match filter {
        Seccomp::Custom(json) if !seccomp.is_empty() => json,
        _ => String::new(),
    };
    let owned = |l: &[&str]| l.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    // dockerd leaves the lists unset for a privileged container (none apply) and
    // honours the lists a request gives.
    let paths = |given: &Option<Vec<String>>, default: &[&str]| match given {
        Some(l) => l.clone(),
        None if privileged => Vec::new(),
        None => owned(default),
    };
    Ok(SecuritySpec {
        capabilities: caps,
        seccomp,
        no_new_privs: opts.no_new_privileges.unwrap_or(d.no_new_privileges),
        masked_paths: paths(&h.masked_paths, DEFAULT_MASKED_PATHS),
        readonly_paths: paths(&h.readonly_paths, DEFAULT_READONLY_PATHS),
        privileged,
        seccomp_profile,
    })
}

/// The resolved filter of a container's [`SecuritySpec`] (its profile, its
/// capabilities, this machine and kernel), for a runtime that takes rules rather than
/// BPF (the oci driver's bundle); `None`: no filter.
pub fn filter_for(s: &SecuritySpec) -> Result<Option<crate::sys::seccomp::Filter>, SecurityError> {
    if s.seccomp.is_empty() {
        return Ok(None);
    }
    let custom;
    let p = if s.seccomp_profile.is_empty() {
        &default_profile()?.0
    } else {
        custom = profile::parse(&s.seccomp_profile)?;
        &custom
    };
    let (go_arch, scmp_arch) = profile::machine_names().ok_or(SecurityError::Machine {
        arch: std::env::consts::ARCH,
    })?;
    let target = Target {
        caps: s.capabilities,
        go_arch,
        scmp_arch,
        kernel: host().kernel,
    };
    profile::resolve(p, &target)
}

/// `AppArmorProfile` in inspect: what `apparmor=` asked for (only `unconfined` is
/// accepted); "" otherwise: berthd applies no AppArmor profile.
pub fn apparmor_profile(h: &HostConfig) -> String {
    parse_opts(h.security_opt.as_deref().unwrap_or(&[]))
        .ok()
        .and_then(|o| o.apparmor)
        .unwrap_or_default()
}

/// `/info`'s `SecurityOptions`, in dockerd's order and words: seccomp with Docker's
/// default profile (`profile=default`, dockerd 20.10's word for its built-in one), and
/// `name=no-new-privileges` when the daemon sets it by default. No AppArmor, SELinux or
/// user namespaces: berthd applies none.
pub fn info_options(d: DaemonDefaults) -> Vec<String> {
    let mut v = vec![format!(
        "name=seccomp,profile={}",
        crate::sys::seccomp::PROFILE_NAME
    )];
    if d.no_new_privileges {
        v.push("name=no-new-privileges".to_owned());
    }
    v
}

/// Which profile a program was compiled from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ProfileKey {
    Default,
    Custom(String),
}

/// Compiled programs (hex of the BPF), by profile and the capabilities that matter.
type Programs = HashMap<(ProfileKey, CapMask), Arc<str>>;

/// The programs made so far (see the module docs).
static PROGRAMS: LazyLock<Mutex<Programs>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// At most this many programs are kept; a full cache starts again empty.
const MAX_PROGRAMS: usize = 64;

/// Docker's default profile, parsed once, with the capabilities it looks at.
fn default_profile() -> Result<&'static (Profile, CapMask), SecurityError> {
    static DEFAULT: OnceLock<Result<(Profile, CapMask), String>> = OnceLock::new();
    let parsed = DEFAULT.get_or_init(|| {
        profile::parse(profile::DEFAULT_PROFILE)
            .map(|p| {
                let named = profile::caps_named(&p);
                (p, named)
            })
            .map_err(|e| e.to_string())
    });
    parsed.as_ref().map_err(|reason| SecurityError::Profile {
        reason: reason.clone(),
    })
}

/// The compiled program for `seccomp` and a container with `caps` (hex of the BPF), or
/// `None` for no filter; made once and kept.
pub fn program(seccomp: &Seccomp, caps: CapMask) -> Result<Option<Arc<str>>, SecurityError> {
    let key = match seccomp {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default | Seccomp::Builtin => (ProfileKey::Default, caps & default_profile()?.1),
        Seccomp::Custom(json) => (ProfileKey::Custom(json.clone()), caps),
    };
    if let Some(p) = PROGRAMS.lock().get(&key) {
        return Ok(Some(p.clone()));
    }
    let custom;
    let p = match seccomp {
        Seccomp::Custom(json) => {
            custom = profile::parse(json)?;
            &custom
        }
        _ => &default_profile()?.0,
    };
    let (go_arch, scmp_arch) = profile::machine_names().ok_or(SecurityError::Machine {
        arch: std::env::consts::ARCH,
    })?;
    let target = Target {
        caps,
        go_arch,
        scmp_arch,
        kernel: host().kernel,
    };
    let Some(filter) = profile::resolve(p, &target)? else {
        return Ok(None);
    };
    let bpf = crate::sys::seccomp::compile(&filter).map_err(SecurityError::Compile)?;
    let program: Arc<str> = Arc::from(hex::encode(bpf));
    let mut cache = PROGRAMS.lock();
    if cache.len() >= MAX_PROGRAMS {
        cache.clear();
    }
    cache.insert(key, program.clone());
    Ok(Some(program))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Result<SecurityOpts, SecurityError> {
        parse_opts(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn security_opts_as_dockerd_reads_them() {
        let o = opts(&["no-new-privileges"]).unwrap();
        assert_eq!(o.no_new_privileges, Some(true));
        assert_eq!(o.seccomp, Seccomp::Default);
        let o = opts(&["no-new-privileges=false", "seccomp=unconfined"]).unwrap();
        assert_eq!(o.no_new_privileges, Some(false));
        assert_eq!(o.seccomp, Seccomp::Unconfined);
        let o = opts(&["no-new-privileges:true", "seccomp:builtin"]).unwrap();
        assert_eq!(o.no_new_privileges, Some(true));
        assert_eq!(o.seccomp, Seccomp::Builtin);
        let o = opts(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]).unwrap();
        assert_eq!(
            o.seccomp,
            Seccomp::Custom(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into())
        );
        let o = opts(&["apparmor=unconfined", "label=disable", "disable"]).unwrap();
        assert_eq!(o.apparmor.as_deref(), Some("unconfined"));
        assert_eq!(
            opts(&["bogus"]).unwrap_err().to_string(),
            r#"invalid --security-opt 1: "bogus""#
        );
        assert_eq!(
            opts(&["systempaths=unconfined"]).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "systempaths=unconfined""#
        );
        assert_eq!(
            opts(&["no-new-privileges=maybe"]).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }

    #[test]
    fn labels_and_apparmor_profiles_are_refused_naming_the_field() {
        let e = opts(&["label=level:s0:c100"]).unwrap_err().to_string();
        assert!(
            e.contains("HostConfig.SecurityOpt") && e.contains("SELinux"),
            "{e}"
        );
        let e = opts(&["apparmor=docker-default"]).unwrap_err().to_string();
        assert!(
            e.contains("HostConfig.SecurityOpt") && e.contains("AppArmor"),
            "{e}"
        );
    }

    fn hc(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_default_container() {
        let s = for_container(&hc(serde_json::json!({})), DaemonDefaults::default()).unwrap();
        assert_eq!(
            s.capabilities,
            capabilities::default_mask() & host().bounding
        );
        assert!(!s.seccomp.is_empty());
        assert!(!s.no_new_privs);
        assert_eq!(s.masked_paths.len(), DEFAULT_MASKED_PATHS.len());
        assert_eq!(s.readonly_paths.len(), DEFAULT_READONLY_PATHS.len());
        assert!(!s.privileged);
        // The daemon's default, and the container's word over it.
        let on = DaemonDefaults {
            no_new_privileges: true,
        };
        assert!(
            for_container(&hc(serde_json::json!({})), on)
                .unwrap()
                .no_new_privs
        );
        let off = hc(serde_json::json!({"SecurityOpt": ["no-new-privileges=false"]}));
        assert!(!for_container(&off, on).unwrap().no_new_privs);
    }

    #[test]
    fn privileged_and_unconfined_containers() {
        let d = DaemonDefaults::default();
        let s = for_container(&hc(serde_json::json!({"Privileged": true})), d).unwrap();
        assert_eq!(s.capabilities, host().bounding);
        assert!(s.masked_paths.is_empty() && s.readonly_paths.is_empty());
        assert!(s.privileged);
        // dockerd gives a privileged container no filter, unless it names one.
        assert!(s.seccomp.is_empty());
        let named = hc(serde_json::json!({"Privileged": true, "SecurityOpt": ["seccomp=builtin"]}));
        assert!(!for_container(&named, d).unwrap().seccomp.is_empty());
        let s = for_container(
            &hc(serde_json::json!({"SecurityOpt": ["seccomp=unconfined"], "MaskedPaths": [], "ReadonlyPaths": []})),
            d,
        )
        .unwrap();
        assert!(s.seccomp.is_empty());
        assert!(s.masked_paths.is_empty() && s.readonly_paths.is_empty());
    }

    #[test]
    fn the_default_program_is_shared_by_capabilities_it_does_not_look_at() {
        let base = capabilities::default_mask();
        let a = program(&Seccomp::Default, base).unwrap().unwrap();
        let net_admin = caps::Capability::CAP_NET_ADMIN.bitmask();
        let b = program(&Seccomp::Default, base | net_admin)
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let sys_admin = caps::Capability::CAP_SYS_ADMIN.bitmask();
        let c = program(&Seccomp::Default, base | sys_admin)
            .unwrap()
            .unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn a_custom_profile_is_compiled_and_a_bad_one_refused() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let p = program(&Seccomp::Custom(json.into()), 0).unwrap().unwrap();
        assert!(!p.is_empty());
        let e = program(&Seccomp::Custom("{nope".into()), 0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Decoding seccomp profile failed: "),
            "{e}"
        );
        let e = program(
            &Seccomp::Custom(r#"{"defaultAction":"SCMP_ACT_DANCE"}"#.into()),
            0,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), r#"invalid seccomp action "SCMP_ACT_DANCE""#);
        // No default action and no entries: no filter, as dockerd reads it.
        assert!(program(&Seccomp::Custom("{}".into()), 0).unwrap().is_none());
    }

    #[test]
    fn the_info_options() {
        assert_eq!(
            info_options(DaemonDefaults::default()),
            vec!["name=seccomp,profile=default"]
        );
        let on = DaemonDefaults {
            no_new_privileges: true,
        };
        assert_eq!(
            info_options(on),
            vec!["name=seccomp,profile=default", "name=no-new-privileges"]
        );
    }
}
