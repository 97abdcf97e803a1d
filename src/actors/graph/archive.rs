//! Safe, streaming extraction of a layer tarball, hashing the uncompressed stream
//! (the layer's diff id) in the same pass.
//!
//! Nothing in the archive is trusted. The destination is a fresh directory that only
//! this extraction writes to, so the extractor knows the type of every path in it
//! (`Tree`): a path whose parent is a symlink or a file is refused instead of followed,
//! an entry that replaces an existing path unlinks it first (never writes through a
//! symlink), hard links must point at a non-directory that this archive made, and
//! absolute paths or `..` components are refused. Directory modes and times are set at
//! the end, deepest first, so that a read-only directory does not stop later entries.
//!
//! Performance: one pass with 1 MiB buffers, no per-file fsync, sha256 inline. Files
//! from [`direct::DIRECT_MIN`] on are written with `O_DIRECT` from recycled aligned
//! buffers (see `direct`), the rest through the page cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::direct::{self, AlignedBuf, DIRECT_MIN, DirectMode};
use crate::sys::fs::{FileTime, NodeKind};

const BUF_SIZE: usize = 1 << 20;
/// Decoded chunks queued between the reader thread and the parser.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Files up to this size go to the writer threads (whole, in memory).
const INLINE_MAX: u64 = 1 << 20;
/// Small files queued for the writers: at most 64 MiB in memory.
const JOBS_IN_FLIGHT: usize = 64;
const MAX_WRITERS: usize = 4;
/// Aligned buffers for direct writes in the writers' hands: at most 16 MiB.
const ALIGNED_IN_FLIGHT: usize = 16;

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive itself is bad (a client error).
    #[error("{0}")]
    Invalid(String),
    /// Writing the layer failed (a daemon error).
    #[error("{path} could not be written")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(msg.into())
}

fn read_err(e: io::Error) -> ArchiveError {
    ArchiveError::Invalid(format!("reading the archive failed: {e}"))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What an extraction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes in regular files (hard links counted once).
    pub size: u64,
    pub entries: u64,
    /// The stream's record ([`tarsplit`](super::tarsplit)), when asked for and the
    /// layer's files can give the stream back.
    pub split: Option<Vec<u8>>,
}

/// How whiteouts (`.wh.<name>`, `.wh..wh..opq`) of a layer tarball are taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Whiteouts {
    /// A base layer: they mean nothing and are left out.
    #[default]
    Ignore,
    /// A layer over others, for overlayfs: a whiteout is a 0/0 character device, an
    /// opaque directory has `trusted.overlay.opaque=y`.
    Overlay,
}

/// What an extraction does besides writing the files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub whiteouts: Whiteouts,
    /// Record the stream for [`tarsplit::write_tar`](super::tarsplit::write_tar).
    pub record: bool,
    /// Write large files around the page cache (a layer: it is flushed anyway). Not for
    /// files read back at once (a load's unpacked archive).
    pub no_direct: bool,
    /// Skip the stream's digest (an archive that is no layer: its `diff_id` is empty).
    pub no_digest: bool,
    /// Fewer buffers in flight (a quarter of the memory or less): for extractions that
    /// run several at once, as a pull's layers do while they download.
    pub lean: bool,
}

impl Options {
    /// Decoded chunks queued between the reader thread and the parser.
    fn chunks_in_flight(self) -> usize {
        if self.lean {
            CHUNKS_IN_FLIGHT / 8
        } else {
            CHUNKS_IN_FLIGHT
        }
    }

    /// Aligned buffers in the writers' hands at most.
    fn aligned_in_flight(self) -> usize {
        if self.lean {
            ALIGNED_IN_FLIGHT / 4
        } else {
            ALIGNED_IN_FLIGHT
        }
    }
}

/// Reads `source` (a plain or gzip-compressed tar stream) into the existing, empty
/// directory `dest`.
///
/// Three kinds of thread share the work: a reader thread decompresses and hashes the
/// stream and hands on 1 MiB chunks; this thread parses the tar and makes directories,
/// links and large files; a few writer threads create the small files. When this
/// returns, every writer has finished (also on error), so the caller may delete `dest`.
pub fn extract(source: impl Read + Send + 'static, dest: &Path) -> Result<Extracted, ArchiveError> {
    extract_with(source, dest, Options::default())
}

