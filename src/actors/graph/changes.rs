//! The image config document and `docker import --change` instructions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::messages::ImageRuntimeConfig;

/// The `config` section of an image config, as Docker writes it (`container.Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`: what a container of the image checks, unless its create says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::model::api::HealthConfig>,
}

impl ContainerConfig {
    /// The subset the rest of the daemon uses.
    pub fn runtime(&self) -> ImageRuntimeConfig {
        ImageRuntimeConfig {
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            working_dir: self.working_dir.clone(),
            user: self.user.clone(),
            labels: self.labels.clone(),
            exposed_ports: self.exposed_ports.clone(),
            stop_signal: self.stop_signal.clone(),
            volumes: self.volumes.clone(),
            healthcheck: self.healthcheck.clone(),
        }
    }
}

/// Applies Dockerfile-style instructions (`CMD ["sh"]`, `ENV A=b`, …) in order.
/// `Err((change, reason))` names the first instruction that is not valid.
pub fn apply_changes(
    cfg: &mut ContainerConfig,
    changes: &[String],
) -> Result<(), (String, String)> {
    for change in changes {
        let line = change.trim();
        if line.is_empty() {
            continue;
        }
        apply_one(cfg, line).map_err(|reason| (change.clone(), reason))?;
    }
    Ok(())
}

fn apply_one(cfg: &mut ContainerConfig, line: &str) -> Result<(), String> {
    let (instr, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(command_form(rest)?),
        "ENTRYPOINT" => cfg.entrypoint = Some(command_form(rest)?),
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest, "ENV")? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(rest, "LABEL")? {
                labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let dir = single_word(rest, "WORKDIR")?;
            cfg.working_dir = if dir.starts_with('/') || cfg.working_dir.is_empty() {
                if dir.starts_with('/') {
                    dir
                } else {
                    format!("/{dir}")
                }
            } else {
                format!("{}/{}", cfg.working_dir.trim_end_matches('/'), dir)
            };
        }
        "USER" => cfg.user = single_word(rest, "USER")?,
        "EXPOSE" => {
            let words = split_words(rest)?;
            if words.is_empty() {
                return Err("EXPOSE requires at least one port".into());
            }
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for w in words {
                ports.insert(port_key(&w)?, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest).map_err(|e| e.to_string())?
            } else {
                split_words(rest)?
            };
            if list.is_empty() {
                return Err("VOLUME requires at least one path".into());
            }
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                vols.insert(v, serde_json::json!({}));
            }
        }
        "STOPSIGNAL" => cfg.stop_signal = Some(single_word(rest, "STOPSIGNAL")?),
        "ONBUILD" => {
            if rest.is_empty() {
                return Err("ONBUILD requires an instruction".into());
            }
            cfg.on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_owned());
        }
        "HEALTHCHECK" => cfg.healthcheck = Some(healthcheck(rest)?),
        other => {
            return Err(format!(
                "{} is not a valid change command",
                other.to_ascii_lowercase()
            ));
        }
    }
    Ok(())
}

