//! `docker pull`: the manifest (a list or index resolved to the platform wanted), the
//! config and each layer blob through the pulling pool, then the image made by the store
//! on a blocking thread as the blobs arrive, in order.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{self as mt, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use tokio::io::AsyncWrite;

use super::{
    AuthConfig, Blob, BlobContent, BlobResult, InFlight, Pooled, Progress, ProgressTx, Registries,
    RegistryError,
};
use crate::actors::graph::error::GraphError;
use crate::actors::graph::reference::{self, split_name_tag};
use crate::actors::graph::store::{GraphStore, LayerStep, PullCommit, PulledLayer};

/// How many times a blob download is tried before the pull fails.
const ATTEMPTS: u32 = 3;
/// At most one `Downloading` line per blob in this time.
const BAR_EVERY: Duration = Duration::from_millis(100);

const ACCEPT: &[&str] = &[
    mt::IMAGE_MANIFEST_MEDIA_TYPE,
    mt::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    mt::OCI_IMAGE_MEDIA_TYPE,
    mt::OCI_IMAGE_INDEX_MEDIA_TYPE,
];

/// A manifest, an index or a list: the fields berthd reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    schema_version: i64,
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<Vec<Entry>>,
    #[serde(default)]
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

impl Desc {
    fn oci(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            ..OciDescriptor::default()
        }
    }
}

/// What a pull names: the familiar repository and a tag or a digest.
#[derive(Debug, Clone)]
struct Target {
    /// `busybox`, `localhost:5000/app`.
    name: String,
    /// The registry as references name it (`docker.io`, `localhost:5000`).
    registry: String,
    /// The repository path in that registry (`library/busybox`).
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Target {
    fn parse(image: &str, tag: Option<&str>) -> Result<Target, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidReference {
            reference: image.to_owned(),
            reason,
        };
        let (mut base, mut digest) = match image.split_once('@') {
            Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
            None => (image.to_owned(), None),
        };
        let mut in_name_tag = None;
        if digest.is_none() {
            let (n, t) = split_name_tag(&base);
            in_name_tag = t.map(str::to_owned);
            base = n.to_owned();
        }
        let mut tag = tag.map(str::to_owned).or(in_name_tag);
        if let Some(t) = tag.clone() {
            if t.starts_with("sha256:") {
                digest = Some(t);
                tag = None;
            }
        }
        if let Some(d) = &digest {
            let ok = d
                .strip_prefix("sha256:")
                .is_some_and(crate::util::is_full_id);
            if !ok {
                return Err(invalid(format!("invalid digest {d:?}")));
            }
        } else if tag.is_none() {
            tag = Some(reference::DEFAULT_TAG.to_owned());
        }
        let name = reference::normalize_name(&base).map_err(invalid)?;
        let oci: Reference = name
            .parse()
            .map_err(|e: oci_client::ParseError| invalid(e.to_string()))?;
        Ok(Target {
            name,
            registry: oci.registry().to_owned(),
            repository: oci.repository().to_owned(),
            tag,
            digest,
        })
    }

    /// The reference at `endpoint` by tag, or by `digest` when given.
    fn at(&self, endpoint: &str, digest: Option<&str>) -> Reference {
        match (digest.or(self.digest.as_deref()), &self.tag) {
            (Some(d), _) => {
                Reference::with_digest(endpoint.to_owned(), self.repository.clone(), d.to_owned())
            }
            (None, Some(t)) => {
                Reference::with_tag(endpoint.to_owned(), self.repository.clone(), t.clone())
            }
            (None, None) => Reference::with_tag(
                endpoint.to_owned(),
                self.repository.clone(),
                reference::DEFAULT_TAG.to_owned(),
            ),
        }
    }

