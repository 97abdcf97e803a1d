//! Every key that dockerd prints, in replies built from the typed models.
//!
//! The `bollard-stubs` types skip a field that is `None` when they serialise, and a few
//! of them cannot hold dockerd's value at all (an empty map where dockerd prints `null`).
//! dockerd, written in Go, always prints every field that is not `omitempty`: a string
//! as `""`, a nil slice, map or pointer as `null`. Clients depend on that: `docker inspect
//! -f '{{.Config.Env}}'` fails with "map has no entry for key" when a key is missing. So a
//! reply is built typed, serialised to a [`Value`], and then completed here from a
//! template of dockerd's key set ([`Template`]), which supplies the value dockerd prints
//! when it has nothing to say.
//!
//! A template is JSON, one file per reply under `src/model/keys/`, written from what
//! dockerd 20.10 printed and from its Go types. What a template entry means:
//! - a scalar, `null`, `[]` or `{}`: the value inserted when the key is missing;
//! - an object with named entries: the key set of a nested object (a Go struct). A missing
//!   key gets the object of its entries' fills; a present object is completed in turn;
//! - an object holding `"&": true` besides its entries: a Go pointer to a struct. A present
//!   object is completed as above; a missing key gets `null`;
//! - an object holding `"*": T`: a Go map. Every member of the value that no other entry
//!   names is completed with `T`; a missing key gets `null`;
//! - an array `[T]`: a Go slice of structs. Every element of a present array is completed
//!   with `T`; a missing key gets `null`.
//!
//! A value that is present but of another kind (a `null` where the template has an
//! object) is left as it is: a nil pointer prints as `null` in dockerd too. Keys that
//! dockerd marks `omitempty` are not in the templates, so a typed `None` there is omitted
//! as dockerd omits it.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The marker of a pointer-to-struct template.
const POINTER: &str = "&";
/// The key of a map template's member template.
const MEMBERS: &str = "*";

/// The dockerd key sets berthd completes its replies from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// `GET /info` (`types.Info`).
    SystemInfo,
    /// `GET /version` (`types.Version`).
    SystemVersion,
    /// `GET /images/{name}/json` (`types.ImageInspect`).
    ImageInspect,
    /// One element of `GET /images/json` (`types.ImageSummary`).
    ImageSummary,
    /// `container.Config`: an image's `Config` and `ContainerConfig`, and a container's
    /// `Config`.
    ContainerConfig,
    /// `container.HostConfig`: a container's `HostConfig`, and the zero values a create
    /// request starts from.
    HostConfig,
    /// `GET /containers/{id}/json` (`types.ContainerJSON`).
    ContainerInspect,
    /// One element of `GET /containers/json` (`types.Container`).
    ContainerSummary,
}

impl Template {
    /// The template, parsed once.
    pub fn value(self) -> &'static Value {
        static INFO: OnceLock<Value> = OnceLock::new();
        static VERSION: OnceLock<Value> = OnceLock::new();
        static IMAGE: OnceLock<Value> = OnceLock::new();
        static SUMMARY: OnceLock<Value> = OnceLock::new();
        static CONFIG: OnceLock<Value> = OnceLock::new();
        static HOST_CONFIG: OnceLock<Value> = OnceLock::new();
        static CONTAINER: OnceLock<Value> = OnceLock::new();
        static CONTAINER_ROW: OnceLock<Value> = OnceLock::new();
        match self {
            Template::SystemInfo => INFO.get_or_init(|| parse(include_str!("keys/info.json"))),
            Template::SystemVersion => {
                VERSION.get_or_init(|| parse(include_str!("keys/version.json")))
            }
            Template::ImageInspect => IMAGE.get_or_init(image_inspect),
            Template::ImageSummary => {
                SUMMARY.get_or_init(|| parse(include_str!("keys/image-summary.json")))
            }
            Template::ContainerConfig => {
                CONFIG.get_or_init(|| parse(include_str!("keys/container-config.json")))
            }
            Template::HostConfig => {
                HOST_CONFIG.get_or_init(|| parse(include_str!("keys/host-config.json")))
            }
            Template::ContainerInspect => CONTAINER.get_or_init(container_inspect),
            Template::ContainerSummary => {
                CONTAINER_ROW.get_or_init(|| parse(include_str!("keys/container-summary.json")))
            }
        }
    }

    /// Completes `value` with this template's keys (see [`complete`]).
    pub fn complete(self, value: &mut Value) {
        complete(value, self.value());
    }
}

