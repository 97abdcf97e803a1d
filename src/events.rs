//! The daemon's event log: what `GET /events` (`docker events`) streams.
//!
//! Like [`crate::metrics`], it is process-wide: any actor publishes ([`events()`]
//! `.publish`), and each `/events` request subscribes. It keeps the last
//! [`BUFFERED`] events (dockerd's `eventsLimit`, 256) for `since`/`until` replays and hands
//! each new one to the live subscribers through a Tokio broadcast channel. Publishing
//! takes one short lock and allocates the event; with no subscriber nothing more happens,
//! so the start path pays a few hundred nanoseconds per event and nothing at all wakes
//! while the daemon is idle.
//!
//! The JSON is dockerd's `events.Message` (API 1.41): `Type`, `Action`, `Actor` with its
//! `ID` and `Attributes` (keys sorted, as Go's encoder sorts a map), `scope`, `time`,
//! `timeNano`, and for containers and images the legacy `status`, `id` and `from`. The
//! generated `SystemEventsResponse` has neither `scope` nor the legacy fields, hence the
//! struct here. The filter is dockerd's `daemon/events/filter.go`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::filters::{FilterError, Filters, label_pairs};

/// How many past events are kept for `since` (dockerd's `eventsLimit`).
pub const BUFFERED: usize = 256;
/// How many events a live subscriber may fall behind before it misses some.
const CHANNEL: usize = 1024;

/// The kinds of object an event is about (dockerd's `events.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Container,
    Image,
    Volume,
    Network,
    Daemon,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Daemon => "daemon",
        }
    }
}

/// One event, as dockerd's `events.Message` serialises it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: Kind,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    scope: &'static str,
    time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event of `kind` about `id`, now.
    pub fn new(
        kind: Kind,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let now = chrono::Utc::now();
        let time_nano = now.timestamp_nanos_opt().unwrap_or(0);
        let action = action.into();
        let id = id.into();
        let legacy = matches!(kind, Kind::Container | Kind::Image);
        Event {
            status: legacy.then(|| action.clone()),
            id: legacy.then(|| id.clone()),
            from: match kind {
                Kind::Container => attributes.get("image").cloned(),
                _ => None,
            },
            kind,
            action,
            actor: Actor { id, attributes },
            scope: "local",
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }

    /// The event as one line of the `/events` stream (JSON and a newline).
    pub fn to_line(&self) -> bytes::Bytes {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v.into()
    }
}

/// A container's attributes as dockerd gives them to its events: its labels, then
/// `image` (as the create named it) and `name` (without the `/`), then `extra`.
pub fn container_attributes<'a>(
    name: &str,
    image: &str,
    labels: Option<&std::collections::HashMap<String, String>>,
    extra: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    a.insert("image".into(), image.to_owned());
    a.insert("name".into(), name.trim_start_matches('/').to_owned());
    for (k, v) in extra {
        a.insert(k.to_owned(), v);
    }
    a
}

struct Inner {
    past: VecDeque<Arc<Event>>,
    tx: broadcast::Sender<Arc<Event>>,
}

/// The process-wide log. See the module docs.
pub struct EventLog {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("EventLog")
            .field("buffered", &inner.past.len())
            .field("subscribers", &inner.tx.receiver_count())
            .finish()
    }
}

static EVENTS: LazyLock<EventLog> = LazyLock::new(|| EventLog {
    inner: Mutex::new(Inner {
        past: VecDeque::with_capacity(BUFFERED),
        tx: broadcast::channel(CHANNEL).0,
    }),
});

/// The process-wide event log.
pub fn events() -> &'static EventLog {
    &EVENTS
}

impl EventLog {
    /// Records `ev` and hands it to every live subscriber.
    pub fn publish(&self, ev: Event) {
        let ev = Arc::new(ev);
        let mut inner = self.inner.lock();
        if inner.past.len() == BUFFERED {
            inner.past.pop_front();
        }
        inner.past.push_back(ev.clone());
        if inner.tx.receiver_count() > 0 {
            // An error only says that every receiver has gone meanwhile.
            let _ = inner.tx.send(ev);
        }
    }