    /// `busybox:latest` or `busybox@sha256:…`, as the status lines say it.
    fn familiar(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.name),
            (None, Some(t)) => format!("{}:{t}", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

/// Maps a client error to what a client is told. `name` is the repository pulled.
pub(super) fn remote(registry: &str, name: &str, e: OciDistributionError) -> RegistryError {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => RegistryError::PullDenied {
            name: name.to_owned(),
            reason: crate::util::error_chain(&e),
        },
        OciDistributionError::RequestError(ref r)
            if r.status() == Some(reqwest::StatusCode::UNAUTHORIZED) =>
        {
            RegistryError::PullDenied {
                name: name.to_owned(),
                reason: crate::util::error_chain(&e),
            }
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            ..
        }) => RegistryError::DigestMismatch { digest: expected },
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            RegistryError::PullDenied {
                name: name.to_owned(),
                reason: crate::util::error_chain(&e),
            }
        }
        OciDistributionError::RequestError(ref r) if r.is_connect() || r.is_timeout() => {
            RegistryError::Transport {
                registry: registry.to_owned(),
                reason: crate::util::error_chain(&e),
            }
        }
        other => RegistryError::Remote {
            registry: registry.to_owned(),
            message: crate::util::error_chain(&other),
        },
    }
}

fn is_unknown(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// The platform wanted: the `platform` query parameter, else this host's.
fn wanted_platform(platform: Option<&str>) -> Result<Platform, RegistryError> {
    let host = crate::actors::graph::store::host_arch();
    let Some(p) = platform.filter(|p| !p.is_empty()) else {
        return Ok(Platform {
            architecture: host.to_owned(),
            os: "linux".to_owned(),
            variant: None,
        });
    };
    let lower = p.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let first = parts.next().unwrap_or_default();
    let (os, arch) = if first == "linux" || first == "windows" {
        (first.to_owned(), parts.next().unwrap_or(host).to_owned())
    } else {
        ("linux".to_owned(), first.to_owned())
    };
    let arch = match arch.as_str() {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        _ => arch,
    };
    Ok(Platform {
        os,
        architecture: arch,
        variant: parts.next().map(str::to_owned),
    })
}

fn platform_text(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The entry of a list or index for `want` (a variant asked for must match; arm64's
/// `v8` is its default).
fn choose<'a>(entries: &'a [Entry], want: &Platform) -> Option<&'a Entry> {
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) => None,
        (_, v) => v.map(str::to_owned),
    };
    let fits = |e: &&Entry| {
        e.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (want.variant.is_none() || norm(p) == norm(want))
        })
    };
    entries
        .iter()
        .filter(|e| !e.media_type.contains("index") && !e.media_type.contains("list"))
        .find(fits)
}

/// A writer that counts what goes through it and tells the pool.
struct Counting<W> {
    inner: W,
    count: u64,
    tx: tokio::sync::watch::Sender<u64>,
    last: Instant,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.count += *n as u64;
            if this.last.elapsed() >= BAR_EVERY {
                this.last = Instant::now();
                let _ = this.tx.send(this.count);
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Downloads `desc` to a file in `dir`, hashing as it writes; retried on network
/// failures, never on a digest that does not match (dockerd's `DoNotRetry`).
async fn download(
    client: Client,
    reference: Reference,
    desc: Desc,
    dir: std::path::PathBuf,
    name: String,
    tx: tokio::sync::watch::Sender<u64>,
) -> BlobResult {
    let hex = desc.digest.trim_start_matches("sha256:").to_owned();
    let path = dir.join(format!("{hex}.{}", hex::encode(rand::random::<[u8; 4]>())));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| RegistryError::local(&dir, &e))?;
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| RegistryError::local(&path, &e))?;
        let mut out = Counting {
            inner: tokio::io::BufWriter::with_capacity(128 * 1024, file),
            count: 0,
            tx: tx.clone(),
            last: Instant::now(),
        };
        let res = client.pull_blob(&reference, &desc.oci(), &mut out).await;
        let count = out.count;
        drop(out);
        match res {
            Ok(()) => {
                let _ = tx.send(count);
                if desc.size > 0 && u64::try_from(desc.size).ok() != Some(count) {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(RegistryError::DigestMismatch {
                        digest: desc.digest.clone(),
                    });
                }
                return Ok(Arc::new(Blob {
                    size: count,
                    content: BlobContent::File(path),
                }));
            }
            Err(e) => {
                let e = remote(reference.registry(), &name, e);
                let retry = matches!(
                    e,
                    RegistryError::Transport { .. } | RegistryError::Remote { .. }
                );
                tracing::warn!(digest = %desc.digest, attempt, error = %e, "blob download failed");
                last = Some(e);
                if !retry {
                    break;
                }
            }
        }
    }
    let _ = tokio::fs::remove_file(&path).await;
    Err(last.unwrap_or(RegistryError::TaskFailed {
        operation: "blob download",
    }))
}

