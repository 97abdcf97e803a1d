//! Layer tar streams kept exactly: while a layer is extracted, every byte of its tar
//! stream that is not a regular file's contents (headers, extended headers, padding, the
//! end-of-archive blocks and anything after them) is recorded, in order, with a reference
//! to the file in the layer where each file's contents went. From that record and the
//! layer's files, [`write_tar`] writes the very same stream again, so that `docker save`
//! hands out layers whose digests are the diff ids in the image config, and a `docker
//! load` of the result makes the same image id.
//!
//! This is what dockerd's tar-split (a Go library) does; no Rust crate does it, so berth
//! has its own small format: gzip of a sequence of segments, `M` + u32 length + the
//! bytes, or `F` + u64 size + u32 path length + the path (relative to the layer's
//! content dir). A layer whose files a later entry of the same stream replaced cannot be
//! written again from its files: its recorder says so ([`Recorder::finish`] gives
//! `None`), and such a layer cannot be saved.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// The record's file name in a layer's metadata dir.
pub const FILE: &str = "tar-split.gz";

/// Records a tar stream as it is parsed.
pub struct Recorder {
    /// Stream bytes seen so far.
    offset: u64,
    /// The contents of the current file: not recorded.
    skip: std::ops::Range<u64>,
    pending: Vec<u8>,
    enc: GzEncoder<Vec<u8>>,
    /// Files whose contents the record points at.
    data_paths: HashSet<PathBuf>,
    reproducible: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("offset", &self.offset)
            .field("reproducible", &self.reproducible)
            .finish_non_exhaustive()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            offset: 0,
            skip: 0..0,
            pending: Vec::new(),
            enc: GzEncoder::new(Vec::new(), Compression::fast()),
            data_paths: HashSet::new(),
            reproducible: true,
        }
    }

    /// The parser read `bytes` at the current offset.
    pub fn seen(&mut self, bytes: &[u8]) {
        let start = self.offset;
        let end = start + bytes.len() as u64;
        let at = |o: u64| usize::try_from(o - start).unwrap_or(bytes.len());
        // What lies before the skipped range, then what lies after it.
        let before_end = end.min(self.skip.start);
        if start < before_end {
            self.pending.extend_from_slice(&bytes[..at(before_end)]);
        }
        let after_start = start.max(self.skip.end);
        if after_start < end {
            self.pending.extend_from_slice(&bytes[at(after_start)..]);
        }
        self.offset = end;
        if self.pending.len() >= 1 << 16 {
            self.flush_meta();
        }
    }

    fn flush_meta(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let len = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
        let ok = self
            .enc
            .write_all(b"M")
            .and_then(|()| self.enc.write_all(&len.to_le_bytes()))
            .and_then(|()| self.enc.write_all(&self.pending));
        self.reproducible &= ok.is_ok();
        self.pending.clear();
    }

    /// The next `size` bytes of the stream, from `pos` on, are the contents of `path`.
    pub fn file(&mut self, path: &Path, pos: u64, size: u64) {
        if pos != self.offset {
            // Bytes the parser read ahead of the contents: the record would be wrong.
            self.reproducible = false;
        }
        self.flush_meta();
        let p = path.as_os_str().as_bytes();
        let plen = u32::try_from(p.len()).unwrap_or(u32::MAX);
        let ok = self
            .enc
            .write_all(b"F")
            .and_then(|()| self.enc.write_all(&size.to_le_bytes()))
            .and_then(|()| self.enc.write_all(&plen.to_le_bytes()))
            .and_then(|()| self.enc.write_all(p));
        self.reproducible &= ok.is_ok();
        self.skip = pos..pos + size;
        self.data_paths.insert(path.to_owned());
    }

    /// A later entry replaced or removed `path` (and what is under it).
    pub fn touched(&mut self, path: &Path) {
        if self.data_paths.iter().any(|p| p.starts_with(path)) {
            self.reproducible = false;
        }
    }

    /// An entry this record cannot reproduce (a sparse file).
    pub fn give_up(&mut self) {
        self.reproducible = false;
    }

    /// The record, or `None` when the layer's files cannot give the stream back.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        self.flush_meta();
        let bytes = self.enc.finish().ok()?;
        self.reproducible.then_some(bytes)
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One segment of a record, read off its decoder.
enum Segment {
    /// This many stream bytes follow in the record.
    Meta(u64),
    /// A file's contents: its size and its path in the layer.
    File(u64, PathBuf),
}

