//! `docker push`: each layer compressed (gzip) to a file while it is hashed, skipped when
//! the registry has its blob (HEAD), else uploaded in one request; then the config and a
//! schema 2 manifest. Pushes of the same `name:tag` at once share one (the pushing pool).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest as mt;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

use super::{AuthConfig, Progress, ProgressTx, PushResult, Registries, RegistryError};
use crate::actors::graph::error::GraphError;
use crate::actors::graph::reference;
use crate::actors::graph::store::{GraphStore, PushSource};
use crate::actors::graph::tarsplit;

fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

fn push_remote(registry: &str, e: OciDistributionError) -> RegistryError {
    let denied = match &e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::RequestError(r) => {
            r.status() == Some(reqwest::StatusCode::UNAUTHORIZED)
        }
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    };
    if denied {
        RegistryError::PushDenied {
            reason: crate::util::error_chain(&e),
        }
    } else {
        RegistryError::Remote {
            registry: registry.to_owned(),
            message: crate::util::error_chain(&e),
        }
    }
}

/// Hashes and counts what is written through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A layer's gzip blob, made on a blocking thread: (file, digest, size).
fn compress(
    layer: &crate::actors::graph::store::PushLayer,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, String, u64), RegistryError> {
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::local(dir, &e))?;
    let path = dir.join(format!(
        "{}.{}",
        short(&layer.diff_id),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let file = std::fs::File::create(&path).map_err(|e| RegistryError::local(&path, &e))?;
    let out = Hashing {
        inner: std::io::BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        count: 0,
    };
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let done = tarsplit::write_tar(&layer.record, &layer.content, &mut gz)
        .and_then(|_| gz.try_finish())
        .and_then(|()| gz.get_mut().flush());
    if let Err(e) = done {
        let _ = std::fs::remove_file(&path);
        return Err(RegistryError::local(&layer.content, &e));
    }
    let out = gz.finish().map_err(|e| RegistryError::local(&path, &e))?;
    let digest = format!("sha256:{}", hex::encode(out.hasher.finalize()));
    Ok((path, digest, out.count))
}

/// Removes a compressed layer however its upload ends.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Pushes one image as `r` (which holds the tag). Replies the manifest's digest and size.
async fn push_image(
    reg: Arc<Registries>,
    client: Client,
    r: Reference,
    src: PushSource,
    dir: std::path::PathBuf,
    progress: ProgressTx,
) -> PushResult {
    let registry = r.registry().to_owned();
    let ids: Vec<String> = src.layers.iter().map(|l| short(&l.diff_id)).collect();
    for id in ids.iter().rev() {
        let _ = progress.send(Progress::layer(id, "Preparing"));
    }
    let exists = |digest: String| {
        let (client, r, registry) = (client.clone(), r.clone(), registry.clone());
        async move {
            client
                .blob_exists(&r, &digest)
                .await
                .map_err(|e| push_remote(&registry, e))
        }
    };
    let repository = r.repository().to_owned();
    let mut layers = Vec::new();
    for (layer, id) in src.layers.into_iter().zip(&ids) {
        let known = reg.blobs_of.lock().get(&layer.diff_id).cloned();
        if let Some((digest, size)) = known {
            if exists(digest.clone()).await? {
                let _ = progress.send(Progress::layer(id, "Layer already exists"));
                reg.remember(&layer.diff_id, &digest, size, &registry, &repository);
                layers.push((digest, size));
                continue;
            }
            // Known in another repository of this registry: mounted from there.
            let from = reg.seen_at.lock().get(&digest).cloned();
            if let Some((at, repo)) =
                from.filter(|(at, repo)| *at == registry && *repo != repository)
            {
                let source = Reference::with_digest(at, repo.clone(), digest.clone());
                match client.mount_blob(&r, &source, &digest).await {
                    Ok(()) => {
                        let _ = progress.send(Progress::layer(id, format!("Mounted from {repo}")));
                        reg.remember(&layer.diff_id, &digest, size, &registry, &repository);
                        layers.push((digest, size));
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(%digest, error = %e, "blob mount refused; uploading");
                    }
                }
            }
        }
        let diff_id = layer.diff_id.clone();
        let d = dir.clone();
        let (path, digest, size) = tokio::task::spawn_blocking(move || compress(&layer, &d))
            .await
            .map_err(|_| RegistryError::TaskFailed { operation: "push" })??;
        let file = TempFile(path);
        if exists(digest.clone()).await? {
            let _ = progress.send(Progress::layer(id, "Layer already exists"));
            reg.remember(&diff_id, &digest, size, &registry, &repository);
            layers.push((digest, size));
            continue;
        }
        let f = tokio::fs::File::open(&file.0)
            .await
            .map_err(|e| RegistryError::local(&file.0, &e))?;
        let mut sent = 0u64;
        let mut last = Instant::now() - Duration::from_secs(1);
        let bar = progress.clone();
        let bar_id = id.clone();
        let body = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).map(
            move |chunk: std::io::Result<Bytes>| {
                if let Ok(c) = &chunk {
                    sent += c.len() as u64;
                    if last.elapsed() >= Duration::from_millis(100) || sent == size {
                        last = Instant::now();
                        let _ = bar.send(Progress::bar(&bar_id, "Pushing", sent, size));
                    }
                }
                chunk.map_err(OciDistributionError::IoError)
            },
        );
        client
            .push_blob_stream(&r, body, &digest, Some(size))
            .await
            .map_err(|e| push_remote(&registry, e))?;
        drop(file);
        reg.remember(&diff_id, &digest, size, &registry, &repository);
        let _ = progress.send(Progress::layer(id, "Pushed"));
        layers.push((digest, size));
    }
    let config_digest = src.id.clone();
    if !exists(config_digest.clone()).await? {
        client
            .push_blob(&r, src.config.clone(), &config_digest)
            .await
            .map_err(|e| push_remote(&registry, e))?;
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::IMAGE_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": mt::IMAGE_DOCKER_CONFIG_MEDIA_TYPE,
            "size": src.config.len(),
            "digest": config_digest,
        },
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": mt::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
            "size": s,
            "digest": d,
        })).collect::<Vec<_>>(),
    });
    let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    let size = body.len();
    client
        .push_manifest_raw(
            &r,
            body,
            reqwest::header::HeaderValue::from_static(mt::IMAGE_MANIFEST_MEDIA_TYPE),
        )
        .await
        .map_err(|e| push_remote(&registry, e))?;
    Ok((digest, size))
}