/// Chunks of a layer's blob queued for its extraction. Each holds its own buffer of up
/// to hyper's 400 KiB read size, so this bounds a layer's queue to about 3 MiB (64 of
/// them let three layers take the daemon to 92 MiB at its peak).
const CHUNKS_QUEUED: usize = 8;

/// The blob's bytes, as the extraction thread reads them: what the download hands on,
/// to the end of the stream or the download's error.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Why one attempt at a layer failed: worth another attempt or not.
enum Attempt {
    Retry(RegistryError),
    Stop(RegistryError),
}

/// Downloads layer blob `desc` and extracts it as it arrives (a layer `over` others or
/// a base layer) into a staged layer: its bytes are hashed by the client as they come
/// and handed on to an extraction thread, and the result counts only once the whole
/// blob matched its digest. A blob that does not is refused (dockerd's "filesystem
/// layer verification failed", not retried) and its staged dir removed, even when its
/// content broke the extraction first (the rest is then read and hashed only). Network
/// failures are retried from the start, up to [`ATTEMPTS`] times.
async fn fetch_layer(
    client: Client,
    reference: Reference,
    desc: Desc,
    store: Arc<GraphStore>,
    over: bool,
    name: String,
    tx: tokio::sync::watch::Sender<u64>,
) -> BlobResult {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        let t0 = Instant::now();
        match fetch_layer_once(&client, &reference, &desc, &store, over, &name, &tx).await {
            Ok(blob) => {
                let ms = t0.elapsed().as_millis();
                tracing::debug!(digest = %desc.digest, bytes = blob.size, ms, "pull: layer downloaded and extracted");
                return Ok(blob);
            }
            Err(Attempt::Retry(e)) => {
                tracing::warn!(digest = %desc.digest, attempt, error = %e, "blob download failed");
                last = Some(e);
            }
            Err(Attempt::Stop(e)) => {
                tracing::warn!(digest = %desc.digest, attempt, error = %e, "blob download failed");
                return Err(e);
            }
        }
    }
    Err(last.unwrap_or(RegistryError::TaskFailed {
        operation: "blob download",
    }))
}