/// Parses a template compiled into the binary. The unit tests parse each one, so a
/// broken template cannot ship; should one still fail, replies go uncompleted rather
/// than the daemon failing.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a key template does not parse");
        Value::Null
    })
}

/// `types.ImageInspect`: `ContainerConfig` is a struct (dockerd prints its zero value for
/// an image that has none) and `Config` a pointer to one (`null` when the image has none),
/// both of `container.Config`'s key set.
fn image_inspect() -> Value {
    let mut t = parse(include_str!("keys/image-inspect.json"));
    let config = Template::ContainerConfig.value().clone();
    let mut pointer = config.clone();
    if let Value::Object(m) = &mut pointer {
        m.insert(POINTER.to_owned(), Value::Bool(true));
    }
    if let Value::Object(m) = &mut t {
        m.insert("ContainerConfig".to_owned(), config);
        m.insert("Config".to_owned(), pointer);
    }
    t
}

/// `types.ContainerJSON`: `Config` and `HostConfig` are pointers to structs of their
/// own key sets.
fn container_inspect() -> Value {
    let mut t = parse(include_str!("keys/container-inspect.json"));
    for (key, part) in [
        ("Config", Template::ContainerConfig),
        ("HostConfig", Template::HostConfig),
    ] {
        let mut pointer = part.value().clone();
        if let Value::Object(m) = &mut pointer {
            m.insert(POINTER.to_owned(), Value::Bool(true));
        }
        if let Value::Object(m) = &mut t {
            m.insert(key.to_owned(), pointer);
        }
    }
    t
}

/// Adds to `value` every key of `template` that it lacks, recursively (see the module
/// docs for what a template says). Keys of `value` that the template does not name are
/// kept.
pub fn complete(value: &mut Value, template: &Value) {
    match (value, template) {
        (Value::Object(v), Value::Object(t)) => {
            for (key, sub) in t {
                if key == POINTER || key == MEMBERS {
                    continue;
                }
                match v.get_mut(key) {
                    Some(present) => complete(present, sub),
                    None => {
                        v.insert(key.clone(), fill(sub));
                    }
                }
            }
            if let Some(member) = t.get(MEMBERS) {
                for (key, present) in v.iter_mut() {
                    if !t.contains_key(key) {
                        complete(present, member);
                    }
                }
            }
        }
        (Value::Array(v), Value::Array(t)) => {
            if let [element] = t.as_slice() {
                for present in v {
                    complete(present, element);
                }
            }
        }
        _ => {}
    }
}

