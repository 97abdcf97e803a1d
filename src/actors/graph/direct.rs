//! Direct writes of layer contents, and the recycled, page-aligned buffers they need.
//!
//! An import makes every byte of its layer durable (`syncfs`) before any metadata names
//! it, so its data goes to the disk before the reply anyway. Written through the page
//! cache, each byte is also copied into a new page: pages the kernel must find, and on a
//! VM whose freed memory goes back to the host, pages the host must fault in again, which
//! cost more than the disk write itself (95 MB: 65 ms direct, 30–360 ms buffered plus
//! 40 ms of writeback, on the VM of BENCHMARKS.md). So large files are written with
//! `O_DIRECT` from aligned buffers that the extraction reuses: the device reads them in
//! place. Small files, and the tail of a large one that does not fill a block, are
//! written buffered, and so is everything on a filesystem that refuses `O_DIRECT`.
//!
//! No `unsafe`: an aligned buffer is a `Vec` with a page to spare and the offset of its
//! first aligned byte.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where direct I/O buffers start and their lengths end: the page size, a multiple of
/// the logical block size of the devices in use (512 or 4096 bytes).
pub const ALIGN: usize = 4096;

/// Files from this size on are written direct: below it, the device's round trip for
/// each file costs more than the copy it saves.
pub const DIRECT_MIN: u64 = 256 * 1024;

/// A buffer whose contents start on an [`ALIGN`] boundary.
#[derive(Debug)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer with room for `cap` bytes.
    pub fn new(cap: usize) -> Self {
        let raw = vec![0u8; cap + ALIGN];
        // Unaligned (never seen) only makes the direct writes fall back.
        let start = match raw.as_ptr().align_offset(ALIGN) {
            off if off < ALIGN => off,
            _ => 0,
        };
        AlignedBuf { raw, start, len: 0 }
    }

    /// How many bytes it holds at most.
    pub fn capacity(&self) -> usize {
        self.raw.len() - ALIGN
    }

    /// The bytes it holds.
    pub fn data(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The first `n` bytes of its room (at most [`capacity`](Self::capacity)), to fill
    /// before [`set_len`](Self::set_len).
    pub fn room(&mut self, n: usize) -> &mut [u8] {
        let n = n.min(self.capacity());
        &mut self.raw[self.start..self.start + n]
    }

    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity());
    }
}

/// Whether direct writes still work on this destination: the first refusal turns them
/// off for the rest of the extraction.
#[derive(Debug)]
pub struct DirectMode(AtomicBool);

impl DirectMode {
    pub fn new(enabled: bool) -> Self {
        DirectMode(AtomicBool::new(enabled))
    }

    pub fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn refused(&self) {
        if self.0.swap(false, Ordering::Relaxed) {
            tracing::debug!("O_DIRECT refused here: layer files are written buffered");
        }
    }
}