/// One attempt of [`fetch_layer`].
async fn fetch_layer_once(
    client: &Client,
    reference: &Reference,
    desc: &Desc,
    store: &Arc<GraphStore>,
    over: bool,
    name: &str,
    tx: &tokio::sync::watch::Sender<u64>,
) -> Result<Arc<Blob>, Attempt> {
    use futures_util::StreamExt;
    let mismatch = || RegistryError::DigestMismatch {
        digest: desc.digest.clone(),
    };
    let classify = |e: RegistryError| match e {
        RegistryError::Transport { .. } | RegistryError::Remote { .. } => Attempt::Retry(e),
        e => Attempt::Stop(e),
    };
    let mut stream = client
        .pull_blob_stream(reference, &desc.oci())
        .await
        .map_err(|e| classify(remote(reference.registry(), name, e)))?;
    let (chunks, rx) = tokio::sync::mpsc::channel(CHUNKS_QUEUED);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    {
        let store = store.clone();
        let span = tracing::Span::current();
        let source = Chunks {
            rx,
            cur: bytes::Bytes::new(),
        };
        // A thread of its own: the extraction blocks on the stream for as long as the
        // download lasts.
        std::thread::Builder::new()
            .name("berth-pull-layer".to_owned())
            .spawn(move || {
                let r = span.in_scope(|| store.stage_layer(source, over));
                let _ = done_tx.send(r);
            })
            .map_err(|e| {
                Attempt::Stop(RegistryError::local(
                    std::path::Path::new("berth-pull-layer thread"),
                    &e,
                ))
            })?;
    }
    let expected = u64::try_from(desc.size).ok().filter(|n| *n > 0);
    let mut count = 0u64;
    let mut last_bar = Instant::now();
    let mut feeding = true;
    let mut failed = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => {
                count += bytes.len() as u64;
                if expected.is_some_and(|n| count > n) {
                    failed = Some(Attempt::Stop(mismatch()));
                    break;
                }
                if last_bar.elapsed() >= BAR_EVERY {
                    last_bar = Instant::now();
                    let _ = tx.send(count);
                }
                // When the extraction has stopped (content it cannot take, a local
                // error), the rest is still read: the client hashes it, and a blob that
                // is not its digest is reported as such.
                if feeding && chunks.send(Ok(bytes)).await.is_err() {
                    feeding = false;
                }
            }
            Err(e) => {
                let digest = e
                    .get_ref()
                    .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>());
                failed = Some(if digest {
                    Attempt::Stop(mismatch())
                } else {
                    Attempt::Retry(RegistryError::Transport {
                        registry: reference.registry().to_owned(),
                        reason: crate::util::error_chain(&e),
                    })
                });
                break;
            }
        }
    }
    if failed.is_none() && expected.is_some_and(|n| count != n) {
        failed = Some(Attempt::Stop(mismatch()));
    }
    if failed.is_some() {
        // The extraction fails rather than taking a stream cut short as its end.
        let _ = chunks
            .send(Err(std::io::Error::other("the download failed")))
            .await;
    }
    drop(chunks);
    let staged = done_rx.await;
    let _ = tx.send(count);
    if let Some(f) = failed {
        // A staged layer of a failed download is dropped here: its dir goes.
        return Err(f);
    }
    match staged {
        Ok(Ok(layer)) => Ok(Arc::new(Blob {
            size: count,
            content: BlobContent::Layer(Arc::new(layer)),
        })),
        Ok(Err(GraphError::Io { path, source })) => {
            Err(Attempt::Stop(RegistryError::local(&path, &source)))
        }
        Ok(Err(e)) => Err(Attempt::Stop(RegistryError::BadDocument {
            what: "layer",
            reference: desc.digest.clone(),
            reason: crate::util::error_chain(&e),
        })),
        Err(_) => Err(Attempt::Stop(RegistryError::TaskFailed {
            operation: "layer extraction",
        })),
    }
}

impl Registries {
    /// The download under `key` in the pulling pool: joined when one is in flight (or
    /// its blob is still held by a pull), else started with `start` (as a task of its
    /// own, so that it goes on whoever waits; at most [`super::MAX_DOWNLOADS`] at once).
    fn blob(
        self: &Arc<Self>,
        key: String,
        start: impl FnOnce(
            tokio::sync::watch::Sender<u64>,
        ) -> futures_util::future::BoxFuture<'static, BlobResult>,
    ) -> (InFlight, bool) {
        let mut pool = self.pulling.lock();
        pool.retain(|_, p| match p {
            Pooled::InFlight(_) => true,
            Pooled::Held(w) => w.strong_count() > 0,
        });
        match pool.get(&key) {
            Some(Pooled::InFlight(f)) => return (f.clone(), false),
            Some(Pooled::Held(w)) => {
                if let Some(blob) = w.upgrade() {
                    let (_, rx) = tokio::sync::watch::channel(blob.size);
                    let done = futures_util::future::ready(Ok(blob)).boxed().shared();
                    return (InFlight { done, progress: rx }, false);
                }
            }
            None => {}
        }
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let me = self.clone();
        let fut = start(tx);
        let task = tokio::spawn({
            let key = key.clone();
            let slots = self.downloads.clone();
            async move {
                let permit = slots.acquire_owned().await;
                let r = fut.await;
                drop(permit);
                let mut pool = me.pulling.lock();
                match &r {
                    Ok(blob) => {
                        pool.insert(key, Pooled::Held(Arc::downgrade(blob)));
                    }
                    Err(_) => {
                        pool.remove(&key);
                    }
                }
                r
            }
        });
        let done = task
            .map(|r| {
                r.unwrap_or(Err(RegistryError::TaskFailed {
                    operation: "blob download",
                }))
            })
            .boxed()
            .shared();
        let f = InFlight { done, progress: rx };
        pool.insert(key, Pooled::InFlight(f.clone()));
        (f, true)
    }
}