/// The value dockerd prints for a key of this template that it has nothing for.
fn fill(template: &Value) -> Value {
    match template {
        Value::Object(t) if t.contains_key(POINTER) || t.contains_key(MEMBERS) => Value::Null,
        Value::Object(t) => Value::Object(
            t.iter()
                .map(|(k, sub)| (k.clone(), fill(sub)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(t) if t.len() == 1 => Value::Null,
        other => other.clone(),
    }
}

/// Sets to `null` each member named by a JSON pointer (`/GraphDriver/Data`) that holds an
/// empty array or object. For typed fields that cannot be `None` (bollard's
/// `ImageSummary::labels` is a map, not an optional one) where dockerd prints a nil slice
/// or map as `null`. Pointers that name nothing are skipped.
pub fn null_if_empty(value: &mut Value, pointers: &[&str]) {
    for p in pointers {
        if let Some(v) = value.pointer_mut(p) {
            let empty = match v {
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if empty {
                *v = Value::Null;
            }
        }
    }
}

/// The paths (`Plugins.Log`, `Runtimes.*.path`, `Components[].Name`) of the keys of
/// `reference` that `value` lacks: what a test asserts empty to show that a completed
/// reply has every key that dockerd printed. A `null` in `value` where `reference` has an
/// object or array stands for the whole of it.
pub fn missing_keys(value: &Value, reference: &Value) -> Vec<String> {
    let mut out = Vec::new();
    missing_in(value, reference, String::new(), &mut out);
    out
}

fn missing_in(value: &Value, reference: &Value, path: String, out: &mut Vec<String>) {
    match (value, reference) {
        (Value::Object(v), Value::Object(r)) => {
            for (key, sub) in r {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match v.get(key) {
                    Some(present) => missing_in(present, sub, here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(v), Value::Array(r)) => {
            // Every element of the value against the reference's first one: the
            // elements of a reply share one shape.
            if let Some(first) = r.first() {
                for present in v {
                    missing_in(present, first, format!("{path}[]"), out);
                }
            }
        }
        _ => {}
    }
}

/// A reply dockerd 20.10 gave, from tests/fixtures/dockerd-20.10 (for the tests that hold
/// berthd's replies to dockerd's key sets).
#[cfg(test)]
pub fn dockerd_fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/dockerd-20.10/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALL: [Template; 8] = [
        Template::SystemInfo,
        Template::SystemVersion,
        Template::ImageInspect,
        Template::ImageSummary,
        Template::ContainerConfig,
        Template::HostConfig,
        Template::ContainerInspect,
        Template::ContainerSummary,
    ];

    #[test]
    fn every_template_parses_to_an_object() {
        for t in ALL {
            assert!(t.value().is_object(), "{t:?}");
        }
    }

    /// The keys of `reference` (a dockerd reply) that `template` does not name.
    fn uncovered(template: &Value, reference: &Value, path: &str, out: &mut Vec<String>) {
        match (template, reference) {
            (Value::Object(t), Value::Object(r)) => {
                for (key, sub) in r {
                    let here = format!("{path}/{key}");
                    match t.get(key).or_else(|| t.get(MEMBERS)) {
                        Some(t) => uncovered(t, sub, &here, out),
                        None => out.push(here),
                    }
                }
            }
            (Value::Array(t), Value::Array(r)) => {
                if let Some(t) = t.first() {
                    for sub in r {
                        uncovered(t, sub, &format!("{path}[]"), out);
                    }
                }
            }
            _ => {}
        }
    }

    use super::dockerd_fixture as fixture;

    #[test]
    fn templates_name_every_key_dockerd_printed() {
        let images = fixture("images.json");
        for (template, reply, omitempty) in [
            (Template::SystemInfo, fixture("info.json"), &[][..]),
            (
                Template::SystemVersion,
                fixture("version.json"),
                // `omitempty` in `types.Version`: printed because dockerd had values.
                &[
                    "/Components[]/Details",
                    "/MinAPIVersion",
                    "/KernelVersion",
                    "/BuildTime",
                ][..],
            ),
            (
                Template::ImageInspect,
                fixture("image-inspect.json"),
                &[][..],
            ),
            (Template::ImageSummary, images[0].clone(), &[][..]),
        ] {
            let mut out = Vec::new();
            uncovered(template.value(), &reply, "", &mut out);
            out.retain(|p| !omitempty.contains(&p.as_str()));
            assert!(out.is_empty(), "{template:?} lacks {out:?}");
        }
        for row in images.as_array().unwrap() {
            let mut out = Vec::new();
            uncovered(Template::ImageSummary.value(), row, "", &mut out);
            assert!(out.is_empty(), "{out:?}");
        }
    }

    #[test]
    fn templates_name_no_key_dockerd_did_not_print() {
        // Only `omitempty` keys may be missing from a reply; a template key that dockerd
        // never prints would add a key dockerd does not have.
        for (template, reply) in [
            (Template::SystemInfo, fixture("info.json")),
            (Template::SystemVersion, fixture("version.json")),
            (Template::ImageInspect, fixture("image-inspect.json")),
            (Template::ImageSummary, fixture("images.json")[0].clone()),
        ] {
            let mut filled = json!({});
            template.complete(&mut filled);
            let mut extra = Vec::new();
            uncovered(&reply, &filled, "", &mut extra);
            assert!(extra.is_empty(), "{template:?} adds {extra:?}");
        }
    }

    #[test]
    fn missing_keys_get_dockerds_empty_values() {
        let t = json!({"A": "", "B": null, "C": 0, "D": false, "E": [], "F": {}});
        let mut v = json!({"A": "x"});
        complete(&mut v, &t);
        assert_eq!(
            v,
            json!({"A": "x", "B": null, "C": 0, "D": false, "E": [], "F": {}})
        );
    }

    #[test]
    fn a_struct_is_filled_and_a_present_one_completed() {
        let t = json!({"S": {"X": "", "Y": {"Z": 0}}});
        let mut missing = json!({});
        complete(&mut missing, &t);
        assert_eq!(missing, json!({"S": {"X": "", "Y": {"Z": 0}}}));
        let mut partial = json!({"S": {"X": "a", "Y": {}, "Extra": 1}});
        complete(&mut partial, &t);
        assert_eq!(partial, json!({"S": {"X": "a", "Y": {"Z": 0}, "Extra": 1}}));
    }

    #[test]
    fn a_pointer_is_null_when_missing_and_completed_when_present() {
        let t = json!({"P": {"&": true, "X": ""}});
        let mut missing = json!({});
        complete(&mut missing, &t);
        assert_eq!(missing, json!({"P": null}));
        let mut present = json!({"P": {}});
        complete(&mut present, &t);
        assert_eq!(present, json!({"P": {"X": ""}}));
        // A nil pointer stays nil.
        let mut nil = json!({"P": null});
        complete(&mut nil, &t);
        assert_eq!(nil, json!({"P": null}));
    }

    #[test]
    fn a_map_completes_each_member() {
        let t = json!({"M": {"*": {"path": "", "n": 0}}});
        let mut missing = json!({});
        complete(&mut missing, &t);
        assert_eq!(missing, json!({"M": null}));
        let mut present = json!({"M": {"a": {"path": "/x"}, "b": {}}});
        complete(&mut present, &t);
        assert_eq!(
            present,
            json!({"M": {"a": {"path": "/x", "n": 0}, "b": {"path": "", "n": 0}}})
        );
    }

    #[test]
    fn a_slice_completes_each_element() {
        let t = json!({"L": [{"Name": "", "Version": ""}]});
        let mut missing = json!({});
        complete(&mut missing, &t);
        assert_eq!(missing, json!({"L": null}));
        let mut present = json!({"L": [{"Name": "a"}, {"Version": "1"}]});
        complete(&mut present, &t);
        assert_eq!(
            present,
            json!({"L": [{"Name": "a", "Version": ""}, {"Name": "", "Version": "1"}]})
        );
    }

    #[test]
    fn the_image_template_has_config_as_pointer_and_container_config_as_struct() {
        let mut v = json!({});
        Template::ImageInspect.complete(&mut v);
        assert_eq!(v["Config"], Value::Null);
        assert_eq!(v["ContainerConfig"]["Env"], Value::Null);
        assert_eq!(v["ContainerConfig"]["Hostname"], "");
        assert_eq!(v["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
        let mut with_config = json!({"Config": {"Cmd": ["sh"]}});
        Template::ImageInspect.complete(&mut with_config);
        assert_eq!(with_config["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(with_config["Config"]["Labels"], Value::Null);
        assert!(with_config["Config"].get("&").is_none());
    }

    #[test]
    fn empty_collections_become_null_where_asked() {
        let mut v = json!({"L": {}, "R": [], "K": ["a"], "G": {"Data": {}}});
        null_if_empty(&mut v, &["/L", "/R", "/K", "/G/Data", "/Nope"]);
        assert_eq!(
            v,
            json!({"L": null, "R": null, "K": ["a"], "G": {"Data": null}})
        );
    }

    #[test]
    fn missing_keys_names_each_path() {
        let reference = json!({"A": 1, "B": {"C": 1, "D": 1}, "L": [{"N": 1}], "Z": null});
        let v = json!({"A": 2, "B": {"C": 2}, "L": [{"N": 2}, {}]});
        assert_eq!(missing_keys(&v, &reference), ["B.D", "L[].N", "Z"]);
        assert!(missing_keys(&reference, &reference).is_empty());
    }
}