/// [`extract`] with [`Options`].
pub fn extract_with(
    source: impl Read + Send + 'static,
    dest: &Path,
    opts: Options,
) -> Result<Extracted, ArchiveError> {
    let mut source = source;
    // Peek at the magic bytes; the source may deliver them in small pieces.
    let mut head = Vec::with_capacity(6);
    while head.len() < 6 {
        let mut b = [0u8; 6];
        let n = source.read(&mut b[..6 - head.len()]).map_err(read_err)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&b[..n]);
    }
    if head.is_empty() {
        return Err(invalid("the archive is empty"));
    }
    let compression = detect_compression(&head);
    if let Compression::Other(name) = compression {
        return Err(invalid(format!(
            "{name}-compressed archives are not supported (use a plain or gzip-compressed tar)"
        )));
    }
    let (tx, rx) = mpsc::sync_channel(opts.chunks_in_flight());
    let span = tracing::Span::current();
    let reader = std::thread::Builder::new()
        .name("berth-tar-read".into())
        .spawn(move || {
            span.in_scope(|| read_and_hash(head, source, compression, !opts.no_digest, tx))
        })
        .map_err(io_err(dest))?;
    let split = opts
        .record
        .then(|| Rc::new(RefCell::new(super::tarsplit::Recorder::new())));
    let (size, entries) = extract_tar(
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            split: split.clone(),
        },
        dest,
        opts,
        split.clone(),
    )?;
    let split = split
        .and_then(|r| Rc::try_unwrap(r).ok())
        .and_then(|r| r.into_inner().finish());
    // The stream was read to its end, so the reader thread has finished.
    let digest = reader
        .join()
        .ok()
        .flatten()
        .ok_or_else(|| invalid("the archive reader stopped early"))?;
    Ok(Extracted {
        diff_id: format!("sha256:{}", hex::encode(digest)),
        size,
        entries,
        split,
    })
}

/// The reader thread: decompresses, hashes, and sends the stream in chunks. Returns the
/// digest, or `None` when the receiver went away (the extraction failed).
fn read_and_hash(
    head: Vec<u8>,
    source: impl Read,
    compression: Compression,
    digest: bool,
    tx: mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> Option<[u8; 32]> {
    let raw = BufReader::with_capacity(BUF_SIZE, io::Cursor::new(head).chain(source));
    let mut decoded: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        _ => Box::new(raw),
    };
    let mut hasher = Sha256::new();
    loop {
        let mut chunk = vec![0u8; BUF_SIZE];
        let filled = match fill(&mut decoded, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(e));
                return None;
            }
        };
        if filled == 0 {
            return Some(hasher.finalize().into());
        }
        chunk.truncate(filled);
        if digest {
            hasher.update(&chunk);
        }
        tx.send(Ok(chunk)).ok()?;
    }
}

/// Reads the chunks of the reader thread.
struct ChanReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    /// Sees every byte the parser reads.
    split: Option<Rc<RefCell<super::tarsplit::Recorder>>>,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        if let Some(r) = &self.split {
            r.borrow_mut().seen(&buf[..n]);
        }
        Ok(n)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Other(&'static str),
}

fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Other("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Other("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Other("zstd")
    } else {
        Compression::None
    }
}

/// An extended attribute: name, value.
type Xattr = (Vec<u8>, Vec<u8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A file, symlink, device or fifo.
    Other,
}

/// What this extraction has made under the destination.
struct Tree {
    kinds: HashMap<PathBuf, Kind>,
}

impl Tree {
    fn get(&self, rel: &Path) -> Option<Kind> {
        if rel.as_os_str().is_empty() {
            return Some(Kind::Dir);
        }
        self.kinds.get(rel).copied()
    }

    /// Drops `rel` and everything under it.
    fn forget(&mut self, rel: &Path) {
        self.kinds.remove(rel);
        self.kinds.retain(|p, _| !p.starts_with(rel));
    }
}

struct DirMeta {
    rel: PathBuf,
    mode: u32,
    mtime: u64,
}

struct Extractor<'a> {
    dest: &'a Path,
    tree: Tree,
    dirs: Vec<DirMeta>,
    is_root: bool,
    /// For files too large to hand to a writer: written from here, direct if allowed.
    buf: AlignedBuf,
    pool: Pool,
    whiteouts: Whiteouts,
    split: Option<Rc<RefCell<super::tarsplit::Recorder>>>,
}

/// Returns the layer size and the number of entries.
fn extract_tar(
    reader: ChanReader,
    dest: &Path,
    opts: Options,
    split: Option<Rc<RefCell<super::tarsplit::Recorder>>>,
) -> Result<(u64, u64), ArchiveError> {
    let whiteouts = opts.whiteouts;
    let mut archive = tar::Archive::new(reader);
    let is_root = crate::sys::host::is_root();
    let mut ex = Extractor {
        dest,
        tree: Tree {
            kinds: HashMap::new(),
        },
        dirs: Vec::new(),
        is_root,
        buf: AlignedBuf::new(BUF_SIZE),
        pool: Pool::start(is_root, dest, !opts.no_direct, opts.aligned_in_flight())?,
        whiteouts,
        split,
    };
    let mut size = 0u64;
    let mut entries = 0u64;
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        size += ex.entry(&mut entry)?;
        entries += 1;
    }
    ex.pool.barrier()?;
    ex.finish_dirs()?;
    // Read what follows the end-of-archive blocks too: the diff id covers the stream.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_err)?;
    Ok((size, entries))
}

