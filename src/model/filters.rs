//! The `filters` query of the list endpoints, read as dockerd 20.10 reads it
//! (`api/types/filters/parse.go`, `daemon/list.go`, `daemon/images/images.go`).
//!
//! A filter is a map from a key to a set of values. The CLI sends the set as an object
//! (`{"name":{"t1":true}}`), the SDKs as a list (`{"name":["t1"]}`); both are accepted.
//! Each endpoint accepts its own keys: any other key is refused with dockerd's
//! `Invalid filter 'bogus'` (400). Several values of one key are alternatives, except
//! `label`, where every value must match. A key with an empty set is accepted and
//! filters as dockerd's code happens to filter with no values (usually not at all).
//!
//! Where dockerd 20.10 answered a bad value with a 500 and Go's internal text (a bad
//! `exited` code, a bad port, a `since` that names no container, JSON that is no
//! filter), berthd answers 400 (404 for the container) with the words later dockerd
//! releases use.
//!
//! The matching is written against small views ([`ContainerFilterView`],
//! [`ImageFilterView`]) that the owners of the records build, so that this module knows
//! nothing of how a record is stored.

mod containers;
mod images;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub use containers::{
    CONTAINER_FILTERS, ContainerFilter, ContainerFilterView, MountView, PortView,
};
pub use images::{IMAGE_FILTERS, ImageFilter, ImageFilterView};

use crate::error::ErrorKind;

/// A filter that dockerd would refuse, in dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The `filters` query is JSON in neither of the two shapes.
    #[error("invalid filter")]
    Json,
    /// A key the endpoint does not know.
    #[error("Invalid filter '{key}'")]
    UnknownKey { key: String },
    /// A value outside the key's set (`status`, `is-task`, `dangling`); `value` is
    /// formatted as dockerd formats it (a list for the keys it reads as a whole).
    #[error("Invalid filter '{key}={value}'")]
    InvalidValue { key: &'static str, value: String },
    #[error("Unrecognised filter value for health: {value}")]
    Health { value: String },
    #[error("invalid filter 'exited={value}': strconv.Atoi: parsing {value:?}: invalid syntax")]
    ExitCode { value: String },
    #[error("filter for '{key}' should not contain ':': {value}")]
    PortWithColon { key: &'static str, value: String },
    #[error("error while looking up for {key} {value}: {reason}")]
    Port {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// `before` or `since` names no container (by full id or name).
    #[error("No such container: {name}")]
    NoSuchContainer { name: String },
    /// A `reference` pattern that Go's `path.Match` refuses.
    #[error("syntax error in pattern")]
    BadPattern { pattern: String },
}

impl FilterError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FilterError::NoSuchContainer { .. } => ErrorKind::NotFound,
            FilterError::Json
            | FilterError::UnknownKey { .. }
            | FilterError::InvalidValue { .. }
            | FilterError::Health { .. }
            | FilterError::ExitCode { .. }
            | FilterError::PortWithColon { .. }
            | FilterError::Port { .. }
            | FilterError::BadPattern { .. } => ErrorKind::InvalidParameter,
        }
    }
}

/// The parsed `filters` query: each key with its set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// Parses the query's value; empty or absent is no filter. Values of the object
    /// shape count whatever their boolean, as dockerd's `Get` does.
    pub fn parse(raw: Option<&str>) -> Result<Filters, FilterError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Filters::default());
        };
        let map = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => return Ok(Filters::default()),
            _ => return Err(FilterError::Json),
        };
        let mut fields = BTreeMap::new();
        // Either every key has a set (`{"v":true}`) or every key has a list
        // (`["v"]`), as dockerd tries one shape and then the other.
        let as_sets = map.values().all(|v| match v {
            Value::Object(set) => set.values().all(|b| b.is_boolean() || b.is_null()),
            Value::Null => true,
            _ => false,
        });
        let as_lists = map.values().all(|v| match v {
            Value::Array(list) => list.iter().all(|s| s.is_string() || s.is_null()),
            Value::Null => true,
            _ => false,
        });
        for (key, v) in map {
            let values: BTreeSet<String> = match v {
                Value::Object(set) if as_sets => set.into_iter().map(|(k, _)| k).collect(),
                Value::Array(list) if as_lists => list
                    .into_iter()
                    .map(|s| s.as_str().unwrap_or("").to_owned())
                    .collect(),
                Value::Null if as_sets || as_lists => BTreeSet::new(),
                _ => return Err(FilterError::Json),
            };
            fields.insert(key, values);
        }
        Ok(Filters { fields })
    }

    /// Builds filters from pairs (tests and callers that make their own).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Filters {
        let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (k, v) in pairs {
            fields.entry(k.to_owned()).or_default().insert(v.to_owned());
        }
        Filters { fields }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Refuses the first key (in sorted order) that is not in `accepted`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(FilterError::UnknownKey { key: key.clone() }),
            None => Ok(()),
        }
    }

    /// Whether the key was given, even with no values.
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The values of `key`, sorted; none when the key is absent.
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> + '_ {
        self.fields
            .get(key)
            .into_iter()
            .flat_map(|set| set.iter().map(String::as_str))
    }

    fn values(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.fields.get(key)
    }

    /// dockerd's `ExactMatch`: true when the key has no values or one equals `source`.
    pub fn exact_match(&self, key: &str, source: &str) -> bool {
        match self.fields.get(key) {
            None => true,
            Some(set) => set.is_empty() || set.contains(source),
        }
    }

    /// dockerd's `MatchKVList`: every value (`k` or `k=v`) must be among `labels`.
    pub fn match_kv_list(&self, key: &str, labels: &[(&str, &str)]) -> bool {
        let Some(set) = self.fields.get(key).filter(|s| !s.is_empty()) else {
            return true;
        };
        if labels.is_empty() {
            return false;
        }
        set.iter().all(|want| {
            let (k, v) = match want.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (want.as_str(), None),
            };
            match labels.iter().find(|(lk, _)| *lk == k) {
                Some((_, lv)) => v.is_none_or(|v| v == *lv),
                None => false,
            }
        })
    }

    /// dockerd's negated label filter (`label!`, prune's): true when no value (`k` or
    /// `k=v`) is among `labels`.
    pub fn match_kv_none(&self, key: &str, labels: &[(&str, &str)]) -> bool {
        !self.get(key).any(|want| {
            let (k, v) = match want.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (want, None),
            };
            labels
                .iter()
                .any(|(lk, lv)| *lk == k && v.is_none_or(|v| v == *lv))
        })
    }

    /// The list form dockerd prints in an error (`[a b]`).
    fn go_list(&self, key: &str) -> String {
        let values: Vec<&str> = self.get(key).collect();
        format!("[{}]", values.join(" "))
    }
}

