//! Image references: `name[:tag]`, `sha256:<id>`, `<id>` and id prefixes.
//!
//! Names are normalised to the familiar form Docker shows: `docker.io/library/busybox`
//! and `library/busybox` both become `busybox`; `docker.io/user/app` becomes `user/app`.

/// What a client's reference string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A repository and tag, both normalised (`busybox`, `latest`).
    Tagged { name: String, tag: String },
    /// A full image id (64 lowercase hex digits, without `sha256:`).
    Id(String),
    /// Something that may be a unique prefix of an image id (hex, without `sha256:`).
    Prefix(String),
    /// A repository and the digest of the manifest it was pulled or pushed by
    /// (`busybox`, `sha256:<hex>`).
    Digested { name: String, digest: String },
}

/// The default tag when a reference has none.
pub const DEFAULT_TAG: &str = "latest";

/// Parses what `ResolveImage` gets. `Err` carries the reason when the text is not a
/// valid reference at all (the caller reports it as not found, as Docker does for
/// lookups).
pub fn parse_reference(s: &str) -> Result<Reference, String> {
    if let Some(hex) = s.strip_prefix("sha256:") {
        if crate::util::is_full_id(hex) {
            return Ok(Reference::Id(hex.to_owned()));
        }
        if is_hex(hex) && !hex.is_empty() {
            return Ok(Reference::Prefix(hex.to_owned()));
        }
        return Err("invalid image id".to_owned());
    }
    if crate::util::is_full_id(s) {
        return Ok(Reference::Id(s.to_owned()));
    }
    if let Some((name, digest)) = s.split_once('@') {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| crate::util::is_full_id(h))
            .ok_or_else(|| format!("invalid digest {digest:?}"))?;
        return Ok(Reference::Digested {
            name: normalize_name(name)?,
            digest: format!("sha256:{hex}"),
        });
    }
    let (name, tag) = split_name_tag(s);
    let name = normalize_name(name)?;
    let tag = match tag {
        Some(t) => {
            validate_tag(t)?;
            t.to_owned()
        }
        None => DEFAULT_TAG.to_owned(),
    };
    Ok(Reference::Tagged { name, tag })
}

/// Whether `s` could also be an id prefix (used when a name lookup fails).
pub fn as_id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty() && hex.len() <= 64 && is_hex(hex)).then_some(hex)
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits `name[:tag]`; the tag is after the last `:` that comes after the last `/`
/// (so that `localhost:5000/app` has no tag).
pub fn split_name_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// Validates a repository name and returns its familiar form.
pub fn normalize_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("repository name must not be empty".to_owned());
    }
    if name.len() > 255 {
        return Err("repository name must not be longer than 255 characters".to_owned());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first component with a dot or colon, or `localhost`, is a registry host.
    let has_domain = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    let mut domain = None;
    if has_domain {
        let d = parts.remove(0);
        validate_domain(d)?;
        domain = Some(d);
    }
    for p in &parts {
        validate_path_component(p)?;
    }
    let official = matches!(domain, None | Some("docker.io" | "index.docker.io"));
    if official {
        if parts.len() == 2 && parts[0] == "library" {
            parts.remove(0);
        }
        return Ok(parts.join("/"));
    }
    Ok(format!(
        "{}/{}",
        domain.unwrap_or_default(),
        parts.join("/")
    ))
}

fn validate_domain(d: &str) -> Result<(), String> {
    let ok = !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid registry host {d:?}"))
    }
}

/// A path component: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn validate_path_component(p: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "invalid repository name component {p:?} (must be lowercase letters, digits and separators)"
        ))
    };
    let bytes = p.as_bytes();
    if bytes.is_empty() {
        return bad();
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or "-"+.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(t: &str) -> Result<(), String> {
    let b = t.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {t:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(name: &str, tag: &str) -> Reference {
        Reference::Tagged {
            name: name.into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn names_normalise_to_the_familiar_form() {
        assert_eq!(parse_reference("busybox"), Ok(tagged("busybox", "latest")));
        assert_eq!(
            parse_reference("busybox:1.36"),
            Ok(tagged("busybox", "1.36"))
        );
        assert_eq!(
            parse_reference("library/busybox"),
            Ok(tagged("busybox", "latest"))
        );
        assert_eq!(
            parse_reference("docker.io/library/busybox:musl"),
            Ok(tagged("busybox", "musl"))
        );
        assert_eq!(
            parse_reference("index.docker.io/user/app"),
            Ok(tagged("user/app", "latest"))
        );
        assert_eq!(
            parse_reference("localhost:5000/app"),
            Ok(tagged("localhost:5000/app", "latest"))
        );
        assert_eq!(
            parse_reference("quay.io/a/b:v1"),
            Ok(tagged("quay.io/a/b", "v1"))
        );
        assert_eq!(
            parse_reference("my_app-x.y"),
            Ok(tagged("my_app-x.y", "latest"))
        );
    }

    #[test]
    fn bad_names_and_tags_are_refused() {
        assert!(parse_reference("BusyBox").is_err());
        assert!(parse_reference("busybox:").is_err());
        assert!(parse_reference("busy box").is_err());
        assert!(parse_reference("a//b").is_err());
        assert!(parse_reference("-a").is_err());
        assert!(parse_reference("a:b:c").is_err());
        assert!(parse_reference("a@sha256:00").is_err());
        assert!(parse_reference("sha256:xyz").is_err());
        assert!(parse_reference("").is_err());
    }

    #[test]
    fn ids_and_prefixes() {
        let id = "a".repeat(64);
        assert_eq!(parse_reference(&id), Ok(Reference::Id(id.clone())));
        assert_eq!(
            parse_reference(&format!("sha256:{id}")),
            Ok(Reference::Id(id.clone()))
        );
        assert_eq!(
            parse_reference("sha256:abc"),
            Ok(Reference::Prefix("abc".into()))
        );
        // A short hex string is a valid name too; the store tries the name first.
        assert_eq!(parse_reference("abc"), Ok(tagged("abc", "latest")));
        assert_eq!(as_id_prefix("abc"), Some("abc"));
        assert_eq!(as_id_prefix("sha256:ab"), Some("ab"));
        assert_eq!(as_id_prefix("busybox"), None);
        assert_eq!(as_id_prefix(""), None);
    }

    #[test]
    fn split_keeps_registry_ports() {
        assert_eq!(split_name_tag("a:1"), ("a", Some("1")));
        assert_eq!(split_name_tag("host:5000/a"), ("host:5000/a", None));
        assert_eq!(split_name_tag("host:5000/a:2"), ("host:5000/a", Some("2")));
    }
}
