//! Capability arithmetic as dockerd's `caps.TweakCapabilities`, on bit masks (bit `n` is
//! the capability numbered `n`, as in `/proc/<pid>/status`).

use caps::Capability;

use super::SecurityError;
use crate::sys::caps::DEFAULT_CAPS;

/// A set of capabilities: bit `n` is `CAP_*` number `n`.
pub type CapMask = u64;

/// The mask of `caps`.
pub fn mask_of<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> CapMask {
    caps.into_iter().fold(0, |m, c| m | c.bitmask())
}

/// Docker's default set.
pub fn default_mask() -> CapMask {
    mask_of(DEFAULT_CAPS)
}

/// The capabilities of `mask` that the `caps` crate knows, in number order.
pub fn in_mask(mask: CapMask) -> Vec<Capability> {
    let mut all: Vec<Capability> = caps::all().into_iter().collect();
    all.sort_by_key(Capability::index);
    all.retain(|c| mask & c.bitmask() != 0);
    all
}

/// One name of `CapAdd`/`CapDrop`, as dockerd's `NormalizeLegacyCapabilities` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapName {
    /// `ALL`, in any case.
    All,
    One(Capability),
}

/// Parses a capability name: `ALL`, or a name the kernel headers know, with or without
/// `CAP_`, in any case. The error is dockerd's: `unknown capability: "CAP_FOO"`.
pub fn parse(name: &str) -> Result<CapName, SecurityError> {
    if name.eq_ignore_ascii_case("ALL") {
        return Ok(CapName::All);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::all()
        .into_iter()
        .find(|c| c.to_string() == full)
        .map(CapName::One)
        .ok_or(SecurityError::UnknownCapability { name: full })
}

/// The capabilities a container's processes get, as dockerd computes them
/// (`TweakCapabilities`): with `privileged` every capability; else `ALL` in `add`: every
/// capability but those in `drop`; else `ALL` in `drop`: only those in `add`; else
/// Docker's defaults less `drop`, plus `add`.
///
/// "Every capability" is what `bounding` (berthd's own bounding set) holds: a process
/// can grant no more. Docker's defaults are taken as far as `bounding` holds them. A
/// capability named in `add` that `bounding` lacks is refused: it cannot be granted.
pub fn effective(
    add: &[String],
    drop: &[String],
    privileged: bool,
    bounding: CapMask,
) -> Result<CapMask, SecurityError> {
    let parse_all = |names: &[String]| -> Result<Vec<CapName>, SecurityError> {
        names.iter().map(|n| parse(n)).collect()
    };
    let adds = parse_all(add)?;
    let drops = parse_all(drop)?;
    if privileged {
        return Ok(bounding);
    }
    let mask = |names: &[CapName]| {
        names.iter().fold(0, |m, n| match n {
            CapName::All => m,
            CapName::One(c) => m | c.bitmask(),
        })
    };
    let (add_mask, drop_mask) = (mask(&adds), mask(&drops));
    if let Some(missing) = in_mask(add_mask & !bounding).first() {
        return Err(SecurityError::NotInBounding {
            name: missing.to_string(),
        });
    }
    let set = if adds.contains(&CapName::All) {
        bounding & !drop_mask
    } else if drops.contains(&CapName::All) {
        add_mask
    } else {
        (default_mask() & bounding & !drop_mask) | add_mask
    };
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    /// This host's bounding set in the issue: everything but CAP_SYS_RESOURCE.
    fn bounding() -> CapMask {
        mask_of(&caps::all()) & !Capability::CAP_SYS_RESOURCE.bitmask()
    }

    fn has(m: CapMask, c: Capability) -> bool {
        m & c.bitmask() != 0
    }

    #[test]
    fn names_with_and_without_the_prefix_in_any_case() {
        let want = CapName::One(Capability::CAP_NET_ADMIN);
        for n in ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_Net_Admin"] {
            assert_eq!(parse(n).unwrap(), want, "{n}");
        }
        assert_eq!(parse("all").unwrap(), CapName::All);
        assert_eq!(
            parse("FOO").unwrap_err().to_string(),
            r#"unknown capability: "CAP_FOO""#
        );
    }

    #[test]
    fn the_default_set_is_dockers() {
        let m = effective(&[], &[], false, bounding()).unwrap();
        assert_eq!(m, default_mask());
        assert_eq!(m, 0xa80425fb, "Docker's CapEff: {m:#x}");
    }

    #[test]
    fn drop_and_add_single_capabilities() {
        let m = effective(&s(&["NET_ADMIN"]), &s(&["chown"]), false, bounding()).unwrap();
        assert!(has(m, Capability::CAP_NET_ADMIN));
        assert!(!has(m, Capability::CAP_CHOWN));
        assert!(has(m, Capability::CAP_KILL));
    }

    #[test]
    fn drop_all_then_add_some() {
        let m = effective(&s(&["CHOWN"]), &s(&["ALL"]), false, bounding()).unwrap();
        assert_eq!(m, Capability::CAP_CHOWN.bitmask());
        assert_eq!(effective(&[], &s(&["all"]), false, bounding()).unwrap(), 0);
    }

    #[test]
    fn add_all_then_drop_some_is_what_berthd_holds() {
        let m = effective(&s(&["ALL"]), &s(&["CAP_MKNOD"]), false, bounding()).unwrap();
        assert_eq!(m, bounding() & !Capability::CAP_MKNOD.bitmask());
        assert!(!has(m, Capability::CAP_SYS_RESOURCE));
        // ALL in both: add wins, as in dockerd.
        let both = effective(&s(&["ALL"]), &s(&["ALL"]), false, bounding()).unwrap();
        assert_eq!(both, bounding());
    }

    #[test]
    fn privileged_is_the_bounding_set() {
        let m = effective(&[], &s(&["CHOWN"]), true, bounding()).unwrap();
        assert_eq!(m, bounding());
    }

    #[test]
    fn a_capability_berthd_lacks_cannot_be_added() {
        let e = effective(&s(&["SYS_RESOURCE"]), &[], false, bounding()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "capability CAP_SYS_RESOURCE cannot be added: berthd's own bounding set does not hold it"
        );
        // Unknown names are reported first, even when privileged.
        assert!(matches!(
            effective(&s(&["BOGUS"]), &[], true, bounding()),
            Err(SecurityError::UnknownCapability { .. })
        ));
    }

    #[test]
    fn defaults_berthd_lacks_are_left_out() {
        let b = bounding() & !Capability::CAP_NET_RAW.bitmask();
        let m = effective(&[], &[], false, b).unwrap();
        assert_eq!(m, default_mask() & !Capability::CAP_NET_RAW.bitmask());
    }
}
