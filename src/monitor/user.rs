//! The container's user: `uid[:gid]` or `name[:group]`, resolved against the container's
//! /etc/passwd and /etc/group, with supplementary groups, as runc does.

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// For `HOME` when the environment has none.
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).map(|s| (*s).to_owned()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` (`""`, `uid`, `name`, with an optional `:gid` or `:group`) against the
/// texts of the container's /etc/passwd and /etc/group (`None` when missing). The error
/// text is runc's.
pub fn resolve(user: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser, String> {
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        home: "/".to_owned(),
    };
    let mut name: Option<String> = None;
    let found = if u.is_empty() {
        users.iter().find(|e| e.uid == 0)
    } else if let Ok(uid) = u.parse::<i64>() {
        let uid = id_in_range(uid)?;
        out.uid = uid;
        users.iter().find(|e| e.uid == uid)
    } else {
        let e = users.iter().find(|e| e.name == u);
        if e.is_none() {
            return Err(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ));
        }
        e
    };
    if let Some(e) = found {
        out.uid = e.uid;
        out.gid = e.gid;
        if !e.home.is_empty() {
            out.home = e.home.clone();
        }
        name = Some(e.name.clone());
    }
    match g {
        Some(g) if !g.is_empty() => {
            if let Some(e) = groups
                .iter()
                .find(|e| e.name == g || e.gid.to_string() == g)
            {
                out.gid = e.gid;
            } else if let Ok(gid) = g.parse::<i64>() {
                out.gid = id_in_range(gid)?;
            } else {
                let Some(e) = groups.iter().find(|e| e.name == g) else {
                    return Err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ));
                };
                out.gid = e.gid;
            }
        }
        _ => {
            if let Some(n) = &name {
                for e in &groups {
                    if e.members.iter().any(|m| m == n) && !out.groups.contains(&e.gid) {
                        out.groups.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// runc's range of user and group ids.
const MAX_ID: i64 = i32::MAX as i64;

fn id_in_range(id: i64) -> Result<u32, String> {
    u32::try_from(id)
        .ok()
        .filter(|i| i64::from(*i) <= MAX_ID)
        .ok_or_else(|| format!("uids and gids must be in range 0-{MAX_ID}"))
}

/// The gids of `--group-add` entries (names or gids) against the container's
/// /etc/group (`None` when missing), as dockerd's `GetAdditionalGroups`: a name or gid
/// found in the file gives its entry's gid, a number not found is taken as it is, a name
/// not found is an error in dockerd's words. Each gid once.
pub fn additional_groups(wanted: &[String], group: Option<&str>) -> Result<Vec<u32>, String> {
    let groups = group.map(parse_group).unwrap_or_default();
    let mut out: Vec<u32> = Vec::new();
    for ag in wanted {
        let gid = match groups
            .iter()
            .find(|g| g.name == *ag || g.gid.to_string() == *ag)
        {
            Some(g) => g.gid,
            None => match ag.parse::<i64>() {
                Ok(n) => id_in_range(n)?,
                Err(_) => return Err(format!("Unable to find group {ag}")),
            },
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\nnogroup:x:65534:\napp:x:1000:\n";

    fn r(u: &str) -> Result<ExecUser, String> {
        resolve(u, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root_with_home() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.groups, vec![10]);
    }

    #[test]
    fn names_and_numbers() {
        let u = r("nobody").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.groups, vec![10]);
        let u = r("4242:4343").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        let u = r("app:nogroup").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 65534));
        assert!(u.groups.is_empty());
    }

    #[test]
    fn unknown_names_fail_with_runc_text() {
        assert_eq!(
            r("ghost").unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            r("app:ghosts").unwrap_err(),
            "unable to find group ghosts: no matching entries in group file"
        );
    }

    #[test]
    fn numeric_without_files() {
        let u = resolve("5:6", None, None).unwrap();
        assert_eq!((u.uid, u.gid), (5, 6));
    }

    #[test]
    fn ids_out_of_runcs_range_are_refused() {
        let e = "uids and gids must be in range 0-2147483647";
        assert_eq!(r("-1").unwrap_err(), e);
        assert_eq!(r("2147483648").unwrap_err(), e);
        assert_eq!(r("app:-5").unwrap_err(), e);
        assert_eq!(r("2147483647").unwrap().uid, 2147483647);
    }

    #[test]
    fn added_groups_by_name_or_gid() {
        let want = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            additional_groups(&want(&["wheel", "4242", "10", "nogroup"]), Some(GROUP)).unwrap(),
            vec![10, 4242, 65534]
        );
        assert_eq!(
            additional_groups(&want(&["ghosts"]), Some(GROUP)).unwrap_err(),
            "Unable to find group ghosts"
        );
        assert_eq!(additional_groups(&want(&["7"]), None).unwrap(), vec![7]);
        assert!(additional_groups(&want(&["-3"]), None).is_err());
    }
}