/// A file's contents for a writer: small ones in their own `Vec`, from
/// [`DIRECT_MIN`] on in an aligned buffer of the pool's, to write direct.
enum FileData {
    Small(Vec<u8>),
    Aligned(AlignedBuf),
}

impl FileData {
    fn bytes(&self) -> &[u8] {
        match self {
            FileData::Small(v) => v,
            FileData::Aligned(b) => b.data(),
        }
    }
}

/// A file of up to [`INLINE_MAX`] bytes for a writer thread.
struct FileJob {
    path: PathBuf,
    data: FileData,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: Vec<Xattr>,
}

struct PoolShared {
    /// Jobs sent and not yet finished.
    pending: parking_lot::Mutex<usize>,
    done: parking_lot::Condvar,
    /// The first error a writer met.
    error: parking_lot::Mutex<Option<ArchiveError>>,
    /// Whether direct writes still work on the destination.
    direct: DirectMode,
    /// Aligned buffers not in use, and how many exist.
    spare: parking_lot::Mutex<(Vec<AlignedBuf>, usize)>,
    spare_back: parking_lot::Condvar,
}

impl PoolShared {
    fn new(direct: bool) -> Self {
        PoolShared {
            pending: parking_lot::Mutex::new(0),
            done: parking_lot::Condvar::new(),
            error: parking_lot::Mutex::new(None),
            direct: DirectMode::new(direct),
            spare: parking_lot::Mutex::new((Vec::new(), 0)),
            spare_back: parking_lot::Condvar::new(),
        }
    }

    fn give_back(&self, data: FileData) {
        if let FileData::Aligned(mut b) = data {
            b.set_len(0);
            self.spare.lock().0.push(b);
            self.spare_back.notify_one();
        }
    }
}

/// Writer threads for small files. Dropping the pool waits for them.
struct Pool {
    tx: Option<mpsc::SyncSender<FileJob>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    shared: Arc<PoolShared>,
    /// Aligned buffers at most ([`ALIGNED_IN_FLIGHT`], less for a lean extraction).
    aligned_max: usize,
}

