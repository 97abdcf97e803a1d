//! Registries: `docker pull`, `docker push` and `docker login` over the OCI distribution
//! protocol, with oci-client (reqwest, rustls with ring).
//!
//! State ([`Registries`], owned by the [`GraphActor`](super::GraphActor)): the daemon's
//! insecure registries and mirrors, one client per registry and credentials (a client
//! keeps the first credentials it is given for a registry, and its tokens), the
//! **pulling pool** (blob downloads in flight, by digest: a pull that needs a blob another
//! pull is downloading waits for that download and shows its progress) and the **pushing
//! pool** (pushes in flight, by `name:tag`: a second push of the same image waits for the
//! first and reports its result).
//!
//! Threads: the network work runs as tasks on the graph's arbiter (async, never
//! blocking it). A layer blob is hashed as it arrives and streamed, never held whole in
//! memory, to a thread that decompresses and extracts it into a layer dir of its own
//! (a staged layer, not yet in the store); only once the blob's digest is verified does
//! the pull's commit adopt it, in the image's order. A config blob goes to a file under
//! the graph's work dir and is read once verified. Compression (push) runs on blocking
//! threads.

pub mod error;
mod pull;
mod push;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use base64::Engine;
use futures_util::future::{BoxFuture, Shared};
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use parking_lot::Mutex;
use serde::Deserialize;

use crate::actors::graph::store::StagedLayer;
pub use error::RegistryError;
pub use pull::pull;
pub use push::push;

/// Blob downloads at once (dockerd's default).
const MAX_DOWNLOADS: usize = 3;

/// The official registry's name in references.
pub const DOCKER_HUB: &str = "docker.io";

/// A line of a pull's or push's progress stream: dockerd's `JSONMessage`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Progress {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

/// `progressDetail`: `{}` for a status without a bar.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl Progress {
    /// A line without an id (`Digest: sha256:…`).
    pub fn line(status: impl Into<String>) -> Progress {
        Progress {
            status: status.into(),
            ..Progress::default()
        }
    }

    /// A layer's status line (`Pull complete`), with dockerd's empty `progressDetail`.
    pub fn layer(id: &str, status: impl Into<String>) -> Progress {
        Progress {
            status: status.into(),
            id: Some(id.to_owned()),
            detail: Some(ProgressDetail::default()),
            ..Progress::default()
        }
    }

    /// A layer's bar (`Downloading`, `Pushing`): dockerd's `[==>   ]  1.2MB/4.5MB`.
    pub fn bar(id: &str, status: &str, current: u64, total: u64) -> Progress {
        Progress {
            status: status.to_owned(),
            id: Some(id.to_owned()),
            detail: Some(ProgressDetail {
                current: Some(current),
                total: (total > 0).then_some(total),
            }),
            progress: Some(bar_text(current, total)),
            aux: None,
        }
    }
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)] // a display value
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        let num = format!("{v:.3}");
        let num = num.trim_end_matches('0').trim_end_matches('.');
        format!("{num}{}", UNITS[u])
    }
}

fn bar_text(current: u64, total: u64) -> String {
    if total == 0 {
        return human(current);
    }
    let width = 50u64;
    let filled = (current.min(total) * width / total).min(width);
    let mut bar = "=".repeat(usize::try_from(filled).unwrap_or(0));
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat(usize::try_from(width - filled - 1).unwrap_or(0)));
    }
    format!("[{bar}] {:>8}/{}", human(current), human(total))
}

/// Where progress lines go: the API's response stream.
pub type ProgressTx = tokio::sync::mpsc::UnboundedSender<Progress>;