/// The next segment header of `r`; `None` at the record's end.
fn next_segment(r: &mut impl Read) -> io::Result<Option<Segment>> {
    let mut tag = [0u8; 1];
    match r.read_exact(&mut tag) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    match tag[0] {
        b'M' => {
            let mut len = [0u8; 4];
            r.read_exact(&mut len)?;
            Ok(Some(Segment::Meta(u64::from(u32::from_le_bytes(len)))))
        }
        b'F' => {
            let mut size = [0u8; 8];
            r.read_exact(&mut size)?;
            let mut plen = [0u8; 4];
            r.read_exact(&mut plen)?;
            let mut p = vec![0u8; u32::from_le_bytes(plen) as usize];
            r.read_exact(&mut p)?;
            let rel = PathBuf::from(std::ffi::OsStr::from_bytes(&p));
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad("the layer's tar record names a path outside the layer"));
            }
            Ok(Some(Segment::File(u64::from_le_bytes(size), rel)))
        }
        _ => Err(bad("the layer's tar record is corrupt")),
    }
}

/// The length of the stream `record` describes, without reading the files.
pub fn stream_size(record: &[u8]) -> io::Result<u64> {
    let mut r = GzDecoder::new(record);
    let mut total = 0u64;
    while let Some(seg) = next_segment(&mut r)? {
        match seg {
            Segment::Meta(len) => {
                if io::copy(&mut (&mut r).take(len), &mut io::sink())? != len {
                    return Err(bad("the layer's tar record is truncated"));
                }
                total += len;
            }
            Segment::File(size, _) => total += size,
        }
    }
    Ok(total)
}

/// Writes the tar stream that `record` describes, reading the files' contents from
/// `content` (the layer's content dir). Fails when a file is not as it was.
pub fn write_tar(record: &[u8], content: &Path, out: &mut impl Write) -> io::Result<u64> {
    let mut r = GzDecoder::new(record);
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while let Some(seg) = next_segment(&mut r)? {
        match seg {
            Segment::Meta(len) => {
                let copied = io::copy(&mut (&mut r).take(len), out)?;
                if copied != len {
                    return Err(bad("the layer's tar record is truncated"));
                }
                total += len;
            }
            Segment::File(size, rel) => {
                let path = content.join(&rel);
                let mut f = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)?;
                if f.metadata()?.len() != size {
                    return Err(bad(format!(
                        "{} changed since the layer was made",
                        rel.display()
                    )));
                }
                let mut left = size;
                while left > 0 {
                    let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(bad(format!("{} is shorter than recorded", rel.display())));
                    }
                    out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
                total += size;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_comes_back_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        // A stream: meta "HDR1", file a (5 bytes), meta "PAD", file b/c (3), meta "END".
        let stream = b"HDR1helloPADxyzEND";
        std::fs::write(tmp.path().join("a"), b"hello").unwrap();
        std::fs::create_dir(tmp.path().join("b")).unwrap();
        std::fs::write(tmp.path().join("b/c"), b"xyz").unwrap();
        let mut r = Recorder::new();
        // Seen in odd chunks, as a parser reads.
        r.seen(&stream[..4]);
        r.file(Path::new("a"), 4, 5);
        r.seen(&stream[4..6]);
        r.seen(&stream[6..11]);
        r.seen(&stream[11..12]);
        r.file(Path::new("b/c"), 12, 3);
        r.seen(&stream[12..18]);
        let rec = r.finish().unwrap();
        let mut out = Vec::new();
        write_tar(&rec, tmp.path(), &mut out).unwrap();
        assert_eq!(out, stream);
        // A changed file is refused.
        std::fs::write(tmp.path().join("a"), b"hell").unwrap();
        assert!(write_tar(&rec, tmp.path(), &mut Vec::new()).is_err());
    }

    #[test]
    fn a_replaced_file_makes_the_record_unusable() {
        let mut r = Recorder::new();
        r.seen(b"H");
        r.file(Path::new("d/f"), 1, 1);
        r.seen(b"x");
        r.touched(Path::new("d"));
        assert!(r.finish().is_none());
    }
}
