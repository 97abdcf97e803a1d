//! The bodies of `POST /containers/{id}/exec` and `POST /exec/{id}/start`, typed, with
//! dockerd's checks of them in its words.
//!
//! The create body is `model::api::ExecConfig` (`AttachStdin`, `AttachStdout`,
//! `AttachStderr`, `DetachKeys`, `Tty`, `Env`, `Cmd`, `Privileged`, `User`,
//! `WorkingDir`), plus what API 1.41's swagger lacks and clients send: `ConsoleSize`
//! (API 1.42's `[height, width]`) and `Detach` (the docker CLI sends it; dockerd reads it
//! only from the start body, and ignores it here, as berthd does). The start body is
//! `model::api::ExecStartConfig` (`Detach`, `Tty`), plus 1.42's `ConsoleSize`.

use serde_json::{Map, Value};

use super::api::{ExecConfig, ExecStartConfig};
use super::create::{ModelError, typed};

/// A parsed exec create request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecCreate {
    pub config: ExecConfig,
    /// The tty's `(rows, columns)` at the start (`ConsoleSize`), if given.
    pub console_size: Option<(u16, u16)>,
}

/// A parsed exec start request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecStart {
    pub config: ExecStartConfig,
    /// Overrides the create's `ConsoleSize` (API 1.42).
    pub console_size: Option<(u16, u16)>,
}

/// Why an exec's request was refused: dockerd's words (400).
#[derive(Debug, thiserror::Error)]
pub enum ExecRequestError {
    /// No body (dockerd's decoder hit EOF).
    #[error("got EOF while reading request body")]
    Eof,
    #[error("No exec command specified")]
    NoCommand,
    #[error("Invalid escape keys ({keys}) provided")]
    DetachKeys { keys: String },
    /// Valid keys, but berthd's exec streams do not detach on a key sequence yet.
    #[error("berthd does not support DetachKeys (--detach-keys) yet")]
    DetachKeysNotYet,
    #[error("the working directory '{dir}' is invalid, it needs to be an absolute path")]
    WorkingDir { dir: String },
    #[error("invalid ConsoleSize: {reason}")]
    ConsoleSize { reason: String },
    #[error(transparent)]
    Body(#[from] ModelError),
}

impl ExecRequestError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidParameter
    }
}

/// Parses an exec create body and applies dockerd's checks: a command, valid detach keys
/// (refused when set: the exec's stream does not detach on keys yet).
/// A relative `WorkingDir` is refused as for a container (dockerd would hand it to the
/// runtime, which refuses it at the start).
pub fn parse_exec_create(body: &[u8]) -> Result<ExecCreate, ExecRequestError> {
    let mut top = object(body)?;
    let console_size = console_size(top.remove("ConsoleSize"))?;
    // Read from the start's body only, as dockerd does.
    top.remove("Detach");
    let config: ExecConfig = typed(Value::Object(top), "")?;
    if config.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ExecRequestError::NoCommand);
    }
    if let Some(keys) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        detach_key_bytes(keys)?;
        return Err(ExecRequestError::DetachKeysNotYet);
    }
    if let Some(dir) = config.working_dir.as_deref() {
        if !dir.is_empty() && !dir.starts_with('/') {
            return Err(ExecRequestError::WorkingDir {
                dir: dir.to_owned(),
            });
        }
    }
    Ok(ExecCreate {
        config,
        console_size,
    })
}

/// Parses an exec start body (`{"Detach":false,"Tty":false}`).
pub fn parse_exec_start(body: &[u8]) -> Result<ExecStart, ExecRequestError> {
    let mut top = object(body)?;
    let console_size = console_size(top.remove("ConsoleSize"))?;
    let config: ExecStartConfig = typed(Value::Object(top), "")?;
    Ok(ExecStart {
        config,
        console_size,
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ExecRequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ExecRequestError::Eof);
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        // Go's decoder leaves everything at its zero value on `null`.
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(ModelError::Syntax {
            reason: "the body must be a JSON object".to_owned(),
        }
        .into()),
        Err(e) => Err(ModelError::Syntax {
            reason: e.to_string(),
        }
        .into()),
    }
}

/// `[height, width]`; `null` or absent is none, as is `[0, 0]`.
fn console_size(v: Option<Value>) -> Result<Option<(u16, u16)>, ExecRequestError> {
    let bad = |reason: &str| ExecRequestError::ConsoleSize {
        reason: reason.to_owned(),
    };
    let list = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("expected [height, width]")),
    };
    let dims: Vec<u16> = list
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad("each size must be a number from 0 to 65535"))
        })
        .collect::<Result<_, _>>()?;
    match dims.as_slice() {
        [0, 0] => Ok(None),
        [h, w] => Ok(Some((*h, *w))),
        _ => Err(bad("expected [height, width]")),
    }
}

