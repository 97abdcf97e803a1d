//! seccomp profiles in Docker's JSON format (moby's `profiles/seccomp`), resolved for one
//! container as dockerd resolves them (`setupSeccomp`) and then as runc reads the result:
//! the architectures of the host's entry in `archMap`, each entry of `syscalls` kept
//! or left out by its `includes` and `excludes` (the container's capabilities, the
//! machine, the kernel version), the actions and `errnoRet`s, the argument conditions.
//!
//! [`DEFAULT_PROFILE`] is Docker's default profile, `default.json` beside this file. It is
//! moby's `profiles/seccomp/default.json` (github.com/moby/profiles/seccomp v0.2.3, as
//! vendored by moby/moby), used as data. Copyright Docker, Inc. and the Moby authors;
//! licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0);
//! see `default.json.NOTICE`.

use serde::{Deserialize, Deserializer};

use super::SecurityError;
use super::capabilities::{CapMask, CapName, parse as parse_cap};
use crate::sys::seccomp::{Action, ArgCondition, Filter, Op, Rule};

/// Docker's default profile (see the module docs for its origin and license).
pub const DEFAULT_PROFILE: &str = include_str!("default.json");

/// `null` as the type's empty value, as Go's decoder reads it into a slice.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A profile as written (`types.Seccomp`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default, deserialize_with = "nullable")]
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<Syscall>,
    #[serde(default, deserialize_with = "nullable")]
    pub listener_path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub flags: Vec<String>,
}

/// An architecture and the ones its processes may also call as (`x86_64`: x86, x32).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sub_architectures: Vec<String>,
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "nullable")]
    pub includes: Conditions,
    #[serde(default, deserialize_with = "nullable")]
    pub excludes: Conditions,
}

/// `includes`/`excludes`: capabilities, machines (Go's names: amd64, arm64, x32, …) and
/// the kernel version (`"4.8"`) an entry depends on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(default, deserialize_with = "nullable")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub min_kernel: String,
}

/// An argument condition as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    #[serde(default)]
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub op: String,
}

/// What a profile is resolved against: the machine and kernel, and the container's
/// capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The container's capabilities (its bounding set).
    pub caps: CapMask,
    /// Go's name of the machine (`amd64`, `arm64`), as in `arches`.
    pub go_arch: &'static str,
    /// libseccomp's name of the machine (`SCMP_ARCH_X86_64`), as in `archMap`.
    pub scmp_arch: &'static str,
    /// The kernel's version and major revision (`6.1.0-18` → (6, 1)).
    pub kernel: (u64, u64),
}

/// This machine's names, or `None` on a machine Docker's profile does not describe.
pub fn machine_names() -> Option<(&'static str, &'static str)> {
    if cfg!(target_arch = "x86_64") {
        Some(("amd64", "SCMP_ARCH_X86_64"))
    } else if cfg!(target_arch = "aarch64") {
        Some(("arm64", "SCMP_ARCH_AARCH64"))
    } else {
        None
    }
}

