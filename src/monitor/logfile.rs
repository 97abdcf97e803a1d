//! The json-file log the monitor appends to, rotated as dockerd's `loggerutils.LogFile`:
//! before a write, a file that has reached `max-size` is renamed to `<id>-json.log.1`
//! (`.1` to `.2`, … up to `max-file - 1`, the oldest removed) and a new one started; with
//! `max-file` 1 the file is started again instead. With `compress` the rotated files are
//! gzipped (`<id>-json.log.1.gz`, …). The cost of a write is one comparison
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

/// The name of rotated file `n` gzipped (`compress`): `<id>-json.log.1.gz`, as dockerd.
pub fn rotated_gz(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}.gz"));
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
    compress: bool,
    /// Output that could not be written (the disk full, `ENOSPC`): what the entry that
    /// says so, written before the next entry that fits, reports.
    lost: Option<Lost>,
}

/// Entries a failed write dropped, and the error of the last one.
#[derive(Debug)]
struct Lost {
    bytes: u64,
    error: String,
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
            compress: spec.compress,
            lost: None,
        })
    }

    /// Appends whole log entries (one JSON document a line). As dockerd, the limit is
    /// checked before each entry: a file that has reached it is rotated first. While the
    /// entries fit, they go out in one write.
    ///
    /// A write that fails (the disk full) leaves no part of an entry behind: the file is
    /// cut back to its last whole entry and the entries are dropped, as dockerd's
    /// json-file logger drops them (the container runs on). Once writes succeed again, a
    /// `stderr` entry first says how much output was lost and why, so `docker logs`
    /// shows the gap.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(lost) = &self.lost {
            let note = format!(
                "berthd: {} bytes of the container's output were not logged: {}\n",
                lost.bytes, lost.error
            );
            let mut line = Vec::new();
            super::proto::log_line(
                super::proto::STDERR,
                note.as_bytes(),
                None,
                &super::proto::now_rfc3339(),
                &mut line,
            );
            let mut done = 0;
            if let Err(e) = self.write_entries(&line, &mut done) {
                return Err(self.dropped(data.len(), e));
            }
            self.lost = None;
        }
        let mut done = 0;
        self.write_entries(data, &mut done)
            .map_err(|e| self.dropped(data.len() - done, e))
    }

    /// Cuts the file back to its last whole entry and counts `bytes` as lost.
    fn dropped(&mut self, bytes: usize, e: io::Error) -> io::Error {
        let _ = self.file.set_len(self.size);
        let lost = self.lost.get_or_insert(Lost {
            bytes: 0,
            error: String::new(),
        });
        lost.bytes += bytes as u64;
        lost.error = e.to_string();
        e
    }

    /// Writes `data`'s entries, adding to `done` the bytes of each that is written.
    fn write_entries(&mut self, data: &[u8], done: &mut usize) -> io::Result<()> {
        let Some(max) = self.max_size else {
            self.append(data)?;
            *done += data.len();
            return Ok(());
        };
        if self.size + data.len() as u64 <= max {
            self.append(data)?;
            *done += data.len();
            return Ok(());
        }
        for entry in data.split_inclusive(|b| *b == b'\n') {
            if self.size >= max {
                self.rotate()?;
            }
            self.append(entry)?;
            *done += entry.len();
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
        let name = if self.compress { rotated_gz } else { rotated };
        ignore_missing(fs::remove_file(name(&self.path, self.max_file - 1)))?;
        for n in (1..self.max_file - 1).rev() {
            ignore_missing(fs::rename(name(&self.path, n), name(&self.path, n + 1)))?;
        }
        let first = rotated(&self.path, 1);
        fs::rename(&self.path, &first)?;
        self.file = open(&self.path)?;
        if self.compress {
            // dockerd gzips in the background; here the container's output waits the
            // few milliseconds a file of max-size takes. The gzip is made under a temp
            // name and renamed, so `.1` or `.1.gz` always holds the entries.
            let gz = rotated_gz(&self.path, 1);
            let mut tmp = gz.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let made = (|| -> io::Result<()> {
                let mut from = File::open(&first)?;
                let out = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o640)
                    .open(&tmp)?;
                let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                io::copy(&mut from, &mut enc)?;
                enc.finish()?;
                fs::rename(&tmp, &gz)
            })();
            match made {
                Ok(()) => fs::remove_file(&first)?,
                // The entries stay in `.1`, uncompressed, where the reader finds them too.
                Err(_) => {
                    let _ = fs::remove_file(&tmp);
                }
            }
        }
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
            compress: false,
        }
    }

    #[test]
    fn a_full_disk_drops_whole_entries_and_says_so_once_writes_succeed() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let mut spec = spec(0, 1);
        spec.max_size = None;
        let mut f = LogFile::open(&path, &spec).unwrap();
        f.write(b"{\"log\":\"a\\n\"}\n").unwrap();
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let real = std::mem::replace(&mut f.file, open(Path::new("/dev/full")).unwrap());
        let err = f.write(b"{\"log\":\"b\\n\"}\n").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        f.file = real;
        f.write(b"{\"log\":\"c\\n\"}\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "{\"log\":\"a\\n\"}");
        let note: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(note["stream"], "stderr");
        assert_eq!(
            note["log"],
            "berthd: 14 bytes of the container's output were not logged: No space left on device (os error 28)\n"
        );
        assert_eq!(lines[2], "{\"log\":\"c\\n\"}");
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
    fn compress_gzips_the_rotated_files() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let spec = LogSpec {
            compress: true,
            ..spec(10, 3)
        };
        let mut f = LogFile::open(&path, &spec).unwrap();
        f.write(b"line0xxxxx\nline1xxxxx\nline2xxxxx\nline3xxxxx\n")
            .unwrap();
        let gunzip = |p: PathBuf| {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(File::open(p).unwrap()),
                &mut s,
            )
            .unwrap();
            s
        };
        assert_eq!(fs::read_to_string(&path).unwrap(), "line3xxxxx\n");
        assert_eq!(gunzip(rotated_gz(&path, 1)), "line2xxxxx\n");
        assert_eq!(gunzip(rotated_gz(&path, 2)), "line1xxxxx\n");
        assert!(!rotated(&path, 1).exists());
        assert!(!rotated_gz(&path, 3).exists());
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