/// Labels as the matchers take them: `(key, value)` pairs borrowed from any map.
pub fn label_pairs<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<(&'a str, &'a str)> {
    labels
        .into_iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// dockerd's `Match`: the values of a key as exact strings and as regular expressions
/// (unanchored, as Go's `regexp.MatchString`); a value that does not compile is only
/// an exact string. No values match everything.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    exact: BTreeSet<String>,
    regexes: Vec<regex_lite::Regex>,
}

impl Patterns {
    /// `None` when the key is absent.
    pub fn of(filters: &Filters, key: &str) -> Option<Patterns> {
        let set = filters.values(key)?;
        Some(Patterns {
            exact: set.clone(),
            regexes: set
                .iter()
                .filter_map(|v| regex_lite::Regex::new(v).ok())
                .collect(),
        })
    }

    pub fn matches(&self, source: &str) -> bool {
        self.exact.is_empty()
            || self.exact.contains(source)
            || self.regexes.iter().any(|r| r.is_match(source))
    }
}

/// Go's `path.Match`: `*` any run of non-`/` characters, `?` one, `[...]` a class
/// (`^` negates, `a-z` ranges), `\` escapes. A malformed pattern is an error.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, FilterError> {
    let bad = || FilterError::BadPattern {
        pattern: pattern.to_owned(),
    };
    let p: Vec<char> = pattern.chars().collect();
    check_pattern(&p).ok_or_else(bad)?;
    let n: Vec<char> = name.chars().collect();
    Ok(glob(&p, &n))
}

/// Whether every class and escape in `p` is complete.
fn check_pattern(p: &[char]) -> Option<()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                p.get(i + 1)?;
                i += 2;
            }
            '[' => i = class_end(p, i)?,
            _ => i += 1,
        }
    }
    Some(())
}

/// The index after the class that opens at `p[start]`; `None` when it is malformed.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some(i + 1);
        }
        first = false;
        // One class item: a character or a range, either end possibly escaped.
        let item_char = |i: &mut usize| -> Option<()> {
            match *p.get(*i)? {
                '\\' => {
                    p.get(*i + 1)?;
                    *i += 2;
                }
                '-' | ']' => return None,
                _ => *i += 1,
            }
            Some(())
        };
        item_char(&mut i)?;
        if p.get(i) == Some(&'-') {
            i += 1;
            item_char(&mut i)?;
        }
    }
}

fn class_char(p: &[char], i: &mut usize) -> char {
    let c = if p[*i] == '\\' {
        *i += 1;
        p[*i]
    } else {
        p[*i]
    };
    *i += 1;
    c
}