/// Waits for a download, showing its bar as `id`.
async fn follow(f: InFlight, id: String, total: u64, progress: ProgressTx) -> BlobResult {
    let InFlight {
        done,
        progress: mut bytes,
    } = f;
    let mut done = std::pin::pin!(done);
    loop {
        tokio::select! {
            r = &mut done => {
                if r.is_ok() {
                    let _ = progress.send(Progress::layer(&id, "Verifying Checksum"));
                    let _ = progress.send(Progress::layer(&id, "Download complete"));
                }
                return r;
            }
            changed = bytes.changed() => {
                if changed.is_ok() {
                    let n = *bytes.borrow_and_update();
                    let _ = progress.send(Progress::bar(&id, "Downloading", n, total));
                } else {
                    return done.await;
                }
            }
        }
    }
}

fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// `POST /images/create?fromImage=` (`docker pull`). The lines go to `progress`; an
/// error before the first line is the reply's status, after it the stream's last line.
#[allow(clippy::too_many_arguments)]
pub async fn pull(
    reg: Arc<Registries>,
    store: Arc<GraphStore>,
    image: String,
    tag: Option<String>,
    platform: Option<String>,
    auth: AuthConfig,
    progress: ProgressTx,
) -> Result<(), GraphError> {
    let all_tags = tag.as_deref().is_none_or(str::is_empty)
        && !image.contains('@')
        && split_name_tag(&image).1.is_none();
    let want = wanted_platform(platform.as_deref())?;
    let ra = auth.to_registry_auth();
    if !all_tags {
        let target = Target::parse(&image, tag.as_deref())?;
        let newer = pull_one(&reg, &store, &target, &want, &ra, &progress).await?;
        let shown = target.familiar();
        let _ = progress.send(Progress::line(if newer {
            format!("Status: Downloaded newer image for {shown}")
        } else {
            format!("Status: Image is up to date for {shown}")
        }));
        return Ok(());
    }
    // `docker pull --all-tags`: every tag the registry lists, one after the other.
    let base = Target::parse(&image, None)?;
    let mut tags = None;
    let mut last_err = None;
    for endpoint in reg.endpoints(&base.registry) {
        let client = reg.client(&endpoint, &ra).await;
        match client
            .list_tags(&base.at(&endpoint, None), &ra, None, None)
            .await
        {
            Ok(t) => {
                tags = Some(t.tags);
                break;
            }
            Err(e) => last_err = Some(remote(&endpoint, &base.name, e)),
        }
    }
    let Some(mut tags) = tags else {
        return Err(last_err
            .unwrap_or(RegistryError::TaskFailed { operation: "pull" })
            .into());
    };
    tags.sort();
    if tags.is_empty() {
        return Err(RegistryError::ManifestUnknown {
            reference: base.name.clone(),
        }
        .into());
    }
    let mut newer = false;
    for t in tags {
        let target = Target {
            tag: Some(t),
            ..base.clone()
        };
        newer |= pull_one(&reg, &store, &target, &want, &ra, &progress).await?;
    }
    let _ = progress.send(Progress::line(if newer {
        format!("Status: Downloaded newer image for {}", base.name)
    } else {
        format!("Status: Image is up to date for {}", base.name)
    }));
    Ok(())
}