/// dockerd's `parseHealthcheck`: `NONE`, or `[--interval=D] [--timeout=D]
/// [--start-period=D] [--retries=N] CMD <command>` (exec form `CMD`, shell form
/// `CMD-SHELL`).
fn healthcheck(rest: &str) -> Result<crate::model::api::HealthConfig, String> {
    let mut hc = crate::model::api::HealthConfig::default();
    let mut rest = rest.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end]
            .split_once('=')
            .ok_or_else(|| format!("missing a value on flag: --{}", &flag[..end]))?;
        let duration = |v: &str| -> Result<i64, String> {
            let d = crate::util::parse_go_duration(v)
                .ok_or_else(|| format!("time: invalid duration {v:?}"))?;
            let ns =
                i64::try_from(d.as_nanos()).map_err(|_| format!("time: invalid duration {v:?}"))?;
            if ns != 0 && ns < 1_000_000 {
                return Err(format!("Interval {name:?} cannot be less than 1ms"));
            }
            Ok(ns)
        };
        match name {
            "interval" => hc.interval = Some(duration(value)?),
            "timeout" => hc.timeout = Some(duration(value)?),
            "start-period" => hc.start_period = Some(duration(value)?),
            "retries" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| format!("strconv.ParseInt: parsing {value:?}: invalid syntax"))?;
                if n < 1 {
                    return Err(format!("--retries must be at least 1 (not {n})"));
                }
                hc.retries = Some(n);
            }
            other => return Err(format!("Unknown flag: {other}")),
        }
        rest = flag[end..].trim_start();
    }
    let (typ, cmd) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !cmd.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".into());
            }
            hc.test = Some(vec!["NONE".into()]);
        }
        "CMD" => {
            if cmd.is_empty() {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            let test = match serde_json::from_str::<Vec<String>>(cmd) {
                Ok(v) if cmd.starts_with('[') => {
                    std::iter::once("CMD".to_owned()).chain(v).collect()
                }
                _ => vec!["CMD-SHELL".to_owned(), cmd.to_owned()],
            };
            hc.test = Some(test);
        }
        other => return Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)")),
    }
    Ok(hc)
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn command_form(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    if rest.is_empty() {
        return Err("a command is required".into());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn single_word(rest: &str, instr: &str) -> Result<String, String> {
    let words = split_words(rest)?;
    match words.as_slice() {
        [w] => Ok(w.clone()),
        _ => Err(format!("{instr} requires exactly one argument")),
    }
}

/// `ENV a=b "c d"=e` or the legacy `ENV key value with spaces`.
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err(format!("{instr} requires at least one argument"));
    }
    if !words[0].contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let key = words[0].clone();
        let value = rest
            .trim_start()
            .strip_prefix(raw_first_word(rest))
            .unwrap_or("")
            .trim()
            .to_owned();
        if value.is_empty() && instr == "ENV" {
            return Err(format!("{instr} names {key} but gives no value"));
        }
        return Ok(vec![(key, value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{instr} expects key=value, got {w:?}")),
        })
        .collect()
}

fn raw_first_word(s: &str) -> &str {
    let s = s.trim_start();
    s.split(char::is_whitespace).next().unwrap_or("")
}

/// Splits on whitespace, honouring single quotes, double quotes and backslashes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n) => cur.push(n),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `80` → `80/tcp`; `53/udp` stays; ranges are refused.
fn port_key(w: &str) -> Result<String, String> {
    let (port, proto) = match w.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (w, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol in {w:?}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("{p}/{proto}")),
        _ => Err(format!("invalid port {w:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, (String, String)> {
        let mut cfg = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut cfg, &changes).map(|()| cfg)
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = apply(&[r#"CMD ["sh", "-c", "echo hi"]"#, "ENTRYPOINT /bin/app --x"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/app --x"]);
        let c = apply(&["cmd echo [x]"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo [x]"]);
    }

    #[test]
    fn env_label_forms() {
        let c = apply(&[
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV LEGACY some value",
            "ENV A=3",
            r#"LABEL "com.x"="y z" k=v"#,
        ])
        .unwrap();
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "C=x y", "LEGACY=some value", "A=3"]
        );
        let labels = c.labels.unwrap();
        assert_eq!(labels["com.x"], "y z");
        assert_eq!(labels["k"], "v");
    }

    #[test]
    fn workdir_user_expose_volume() {
        let c = apply(&[
            "WORKDIR /app",
            "WORKDIR sub",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
            r#"VOLUME ["/data"]"#,
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.working_dir, "/app/sub");
        assert_eq!(c.user, "1000:1000");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn bad_changes_are_named() {
        let (change, reason) = apply(&["CMD x", "FROM busybox"]).unwrap_err();
        assert_eq!(change, "FROM busybox");
        assert!(reason.contains("not a valid change command"), "{reason}");
        assert_eq!(reason, "from is not a valid change command");
        let c = apply(&["HEALTHCHECK --interval=200ms --retries=2 CMD wget -q localhost"]).unwrap();
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc.test.unwrap(), vec!["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(
            (hc.interval, hc.retries, hc.timeout),
            (Some(200_000_000), Some(2), None)
        );
        let c = apply(&[r#"HEALTHCHECK CMD ["true"]"#]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test.unwrap(), vec!["CMD", "true"]);
        let c = apply(&["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test.unwrap(), vec!["NONE"]);
        let (_, reason) = apply(&["HEALTHCHECK RUN true"]).unwrap_err();
        assert_eq!(reason, "Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
        assert!(apply(&["EXPOSE 99999"]).is_err());
        assert!(apply(&["EXPOSE 80/xyz"]).is_err());
        assert!(apply(&["USER"]).is_err());
        assert!(apply(&["ENV A=\"unterminated"]).is_err());
        assert!(apply(&["ENV =x"]).is_err());
    }

    #[test]
    fn empty_config_serialises_like_docker() {
        let v = serde_json::to_value(ContainerConfig::default()).unwrap();
        assert_eq!(v["Cmd"], serde_json::Value::Null);
        assert_eq!(v["WorkingDir"], "");
        assert!(v.get("ExposedPorts").is_none());
    }
}
