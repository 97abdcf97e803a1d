//! The Prometheus registry behind `/metrics`.
//!
//! One process-wide [`Metrics`] value holds every collector berthd exports. Names are
//! listed in [`EXPORTED`] so that the Grafana dashboard test can check it names only
//! metrics that exist.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric family berthd exports (besides the `process_*` ones of the prometheus crate).
pub const EXPORTED: &[&str] = &[
    "berth_api_requests_total",
    "berth_api_request_duration_seconds",
    "berth_containers",
    "berth_container_start_duration_seconds",
    "berth_actor_messages_total",
    "berth_actor_message_duration_seconds",
    "berth_actor_mailbox_depth",
    "berth_actor_up",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_start_time_seconds",
];

/// The collectors, registered once in [`registry`].
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// API requests by method, route pattern and status code.
    pub api_requests: IntCounterVec,
    /// API request latency by method and route pattern.
    pub api_latency: HistogramVec,
    /// Containers by state; set at scrape time from the container store.
    pub containers: IntGaugeVec,
    /// Time from the start request to the container process running.
    pub container_start: HistogramVec,
    /// Messages answered by each actor, by message type.
    pub actor_messages: IntCounterVec,
    /// Time from send to reply (queueing included), by actor and message type.
    pub actor_latency: HistogramVec,
    /// Messages sent to an actor and not yet answered: a stuck actor shows a rising depth.
    pub actor_mailbox: IntGaugeVec,
    /// 1 once the actor's `Init` succeeded, 0 after its `Shutdown`.
    pub actor_up: IntGaugeVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let fast = vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ];
    let api_requests = IntCounterVec::new(
        Opts::new("berth_api_requests_total", "Engine API requests served"),
        &["method", "route", "status"],
    )?;
    let api_latency = HistogramVec::new(
        HistogramOpts::new(
            "berth_api_request_duration_seconds",
            "Engine API request latency until the response head is sent",
        )
        .buckets(fast.clone()),
        &["method", "route"],
    )?;
    let containers = IntGaugeVec::new(
        Opts::new("berth_containers", "Containers by state"),
        &["state"],
    )?;
    let container_start = HistogramVec::new(
        HistogramOpts::new(
            "berth_container_start_duration_seconds",
            "Time from a start request to the container process running",
        )
        .buckets(fast.clone()),
        &["network"],
    )?;
    let actor_messages = IntCounterVec::new(
        Opts::new(
            "berth_actor_messages_total",
            "Messages answered by each actor",
        ),
        &["actor", "message", "result"],
    )?;
    let actor_latency = HistogramVec::new(
        HistogramOpts::new(
            "berth_actor_message_duration_seconds",
            "Time from sending a message to its reply, queueing included",
        )
        .buckets(fast),
        &["actor", "message"],
    )?;
    let actor_mailbox = IntGaugeVec::new(
        Opts::new(
            "berth_actor_mailbox_depth",
            "Messages sent to the actor and not yet answered",
        ),
        &["actor"],
    )?;
    let actor_up = IntGaugeVec::new(
        Opts::new("berth_actor_up", "1 while the actor is initialised"),
        &["actor"],
    )?;
    registry.register(Box::new(api_requests.clone()))?;
    registry.register(Box::new(api_latency.clone()))?;
    registry.register(Box::new(containers.clone()))?;
    registry.register(Box::new(container_start.clone()))?;
    registry.register(Box::new(actor_messages.clone()))?;
    registry.register(Box::new(actor_latency.clone()))?;
    registry.register(Box::new(actor_mailbox.clone()))?;
    registry.register(Box::new(actor_up.clone()))?;
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(Metrics {
        registry,
        api_requests,
        api_latency,
        containers,
        container_start,
        actor_messages,
        actor_latency,
        actor_mailbox,
        actor_up,
    })
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| match build() {
    Ok(m) => m,
    // The names and label sets above are constants; a failure here is a programming error
    // that every test run would show at once.
    Err(e) => panic!("metrics registry cannot be built: {e}"),
});

/// The process-wide collectors.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The registry in Prometheus text exposition format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let families = metrics().registry.gather();
    if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
        tracing::error!(error = %e, "metrics could not be encoded");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exported_name_is_rendered() {
        let m = metrics();
        // Touch each vector once so that it has a sample to render.
        m.api_requests
            .with_label_values(&["GET", "/_ping", "200"])
            .inc();
        m.api_latency
            .with_label_values(&["GET", "/_ping"])
            .observe(0.001);
        m.containers.with_label_values(&["running"]).set(0);
        m.container_start.with_label_values(&["none"]).observe(0.01);
        m.actor_messages
            .with_label_values(&["graph", "Init", "ok"])
            .inc();
        m.actor_latency
            .with_label_values(&["graph", "Init"])
            .observe(0.01);
        m.actor_mailbox.with_label_values(&["graph"]).set(0);
        m.actor_up.with_label_values(&["graph"]).set(1);
        let text = render();
        for name in EXPORTED {
            assert!(text.contains(name), "{name} missing from /metrics");
        }
    }
}
