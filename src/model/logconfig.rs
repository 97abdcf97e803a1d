//! A container's log configuration (`HostConfig.LogConfig`, the daemon's `--log-driver`
//! and `--log-opt`): checked in dockerd's words and turned into what the monitor needs.
//!
//! berthd has two drivers: `json-file` (with dockerd's `max-size`, `max-file` and
//! `compress` rotation) and `none`. dockerd's other drivers and the json-file options berthd does not
//! do yet are refused naming them ([`LogConfigError::NotYet`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The driver of a container that names none, as dockerd.
pub const DEFAULT_DRIVER: &str = "json-file";

/// dockerd's drivers that berthd does not have (yet): refused naming them, where a name
/// dockerd does not know gets dockerd's own error.
const OTHER_DOCKERD_DRIVERS: &[&str] = &[
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// Where a container's output goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    /// `<id>-json.log` in the container's dir, rotated by size.
    #[default]
    JsonFile,
    /// Nowhere: attach still sees the output, `docker logs` refuses.
    None,
}

/// What the monitor's log writer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpec {
    pub driver: LogDriver,
    /// `max-size` in bytes (dockerd's `units.FromHumanSize`: k = 1000); `None`: the file
    /// grows without bound.
    pub max_size: Option<u64>,
    /// `max-file`: the current file and up to `max_file - 1` rotated ones; 1 (the
    /// default) truncates the file when it reaches `max_size`.
    pub max_file: u32,
    /// `compress`: rotated files are gzipped (`<id>-json.log.1.gz`, …).
    #[serde(default)]
    pub compress: bool,
}

impl Default for LogSpec {
    fn default() -> Self {
        LogSpec {
            driver: LogDriver::JsonFile,
            max_size: None,
            max_file: 1,
            compress: false,
        }
    }
}

/// Why a log configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogConfigError {
    /// dockerd refuses it too, in these words.
    Invalid(String),
    /// berthd does not do it yet: the flag and value to name (`--log-driver local`,
    /// `--log-opt labels`).
    NotYet(String),
}

impl std::fmt::Display for LogConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogConfigError::Invalid(m) => f.write_str(m),
            LogConfigError::NotYet(what) => write!(f, "berthd does not support {what} yet"),
        }
    }
}