impl Pool {
    fn start(
        is_root: bool,
        dest: &Path,
        direct: bool,
        aligned_max: usize,
    ) -> Result<Pool, ArchiveError> {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, MAX_WRITERS);
        let jobs = if aligned_max < ALIGNED_IN_FLIGHT {
            JOBS_IN_FLIGHT / 4
        } else {
            JOBS_IN_FLIGHT
        };
        let (tx, rx) = mpsc::sync_channel::<FileJob>(jobs);
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        let shared = Arc::new(PoolShared::new(direct));
        let mut pool = Pool {
            tx: Some(tx),
            workers: Vec::with_capacity(n),
            shared: shared.clone(),
            aligned_max,
        };
        for i in 0..n {
            let rx = rx.clone();
            let shared = shared.clone();
            let span = tracing::Span::current();
            let handle = std::thread::Builder::new()
                .name(format!("berth-tar-write-{i}"))
                .spawn(move || {
                    let _entered = span.enter();
                    loop {
                        let job = rx.lock().recv();
                        let Ok(job) = job else { return };
                        if let Err(e) = write_file(&job, is_root, &shared.direct) {
                            shared.error.lock().get_or_insert(e);
                        }
                        shared.give_back(job.data);
                        let mut pending = shared.pending.lock();
                        *pending -= 1;
                        if *pending == 0 {
                            shared.done.notify_all();
                        }
                    }
                })
                .map_err(io_err(dest))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Whether files of `size` bytes should be written direct.
    fn wants_aligned(&self, size: u64) -> bool {
        size >= DIRECT_MIN && self.shared.direct.enabled()
    }

    /// An aligned buffer of [`INLINE_MAX`] bytes: a spare one, a new one while fewer
    /// than `aligned_max` exist, else the next one a writer gives back.
    fn aligned(&self) -> Result<AlignedBuf, ArchiveError> {
        let mut spare = self.shared.spare.lock();
        loop {
            if let Some(b) = spare.0.pop() {
                return Ok(b);
            }
            if spare.1 < self.aligned_max {
                spare.1 += 1;
                return Ok(AlignedBuf::new(INLINE_MAX as usize));
            }
            // Writers give every buffer back, also on error; the timeout only guards
            // against writers that are all gone.
            let timed_out = self
                .shared
                .spare_back
                .wait_for(&mut spare, Duration::from_secs(1))
                .timed_out();
            if timed_out && self.workers.iter().all(|w| w.is_finished()) {
                return Err(ArchiveError::Io {
                    path: PathBuf::new(),
                    source: io::Error::other("the writer threads are gone"),
                });
            }
        }
    }

    fn submit(&mut self, job: FileJob) -> Result<(), ArchiveError> {
        if self.shared.error.lock().is_some() {
            self.shared.give_back(job.data);
            return self.barrier();
        }
        *self.shared.pending.lock() += 1;
        let path = job.path.clone();
        let sent = self.tx.as_ref().map(|tx| tx.send(job));
        if !matches!(sent, Some(Ok(()))) {
            *self.shared.pending.lock() -= 1;
            return Err(ArchiveError::Io {
                path,
                source: io::Error::other("the writer threads are gone"),
            });
        }
        Ok(())
    }

    /// Waits until every file sent so far is written; reports a writer's error.
    fn barrier(&mut self) -> Result<(), ArchiveError> {
        let mut pending = self.shared.pending.lock();
        while *pending > 0 {
            self.shared.done.wait(&mut pending);
        }
        drop(pending);
        match self.shared.error.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Opens a new file of the layer for writing, with `O_DIRECT` when `direct`.
fn create_file(path: &Path, direct: bool) -> io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true).mode(0o600);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

fn write_file(job: &FileJob, is_root: bool, mode: &DirectMode) -> Result<(), ArchiveError> {
    let path = &job.path;
    let f = match &job.data {
        FileData::Small(data) => {
            let mut f = create_file(path, false).map_err(io_err(path))?;
            f.write_all(data).map_err(io_err(path))?;
            f
        }
        FileData::Aligned(buf) => {
            let mut f =
                direct::create(mode, path, |d| create_file(path, d)).map_err(io_err(path))?;
            f.append(buf.data(), mode).map_err(io_err(path))?;
            f.into_file()
        }
    };
    finish_file(
        &f,
        path,
        is_root,
        job.uid,
        job.gid,
        job.mode,
        job.mtime,
        &job.xattrs,
    )
}

/// Owner, mode, xattrs and times of a written file, in the order that keeps them
/// (chown clears setuid bits and file capabilities).
#[allow(clippy::too_many_arguments)]
fn finish_file(
    f: &fs::File,
    path: &Path,
    is_root: bool,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: &[Xattr],
) -> Result<(), ArchiveError> {
    if is_root && (uid != 0 || gid != 0) {
        std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(io_err(path))?;
    }
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    set_xattrs(path, xattrs);
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
        .map_err(io_err(path))
}

/// Fills `buf` from `r` as far as the stream goes; returns how much it holds.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// [`fill`] from an archive entry.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, ArchiveError> {
    fill(r, buf).map_err(read_err)
}

fn set_xattrs(path: &Path, xattrs: &[Xattr]) {
    for (name, value) in xattrs {
        if let Err(e) = xattr::set(path, OsStr::from_bytes(name), value) {
            tracing::debug!(path = %path.display(), name = %String::from_utf8_lossy(name), error = %e, "xattr from archive not set");
        }
    }
}

/// Turns an archive path into a relative path with only normal components.
/// `Ok(None)` is the root itself (`./`).
pub fn sanitize(raw: &[u8]) -> Result<Option<PathBuf>, ArchiveError> {
    let shown = String::from_utf8_lossy(raw);
    if raw.starts_with(b"/") {
        return Err(invalid(format!("absolute path {shown:?} in archive")));
    }
    let mut out = PathBuf::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(format!(
                    "path {shown:?} in archive leaves the layer (\"..\")"
                )));
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn to_file_time(secs: u64) -> FileTime {
    FileTime {
        secs: i64::try_from(secs).unwrap_or(i64::MAX),
        nsecs: 0,
    }
}

impl Extractor<'_> {
    /// Extracts one entry; returns the bytes it adds to the layer size.
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<u64, ArchiveError> {
        let et = entry.header().entry_type();
        if matches!(
            et,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(0);
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let rel = sanitize(&raw_path)?;
        let header = entry.header();
        let mode = header.mode().map_err(read_err)? & 0o7777;
        // Blank numeric fields read as 0, as Go's archive/tar reads them.
        let uid = u32::try_from(header.uid().unwrap_or(0))
            .map_err(|_| invalid(format!("{shown:?}: uid out of range")))?;
        let gid = u32::try_from(header.gid().unwrap_or(0))
            .map_err(|_| invalid(format!("{shown:?}: gid out of range")))?;
        let mtime = header.mtime().unwrap_or(0);

        let Some(rel) = rel else {
            // The root directory: its metadata applies to the layer root.
            if !et.is_dir() {
                return Err(invalid(format!(
                    "{shown:?} names the root but is not a directory"
                )));
            }
            self.chown(self.dest, uid, gid)?;
            self.dirs.push(DirMeta {
                rel: PathBuf::new(),
                mode,
                mtime,
            });
            return Ok(0);
        };
        if let Some(name) = rel
            .file_name()
            .and_then(|n| n.as_bytes().strip_prefix(b".wh."))
        {
            if self.whiteouts == Whiteouts::Overlay {
                self.whiteout(&rel, name, &shown)?;
            }
            // In a base layer whiteouts mean nothing.
            return Ok(0);
        }
        let is_dir = et.is_dir();
        self.prepare(&rel, is_dir, &shown)?;
        let path = self.dest.join(&rel);
        let xattrs = collect_xattrs(entry)?;

        let mut added = 0;
        match et {
            tar::EntryType::Directory => {
                if self.tree.get(&rel) != Some(Kind::Dir) {
                    fs::create_dir(&path).map_err(io_err(&path))?;
                    self.tree.kinds.insert(rel.clone(), Kind::Dir);
                }
                self.chown(&path, uid, gid)?;
                set_xattrs(&path, &xattrs);
                self.dirs.push(DirMeta { rel, mode, mtime });
                return Ok(0);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                if let Some(r) = &self.split {
                    let mut r = r.borrow_mut();
                    if et == tar::EntryType::GNUSparse {
                        r.give_up();
                    } else if size > 0 {
                        r.file(&rel, entry.raw_file_position(), size);
                    }
                }
                self.tree.kinds.insert(rel, Kind::Other);
                if size <= INLINE_MAX {
                    // Files up to 1 MiB go to the writer threads.
                    let data = if self.pool.wants_aligned(size) {
                        let mut buf = self.pool.aligned()?;
                        let n = read_full(entry, buf.room(INLINE_MAX as usize))?;
                        buf.set_len(n);
                        FileData::Aligned(buf)
                    } else {
                        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        entry.read_to_end(&mut data).map_err(read_err)?;
                        FileData::Small(data)
                    };
                    let added = data.bytes().len() as u64;
                    self.pool.submit(FileJob {
                        path,
                        data,
                        uid,
                        gid,
                        mode,
                        mtime,
                        xattrs,
                    })?;
                    return Ok(added);
                }
                let direct_mode = &self.pool.shared.direct;
                let mut f = direct::create(direct_mode, &path, |d| create_file(&path, d))
                    .map_err(io_err(&path))?;
                loop {
                    // Whole buffers, so that only the last write has a tail.
                    let n = read_full(entry, self.buf.room(BUF_SIZE))?;
                    if n == 0 {
                        break;
                    }
                    self.buf.set_len(n);
                    f.append(self.buf.data(), direct_mode)
                        .map_err(io_err(&path))?;
                    added += n as u64;
                }
                finish_file(
                    f.file(),
                    &path,
                    self.is_root,
                    uid,
                    gid,
                    mode,
                    mtime,
                    &xattrs,
                )?;
                return Ok(added);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(format!("symlink {shown:?} has no target")))?
                    .into_owned();
                if target.is_empty() {
                    return Err(invalid(format!("symlink {shown:?} has an empty target")));
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(io_err(&path))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(format!("hard link {shown:?} has no target")))?
                    .into_owned();
                let target_rel = sanitize(&target)?.ok_or_else(|| {
                    invalid(format!("hard link {shown:?} points at the root directory"))
                })?;
                if self.tree.get(&target_rel) != Some(Kind::Other) {
                    return Err(invalid(format!(
                        "hard link {shown:?} points at {:?}, which is not a file earlier in the archive",
                        String::from_utf8_lossy(&target)
                    )));
                }
                // The target may still be with a writer thread.
                self.pool.barrier()?;
                let src = self.dest.join(&target_rel);
                fs::hard_link(&src, &path).map_err(io_err(&path))?;
                self.tree.kinds.insert(rel, Kind::Other);
                // A hard link shares the inode: no metadata of its own.
                return Ok(0);
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match et {
                    tar::EntryType::Char => NodeKind::CharDevice,
                    tar::EntryType::Block => NodeKind::BlockDevice,
                    _ => NodeKind::Fifo,
                };
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let dev = crate::sys::fs::device_number(u64::from(major), u64::from(minor));
                crate::sys::fs::make_node(&path, kind, mode, dev).map_err(io_err(&path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(io_err(&path))?;
            }
            other => {
                return Err(invalid(format!(
                    "{shown:?} has an unsupported entry type {other:?}"
                )));
            }
        }
        // Symlinks and device nodes.
        self.tree.kinds.insert(rel, Kind::Other);
        self.lchown(&path, uid, gid)?;
        set_xattrs(&path, &xattrs);
        let ts = to_file_time(mtime);
        crate::sys::fs::set_times_nofollow(&path, ts, ts).map_err(io_err(&path))?;
        Ok(added)
    }

    /// Makes sure every parent of `rel` is a directory this archive made (creating
    /// missing ones) and clears the way for `rel` itself.
    fn prepare(&mut self, rel: &Path, is_dir: bool, shown: &str) -> Result<(), ArchiveError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        match self.tree.get(parent) {
            Some(Kind::Dir) => {}
            Some(Kind::Other) => {
                return Err(invalid(format!(
                    "{shown:?} lies under {:?}, which is not a directory (a symlink or file)",
                    parent.display()
                )));
            }
            None => {
                // Create the missing ancestors, top down, checking each.
                let mut cur = PathBuf::new();
                for comp in parent.components() {
                    cur.push(comp);
                    match self.tree.get(&cur) {
                        Some(Kind::Dir) => {}
                        Some(Kind::Other) => {
                            return Err(invalid(format!(
                                "{shown:?} lies under {:?}, which is not a directory (a symlink or file)",
                                cur.display()
                            )));
                        }
                        None => {
                            let p = self.dest.join(&cur);
                            fs::create_dir(&p).map_err(io_err(&p))?;
                            self.tree.kinds.insert(cur.clone(), Kind::Dir);
                        }
                    }
                }
            }
        }
        match self.tree.get(rel) {
            None => {}
            Some(Kind::Dir) if is_dir => {}
            Some(Kind::Dir) => {
                self.pool.barrier()?;
                let p = self.dest.join(rel);
                fs::remove_dir_all(&p).map_err(io_err(&p))?;
                self.tree.forget(rel);
                if let Some(r) = &self.split {
                    r.borrow_mut().touched(rel);
                }
                self.dirs.retain(|d| !d.rel.starts_with(rel));
            }
            Some(Kind::Other) => {
                self.pool.barrier()?;
                let p = self.dest.join(rel);
                fs::remove_file(&p).map_err(io_err(&p))?;
                self.tree.kinds.remove(rel);
                if let Some(r) = &self.split {
                    r.borrow_mut().touched(rel);
                }
            }
        }
        Ok(())
    }

    /// An overlay whiteout for `.wh.<name>` at `rel`: `.wh..wh..opq` makes the directory
    /// opaque; another name becomes a 0/0 character device in place of `<name>`. AUFS's
    /// own `.wh..wh.` dirs mean nothing.
    fn whiteout(&mut self, rel: &Path, name: &[u8], shown: &str) -> Result<(), ArchiveError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == b".wh..opq" {
            self.prepare(&parent.join("x"), false, shown)?;
            let dir = self.dest.join(parent);
            return xattr::set(&dir, "trusted.overlay.opaque", b"y").map_err(io_err(&dir));
        }
        if name.starts_with(b".wh.") || name.is_empty() {
            return Ok(());
        }
        let target = parent.join(OsStr::from_bytes(name));
        self.prepare(&target, false, shown)?;
        let path = self.dest.join(&target);
        crate::sys::fs::make_node(&path, NodeKind::CharDevice, 0, 0).map_err(io_err(&path))?;
        self.tree.kinds.insert(target, Kind::Other);
        Ok(())
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> Result<(), ArchiveError> {
        self.lchown(path, uid, gid)
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> Result<(), ArchiveError> {
        if self.is_root && (uid != 0 || gid != 0) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path))?;
        }
        Ok(())
    }

    /// Sets directory modes and times, deepest first.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in dirs {
            let path = self.dest.join(&d.rel);
            fs::set_permissions(&path, fs::Permissions::from_mode(d.mode))
                .map_err(io_err(&path))?;
            let ts = to_file_time(d.mtime);
            crate::sys::fs::set_times_nofollow(&path, ts, ts).map_err(io_err(&path))?;
        }
        Ok(())
    }
}