/// Registry credentials: the `X-Registry-Auth` header (base64url JSON) or the
/// `POST /auth` body, dockerd's `AuthConfig`.
#[derive(Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `base64(username:password)`, as config.json keeps it.
    #[serde(default)]
    pub auth: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not; standard base64
    /// too) of the JSON. An empty header or `{}` is anonymous.
    pub fn from_header(value: &str) -> Result<AuthConfig, RegistryError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(AuthConfig::default());
        }
        let lenient = base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
        let url = base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
        let std = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
        let bytes = url
            .decode(value)
            .or_else(|_| std.decode(value))
            .map_err(|e| RegistryError::InvalidReference {
                reference: "X-Registry-Auth".to_owned(),
                reason: format!("not base64: {e}"),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidReference {
            reference: "X-Registry-Auth".to_owned(),
            reason: format!("not an AuthConfig: {e}"),
        })
    }

    /// The credentials as the client takes them.
    pub fn to_registry_auth(&self) -> RegistryAuth {
        if !self.registry_token.is_empty() {
            return RegistryAuth::Bearer(self.registry_token.clone());
        }
        if !self.username.is_empty() {
            return RegistryAuth::Basic(self.username.clone(), self.password.clone());
        }
        if !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                if let Some((u, p)) = String::from_utf8_lossy(&b).split_once(':') {
                    return RegistryAuth::Basic(u.to_owned(), p.to_owned());
                }
            }
        }
        RegistryAuth::Anonymous
    }
}

/// A blob downloaded and verified, with what it became: an image config's bytes in a
/// file (removed when the last pull that needs it lets go), or a layer extracted as it
/// arrived (a [`StagedLayer`], removed unless a pull adopts it).
#[derive(Debug)]
pub struct Blob {
    pub size: u64,
    pub content: BlobContent,
}

/// What a blob became.
#[derive(Debug)]
pub enum BlobContent {
    File(PathBuf),
    Layer(Arc<StagedLayer>),
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let BlobContent::File(path) = &self.content {
            let _ = std::fs::remove_file(path);
        }
    }
}

type BlobResult = Result<Arc<Blob>, RegistryError>;

/// A download in the pulling pool: its end, shared by every pull that waits, and its
/// bytes so far.
#[derive(Clone)]
struct InFlight {
    done: Shared<BoxFuture<'static, BlobResult>>,
    progress: tokio::sync::watch::Receiver<u64>,
}

/// An entry of the pulling pool (by config digest, or by a layer's chain id and blob
/// digest, as dockerd keys its downloads by the layers up to this one): a download in
/// flight, or a blob downloaded that some
/// pull still holds (a pull that wants it then takes it rather than downloading it
/// again).
#[derive(Clone)]
enum Pooled {
    InFlight(InFlight),
    Held(std::sync::Weak<Blob>),
}

/// What a push replies: the manifest's digest and size.
type PushResult = Result<(String, usize), RegistryError>;

/// The registry side of the graph. See the module docs.
pub struct Registries {
    /// `--insecure-registry`: hosts (`host[:port]`) and CIDRs reached over plain HTTP.
    insecure: Vec<String>,
    /// `--registry-mirror`: hosts tried before Docker Hub for its images, with whether
    /// they are plain HTTP.
    mirrors: Vec<(String, bool)>,
    /// One client per registry and credentials.
    clients: Mutex<HashMap<String, Client>>,
    /// The pulling pool: by config digest, by `<chain id>@<blob digest>` for layers.
    pulling: Mutex<HashMap<String, Pooled>>,
    /// At most this many blob downloads at once, whatever the pulls (dockerd's
    /// `max-concurrent-downloads` default, 3): the memory of a pull stays bounded.
    downloads: Arc<tokio::sync::Semaphore>,
    /// The pushing pool, by `name:tag`.
    pushing: Mutex<HashMap<String, Shared<BoxFuture<'static, PushResult>>>>,
    /// Layers pushed or pulled: diff id → (blob digest, size), so that a push finds a
    /// layer's blob without compressing it again.
    blobs_of: Mutex<HashMap<String, (String, u64)>>,
    /// Where a blob was last pushed or pulled: digest → (registry, repository), so that a
    /// push to another repository of that registry mounts it rather than uploading it
    /// (dockerd's `Mounted from`).
    seen_at: Mutex<HashMap<String, (String, String)>>,
}

impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registries")
            .field("insecure", &self.insecure)
            .field("mirrors", &self.mirrors)
            .finish_non_exhaustive()
    }
}

