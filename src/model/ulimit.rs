//! Resource limits (`--ulimit`, the daemon's `--default-ulimit`): the names dockerd
//! knows, and the `name=soft[:hard]` form, parsed with the words of dockerd's parser
//! (go-units `ParseUlimit`).

use serde::{Deserialize, Serialize};

/// Every limit name dockerd knows, with its `RLIMIT_*` number on Linux.
pub const NAMES: &[(&str, u32)] = &[
    ("core", 4),
    ("cpu", 0),
    ("data", 2),
    ("fsize", 1),
    ("locks", 10),
    ("memlock", 8),
    ("msgqueue", 12),
    ("nice", 13),
    ("nofile", 7),
    ("nproc", 6),
    ("rss", 5),
    ("rtprio", 14),
    ("rttime", 15),
    ("sigpending", 11),
    ("stack", 3),
];

/// The `RLIMIT_*` number of a limit name, if dockerd knows the name.
pub fn resource_of(name: &str) -> Option<u32> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// One limit: `-1` is unlimited, as in dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// dockerd's checks of a limit given as fields (the API's `HostConfig.Ulimits`, the
    /// daemon.json `default-ulimits`): a known name, soft not above hard.
    pub fn check(&self) -> Result<(), String> {
        if resource_of(&self.name).is_none() {
            return Err(format!("invalid ulimit type: {}", self.name));
        }
        if self.hard != -1 && self.soft > self.hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            ));
        }
        Ok(())
    }
}

/// Parses `name=soft[:hard]` (the hard limit defaults to the soft one).
pub fn parse(val: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = val.split_once('=') else {
        return Err(format!("invalid ulimit argument: {val}"));
    };
    if resource_of(name).is_none() {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let s = num(soft)?;
            (s, s)
        }
        [soft, hard] => {
            let h = num(hard)?;
            (num(soft)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ));
        }
    };
    let u = Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    };
    u.check()?;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_dockerd() {
        assert_eq!(
            parse("nofile=512:1024").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 512,
                hard: 1024
            }
        );
        assert_eq!(parse("nproc=64").unwrap().hard, 64);
        assert_eq!(parse("core=-1").unwrap().hard, -1);
        assert_eq!(parse("core=0:-1").unwrap().hard, -1);
        assert_eq!(
            parse("nofile").unwrap_err(),
            "invalid ulimit argument: nofile"
        );
        assert_eq!(parse("bogus=1").unwrap_err(), "invalid ulimit type: bogus");
        assert_eq!(
            parse("nofile=2:1").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 2 > 1"
        );
        assert_eq!(
            parse("nofile=1:2:3").unwrap_err(),
            "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"
        );
        assert_eq!(
            parse("nofile=x").unwrap_err(),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn every_name_maps_to_its_rlimit() {
        assert_eq!(resource_of("nofile"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(resource_of("nproc"), Some(libc::RLIMIT_NPROC));
        assert_eq!(resource_of("rttime"), Some(libc::RLIMIT_RTTIME));
        assert_eq!(resource_of("memlock"), Some(libc::RLIMIT_MEMLOCK));
        assert_eq!(resource_of("msgqueue"), Some(libc::RLIMIT_MSGQUEUE));
        assert_eq!(NAMES.len(), 15);
    }
}