/// Pulls one tag or digest; true when the image was not there under that name already.
async fn pull_one(
    reg: &Arc<Registries>,
    store: &Arc<GraphStore>,
    target: &Target,
    want: &Platform,
    ra: &RegistryAuth,
    progress: &ProgressTx,
) -> Result<bool, GraphError> {
    let t0 = Instant::now();
    // The manifest, from the first endpoint that has it (Docker Hub's mirrors first).
    let endpoints = reg.endpoints(&target.registry);
    let mut found = None;
    let mut last_err = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let client = reg.client(endpoint, ra).await;
        let r = target.at(endpoint, None);
        match fetch_manifest(&client, &r, ra, target, want).await {
            Ok(m) => {
                found = Some((endpoint.clone(), client, m));
                break;
            }
            Err(e) if i + 1 < endpoints.len() => {
                tracing::info!(mirror = %endpoint, error = %e, "mirror failed; trying the next endpoint");
                last_err = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Some((endpoint, client, (manifest, digest))) = found else {
        return Err(last_err
            .unwrap_or(RegistryError::TaskFailed { operation: "pull" })
            .into());
    };
    let tag_or_digest = target
        .digest
        .clone()
        .or(target.tag.clone())
        .unwrap_or_default();
    let _ = progress.send(Progress {
        status: format!("Pulling from {}", target.repository),
        id: Some(tag_or_digest),
        ..Progress::default()
    });
    let config_desc = manifest
        .config
        .clone()
        .ok_or_else(|| RegistryError::BadDocument {
            what: "manifest",
            reference: target.familiar(),
            reason: "no config".to_owned(),
        })?;
    for l in &manifest.layers {
        check_layer_type(&l.media_type)?;
    }
    tracing::debug!(ms = t0.elapsed().as_millis(), "pull: manifest");
    let dir = store.work_dir("pull");
    let r = target.at(&endpoint, Some(&digest));
    // The config, through the pool like any blob.
    let (cfg, _) = reg.blob(config_desc.digest.clone(), |tx| {
        download(
            client.clone(),
            r.clone(),
            config_desc.clone(),
            dir.clone(),
            target.name.clone(),
            tx,
        )
        .boxed()
    });
    let cfg_blob = cfg.done.await?;
    let BlobContent::File(cfg_path) = &cfg_blob.content else {
        return Err(GraphError::TaskFailed { operation: "pull" });
    };
    let config = tokio::fs::read(cfg_path)
        .await
        .map_err(|e| RegistryError::local(cfg_path, &e))?;
    tracing::debug!(ms = t0.elapsed().as_millis(), "pull: config");
    // The blobs are held until the image is made, so that a pull of the same image that
    // starts meanwhile takes them from the pool instead of downloading them again.
    let mut held = vec![cfg_blob];
    let diff_ids = diff_ids_of(&config).map_err(|reason| RegistryError::BadDocument {
        what: "image config",
        reference: target.familiar(),
        reason,
    })?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::BadDocument {
            what: "manifest",
            reference: target.familiar(),
            reason: format!(
                "{} layers for the config's {} diff ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        }
        .into());
    }
    let present = {
        let store = store.clone();
        let d = diff_ids.clone();
        tokio::task::spawn_blocking(move || store.present_layers(&d))
            .await
            .map_err(|_| GraphError::TaskFailed { operation: "pull" })?
    };
    // Start every missing layer's download and extraction (the pool runs them, each
    // into a layer dir of its own), then feed them in order to the blocking thread that
    // adopts them as the store's layers. A layer is pooled under its chain id and blob
    // digest: two pulls share it when their images agree up to it.
    let chains = crate::actors::graph::store::chain_ids(&diff_ids);
    let mut waits = Vec::new();
    for (i, ((l, here), chain)) in manifest
        .layers
        .iter()
        .zip(&present)
        .zip(&chains)
        .enumerate()
    {
        let id = short(&l.digest);
        if *here {
            let _ = progress.send(Progress::layer(&id, "Already exists"));
            waits.push(None);
            continue;
        }
        let _ = progress.send(Progress::layer(&id, "Pulling fs layer"));
        let (f, _) = reg.blob(format!("{chain}@{}", l.digest), |tx| {
            fetch_layer(
                client.clone(),
                r.clone(),
                l.clone(),
                store.clone(),
                i > 0,
                target.name.clone(),
                tx,
            )
            .boxed()
        });
        let total = u64::try_from(l.size).unwrap_or(0);
        waits.push(Some(tokio::spawn(follow(f, id, total, progress.clone()))));
    }
    let (tx, rx) = std::sync::mpsc::channel::<PulledLayer>();
    let ids: Vec<String> = manifest.layers.iter().map(|l| short(&l.digest)).collect();
    let committer = {
        let store = store.clone();
        let progress = progress.clone();
        let name = target.name.clone();
        let tag = if target.digest.is_some() {
            None
        } else {
            target.tag.clone()
        };
        let digest = digest.clone();
        let span = tracing::Span::current();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        // A thread of its own, not the arbiter's blocking pool: it waits for the blobs
        // for as long as the pull lasts, and the downloads' file writes need that pool.
        let spawned = std::thread::Builder::new()
            .name("berth-pull".to_owned())
            .spawn(move || {
                let r = span.in_scope(|| {
                    let step = |i: usize, s: LayerStep| {
                        let id = ids.get(i).map_or("", String::as_str);
                        let status = match s {
                            LayerStep::Extracting => "Extracting",
                            LayerStep::Done => "Pull complete",
                        };
                        let _ = progress.send(Progress::layer(id, status));
                    };
                    store.commit_pull(
                        &PullCommit {
                            config: &config,
                            name: &name,
                            tag: tag.as_deref(),
                            digest: &digest,
                        },
                        rx,
                        &step,
                    )
                });
                let _ = done_tx.send(r);
            });
        if let Err(e) = spawned {
            return Err(GraphError::Io {
                path: "berth-pull thread".into(),
                source: e,
            });
        }
        done_rx
    };
    for w in waits {
        let item: PulledLayer = match w {
            None => Ok(None),
            Some(h) => match h.await {
                Ok(Ok(blob)) => {
                    let staged = match &blob.content {
                        BlobContent::Layer(s) => Ok(Some(s.clone())),
                        BlobContent::File(_) => Err(GraphError::TaskFailed { operation: "pull" }),
                    };
                    held.push(blob);
                    staged
                }
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(GraphError::TaskFailed { operation: "pull" }),
            },
        };
        let stop = item.is_err();
        if tx.send(item).is_err() || stop {
            break;
        }
    }
    drop(tx);
    let pulled = committer
        .await
        .map_err(|_| GraphError::TaskFailed { operation: "pull" })??;
    drop(held);
    tracing::debug!(ms = t0.elapsed().as_millis(), "pull: image committed");
    for (l, diff_id) in manifest.layers.iter().zip(&diff_ids) {
        let size = u64::try_from(l.size).unwrap_or(0);
        reg.remember(diff_id, &l.digest, size, &endpoint, &target.repository);
    }
    let _ = progress.send(Progress::line(format!("Digest: {digest}")));
    store.registry_event(&pulled.id, &target.familiar(), &target.name, "pull");
    tracing::info!(reference = %target.familiar(), %digest, image = %pulled.id, newer = pulled.newer, "image pulled");
    Ok(pulled.newer)
}

fn check_layer_type(media_type: &str) -> Result<(), RegistryError> {
    match media_type {
        mt::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE
        | mt::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE
        | mt::IMAGE_LAYER_GZIP_MEDIA_TYPE
        | mt::IMAGE_LAYER_MEDIA_TYPE
        | "" => Ok(()),
        t if t.ends_with("+zstd") => Err(RegistryError::Unsupported {
            what: format!(
                "berthd does not pull zstd-compressed layers yet ({t}); push the image with gzip layers"
            ),
        }),
        t => Err(RegistryError::Unsupported {
            what: format!("berthd does not pull layers of media type {t}"),
        }),
    }
}

fn diff_ids_of(config: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Doc {
        rootfs: RootFs,
    }
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    let d: Doc = serde_json::from_slice(config).map_err(|e| e.to_string())?;
    Ok(d.rootfs.diff_ids)
}

/// The image manifest for `want` and its digest: a list or index is resolved to its
/// entry for the platform, fetched by digest.
async fn fetch_manifest(
    client: &Client,
    r: &Reference,
    ra: &RegistryAuth,
    target: &Target,
    want: &Platform,
) -> Result<(Manifest, String), RegistryError> {
    let get = |r: Reference| async move {
        client.pull_manifest_raw(&r, ra, ACCEPT).await.map_err(|e| {
            if is_unknown(&e) {
                RegistryError::ManifestUnknown {
                    reference: target.familiar(),
                }
            } else {
                remote(r.registry(), &target.name, e)
            }
        })
    };
    let (bytes, digest) = get(r.clone()).await?;
    let bad = |reason: String| RegistryError::BadDocument {
        what: "manifest",
        reference: target.familiar(),
        reason,
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if m.schema_version == 1 {
        return Err(RegistryError::Unsupported {
            what: format!(
                "berthd does not pull schema 1 manifests ({}); push the image again with a current client",
                target.familiar()
            ),
        });
    }
    let Some(entries) = &m.manifests else {
        return Ok((m, digest));
    };
    let entry = choose(entries, want).ok_or_else(|| RegistryError::NoMatchingPlatform {
        platform: platform_text(want),
    })?;
    let child = Reference::with_digest(
        r.registry().to_owned(),
        r.repository().to_owned(),
        entry.digest.clone(),
    );
    let (bytes, child_digest) = get(child).await?;
    let cm: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if cm.manifests.is_some() || cm.config.is_none() {
        return Err(bad(format!(
            "the entry for {} is not an image manifest ({})",
            platform_text(want),
            cm.media_type
        )));
    }
    if child_digest != entry.digest {
        return Err(RegistryError::DigestMismatch {
            digest: entry.digest.clone(),
        });
    }
    // The list's digest names the image, as dockerd records it.
    Ok((cm, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_dockerd_reads_them() {
        let t = Target::parse("busybox", None).unwrap();
        assert_eq!(
            (t.name.as_str(), t.registry.as_str(), t.repository.as_str()),
            ("busybox", "docker.io", "library/busybox")
        );
        assert_eq!(t.tag.as_deref(), Some("latest"));
        let t = Target::parse("127.0.0.1:5000/a/b", Some("1.0")).unwrap();
        assert_eq!(
            (t.name.as_str(), t.registry.as_str(), t.repository.as_str()),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b")
        );
        assert_eq!(t.familiar(), "127.0.0.1:5000/a/b:1.0");
        let d = format!("sha256:{}", "a".repeat(64));
        let t = Target::parse("localhost:5000/x", Some(&d)).unwrap();
        assert_eq!(t.digest.as_deref(), Some(d.as_str()));
        assert!(t.tag.is_none());
        let t = Target::parse(&format!("localhost:5000/x@{d}"), None).unwrap();
        assert_eq!(t.familiar(), format!("localhost:5000/x@{d}"));
        assert!(Target::parse("Bad", None).is_err());
        assert!(Target::parse("x", Some("sha256:zz")).is_err());
    }

    #[test]
    fn platforms_choose_their_entry() {
        let e = |arch: &str, variant: Option<&str>, d: &str| Entry {
            media_type: mt::OCI_IMAGE_MEDIA_TYPE.to_owned(),
            digest: d.to_owned(),
            platform: Some(Platform {
                architecture: arch.to_owned(),
                os: "linux".to_owned(),
                variant: variant.map(str::to_owned),
            }),
        };
        let list = vec![
            e("arm", Some("v7"), "a"),
            e("arm64", Some("v8"), "b"),
            e("amd64", None, "c"),
        ];
        let p = |s: &str| wanted_platform(Some(s)).unwrap();
        assert_eq!(choose(&list, &p("linux/amd64")).unwrap().digest, "c");
        assert_eq!(choose(&list, &p("linux/arm64")).unwrap().digest, "b");
        assert_eq!(choose(&list, &p("linux/arm64/v8")).unwrap().digest, "b");
        assert_eq!(choose(&list, &p("linux/arm/v7")).unwrap().digest, "a");
        assert!(choose(&list, &p("linux/s390x")).is_none());
        assert_eq!(platform_text(&p("linux/arm/v7")), "linux/arm/v7");
    }

    #[test]
    fn zstd_layers_are_refused_clearly() {
        let e = check_layer_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap_err();
        assert!(e.to_string().contains("zstd"), "{e}");
        assert!(check_layer_type(mt::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE).is_ok());
    }
}