impl Registries {
    /// `insecure`: the daemon's insecure registries; `mirrors`: its mirror URLs.
    pub fn new(insecure: &[String], mirrors: &[String]) -> Registries {
        let mirrors = mirrors
            .iter()
            .map(|m| {
                let plain = m.starts_with("http://");
                let host = m
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned();
                (host, plain)
            })
            .collect();
        Registries {
            insecure: insecure.to_vec(),
            mirrors,
            clients: Mutex::new(HashMap::new()),
            pulling: Mutex::new(HashMap::new()),
            downloads: Arc::new(tokio::sync::Semaphore::new(MAX_DOWNLOADS)),
            pushing: Mutex::new(HashMap::new()),
            blobs_of: Mutex::new(HashMap::new()),
            seen_at: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `registry` (`host[:port]`) is reached over plain HTTP: a loopback
    /// address or `localhost` (as dockerd treats 127.0.0.0/8), a configured insecure
    /// registry, or a mirror given as `http://`.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        if self
            .mirrors
            .iter()
            .any(|(m, plain)| *plain && m == registry)
        {
            return true;
        }
        self.insecure.iter().any(|entry| {
            if entry == registry || entry == host {
                return true;
            }
            match (ip, parse_cidr(entry)) {
                (Some(ip), Some((net, bits))) => in_cidr(ip, net, bits),
                _ => false,
            }
        })
    }

    /// The client for `registry` with `auth`, which it uses for every request to that
    /// registry (the client asks for tokens with it as the registry challenges).
    async fn client(&self, registry: &str, auth: &RegistryAuth) -> Client {
        let c = self.client_for(registry, auth);
        c.store_auth_if_needed(registry, auth).await;
        if registry == DOCKER_HUB {
            c.store_auth_if_needed("index.docker.io", auth).await;
        }
        c
    }

    fn client_for(&self, registry: &str, auth: &RegistryAuth) -> Client {
        install_crypto_provider();
        let who = match auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Basic(u, p) => format!("basic:{u}:{p}"),
            RegistryAuth::Bearer(t) => format!("bearer:{t}"),
        };
        let key = format!(
            "{registry}\n{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(who.as_bytes()))
        );
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let config = ClientConfig {
            protocol: if self.is_insecure(registry) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("berthd/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let c = Client::new(config);
        clients.insert(key, c.clone());
        c
    }

    /// Remembers that layer `diff_id` is blob `digest` of `size` bytes in `registry`'s
    /// `repository`.
    fn remember(&self, diff_id: &str, digest: &str, size: u64, registry: &str, repository: &str) {
        self.blobs_of
            .lock()
            .insert(diff_id.to_owned(), (digest.to_owned(), size));
        self.seen_at.lock().insert(
            digest.to_owned(),
            (registry.to_owned(), repository.to_owned()),
        );
    }

    /// The endpoints to try for `registry`: Docker Hub's mirrors first, then itself.
    fn endpoints(&self, registry: &str) -> Vec<String> {
        let mut out = Vec::new();
        if registry == DOCKER_HUB {
            out.extend(self.mirrors.iter().map(|(m, _)| m.clone()));
        }
        out.push(registry.to_owned());
        out
    }

    /// `POST /auth` (`docker login`): asks the registry's `/v2/` with the credentials
    /// (and its token service, when it answers with a bearer challenge). Replies the
    /// registry's name.
    pub async fn login(&self, auth: &AuthConfig) -> Result<String, RegistryError> {
        let registry = login_registry(&auth.server_address);
        // Docker Hub's login goes to its registry's address.
        let endpoint = if registry == DOCKER_HUB {
            "registry-1.docker.io".to_owned()
        } else {
            registry.clone()
        };
        let scheme = if self.is_insecure(&endpoint) {
            "http"
        } else {
            "https"
        };
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| transport(&registry, &e))?;
        let (user, pass) = match auth.to_registry_auth() {
            RegistryAuth::Basic(u, p) => (u, p),
            _ => (String::new(), String::new()),
        };
        let url = format!("{scheme}://{endpoint}/v2/");
        let res = http
            .get(&url)
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .map_err(|e| transport(&registry, &e))?;
        if res.status().is_success() {
            return Ok(registry);
        }
        if res.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Remote {
                registry,
                message: format!("GET {url}: {}", res.status()),
            });
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(RegistryError::LoginFailed {
                registry,
                status: "401 Unauthorized".to_owned(),
            });
        };
        let param = |name: &str| -> Option<String> {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        let Some(realm) = param("realm") else {
            return Err(RegistryError::Remote {
                registry,
                message: "a bearer challenge without a realm".to_owned(),
            });
        };
        let mut query = vec![("account", user.clone())];
        if let Some(s) = param("service") {
            query.push(("service", s));
        }
        let res = http
            .get(&realm)
            .query(&query)
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .map_err(|e| transport(&registry, &e))?;
        if res.status().is_success() {
            Ok(registry)
        } else {
            Err(RegistryError::LoginFailed {
                registry,
                status: res.status().to_string(),
            })
        }
    }
}