/// The `SCHILY.xattr.*` records of an entry, minus overlayfs' own attributes (which
/// would change how the layer is merged).
fn collect_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<Xattr>, ArchiveError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(read_err)? {
        for ext in exts {
            let ext = ext.map_err(read_err)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
                    continue;
                }
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with raw header names (the tar crate's builder refuses `..` and `/`).
    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &[u8],
        et: tar::EntryType,
        link: &[u8],
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(et);
        h.set_size(data.len() as u64);
        h.set_mode(if et.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn build(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        raw_entry(b, name.as_bytes(), tar::EntryType::Regular, b"", data);
    }

    struct Setup {
        _tmp: tempfile::TempDir,
        outside: PathBuf,
        dest: PathBuf,
    }

    fn setup() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let dest = tmp.path().join("layer");
        fs::create_dir(&outside).unwrap();
        fs::create_dir(&dest).unwrap();
        Setup {
            _tmp: tmp,
            outside,
            dest,
        }
    }

    fn assert_invalid(res: Result<Extracted, ArchiveError>, needle: &str) {
        match res {
            Err(ArchiveError::Invalid(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("expected Invalid({needle}), got {other:?}"),
        }
    }

    fn outside_is_empty(s: &Setup) {
        assert_eq!(
            fs::read_dir(&s.outside).unwrap().count(),
            0,
            "a file escaped"
        );
    }

    #[test]
    fn good_archive_extracts_and_hashes_the_stream() {
        let s = setup();
        let tar = build(|b| {
            raw_entry(b, b"./", tar::EntryType::Directory, b"", b"");
            raw_entry(b, b"./bin/", tar::EntryType::Directory, b"", b"");
            file(b, "./bin/busybox", b"#!binary");
            raw_entry(b, b"./bin/sh", tar::EntryType::Symlink, b"busybox", b"");
            raw_entry(b, b"./bin/ls", tar::EntryType::Link, b"./bin/busybox", b"");
            file(b, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
            // A later entry replaces an earlier symlink instead of writing through it.
            raw_entry(
                b,
                b"etc/link",
                tar::EntryType::Symlink,
                b"../../outside/x",
                b"",
            );
            file(b, "etc/link", b"plain");
        });
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let got = extract(io::Cursor::new(tar.clone()), &s.dest).unwrap();
        assert_eq!(got.diff_id, want);
        assert_eq!(got.size, 8 + 26 + 5);
        assert_eq!(fs::read(s.dest.join("bin/ls")).unwrap(), b"#!binary");
        assert_eq!(
            fs::read_link(s.dest.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(fs::read(s.dest.join("etc/link")).unwrap(), b"plain");
        let meta = fs::metadata(s.dest.join("etc/passwd")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mtime(), 1_600_000_000);
        assert_eq!(
            fs::metadata(s.dest.join("bin")).unwrap().mtime(),
            1_600_000_000
        );
        outside_is_empty(&s);
    }

    /// Sizes around the direct-write thresholds: below `DIRECT_MIN`, block multiples,
    /// tails, exactly `INLINE_MAX`, and large files written by the parser; more
    /// direct-sized files than the pool has buffers, so that buffers are recycled.
    #[test]
    fn files_of_every_size_keep_their_bytes_and_metadata() {
        let s = setup();
        extract_every_size(&s.dest);
    }

    /// The same on ramfs, which refuses O_DIRECT (after creating the file): every file is
    /// written buffered. Root only (it mounts).
    #[test]
    fn files_of_every_size_are_written_where_o_direct_is_refused() {
        if !crate::test_ledger::root_or_skip(module_path!(), "needs root (it mounts a ramfs)") {
            return;
        }
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = crate::sys::fs::unmount_detached(&self.0);
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("ramfs");
        fs::create_dir(&mnt).unwrap();
        crate::sys::fs::mount_filesystem("ramfs", &mnt, None).unwrap();
        let _unmount = Unmount(mnt.clone());
        let dest = mnt.join("layer");
        fs::create_dir(&dest).unwrap();
        extract_every_size(&dest);
    }

    fn extract_every_size(dest: &Path) {
        let sizes: Vec<usize> = vec![
            0,
            1,
            DIRECT_MIN as usize - 1,
            DIRECT_MIN as usize,
            DIRECT_MIN as usize + 17,
            INLINE_MAX as usize,
            INLINE_MAX as usize + 1,
            2 * BUF_SIZE + direct::ALIGN + 5,
            3 * BUF_SIZE,
        ];
        let mut all = sizes.clone();
        all.extend(std::iter::repeat_n(300_000, ALIGNED_IN_FLIGHT + 5));
        let content = |i: usize, n: usize| -> Vec<u8> {
            (0..n).map(|j| ((j * 31 + i * 7) % 251) as u8).collect()
        };
        let tar = build(|b| {
            for (i, n) in all.iter().enumerate() {
                file(b, &format!("f{i}"), &content(i, *n));
            }
        });
        let got = extract(io::Cursor::new(tar), dest).unwrap();
        assert_eq!(got.size, all.iter().sum::<usize>() as u64);
        use std::os::unix::fs::MetadataExt;
        for (i, n) in all.iter().enumerate() {
            let path = dest.join(format!("f{i}"));
            assert!(
                fs::read(&path).unwrap() == content(i, *n),
                "f{i} of {n} bytes"
            );
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o644, "f{i}");
            assert_eq!(meta.mtime(), 1_600_000_000, "f{i}");
        }
    }

    #[test]
    fn gzip_is_detected_and_hash_is_of_the_uncompressed_stream() {
        let s = setup();
        let tar = build(|b| file(b, "a", b"hello"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let got = extract(io::Cursor::new(gz), &s.dest).unwrap();
        assert_eq!(
            got.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
        assert_eq!(fs::read(s.dest.join("a")).unwrap(), b"hello");
    }

    #[test]
    fn other_compressions_and_garbage_are_refused() {
        let s = setup();
        assert_invalid(
            extract(io::Cursor::new(b"\xfd7zXZ\x00rest".to_vec()), &s.dest),
            "xz",
        );
        assert_invalid(
            extract(io::Cursor::new(b"BZh91AY".to_vec()), &s.dest),
            "bzip2",
        );
        assert_invalid(extract(io::Cursor::new(Vec::new()), &s.dest), "empty");
        assert!(matches!(
            extract(io::Cursor::new(vec![7u8; 1024]), &s.dest),
            Err(ArchiveError::Invalid(_))
        ));
    }

    #[test]
    fn dotdot_is_refused() {
        let s = setup();
        let tar = build(|b| file(b, "../outside/escape", b"x"));
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "leaves the layer");
        let tar = build(|b| file(b, "a/../../outside/escape", b"x"));
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "leaves the layer");
        outside_is_empty(&s);
    }

    #[test]
    fn absolute_paths_are_refused() {
        let s = setup();
        let target = s.outside.join("abs");
        let tar = build(|b| file(b, target.to_str().unwrap(), b"x"));
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "absolute path");
        outside_is_empty(&s);
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let s = setup();
        let tar = build(|b| {
            raw_entry(
                b,
                b"evil",
                tar::EntryType::Symlink,
                s.outside.to_str().unwrap().as_bytes(),
                b"",
            );
            file(b, "evil/escape", b"x");
        });
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "not a directory");
        // A relative symlink climbing out, then a nested write through it.
        let s2 = setup();
        let tar = build(|b| {
            raw_entry(b, b"d/up", tar::EntryType::Symlink, b"../../outside", b"");
            file(b, "d/up/sub/escape", b"x");
        });
        assert_invalid(extract(io::Cursor::new(tar), &s2.dest), "not a directory");
        outside_is_empty(&s);
        outside_is_empty(&s2);
    }

    #[test]
    fn hardlinks_must_stay_inside() {
        let s = setup();
        fs::write(s.outside.join("secret"), b"s").unwrap();
        let tar = build(|b| {
            raw_entry(
                b,
                b"h",
                tar::EntryType::Link,
                s.outside.join("secret").to_str().unwrap().as_bytes(),
                b"",
            );
        });
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "absolute path");
        let tar = build(|b| raw_entry(b, b"h", tar::EntryType::Link, b"../outside/secret", b""));
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "leaves the layer");
        // A link to something the archive did not make (it might exist in dest).
        let tar = build(|b| raw_entry(b, b"h", tar::EntryType::Link, b"missing", b""));
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "not a file earlier");
        // A link through a symlinked directory.
        let tar = build(|b| {
            raw_entry(b, b"s", tar::EntryType::Symlink, b"../outside", b"");
            raw_entry(b, b"h", tar::EntryType::Link, b"s/secret", b"");
        });
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "not a file earlier");
        assert_eq!(fs::read_dir(&s.outside).unwrap().count(), 1);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(s.outside.join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn a_directory_replaced_by_a_file_forgets_its_children() {
        let s = setup();
        let tar = build(|b| {
            file(b, "d/child", b"x");
            raw_entry(b, b"d", tar::EntryType::Symlink, b"../outside", b"");
            file(b, "d/child", b"y");
        });
        assert_invalid(extract(io::Cursor::new(tar), &s.dest), "not a directory");
        outside_is_empty(&s);
    }

    #[test]
    fn owners_devices_and_xattrs_are_kept_as_root() {
        if !crate::test_ledger::root_or_skip(module_path!(), "needs root") {
            return;
        }
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let s = setup();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "dev/null", io::empty()).unwrap();
        b.append_pax_extensions([
            ("SCHILY.xattr.user.berth", &b"yes"[..]),
            ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ])
        .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_size(2);
        b.append_data(&mut h, "bin/suid", &b"hi"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        extract(io::Cursor::new(tar), &s.dest).unwrap();
        let m = fs::symlink_metadata(s.dest.join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), crate::sys::fs::device_number(1, 3));
        let m = fs::metadata(s.dest.join("bin/suid")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
        assert_eq!(m.mode() & 0o7777, 0o4755, "setuid survives the chown");
        assert_eq!(
            xattr::get(s.dest.join("bin/suid"), "user.berth").unwrap(),
            Some(b"yes".to_vec())
        );
        assert_eq!(
            xattr::get(s.dest.join("bin/suid"), "trusted.overlay.opaque").unwrap(),
            None,
            "overlayfs attributes from an archive are dropped"
        );
    }

    #[test]
    fn sanitize_rules() {
        assert_eq!(
            sanitize(b"./a//b/./c").unwrap(),
            Some(PathBuf::from("a/b/c"))
        );
        assert_eq!(sanitize(b"./").unwrap(), None);
        assert!(sanitize(b"/etc").is_err());
        assert!(sanitize(b"a/..").is_err());
    }

    #[test]
    fn small_reads_are_fine() {
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3);
                self.0.read(&mut buf[..n])
            }
        }
        let s = setup();
        let tar = build(|b| file(b, "a", &[1u8; 5000]));
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let got = extract(Trickle(io::Cursor::new(tar)), &s.dest).unwrap();
        assert_eq!(got.diff_id, want);
        assert_eq!(fs::read(s.dest.join("a")).unwrap().len(), 5000);
    }
}
