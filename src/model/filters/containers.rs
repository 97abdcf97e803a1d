//! The filters of `GET /containers/json`, as dockerd 20.10's `daemon/list.go`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{FilterError, Filters, Patterns, go_syntax_error};

/// The keys dockerd 20.10 accepts (`acceptedPsFilterTags`).
pub const CONTAINER_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

const STATES: &[&str] = &[
    "paused",
    "restarting",
    "removing",
    "running",
    "dead",
    "created",
    "exited",
];

const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// What the filters read of one container; built by the container store from its record.
#[derive(Debug, Clone)]
pub struct ContainerFilterView<'a> {
    pub id: &'a str,
    /// With its leading `/`.
    pub name: &'a str,
    /// `sha256:<hex>`.
    pub image_id: &'a str,
    pub labels: Vec<(&'a str, &'a str)>,
    /// dockerd's `State` string: `created`, `running`, `paused`, `restarting`,
    /// `removing`, `exited`, `dead`.
    pub state: &'a str,
    /// dockerd's `Running`: also true while paused or restarting.
    pub running: bool,
    /// Whether it was ever started (dockerd's non-zero `StartedAt`).
    pub started: bool,
    pub exit_code: i32,
    pub created: DateTime<Utc>,
    /// (name, id) of each network it is on; the id may be empty.
    pub networks: Vec<(&'a str, &'a str)>,
    /// The ports `docker ps` lists (dockerd's `Ports`: a running container's port map).
    pub ports: Vec<PortView<'a>>,
    pub mounts: Vec<MountView>,
    /// `none` without a health check.
    pub health: &'a str,
    pub isolation: &'a str,
    /// Whether it is a swarm task.
    pub is_task: bool,
}

/// One row of a container's port list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView<'a> {
    pub private: u16,
    /// `None` when only exposed.
    pub public: Option<u16>,
    pub proto: &'a str,
}

/// One mount: a volume's name (empty for a bind), its source and its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountView {
    pub name: String,
    pub source: String,
    pub destination: String,
}

/// A container list filter, checked and compiled once per request. The API compiles it
/// and resolves `ancestor` (images live in the graph); the store resolves `id`,
/// `before` and `since` against its records ([`ContainerFilter::resolve`]) and then
/// asks [`ContainerFilter::matches`] of each container.
#[derive(Debug, Clone)]
pub struct ContainerFilter {
    filters: Filters,
    names: Option<Patterns>,
    ids: Option<Patterns>,
    /// The full ids that the `id` values name as unique prefixes (after `resolve`).
    resolved_ids: BTreeSet<String>,
    isolation: Option<Patterns>,
    statuses: Option<Patterns>,
    exited: Vec<i64>,
    is_task: Option<bool>,
    /// Created times of the `before` and `since` containers (after `resolve`).
    before: Vec<DateTime<Utc>>,
    since: Vec<DateTime<Utc>>,
    /// The image ids the `ancestor` values name (after `set_ancestor_images`).
    ancestors: Option<BTreeSet<String>>,
    publish: BTreeSet<(u64, String)>,
    expose: BTreeSet<(u64, String)>,
}

