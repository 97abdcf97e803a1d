//! Finding the container's command in its `PATH`, with Go's `exec.LookPath` error texts
//! (the docker CLI reads them to pick exit status 127 or 126).

use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};

/// `PATH` when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `PATH` value of an environment list, or the default.
pub fn path_of(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// Go's text for an errno: strerror with a lower-case first letter.
pub fn errno_text(e: nix::errno::Errno) -> String {
    let d = e.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Go's `%q` for the simple strings we quote.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn check_executable(p: &Path) -> Result<(), String> {
    let md = std::fs::metadata(p).map_err(|e| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT));
        format!("stat {}: {}", p.display(), errno_text(errno))
    })?;
    if md.is_dir() {
        return Err(errno_text(nix::errno::Errno::EISDIR));
    }
    access(p, AccessFlags::X_OK).map_err(errno_text)
}

/// Looks `name` up as `exec.LookPath` does: a name with a `/` is checked as is, others
/// in each directory of `path`.
pub fn look_path(name: &str, path: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        return match check_executable(Path::new(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(e) => Err(format!("exec: {}: {e}", quote(name))),
        };
    }
    if !name.is_empty() {
        for dir in path.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let p = Path::new(dir).join(name);
            if check_executable(&p).is_ok() {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "exec: {}: executable file not found in $PATH",
        quote(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn path_from_env_or_default() {
        assert_eq!(path_of(&["A=b".into()]), DEFAULT_PATH);
        assert_eq!(path_of(&["PATH=/x:/y".into()]), "/x:/y");
    }

    #[test]
    fn lookups_and_docker_texts() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = bin.join("data");
        std::fs::write(&data, "x").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = format!("/nonexistent:{}", bin.display());

        assert_eq!(look_path("tool", &path).unwrap(), tool);
        assert_eq!(
            look_path("nosuch", &path).unwrap_err(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        // A non-executable file in PATH is skipped.
        assert!(look_path("data", &path).is_err());
        assert_eq!(
            look_path(data.to_str().unwrap(), &path).unwrap_err(),
            format!("exec: \"{}\": permission denied", data.display())
        );
        assert_eq!(
            look_path(bin.to_str().unwrap(), &path).unwrap_err(),
            format!("exec: \"{}\": is a directory", bin.display())
        );
        assert_eq!(
            look_path("/nosuch/x", &path).unwrap_err(),
            "exec: \"/nosuch/x\": stat /nosuch/x: no such file or directory"
        );
    }
}