/// `POST /images/{name}/push?tag=` (`docker push`): the tag, or every tag of the
/// repository when none is given.
pub async fn push(
    reg: Arc<Registries>,
    store: Arc<GraphStore>,
    name: String,
    tag: Option<String>,
    auth: AuthConfig,
    progress: ProgressTx,
) -> Result<(), GraphError> {
    let (base, in_name) = reference::split_name_tag(&name);
    let familiar =
        reference::normalize_name(base).map_err(|reason| RegistryError::InvalidReference {
            reference: name.clone(),
            reason,
        })?;
    let oci: Reference =
        familiar.parse().map_err(
            |e: oci_client::ParseError| RegistryError::InvalidReference {
                reference: name.clone(),
                reason: e.to_string(),
            },
        )?;
    let tags = match tag.or(in_name.map(str::to_owned)) {
        Some(t) => vec![t],
        None => {
            let s = store.clone();
            let f = familiar.clone();
            let mut t = tokio::task::spawn_blocking(move || s.tags_of_repo(&f))
                .await
                .map_err(|_| GraphError::TaskFailed { operation: "push" })?;
            t.sort();
            t
        }
    };
    if tags.is_empty() {
        return Err(RegistryError::NotLocal { name: familiar }.into());
    }
    // Every image is looked up before the first line, so a missing one is the reply's
    // status.
    let mut sources = Vec::new();
    for t in &tags {
        let s = store.clone();
        let wanted = format!("{familiar}:{t}");
        let src = tokio::task::spawn_blocking(move || s.push_source(&wanted))
            .await
            .map_err(|_| GraphError::TaskFailed { operation: "push" })?
            .map_err(|e| match e {
                GraphError::ImageNotFound { .. } => GraphError::Registry(RegistryError::NotLocal {
                    name: familiar.clone(),
                }),
                other => other,
            })?;
        sources.push((t.clone(), src));
    }
    let shown = if oci.registry() == super::DOCKER_HUB {
        format!("docker.io/{}", oci.repository())
    } else {
        familiar.clone()
    };
    let _ = progress.send(Progress::line(format!(
        "The push refers to repository [{shown}]"
    )));
    let ra = auth.to_registry_auth();
    let client = reg.client(oci.registry(), &ra).await;
    for (t, src) in sources {
        let r = Reference::with_tag(
            oci.registry().to_owned(),
            oci.repository().to_owned(),
            t.clone(),
        );
        let key = format!("{familiar}:{t}");
        let id = src.id.clone();
        let shared = {
            let mut pool = reg.pushing.lock();
            match pool.get(&key) {
                Some(s) => s.clone(),
                None => {
                    let me = reg.clone();
                    let k = key.clone();
                    let task = tokio::spawn({
                        let fut = push_image(
                            reg.clone(),
                            client.clone(),
                            r,
                            src,
                            store.work_dir("push"),
                            progress.clone(),
                        );
                        async move {
                            let out = fut.await;
                            me.pushing.lock().remove(&k);
                            out
                        }
                    });
                    let s = task
                        .map(|r| r.unwrap_or(Err(RegistryError::TaskFailed { operation: "push" })))
                        .boxed()
                        .shared();
                    pool.insert(key.clone(), s.clone());
                    s
                }
            }
        };
        let (digest, size) = shared.await?;
        let _ = progress.send(Progress::line(format!(
            "{t}: digest: {digest} size: {size}"
        )));
        let _ = progress.send(Progress {
            status: String::new(),
            aux: Some(serde_json::json!({"Tag": t, "Digest": digest, "Size": size})),
            ..Progress::default()
        });
        {
            let s = store.clone();
            let (f, d, i) = (familiar.clone(), digest.clone(), id.clone());
            tokio::task::spawn_blocking(move || s.record_digest(&f, &d, &i))
                .await
                .map_err(|_| GraphError::TaskFailed { operation: "push" })??;
        }
        store.registry_event(&id, &key, &familiar, "push");
        tracing::info!(reference = %key, %digest, image = %id, "image pushed");
    }
    Ok(())
}