impl ContainerFilter {
    /// Checks the keys and the values, in dockerd's order.
    pub fn compile(filters: Filters) -> Result<ContainerFilter, FilterError> {
        filters.validate(CONTAINER_FILTERS)?;
        let exited = filters
            .get("exited")
            .map(|v| {
                v.parse::<i64>().map_err(|_| FilterError::ExitCode {
                    value: v.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = filters.get("status").find(|v| !STATES.contains(v)) {
            return Err(FilterError::InvalidValue {
                key: "status",
                value: bad.to_owned(),
            });
        }
        let is_task = if filters.contains("is-task") {
            if filters.exact_match("is-task", "true") {
                Some(true)
            } else if filters.exact_match("is-task", "false") {
                Some(false)
            } else {
                return Err(FilterError::InvalidValue {
                    key: "is-task",
                    value: filters.go_list("is-task"),
                });
            }
        } else {
            None
        };
        if let Some(bad) = filters.get("health").find(|v| !HEALTH.contains(v)) {
            return Err(FilterError::Health {
                value: bad.to_owned(),
            });
        }
        let publish = port_set(&filters, "publish")?;
        let expose = port_set(&filters, "expose")?;
        Ok(ContainerFilter {
            names: Patterns::of(&filters, "name"),
            ids: Patterns::of(&filters, "id"),
            resolved_ids: BTreeSet::new(),
            isolation: Patterns::of(&filters, "isolation"),
            statuses: Patterns::of(&filters, "status"),
            exited,
            is_task,
            before: Vec::new(),
            since: Vec::new(),
            ancestors: None,
            publish,
            expose,
            filters,
        })
    }

    /// Whether stopped containers are listed without `all` (a `status` value asks).
    pub fn lists_stopped(&self) -> bool {
        self.filters.get("status").next().is_some()
    }

    /// The `ancestor` values, for the caller to resolve to image ids; `None` when the key
    /// is absent.
    pub fn ancestor_references(&self) -> Option<Vec<String>> {
        self.filters
            .contains("ancestor")
            .then(|| self.filters.get("ancestor").map(str::to_owned).collect())
    }

    /// The image ids (`sha256:<hex>`) the `ancestor` values name; those that name no
    /// image are left out, as dockerd does. Berth's images have no parents, so an
    /// image's descendants are the image itself.
    pub fn set_ancestor_images(&mut self, ids: BTreeSet<String>) {
        self.ancestors = Some(ids);
    }

    /// Whether [`ContainerFilter::resolve`] needs the list of every container.
    pub fn needs_resolution(&self) -> bool {
        ["id", "before", "since"]
            .iter()
            .any(|k| self.filters.contains(k))
    }

    /// Resolves `id` (unique prefixes, as dockerd's id index) and `before`/`since` (a full
    /// id or a name, with or without its `/`) against every container.
    pub fn resolve<'a>(
        &mut self,
        all: impl IntoIterator<Item = ContainerFilterView<'a>>,
    ) -> Result<(), FilterError> {
        let all: Vec<ContainerFilterView<'a>> = all.into_iter().collect();
        self.resolved_ids = self
            .filters
            .get("id")
            .filter_map(|prefix| unique_prefix(&all, prefix))
            .collect();
        let bound = |name: &str| -> Result<DateTime<Utc>, FilterError> {
            let by_id = all.iter().find(|c| c.id == name);
            let bare = name.trim_start_matches('/');
            let by_name = || {
                let mut it = all
                    .iter()
                    .filter(|c| c.name.trim_start_matches('/') == bare);
                let first = it.next()?;
                it.next().is_none().then_some(first)
            };
            by_id
                .or_else(by_name)
                .map(|c| c.created)
                .ok_or_else(|| FilterError::NoSuchContainer {
                    name: name.to_owned(),
                })
        };
        self.before = self
            .filters
            .get("before")
            .map(bound)
            .collect::<Result<_, _>>()?;
        self.since = self
            .filters
            .get("since")
            .map(bound)
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Whether the container passes every filter (not the `all`/running rule, which the
    /// caller applies with [`ContainerFilter::lists_stopped`]).
    pub fn matches(&self, c: &ContainerFilterView<'_>) -> bool {
        // Several `before` (or `since`) containers are alternatives: created before the
        // newest of them (after the oldest).
        if let Some(newest) = self.before.iter().max() {
            if c.created >= *newest {
                return false;
            }
        }
        if let Some(oldest) = self.since.iter().min() {
            if c.created <= *oldest {
                return false;
            }
        }
        if let Some(names) = &self.names {
            if !names.matches(c.name) && !names.matches(c.name.trim_start_matches('/')) {
                return false;
            }
        }
        if let Some(ids) = &self.ids {
            if !self.resolved_ids.contains(c.id) || !ids.matches(c.id) {
                return false;
            }
        }
        if self.is_task.is_some_and(|t| t != c.is_task) {
            return false;
        }
        if !self.filters.match_kv_list("label", &c.labels) {
            return false;
        }
        if let Some(isolation) = &self.isolation {
            if !isolation.matches(&c.isolation.to_ascii_lowercase()) {
                return false;
            }
        }
        if !self.exited.is_empty()
            && !self
                .exited
                .iter()
                .any(|code| *code == i64::from(c.exit_code) && !c.running && c.started)
        {
            return false;
        }
        if let Some(statuses) = &self.statuses {
            if !statuses.matches(c.state) {
                return false;
            }
        }
        if !self.filters.exact_match("health", c.health) {
            return false;
        }
        if self.filters.contains("volume") {
            let found = self.filters.get("volume").any(|v| {
                c.mounts.iter().any(|m| {
                    m.destination == v
                        || (if m.name.is_empty() {
                            &m.source
                        } else {
                            &m.name
                        }) == v
                })
            });
            if !found {
                return false;
            }
        }
        if let Some(images) = &self.ancestors {
            if !images.contains(c.image_id) {
                return false;
            }
        }
        if self.filters.contains("network") {
            let found = self.filters.get("network").any(|v| {
                c.networks
                    .iter()
                    .any(|(name, id)| *name == v || id.starts_with(v))
            });
            if !found {
                return false;
            }
        }
        if !self.publish.is_empty() || !self.expose.is_empty() {
            let found = c.ports.iter().any(|p| {
                let public = (u64::from(p.public.unwrap_or(0)), p.proto.to_owned());
                let private = (u64::from(p.private), p.proto.to_owned());
                self.publish.contains(&public) || self.expose.contains(&private)
            });
            if !found {
                return false;
            }
        }
        true
    }
}

/// The one container whose id starts with `prefix`, as dockerd's truncated-id index
/// finds it (an empty or ambiguous prefix finds none).
fn unique_prefix(all: &[ContainerFilterView<'_>], prefix: &str) -> Option<String> {
    if prefix.is_empty() || prefix.contains(' ') {
        return None;
    }
    let mut it = all.iter().filter(|c| c.id.starts_with(prefix));
    let first = it.next()?;
    it.next().is_none().then(|| first.id.to_owned())
}

/// The ports of `publish` or `expose` values: `80`, `80/udp`, `8000-8010/tcp`.
fn port_set(filters: &Filters, key: &'static str) -> Result<BTreeSet<(u64, String)>, FilterError> {
    let mut out = BTreeSet::new();
    for value in filters.get(key) {
        if value.contains(':') {
            return Err(FilterError::PortWithColon {
                key,
                value: value.to_owned(),
            });
        }
        let (proto, port) = split_proto_port(value);
        let (start, end) = parse_port_range(port).map_err(|reason| FilterError::Port {
            key,
            value: value.to_owned(),
            reason,
        })?;
        for p in start..=end {
            out.insert((p, proto.to_owned()));
        }
    }
    Ok(out)
}

/// go-connections' `nat.SplitProtoPort`: `80/udp` → (`udp`, `80`); no protocol is tcp.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or("");
    if port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

/// go-connections' `nat.ParsePortRange`, with its error texts.
fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("Empty string specified for ports.".to_owned());
    }
    let parse = |s: &str| -> Result<u64, String> {
        match s.parse::<u64>() {
            Ok(n) if n <= u64::from(u16::MAX) => Ok(n),
            Ok(_) => Err(format!(
                "strconv.ParseUint: parsing {s:?}: value out of range"
            )),
            Err(_) => Err(go_syntax_error("ParseUint", s)),
        }
    };
    let Some((a, rest)) = ports.split_once('-') else {
        let p = parse(ports)?;
        return Ok((p, p));
    };
    let b = rest.split('-').next().unwrap_or("");
    let (start, end) = (parse(a)?, parse(b)?);
    if end < start {
        return Err(format!("Invalid range specified for the Port: {ports}"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn view<'a>(id: &'a str, name: &'a str, created: i64) -> ContainerFilterView<'a> {
        ContainerFilterView {
            id,
            name,
            image_id: "sha256:img1",
            labels: vec![("a", "1"), ("b", "2")],
            state: "running",
            running: true,
            started: true,
            exit_code: 0,
            created: at(created),
            networks: vec![("bridge", "netid123")],
            ports: Vec::new(),
            mounts: vec![MountView {
                name: String::new(),
                source: "/srv/data".into(),
                destination: "/data".into(),
            }],
            health: "none",
            isolation: "default",
            is_task: false,
        }
    }

    fn compile(pairs: &[(&str, &str)]) -> Result<ContainerFilter, FilterError> {
        ContainerFilter::compile(Filters::from_pairs(pairs.iter().copied()))
    }

    fn passes(pairs: &[(&str, &str)], c: &ContainerFilterView<'_>) -> bool {
        compile(pairs).unwrap().matches(c)
    }

    #[test]
    fn keys_and_values_are_checked_as_dockerd() {
        let e = compile(&[("bogus", "1")]).unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'bogus'");
        let e = compile(&[("status", "up")]).unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'status=up'");
        let e = compile(&[("exited", "x")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        let e = compile(&[("is-task", "maybe")]).unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'is-task=[maybe]'");
        let e = compile(&[("health", "sick")]).unwrap_err();
        assert_eq!(e.to_string(), "Unrecognised filter value for health: sick");
        let e = compile(&[("publish", "80:80")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "filter for 'publish' should not contain ':': 80:80"
        );
        let e = compile(&[("expose", "x/tcp")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error while looking up for expose x/tcp: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        let e = compile(&[("expose", "90-80")]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("Invalid range specified for the Port: 90-80")
        );
        for (k, v) in CONTAINER_FILTERS.iter().map(|k| (*k, "")) {
            // Every key is known; only the checked ones refuse an empty value.
            let r = compile(&[(k, v)]);
            assert!(
                r.is_ok()
                    || matches!(
                        k,
                        "status" | "exited" | "health" | "is-task" | "publish" | "expose"
                    ),
                "{k}"
            );
        }
    }

    #[test]
    fn names_are_regexes_against_the_name_with_and_without_its_slash() {
        let c = view("aaa", "/t10", 1);
        assert!(passes(&[("name", "t1")], &c));
        assert!(!passes(&[("name", "^t1$")], &c));
        assert!(passes(&[("name", "^t10$")], &c));
        assert!(passes(&[("name", "^/t10$")], &c));
        assert!(passes(&[("name", "/t10")], &c));
        assert!(passes(&[("name", "nope"), ("name", "t10")], &c));
    }

    #[test]
    fn labels_all_match_and_other_keys_are_alternatives() {
        let c = view("aaa", "/t1", 1);
        assert!(passes(&[("label", "a"), ("label", "b=2")], &c));
        assert!(!passes(&[("label", "a"), ("label", "c")], &c));
        assert!(passes(&[("status", "exited"), ("status", "running")], &c));
        assert!(!passes(&[("status", "exited")], &c));
        assert!(!passes(&[("label", "a"), ("status", "exited")], &c));
    }

    #[test]
    fn exited_needs_a_started_stopped_container() {
        let mut c = view("aaa", "/t1", 1);
        assert!(!passes(&[("exited", "0")], &c));
        c.running = false;
        c.state = "exited";
        c.exit_code = 3;
        assert!(passes(&[("exited", "3")], &c));
        assert!(passes(&[("exited", "0"), ("exited", "3")], &c));
        assert!(!passes(&[("exited", "0")], &c));
        c.started = false;
        c.exit_code = 0;
        assert!(!passes(&[("exited", "0")], &c));
    }

    #[test]
    fn ids_are_unique_prefixes() {
        let all = || {
            vec![
                view("abc1", "/a", 1),
                view("abc2", "/b", 2),
                view("def", "/c", 3),
            ]
        };
        let run = |pairs: &[(&str, &str)]| -> Vec<String> {
            let mut f = compile(pairs).unwrap();
            assert!(f.needs_resolution());
            f.resolve(all()).unwrap();
            all()
                .iter()
                .filter(|c| f.matches(c))
                .map(|c| c.id.to_owned())
                .collect()
        };
        assert_eq!(run(&[("id", "abc1")]), vec!["abc1"]);
        assert_eq!(run(&[("id", "d")]), vec!["def"]);
        assert!(run(&[("id", "abc")]).is_empty());
        assert!(run(&[("id", "")]).is_empty());
        assert_eq!(run(&[("id", "abc2"), ("id", "de")]), vec!["abc2", "def"]);
        assert!(run(&[("id", "abc1"), ("name", "b")]).is_empty());
    }

    #[test]
    fn before_and_since_name_containers() {
        let all = || {
            vec![
                view("aaa", "/old", 1),
                view("bbb", "/mid", 2),
                view("ccc", "/new", 3),
            ]
        };
        let run = |pairs: &[(&str, &str)]| -> Result<Vec<String>, FilterError> {
            let mut f = compile(pairs)?;
            f.resolve(all())?;
            Ok(all()
                .iter()
                .filter(|c| f.matches(c))
                .map(|c| c.name.to_owned())
                .collect())
        };
        assert_eq!(run(&[("before", "mid")]).unwrap(), vec!["/old"]);
        assert_eq!(run(&[("since", "/mid")]).unwrap(), vec!["/new"]);
        assert_eq!(
            run(&[("since", "aaa"), ("before", "new")]).unwrap(),
            vec!["/mid"]
        );
        let e = run(&[("since", "gone")]).unwrap_err();
        assert_eq!(e.to_string(), "No such container: gone");
        assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
        // A short id is not a container here, as in dockerd 20.10.
        assert!(run(&[("before", "bb")]).is_err());
    }

    #[test]
    fn ancestors_volumes_networks_and_ports() {
        let mut c = view("aaa", "/t1", 1);
        let mut f = compile(&[("ancestor", "busybox")]).unwrap();
        assert_eq!(f.ancestor_references().unwrap(), vec!["busybox"]);
        f.set_ancestor_images(BTreeSet::from(["sha256:img1".to_owned()]));
        assert!(f.matches(&c));
        f.set_ancestor_images(BTreeSet::new());
        assert!(!f.matches(&c));

        assert!(passes(&[("volume", "/data")], &c));
        assert!(passes(&[("volume", "/srv/data")], &c));
        assert!(!passes(&[("volume", "/srv")], &c));

        assert!(passes(&[("network", "bridge")], &c));
        assert!(passes(&[("network", "netid")], &c));
        assert!(!passes(&[("network", "host")], &c));

        assert!(!passes(&[("expose", "80")], &c));
        c.ports = vec![PortView {
            private: 80,
            public: None,
            proto: "tcp",
        }];
        assert!(passes(&[("expose", "80")], &c));
        assert!(passes(&[("expose", "70-90/tcp")], &c));
        assert!(!passes(&[("expose", "80/udp")], &c));
        assert!(!passes(&[("publish", "80")], &c));

        assert!(passes(&[("health", "none")], &c));
        assert!(!passes(&[("health", "healthy")], &c));
        assert!(passes(&[("isolation", "default")], &c));
        assert!(!passes(&[("isolation", "hyperv")], &c));
        assert!(passes(&[("is-task", "false")], &c));
        assert!(!passes(&[("is-task", "true")], &c));
    }

    #[test]
    fn status_lists_stopped_containers() {
        assert!(compile(&[("status", "exited")]).unwrap().lists_stopped());
        assert!(!compile(&[("exited", "0")]).unwrap().lists_stopped());
        assert!(!compile(&[("name", "x")]).unwrap().lists_stopped());
    }
}