/// The bytes of a detach-key list as dockerd's `term.ToBytes` reads it: comma-separated,
/// each one character, `ctrl-@`, `ctrl-a` … `ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`,
/// `ctrl-^`, `ctrl-_`, or `DEL`.
pub fn detach_key_bytes(keys: &str) -> Result<Vec<u8>, ExecRequestError> {
    const CTRL: &[u8] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let code = key.strip_prefix("ctrl-").and_then(|c| match c.as_bytes() {
            [b] => CTRL.iter().position(|x| x == b),
            _ => None,
        });
        match code {
            Some(c) => out.push(u8::try_from(c).unwrap_or(0)),
            None if key == "DEL" => out.push(127),
            None => {
                return Err(ExecRequestError::DetachKeys {
                    keys: keys.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(v: Value) -> Result<ExecCreate, ExecRequestError> {
        parse_exec_create(v.to_string().as_bytes())
    }

    #[test]
    fn the_clis_body_parses() {
        let r = create(
            json!({"User":"","Privileged":false,"Tty":false,"AttachStdin":false,
            "AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,
            "WorkingDir":"","Cmd":["echo","hi"]}),
        )
        .unwrap();
        assert_eq!(r.config.cmd, Some(vec!["echo".to_owned(), "hi".to_owned()]));
        assert_eq!(r.config.attach_stdout, Some(true));
        assert_eq!(r.config.env, None);
        assert_eq!(r.console_size, None);
    }

    #[test]
    fn docker_pys_body_parses_and_unknown_fields_are_ignored() {
        let r = create(
            json!({"Container": "abc", "User": "1000", "Privileged": false,
            "Tty": false, "AttachStdin": false, "AttachStdout": true, "AttachStderr": true,
            "Cmd": ["sh", "-c", "exit 4"], "ConsoleSize": [24, 80], "NoSuchField": 1}),
        )
        .unwrap();
        assert_eq!(r.config.user.as_deref(), Some("1000"));
        assert_eq!(r.console_size, Some((24, 80)));
    }

    #[test]
    fn dockerds_refusals() {
        assert!(matches!(
            parse_exec_create(b"").unwrap_err(),
            ExecRequestError::Eof
        ));
        assert_eq!(
            create(json!({"Cmd": []})).unwrap_err().to_string(),
            "No exec command specified"
        );
        assert!(matches!(
            create(json!({"Cmd": null})).unwrap_err(),
            ExecRequestError::NoCommand
        ));
        assert_eq!(
            create(json!({"Cmd": ["x"], "DetachKeys": "ctrl-"}))
                .unwrap_err()
                .to_string(),
            "Invalid escape keys (ctrl-) provided"
        );
        assert_eq!(
            create(json!({"Cmd": ["x"], "DetachKeys": "ctrl-a,q"}))
                .unwrap_err()
                .to_string(),
            "berthd does not support DetachKeys (--detach-keys) yet"
        );
        assert_eq!(
            create(json!({"Cmd": ["x"], "WorkingDir": "tmp"}))
                .unwrap_err()
                .to_string(),
            "the working directory 'tmp' is invalid, it needs to be an absolute path"
        );
        let e = create(json!({"Cmd": "ls"})).unwrap_err();
        assert!(e.to_string().starts_with("invalid Cmd:"), "{e}");
        let e = create(json!({"Cmd": ["x"], "Tty": "yes"})).unwrap_err();
        assert!(e.to_string().starts_with("invalid Tty:"), "{e}");
        let e = create(json!({"Cmd": ["x"], "ConsoleSize": [1]})).unwrap_err();
        assert!(e.to_string().starts_with("invalid ConsoleSize"), "{e}");
        let e = create(json!({"Cmd": ["x"], "ConsoleSize": [-1, 3]})).unwrap_err();
        assert!(e.to_string().starts_with("invalid ConsoleSize"), "{e}");
        assert!(parse_exec_create(b"[1]").is_err());
        assert!(parse_exec_create(b"{").is_err());
    }

    #[test]
    fn detach_keys_as_dockerd_reads_them() {
        assert_eq!(detach_key_bytes("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            detach_key_bytes("a,ctrl-@,DEL,ctrl-_").unwrap(),
            vec![b'a', 0, 127, 31]
        );
        assert!(detach_key_bytes("ctrl-P").is_err());
        assert!(detach_key_bytes("ab").is_err());
    }

    #[test]
    fn start_bodies() {
        let s = parse_exec_start(br#"{"Detach":false,"Tty":true}"#).unwrap();
        assert_eq!(s.config.tty, Some(true));
        assert_eq!(s.config.detach, Some(false));
        let s = parse_exec_start(br#"{"Tty": false, "Detach": true, "ConsoleSize": [10, 20]}"#)
            .unwrap();
        assert_eq!(s.config.detach, Some(true));
        assert_eq!(s.console_size, Some((10, 20)));
        assert!(matches!(
            parse_exec_start(b" ").unwrap_err(),
            ExecRequestError::Eof
        ));
        assert!(parse_exec_start(br#"{"Detach":"no"}"#).is_err());
    }
}