/// dockerd's `mergeAndVerifyLogConfig`: a container that names no driver gets the
/// daemon's; one with the daemon's driver gets the daemon's options it does not set.
pub fn merge_daemon_default(
    typ: &mut Option<String>,
    config: &mut Option<HashMap<String, String>>,
    daemon_driver: &str,
    daemon_opts: &[(String, String)],
) {
    if typ.as_deref().is_none_or(str::is_empty) {
        *typ = Some(daemon_driver.to_owned());
    }
    let config = config.get_or_insert_with(HashMap::new);
    if typ.as_deref() == Some(daemon_driver) {
        for (k, v) in daemon_opts {
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// Checks a driver and its options as dockerd does (`logger.ValidateLogOpts`, then the
/// json-file driver's `ValidateLogOpt` and `New`), in dockerd's words, and returns what
/// the writer needs. `typ` "" is the default driver.
pub fn parse<'a>(
    typ: &str,
    opts: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<LogSpec, LogConfigError> {
    let typ = if typ.is_empty() { DEFAULT_DRIVER } else { typ };
    if typ == "none" {
        // dockerd checks nothing for `none`.
        return Ok(LogSpec {
            driver: LogDriver::None,
            ..LogSpec::default()
        });
    }
    if OTHER_DOCKERD_DRIVERS.contains(&typ) {
        return Err(LogConfigError::NotYet(format!("--log-driver {typ}")));
    }
    if typ != "json-file" {
        return Err(LogConfigError::Invalid(format!(
            "logger: no log driver named '{typ}' is registered"
        )));
    }
    let get = |key: &str| {
        opts.clone()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    // The options every driver takes (`logger.ValidateLogOpts`).
    match get("mode") {
        None | Some("" | "blocking") => {}
        Some("non-blocking") => {
            return Err(LogConfigError::NotYet("--log-opt mode=non-blocking".into()));
        }
        Some(m) => {
            return Err(LogConfigError::Invalid(format!(
                "logger: logging mode not supported: {m}"
            )));
        }
    }
    if get("max-buffer-size").is_some() {
        return Err(LogConfigError::Invalid(
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'".into(),
        ));
    }
    // json-file's keys, in a stable order for the first refusal.
    let mut keys: Vec<&str> = opts.clone().into_iter().map(|(k, _)| k).collect();
    keys.sort_unstable();
    for key in keys {
        match key {
            "max-size" | "max-file" | "compress" | "mode" | "labels" | "env" => {}
            "labels-regex" | "env-regex" => {
                let re = get(key).unwrap_or("");
                if let Err(e) = regex_lite::Regex::new(re) {
                    return Err(LogConfigError::Invalid(format!(
                        "error parsing regexp: {e}"
                    )));
                }
            }
            "tag" => check_tag(get(key).unwrap_or(""))?,
            // dockerd's log cache (dual logging): built-in options that do nothing for a
            // driver that can be read, such as json-file; not taken yet.
            _ if key.starts_with("cache-") => {
                return Err(LogConfigError::NotYet(format!("--log-opt {key}")));
            }
            _ => {
                return Err(LogConfigError::Invalid(format!(
                    "unknown log opt '{key}' for json-file log driver"
                )));
            }
        }
    }
    let mut spec = LogSpec::default();
    if let Some(v) = get("max-size") {
        let n = from_human_size(v)?;
        if n <= 0 {
            return Err(LogConfigError::Invalid(
                "max-size must be a positive number".into(),
            ));
        }
        spec.max_size = Some(n.unsigned_abs());
    }
    if let Some(v) = get("max-file") {
        let n: i64 = v.parse().map_err(|_| {
            LogConfigError::Invalid(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
        })?;
        if n < 1 {
            return Err(LogConfigError::Invalid(
                "max-file cannot be less than 1".into(),
            ));
        }
        spec.max_file = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(v) = get("compress") {
        let compress = parse_go_bool(v).ok_or_else(|| {
            LogConfigError::Invalid(format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))
        })?;
        if compress {
            if spec.max_file == 1 || spec.max_size.is_none() {
                return Err(LogConfigError::Invalid(
                    "compress cannot be true when max-file is less than 2 or max-size is not set"
                        .into(),
                ));
            }
            spec.compress = true;
        }
    }
    Ok(spec)
}

/// What a `tag` template may name: dockerd's `logger.Info` methods.
#[derive(Debug, Clone, Default)]
pub struct TagInfo {
    pub id: String,
    /// With or without its leading `/`.
    pub name: String,
    /// `sha256:…`.
    pub image_id: String,
    /// The image as the create named it.
    pub image_name: String,
    /// The container's path and args.
    pub command: Vec<String>,
}

const TAG_FIELDS: &[&str] = &[
    "ID",
    "FullID",
    "Name",
    "ImageID",
    "ImageFullID",
    "ImageName",
    "DaemonName",
    "Command",
];

/// The `{{ … }}` actions of a template and the text around them.
fn tag_parts(t: &str) -> Vec<(bool, &str)> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        parts.push((false, &rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            parts.push((true, after));
            return parts;
        };
        parts.push((true, after[..end].trim()));
        rest = &after[end + 2..];
    }
    parts.push((false, rest));
    parts
}

/// A `tag` berthd can render: text and `{{.Field}}` actions of dockerd's fields
/// (`ID`, `FullID`, `Name`, `ImageID`, `ImageFullID`, `ImageName`, `DaemonName`,
/// `Command`). Template functions and other actions are refused naming the tag.
fn check_tag(t: &str) -> Result<(), LogConfigError> {
    for (action, part) in tag_parts(t) {
        if action
            && !part
                .strip_prefix('.')
                .is_some_and(|f| TAG_FIELDS.contains(&f))
        {
            return Err(LogConfigError::NotYet(format!("--log-opt tag={t}")));
        }
    }
    Ok(())
}

/// dockerd's `stringid.TruncateID`.
fn short_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    &id[..id.len().min(12)]
}

/// Renders a `tag` checked by [`check_tag`] as dockerd's `ParseLogTag` does.
pub fn render_tag(t: &str, info: &TagInfo) -> String {
    let mut out = String::new();
    for (action, part) in tag_parts(t) {
        if !action {
            out.push_str(part);
            continue;
        }
        match part.trim_start_matches('.') {
            "ID" => out.push_str(short_id(&info.id)),
            "FullID" => out.push_str(&info.id),
            "Name" => out.push_str(info.name.trim_start_matches('/')),
            "ImageID" => out.push_str(short_id(&info.image_id)),
            "ImageFullID" => out.push_str(&info.image_id),
            "ImageName" => out.push_str(&info.image_name),
            "DaemonName" => out.push_str("docker"),
            "Command" => out.push_str(&info.command.join(" ")),
            _ => {}
        }
    }
    out
}

/// dockerd's `Info.ExtraAttributes`, and json-file's `tag` attribute: the container's labels named by `labels` (a comma
/// list) or matching `labels-regex`, and its environment variables named by `env` or
/// matching `env-regex`, written into each json-file entry as `attrs`. `None` when there
/// are none.
pub fn extra_attributes(
    opts: Option<&HashMap<String, String>>,
    labels: Option<&HashMap<String, String>>,
    env: &[String],
    tag: impl FnOnce() -> TagInfo,
) -> Option<std::collections::BTreeMap<String, String>> {
    let opts = opts?;
    let mut extra = std::collections::BTreeMap::new();
    if let Some(t) = opts.get("tag").filter(|t| !t.is_empty()) {
        extra.insert("tag".to_owned(), render_tag(t, &tag()));
    }
    let empty = HashMap::new();
    let labels = labels.unwrap_or(&empty);
    let opt = |k: &str| opts.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(names) = opt("labels") {
        for name in names.split(',') {
            if let Some(v) = labels.get(name) {
                extra.insert(name.to_owned(), v.clone());
            }
        }
    }
    if let Some(re) = opt("labels-regex").and_then(|r| regex_lite::Regex::new(r).ok()) {
        for (k, v) in labels {
            if re.is_match(k) {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    let vars: Vec<(&str, &str)> = env.iter().filter_map(|e| e.split_once('=')).collect();
    if let Some(names) = opt("env") {
        for name in names.split(',') {
            if let Some((k, v)) = vars.iter().rev().find(|(k, _)| *k == name) {
                extra.insert((*k).to_owned(), (*v).to_owned());
            }
        }
    }
    if let Some(re) = opt("env-regex").and_then(|r| regex_lite::Regex::new(r).ok()) {
        for (k, v) in &vars {
            if re.is_match(k) {
                extra.insert((*k).to_owned(), (*v).to_owned());
            }
        }
    }
    (!extra.is_empty()).then_some(extra)
}

/// Parses a map as [`parse`] does.
pub fn parse_map(
    typ: &str,
    opts: Option<&HashMap<String, String>>,
) -> Result<LogSpec, LogConfigError> {
    let pairs: Vec<(&str, &str)> = opts
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    parse(typ, pairs.iter().copied())
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units' `FromHumanSize`: a decimal number with an optional decimal unit
/// (`k`, `m`, `g`, `t`, `p`: powers of 1000; an `i` and a `b` after it are allowed and
/// change nothing), e.g. `10m`, `1.5k`, `200kb`.
pub fn from_human_size(v: &str) -> Result<i64, LogConfigError> {
    let bad = || LogConfigError::Invalid(format!("invalid size: '{v}'"));
    let s = v.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let mut u = unit.as_str();
    let mult: f64 = match u.chars().next() {
        Some('k') => 1e3,
        Some('m') => 1e6,
        Some('g') => 1e9,
        Some('t') => 1e12,
        Some('p') => 1e15,
        _ => 1.0,
    };
    if mult > 1.0 {
        u = &u[1..];
        u = u.strip_prefix('i').unwrap_or(u);
    }
    u = u.strip_prefix('b').unwrap_or(u);
    if !u.is_empty() {
        return Err(bad());
    }
    let bytes = (n * mult) as i64;
    Ok(if neg { -bytes } else { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(typ: &str, opts: &[(&str, &str)]) -> Result<LogSpec, LogConfigError> {
        parse(typ, opts.iter().copied())
    }

    fn invalid(typ: &str, opts: &[(&str, &str)]) -> String {
        match p(typ, opts) {
            Err(LogConfigError::Invalid(m)) => m,
            other => panic!("{typ} {opts:?}: {other:?}"),
        }
    }

    #[test]
    fn json_file_options_as_dockerd() {
        let s = p("", &[("max-size", "10m"), ("max-file", "3")]).unwrap();
        assert_eq!(s.max_size, Some(10_000_000));
        assert_eq!(s.max_file, 3);
        assert_eq!(s.driver, LogDriver::JsonFile);
        assert_eq!(p("json-file", &[]).unwrap(), LogSpec::default());
        assert_eq!(
            p("json-file", &[("compress", "false")]).unwrap().max_file,
            1
        );
        assert_eq!(p("none", &[("x", "y")]).unwrap().driver, LogDriver::None);
    }

    #[test]
    fn bad_options_get_dockerd_words() {
        assert_eq!(
            invalid("json-file", &[("x", "1")]),
            "unknown log opt 'x' for json-file log driver"
        );
        assert_eq!(
            invalid("json-file", &[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(
            invalid("json-file", &[("max-size", "-1")]),
            "max-size must be a positive number"
        );
        assert_eq!(
            invalid("json-file", &[("max-size", "big")]),
            "invalid size: 'big'"
        );
        assert_eq!(
            invalid("json-file", &[("max-file", "0")]),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            invalid("json-file", &[("max-file", "x")]),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            invalid("json-file", &[("compress", "true")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            invalid("bogus", &[]),
            "logger: no log driver named 'bogus' is registered"
        );
        assert_eq!(
            p("local", &[]),
            Err(LogConfigError::NotYet("--log-driver local".into()))
        );
        assert!(
            p(
                "json-file",
                &[("max-size", "1m"), ("max-file", "2"), ("compress", "true")]
            )
            .unwrap()
            .compress
        );
        assert!(p("json-file", &[("tag", "{{.Name}}-x")]).is_ok());
        assert!(matches!(
            p("json-file", &[("tag", "{{split .Name \"-\"}}")]),
            Err(LogConfigError::NotYet(m)) if m.starts_with("--log-opt tag={{split")
        ));
        assert!(p("json-file", &[("labels", "a"), ("env-regex", "^A")]).is_ok());
        assert_eq!(
            p("json-file", &[("cache-disabled", "true")]),
            Err(LogConfigError::NotYet("--log-opt cache-disabled".into()))
        );
        assert_eq!(
            invalid("json-file", &[("max-buffer-size", "4m")]),
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        assert!(matches!(
            p("json-file", &[("labels-regex", "(")]),
            Err(LogConfigError::Invalid(m)) if m.starts_with("error parsing regexp: ")
        ));
    }

    #[test]
    fn human_sizes_are_decimal() {
        assert_eq!(from_human_size("1k").unwrap(), 1000);
        assert_eq!(from_human_size("1.5KB").unwrap(), 1500);
        assert_eq!(from_human_size("2mib").unwrap(), 2_000_000);
        assert_eq!(from_human_size("42").unwrap(), 42);
        assert!(from_human_size("k").is_err());
        assert!(from_human_size("1x").is_err());
    }

    #[test]
    fn extra_attributes_as_dockerd() {
        let map = |kv: &[(&str, &str)]| -> HashMap<String, String> {
            kv.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let labels = map(&[("app", "web"), ("tier", "front"), ("x", "1")]);
        let env = vec!["A=1".to_owned(), "AB=2".to_owned(), "B=3".to_owned()];
        let opts = map(&[
            ("labels", "app,missing"),
            ("labels-regex", "^ti"),
            ("env", "B"),
            ("env-regex", "^A"),
        ]);
        let got = extra_attributes(Some(&opts), Some(&labels), &env, TagInfo::default).unwrap();
        let want: Vec<(&str, &str)> = vec![
            ("A", "1"),
            ("AB", "2"),
            ("B", "3"),
            ("app", "web"),
            ("tier", "front"),
        ];
        assert_eq!(
            got.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            want
        );
        assert!(
            extra_attributes(
                Some(&map(&[("max-size", "1m")])),
                Some(&labels),
                &env,
                TagInfo::default
            )
            .is_none()
        );
        let info = TagInfo {
            id: "0123456789abcdef".into(),
            name: "/web".into(),
            image_id: "sha256:fedcba9876543210".into(),
            image_name: "busybox".into(),
            command: vec!["echo".into(), "hi".into()],
        };
        assert_eq!(
            render_tag(
                "{{.Name}}/{{.ID}} {{ .ImageID }} {{.ImageName}} {{.DaemonName}} {{.Command}}",
                &info
            ),
            "web/0123456789ab fedcba987654 busybox docker echo hi"
        );
        let tagged =
            extra_attributes(Some(&map(&[("tag", "app")])), None, &[], || info.clone()).unwrap();
        assert_eq!(tagged["tag"], "app");
    }

    #[test]
    fn daemon_default_is_merged_as_dockerd() {
        let opts = vec![("max-size".to_owned(), "1m".to_owned())];
        let (mut t, mut c) = (None, None);
        merge_daemon_default(&mut t, &mut c, "json-file", &opts);
        assert_eq!(t.as_deref(), Some("json-file"));
        assert_eq!(c.unwrap()["max-size"], "1m");
        let (mut t, mut c) = (Some("none".to_owned()), None);
        merge_daemon_default(&mut t, &mut c, "json-file", &opts);
        assert!(c.unwrap().is_empty());
    }
}