/// A new file at `path` opened for writing, with `O_DIRECT` when `mode` allows and the
/// filesystem takes it. `open(direct)` creates it (`O_CREAT | O_EXCL`) with or without the
/// flag.
pub fn create(
    mode: &DirectMode,
    path: &Path,
    open: impl Fn(bool) -> io::Result<File>,
) -> io::Result<DirectFile> {
    if mode.enabled() {
        match open(true) {
            Ok(file) => {
                return Ok(DirectFile { file, direct: true });
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                mode.refused();
                // The kernel refuses the flag only once it has made the file (O_EXCL
                // would have failed with EEXIST had anything been there): it is ours.
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(DirectFile {
        file: open(false)?,
        direct: false,
    })
}

/// A file being written, direct while its writes are whole blocks.
#[derive(Debug)]
pub struct DirectFile {
    file: File,
    direct: bool,
}

impl DirectFile {
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    /// Appends `data`, which starts on an [`ALIGN`] boundary (an [`AlignedBuf`]'s
    /// data): its whole blocks direct, the rest buffered. After a tail, the file is
    /// buffered from then on, so only a file's last write may have one.
    pub fn append(&mut self, data: &[u8], mode: &DirectMode) -> io::Result<()> {
        let whole = if self.direct && data.as_ptr().align_offset(ALIGN) == 0 {
            data.len() & !(ALIGN - 1)
        } else {
            0
        };
        if whole > 0 {
            match self.file.write_all(&data[..whole]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Refused before writing anything: the alignment the device needs
                    // is not ours. The rest goes buffered.
                    mode.refused();
                    self.buffered()?;
                    return self.file.write_all(data);
                }
                Err(e) => return Err(e),
            }
        }
        if whole < data.len() {
            self.buffered()?;
            self.file.write_all(&data[whole..])?;
        }
        Ok(())
    }

    /// Turns `O_DIRECT` off for the writes that follow.
    fn buffered(&mut self) -> io::Result<()> {
        if !self.direct {
            return Ok(());
        }
        crate::sys::fs::clear_o_direct(&self.file)?;
        self.direct = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::OpenOptionsExt;

    fn open_at(path: &Path) -> impl Fn(bool) -> io::Result<File> {
        let path = path.to_owned();
        move |direct| {
            let mut o = fs::OpenOptions::new();
            o.write(true).create_new(true);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            o.open(&path)
        }
    }

    #[test]
    fn an_aligned_buffer_starts_on_a_page() {
        let mut b = AlignedBuf::new(10_000);
        assert_eq!(b.capacity(), 10_000);
        assert_eq!(b.room(20_000).len(), 10_000);
        assert_eq!(b.room(0).as_ptr().align_offset(ALIGN), 0);
        b.room(3).copy_from_slice(b"abc");
        b.set_len(3);
        assert_eq!(b.data(), b"abc");
        assert_eq!(b.data().as_ptr().align_offset(ALIGN), 0);
    }

    /// Whole blocks, a tail, then nothing more direct; and the same bytes whether the
    /// filesystem of the temp dir takes O_DIRECT or not (tmpfs may refuse it).
    #[test]
    fn appends_write_every_byte_direct_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = DirectMode::new(true);
        let mut buf = AlignedBuf::new(3 * ALIGN);
        let want: Vec<u8> = (0..3 * ALIGN + ALIGN / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let a = tmp.path().join("a");
        let mut f = create(&mode, &a, open_at(&a)).unwrap();
        buf.room(2 * ALIGN).copy_from_slice(&want[..2 * ALIGN]);
        buf.set_len(2 * ALIGN);
        f.append(buf.data(), &mode).unwrap();
        let rest = want.len() - 2 * ALIGN;
        buf.room(rest).copy_from_slice(&want[2 * ALIGN..]);
        buf.set_len(rest);
        f.append(buf.data(), &mode).unwrap();
        assert!(!f.direct, "a tail ends the direct writes");
        drop(f);
        assert_eq!(fs::read(tmp.path().join("a")).unwrap(), want);

        // Unaligned data is written buffered, whatever the mode.
        let b = tmp.path().join("b");
        let mut g = create(&mode, &b, open_at(&b)).unwrap();
        g.append(&want[1..ALIGN + 1], &mode).unwrap();
        drop(g);
        assert_eq!(fs::read(tmp.path().join("b")).unwrap(), &want[1..ALIGN + 1]);

        // Turned off: opened without the flag.
        let off = DirectMode::new(false);
        let c = tmp.path().join("c");
        let h = create(&off, &c, open_at(&c)).unwrap();
        assert!(!h.direct);
    }

    /// A filesystem that refuses O_DIRECT does so after creating the file: the buffered
    /// retry must not trip over it, and direct writes stay off.
    #[test]
    fn a_refused_direct_open_falls_back_to_a_fresh_buffered_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let plain = open_at(&path);
        let refusing = |direct: bool| {
            if direct {
                plain(false)?;
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            plain(false)
        };
        let mode = DirectMode::new(true);
        let mut f = create(&mode, &path, refusing).unwrap();
        assert!(!f.direct && !mode.enabled());
        let mut buf = AlignedBuf::new(ALIGN);
        buf.room(ALIGN).fill(7);
        buf.set_len(ALIGN);
        f.append(buf.data(), &mode).unwrap();
        drop(f);
        assert_eq!(fs::read(&path).unwrap(), vec![7u8; ALIGN]);

        // Any other error is the caller's, and nothing is removed.
        let taken = tmp.path().join("taken");
        fs::write(&taken, b"keep").unwrap();
        let err = create(&DirectMode::new(true), &taken, open_at(&taken)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).unwrap(), b"keep");
    }
}