    /// A container event: see [`container_attributes`].
    pub fn container<'a>(
        &self,
        action: &str,
        id: &str,
        name: &str,
        image: &str,
        labels: Option<&std::collections::HashMap<String, String>>,
        extra: impl IntoIterator<Item = (&'a str, String)>,
    ) {
        let attributes = container_attributes(name, image, labels, extra);
        self.publish(Event::new(Kind::Container, action, id, attributes));
    }

    /// An event of another kind with its attributes.
    pub fn other<'a>(
        &self,
        kind: Kind,
        action: &str,
        id: &str,
        attributes: impl IntoIterator<Item = (&'a str, String)>,
    ) {
        let attributes = attributes
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.publish(Event::new(kind, action, id, attributes));
    }

    /// The past events between `since` and `until` (nanoseconds; `None` is open) that
    /// pass `filter`, oldest first, as dockerd's `loadBufferedEvents` (none when neither
    /// bound is given), and a receiver of every event published after them.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        filter: &EventFilter,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let inner = self.inner.lock();
        let rx = inner.tx.subscribe();
        if since.is_none() && until.is_none() {
            return (Vec::new(), rx);
        }
        let since = since.unwrap_or(0);
        let past = inner
            .past
            .iter()
            .filter(|e| e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u))
            .filter(|e| filter.includes(e))
            .cloned()
            .collect();
        (past, rx)
    }
}

/// The keys `/events` accepts (dockerd's): another is `Invalid filter 'x'`.
pub const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// dockerd's events filter (`daemon/events/filter.go`): every key given must match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: Filters,
}

impl EventFilter {
    pub fn compile(filters: Filters) -> Result<EventFilter, FilterError> {
        filters.validate(EVENT_FILTERS)?;
        Ok(EventFilter { filters })
    }

    /// dockerd's `FuzzyMatch`: no key, an exact value or a prefix.
    fn fuzzy(&self, key: &str, source: &str) -> bool {
        !self.filters.contains(key)
            || self.filters.exact_match(key, source)
            || self.filters.get(key).any(|p| source.starts_with(p))
    }

    /// The object's id or its `name` attribute, fuzzily (containers, volumes, networks…).
    fn name(&self, key: &str, ev: &Event) -> bool {
        let name = ev.actor.attributes.get("name").map_or("", String::as_str);
        self.fuzzy(key, &ev.actor.id) || self.fuzzy(key, name)
    }

    fn event(&self, ev: &Event) -> bool {
        // dockerd matches health_status, exec_create and exec_start (whose actions carry
        // the status or command after a colon) by prefix when they are asked for.
        let fuzzy = ["health_status", "exec_create", "exec_start"]
            .iter()
            .any(|k| self.filters.get("event").any(|v| v == *k));
        if fuzzy {
            self.fuzzy("event", &ev.action)
        } else {
            self.filters.exact_match("event", &ev.action)
        }
    }

    fn image(&self, ev: &Event) -> bool {
        if !self.filters.contains("image") {
            return true;
        }
        let attr = if ev.kind == Kind::Image {
            "name"
        } else {
            "image"
        };
        let name = ev.actor.attributes.get(attr).map_or("", String::as_str);
        let m = |s: &str| self.filters.exact_match("image", s);
        m(&ev.actor.id) || m(name) || m(strip_tag(&ev.actor.id)) || m(strip_tag(name))
    }

    /// Whether `ev` passes.
    pub fn includes(&self, ev: &Event) -> bool {
        let f = &self.filters;
        if f.is_empty() {
            return true;
        }
        let labels = label_pairs(&ev.actor.attributes);
        self.event(ev)
            && f.exact_match("type", ev.kind.as_str())
            && f.exact_match("scope", ev.scope)
            && ["container", "daemon", "plugin", "volume", "network"]
                .iter()
                .all(|k| self.name(k, ev))
            && self.image(ev)
            && ["node", "service", "secret", "config"]
                .iter()
                .all(|k| self.name(k, ev))
            && f.match_kv_list("label", &labels)
    }
}