/// rustls' crypto (ring), installed once before the first client is built.
fn install_crypto_provider() {
    static PROVIDER: Once = Once::new();
    // ring has no post-quantum key exchange (hence the deprecation); aws-lc-rs, which
    // has, needs cmake and a long C build.
    #[allow(deprecated)]
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn transport(registry: &str, e: &reqwest::Error) -> RegistryError {
    RegistryError::Transport {
        registry: registry.to_owned(),
        reason: crate::util::error_chain(e),
    }
}

/// The registry `docker login` names: its host, `docker.io` for Docker Hub's addresses.
fn login_registry(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_owned(),
        h => h.to_owned(),
    }
}

/// `host` of `host:port` (and of `[v6]:port`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => registry,
    }
}

/// `10.0.0.0/8` → (address, prefix length).
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Checks an `--insecure-registry` value: `host[:port]` or a CIDR.
pub fn check_insecure_registry(s: &str) -> Result<String, String> {
    if s.contains("://") {
        return Err(
            "insecure registry must not contain a scheme (give host[:port] or a CIDR)".to_owned(),
        );
    }
    if s.contains('/') {
        return parse_cidr(s)
            .map(|_| s.to_owned())
            .ok_or_else(|| "not a valid CIDR".to_owned());
    }
    if s.is_empty() {
        return Err("empty registry".to_owned());
    }
    Ok(s.to_owned())
}

/// Checks a `--registry-mirror` value: an `http://` or `https://` URL without a path.
pub fn check_mirror(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| "mirror URL must start with http:// or https://".to_owned())?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err("mirror URL must be a host[:port] without a path".to_owned());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_configured_registries_are_insecure() {
        let r = Registries::new(
            &["10.1.0.0/16".into(), "reg.example:5000".into()],
            &["http://mirror.local:5000".into()],
        );
        assert!(r.is_insecure("127.0.0.1:5000"));
        assert!(r.is_insecure("localhost:5000"));
        assert!(r.is_insecure("[::1]:5000"));
        assert!(r.is_insecure("10.1.2.3:443"));
        assert!(r.is_insecure("reg.example:5000"));
        assert!(r.is_insecure("mirror.local:5000"));
        assert!(!r.is_insecure("10.2.0.1:5000"));
        assert!(!r.is_insecure("docker.io"));
    }

    #[test]
    fn auth_header_decodes_padded_and_unpadded() {
        let json = r#"{"username":"u","password":"p:x","serveraddress":"127.0.0.1:5000"}"#;
        let enc = base64::engine::general_purpose::URL_SAFE.encode(json);
        let a = AuthConfig::from_header(&enc).unwrap();
        assert!(
            matches!(a.to_registry_auth(), RegistryAuth::Basic(u, p) if u == "u" && p == "p:x")
        );
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{}");
        let a = AuthConfig::from_header(&enc).unwrap();
        assert!(matches!(a.to_registry_auth(), RegistryAuth::Anonymous));
        let a = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("me:secret"),
            ..AuthConfig::default()
        };
        assert!(
            matches!(a.to_registry_auth(), RegistryAuth::Basic(u, p) if u == "me" && p == "secret")
        );
        assert!(AuthConfig::from_header("!!!").is_err());
    }

    #[test]
    fn options_are_checked() {
        assert!(check_insecure_registry("10.0.0.0/8").is_ok());
        assert!(check_insecure_registry("10.0.0.0/99").is_err());
        assert!(check_insecure_registry("http://x").is_err());
        assert!(check_mirror("http://127.0.0.1:5000/").is_ok());
        assert!(check_mirror("127.0.0.1:5000").is_err());
        assert!(check_mirror("https://m.example/path").is_err());
    }

    #[test]
    fn bars_read_as_dockerds() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_500_000), "1.5MB");
        let b = bar_text(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
    }
}
