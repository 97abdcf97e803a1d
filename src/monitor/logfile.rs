//! The json-file log the monitor appends to, rotated as dockerd's `loggerutils.LogFile`:
//! before a write, a file that has reached `max-size` is renamed to `<id>-json.log.1`
//! (`.1` to `.2`, … up to `max-file - 1`, the oldest removed) and a new one started; with
//! `max-file` 1 the file is started again instead. The cost of a write is one comparison
//! while the entries fit, and nothing of the log is held in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::model::logconfig::LogSpec;

/// The name of rotated file `n` (1 is the newest) of the log at `path`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

impl LogFile {
    /// Opens (or makes) the log at `path`, appending to what it holds.
    pub fn open(path: &Path, spec: &LogSpec) -> io::Result<LogFile> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_owned(),
            file,
            size,
            max_size: spec.max_size,
            max_file: spec.max_file.max(1),
        })
    }

    /// Appends whole log entries (one JSON document a line). As dockerd, the limit is
    /// checked before each entry: a file that has reached it is rotated first. While the
    /// entries fit, they go out in one write.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(max) = self.max_size else {
            return self.append(data);
        };
        if self.size + data.len() as u64 <= max {
            return self.append(data);
        }
        for entry in data.split_inclusive(|b| *b == b'\n') {
            if self.size >= max {
                self.rotate()?;
            }
            self.append(entry)?;
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file < 2 {
            // dockerd reopens the file truncated; berthd starts a new file under the same
            // name, so that a reader holding the old one sees the change by its inode
            // (a truncated file written back to the same size would look unchanged).
            fs::remove_file(&self.path)?;
            self.file = open(&self.path)?;
            self.size = 0;
            return Ok(());
        }
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        ignore_missing(fs::remove_file(rotated(&self.path, self.max_file - 1)))?;
        for n in (1..self.max_file - 1).rev() {
            ignore_missing(fs::rename(
                rotated(&self.path, n),
                rotated(&self.path, n + 1),
            ))?;
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logconfig::LogDriver;

    fn spec(max_size: u64, max_file: u32) -> LogSpec {
        LogSpec {
            driver: LogDriver::JsonFile,
            max_size: Some(max_size),
            max_file,
        }
    }

    #[test]
    fn rotates_as_dockerd_names_the_files() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let mut f = LogFile::open(&path, &spec(10, 3)).unwrap();
        for i in 0..3 {
            f.write(format!("line{i}xxxxx\n").as_bytes()).unwrap();
        }
        // Several entries in one write are checked one by one.
        f.write(b"line3xxxxx\nline4xxxxx\n").unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "line4xxxxx\n");
        assert_eq!(read(rotated(&path, 1)), "line3xxxxx\n");
        assert_eq!(read(rotated(&path, 2)), "line2xxxxx\n");
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn one_file_is_truncated() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let mut f = LogFile::open(&path, &spec(10, 1)).unwrap();
        f.write(b"aaaaaaaaaaaa\n").unwrap();
        f.write(b"b\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b\n");
        assert!(!rotated(&path, 1).exists());
        // Reopened by a later start, it goes on from the size on disk.
        let mut f = LogFile::open(&path, &spec(3, 1)).unwrap();
        f.write(b"c\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b\nc\n");
    }
}