/// A reference without its tag (`busybox:1` → `busybox`; a registry's port stays).
fn strip_tag(r: &str) -> &str {
    let r = r.split('@').next().unwrap_or(r);
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => &r[..i],
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let a = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Event::new(kind, action, id, a)
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        EventFilter::compile(Filters::from_pairs(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn serialises_as_dockerd() {
        let e = ev(
            Kind::Container,
            "die",
            "abc",
            &[("name", "t"), ("image", "busybox"), ("exitCode", "0")],
        );
        let v: serde_json::Value = serde_json::from_slice(&e.to_line()).unwrap();
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "0");
        assert_eq!(v["scope"], "local");
        assert_eq!(
            v["time"].as_i64().unwrap(),
            v["timeNano"].as_i64().unwrap() / 1_000_000_000
        );
        let line = String::from_utf8(e.to_line().to_vec()).unwrap();
        assert!(line.ends_with("}\n"));
        assert!(line.find("\"exitCode\"").unwrap() < line.find("\"image\"").unwrap());
        let v = ev(Kind::Volume, "create", "v1", &[("driver", "local")]);
        let v: serde_json::Value = serde_json::from_slice(&v.to_line()).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none() && v.get("from").is_none());
    }

    #[test]
    fn filters_match_as_dockerd() {
        let c = ev(
            Kind::Container,
            "exec_start: sh -c true",
            "abcdef",
            &[("name", "web"), ("image", "busybox:1"), ("tier", "front")],
        );
        let i = ev(Kind::Image, "tag", "sha256:1234", &[("name", "busybox:1")]);
        assert!(filter(&[]).includes(&c));
        assert!(filter(&[("container", "abc")]).includes(&c));
        assert!(filter(&[("container", "web")]).includes(&c));
        assert!(!filter(&[("container", "web")]).includes(&i));
        assert!(filter(&[("type", "image")]).includes(&i));
        assert!(!filter(&[("type", "image")]).includes(&c));
        assert!(filter(&[("event", "exec_start")]).includes(&c));
        assert!(!filter(&[("event", "exec_start: sh")]).includes(&c));
        assert!(!filter(&[("event", "die")]).includes(&c));
        assert!(filter(&[("image", "busybox")]).includes(&c));
        assert!(filter(&[("image", "busybox")]).includes(&i));
        assert!(filter(&[("image", "busybox:1")]).includes(&i));
        assert!(!filter(&[("image", "alpine")]).includes(&c));
        assert!(filter(&[("label", "tier=front")]).includes(&c));
        assert!(!filter(&[("label", "tier=back")]).includes(&c));
        assert!(filter(&[("label", "tier")]).includes(&c));
        assert!(!filter(&[("volume", "x")]).includes(&c));
        assert!(filter(&[("scope", "local")]).includes(&c));
        assert!(!filter(&[("scope", "swarm")]).includes(&c));
        assert!(EventFilter::compile(Filters::from_pairs([("bogus", "x")])).is_err());
    }

    #[test]
    fn tags_are_stripped_but_ports_kept() {
        assert_eq!(strip_tag("busybox:1"), "busybox");
        assert_eq!(strip_tag("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(strip_tag("localhost:5000/x:2"), "localhost:5000/x");
        assert_eq!(strip_tag("x@sha256:abc"), "x");
    }

    #[test]
    fn since_and_until_replay_the_past() {
        let log = EventLog {
            inner: Mutex::new(Inner {
                past: VecDeque::new(),
                tx: broadcast::channel(4).0,
            }),
        };
        for n in 0..(BUFFERED + 10) {
            log.other(Kind::Volume, "create", &format!("v{n}"), []);
        }
        let f = EventFilter::default();
        let (past, _) = log.subscribe(None, None, &f);
        assert!(past.is_empty());
        let (past, _) = log.subscribe(Some(0), None, &f);
        assert_eq!(past.len(), BUFFERED);
        assert_eq!(past[0].actor.id, "v10");
        let t = past[100].time_nano;
        let (past, mut rx) = log.subscribe(Some(t), Some(t), &f);
        assert!(past.iter().all(|e| e.time_nano == t) && !past.is_empty());
        log.other(Kind::Volume, "destroy", "v1", []);
        assert_eq!(rx.try_recv().unwrap().action, "destroy");
    }
}