/// The kernel version and major revision of a `uname` release (`"6.1.0-18-amd64"`),
/// as dockerd's `kernelGreaterEqualThan` reads it.
pub fn kernel_version(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A `minKernel` value: `"<kernel>.<major>"`, not 0.0 (dockerd's check and words).
fn min_kernel(v: &str) -> Result<(u64, u64), SecurityError> {
    let bad = |why: &str| SecurityError::Profile {
        reason: format!(r#"invalid kernel version: "{v}", expected "<kernel>.<major>"{why}"#),
    };
    let parts: Vec<&str> = v.splitn(3, '.').collect();
    let [a, b] = parts.as_slice() else {
        return Err(bad(""));
    };
    let (a, b) = match (a.parse::<u8>(), b.parse::<u8>()) {
        (Ok(a), Ok(b)) => (u64::from(a), u64::from(b)),
        _ => return Err(bad("")),
    };
    if (a, b) == (0, 0) {
        return Err(bad(": version cannot be 0.0"));
    }
    Ok((a, b))
}

/// Parses a profile (dockerd's words for JSON it cannot decode).
pub fn parse(json: &str) -> Result<Profile, SecurityError> {
    serde_json::from_str(json).map_err(|e| SecurityError::Profile {
        reason: format!("Decoding seccomp profile failed: {e}"),
    })
}

fn action(name: &str, errno: Option<u32>) -> Result<Action, SecurityError> {
    let code = |v: Option<u32>| -> Result<u16, SecurityError> {
        u16::try_from(v.unwrap_or(1)).map_err(|_| SecurityError::Profile {
            reason: format!("errnoRet {} is out of range", v.unwrap_or(0)),
        })
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(code(errno)?),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(code(errno)?),
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(SecurityError::Profile {
                reason: "SCMP_ACT_NOTIFY needs a seccomp agent, which berthd does not run"
                    .to_owned(),
            });
        }
        other => {
            return Err(SecurityError::Profile {
                reason: format!("invalid seccomp action {other:?}"),
            });
        }
    })
}

fn op(a: &Arg) -> Result<ArgCondition, SecurityError> {
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_NE" => (Op::NotEqual, a.value),
        "SCMP_CMP_LT" => (Op::Less, a.value),
        "SCMP_CMP_LE" => (Op::LessOrEqual, a.value),
        "SCMP_CMP_EQ" => (Op::Equal, a.value),
        "SCMP_CMP_GE" => (Op::GreaterEqual, a.value),
        "SCMP_CMP_GT" => (Op::Greater, a.value),
        // runc's reading: `value` is the mask, `valueTwo` what the masked argument equals.
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEqual { mask: a.value }, a.value_two),
        other => {
            return Err(SecurityError::Profile {
                reason: format!("invalid seccomp comparison operator {other:?}"),
            });
        }
    };
    if a.index > 5 {
        return Err(SecurityError::Profile {
            reason: format!("invalid seccomp argument index {}", a.index),
        });
    }
    Ok(ArgCondition {
        index: a.index,
        op,
        value,
    })
}

/// The capabilities named in the profile's `includes` and `excludes`: the only ones
/// its filter depends on.
pub fn caps_named(p: &Profile) -> CapMask {
    p.syscalls
        .iter()
        .flat_map(|s| s.includes.caps.iter().chain(&s.excludes.caps))
        .filter_map(|c| match parse_cap(c) {
            Ok(CapName::One(c)) => Some(c.bitmask()),
            _ => None,
        })
        .fold(0, |m, b| m | b)
}

fn holds(caps: CapMask, name: &str) -> bool {
    match parse_cap(name) {
        Ok(CapName::One(c)) => caps & c.bitmask() != 0,
        _ => false,
    }
}

/// Resolves `p` for `t`: `None` when it asks for no filter (no default action and no
/// entries, as dockerd reads it).
pub fn resolve(p: &Profile, t: &Target) -> Result<Option<Filter>, SecurityError> {
    if p.default_action.is_empty() && p.syscalls.is_empty() {
        return Ok(None);
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(SecurityError::Profile {
            reason: "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".to_owned(),
        });
    }
    if !p.listener_path.is_empty() {
        return Err(SecurityError::Profile {
            reason: "listenerPath needs a seccomp agent, which berthd does not run".to_owned(),
        });
    }
    if let Some(flag) = p.flags.first() {
        return Err(SecurityError::Profile {
            reason: format!("seccomp flag {flag:?} is not supported by berthd"),
        });
    }
    let mut arches = p.architectures.clone();
    if let Some(m) = p.arch_map.iter().find(|m| m.architecture == t.scmp_arch) {
        arches.push(m.architecture.clone());
        arches.extend(m.sub_architectures.iter().cloned());
    }
    let default_action = action(&p.default_action, p.default_errno_ret)?;
    let mut rules = Vec::new();
    for s in &p.syscalls {
        if !s.name.is_empty() && !s.names.is_empty() {
            return Err(SecurityError::Profile {
                reason: "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".to_owned(),
            });
        }
        let ex = &s.excludes;
        if ex.arches.iter().any(|a| a == t.go_arch) || ex.caps.iter().any(|c| holds(t.caps, c)) {
            continue;
        }
        if !ex.min_kernel.is_empty() && t.kernel >= min_kernel(&ex.min_kernel)? {
            continue;
        }
        let inc = &s.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == t.go_arch) {
            continue;
        }
        if !inc.caps.iter().all(|c| holds(t.caps, c)) {
            continue;
        }
        if !inc.min_kernel.is_empty() && t.kernel < min_kernel(&inc.min_kernel)? {
            continue;
        }
        let names = if s.name.is_empty() {
            s.names.clone()
        } else {
            vec![s.name.clone()]
        };
        rules.push(Rule {
            names,
            action: action(&s.action, s.errno_ret)?,
            args: s.args.iter().map(op).collect::<Result<_, _>>()?,
        });
    }
    Ok(Some(Filter {
        default_action,
        arches,
        rules,
    }))
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