/// Whether `c` is in the class at `p[start]` (already checked).
fn in_class(p: &[char], start: usize, c: char) -> bool {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    while i < p.len() && p[i] != ']' {
        let lo = class_char(p, &mut i);
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(p, &mut i);
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
    hit != negated
}

fn glob(p: &[char], n: &[char]) -> bool {
    let Some(&first) = p.first() else {
        return n.is_empty();
    };
    match first {
        '*' => {
            // The star takes 0..k characters up to the first '/'.
            let limit = n.iter().position(|c| *c == '/').unwrap_or(n.len());
            (0..=limit).any(|k| glob(&p[1..], &n[k..]))
        }
        '?' => matches!(n.first(), Some(c) if *c != '/') && glob(&p[1..], &n[1..]),
        '[' => {
            let Some(end) = class_end(p, 0) else {
                return false;
            };
            matches!(n.first(), Some(c) if *c != '/' && in_class(p, 0, *c))
                && glob(&p[end..], &n[1..])
        }
        '\\' => p.len() > 1 && n.first() == Some(&p[1]) && glob(&p[2..], &n[1..]),
        c => n.first() == Some(&c) && glob(&p[1..], &n[1..]),
    }
}

/// Go's `strconv` error text for a value that is not a number.
pub(crate) fn go_syntax_error(func: &str, value: &str) -> String {
    format!("strconv.{func}: parsing {value:?}: invalid syntax")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_parse_to_the_same_sets() {
        let a = Filters::parse(Some(r#"{"name":{"t1":true,"t2":false}}"#)).unwrap();
        let b = Filters::parse(Some(r#"{"name":["t2","t1"]}"#)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("name").collect::<Vec<_>>(), vec!["t1", "t2"]);
        assert!(Filters::parse(None).unwrap().is_empty());
        assert!(Filters::parse(Some("")).unwrap().is_empty());
        assert!(Filters::parse(Some("null")).unwrap().is_empty());
        let empty = Filters::parse(Some(r#"{"label":{}}"#)).unwrap();
        assert!(empty.contains("label"));
        assert_eq!(empty.get("label").count(), 0);
    }

    #[test]
    fn other_shapes_are_refused() {
        for bad in [
            "nope",
            "[]",
            r#"{"name":"t1"}"#,
            r#"{"name":{"t1":"yes"}}"#,
            r#"{"name":[1]}"#,
            r#"{"a":{"x":true},"b":["y"]}"#,
        ] {
            let e = Filters::parse(Some(bad)).unwrap_err();
            assert_eq!(e, FilterError::Json, "{bad}");
            assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        }
    }

    #[test]
    fn unknown_keys_get_dockerds_words() {
        let f = Filters::parse(Some(r#"{"bogus":{"1":true},"name":{"x":true}}"#)).unwrap();
        let e = f.validate(&["name"]).unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'bogus'");
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert!(f.validate(&["name", "bogus"]).is_ok());
    }

    #[test]
    fn every_label_must_match() {
        let labels = [("a", "1"), ("b", "2")];
        let f = Filters::from_pairs([("label", "a"), ("label", "b=2")]);
        assert!(f.match_kv_list("label", &labels));
        let f = Filters::from_pairs([("label", "a"), ("label", "c")]);
        assert!(!f.match_kv_list("label", &labels));
        let f = Filters::from_pairs([("label", "a=2")]);
        assert!(!f.match_kv_list("label", &labels));
        let f = Filters::from_pairs([("label", "a=")]);
        assert!(!f.match_kv_list("label", &labels));
        assert!(f.match_kv_list("label", &[("a", "")]));
        assert!(Filters::default().match_kv_list("label", &[]));
        assert!(!Filters::from_pairs([("label", "a")]).match_kv_list("label", &[]));
    }

    #[test]
    fn patterns_are_exact_or_unanchored_regexes() {
        let f = Filters::from_pairs([("name", "^t1$"), ("name", "web")]);
        let p = Patterns::of(&f, "name").unwrap();
        assert!(p.matches("t1"));
        assert!(!p.matches("t10"));
        assert!(p.matches("my-web-1"));
        let f = Filters::from_pairs([("name", "t1")]);
        assert!(Patterns::of(&f, "name").unwrap().matches("t10"));
        // A value that does not compile still matches exactly.
        let f = Filters::from_pairs([("name", "a(")]);
        let p = Patterns::of(&f, "name").unwrap();
        assert!(p.matches("a("));
        assert!(!p.matches("a(b"));
        assert!(Patterns::of(&f, "id").is_none());
    }

    #[test]
    fn globs_as_go_path_match() {
        let m = |p: &str, n: &str| path_match(p, n).unwrap();
        assert!(m("busybox", "busybox"));
        assert!(m("busy*", "busybox"));
        assert!(m("*:latest", "busybox:latest"));
        assert!(!m("*", "library/busybox"));
        assert!(m("*/*", "library/busybox"));
        assert!(m("b?sybox", "busybox"));
        assert!(m("[a-c]usybox", "busybox"));
        assert!(!m("[^a-c]usybox", "busybox"));
        assert!(m("x\\*", "x*"));
        assert!(!m("x\\*", "xy"));
        assert!(!m("busybox", "busybox:1"));
        for bad in ["[", "[a-", "x\\", "[]", "[a-]", "[]a]"] {
            let e = path_match(bad, "x").unwrap_err();
            assert_eq!(e.to_string(), "syntax error in pattern", "{bad}");
        }
    }
}
