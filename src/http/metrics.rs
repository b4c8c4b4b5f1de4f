//! The service's own metrics: stream subscribers, rate limiting, connections
//! ([`HttpMetrics`]), and the gauges of the ledger's state with requests by route
//! ([`ServiceMetrics`]). `/metrics` ([`super::ops`]) serves them beside the ledger's.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ledger::Ledger;
use crate::live::LiveProjections;

/// The service's own metrics (the ledger's are registered beside them).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    pub subscribers: Gauge,
    pub subscribers_dropped: Counter,
    pub rate_limited: Counter,
    /// Gauges of the ledger's state and requests by route (served by [`super::ops`]).
    pub service: ServiceMetrics,
    pub connections: Gauge,
    pub connections_refused: Counter,
}

impl HttpMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register("stream_subscribers", "Open /v1/stream subscriptions", self.subscribers.clone());
        registry.register(
            "stream_subscribers_dropped",
            "Subscribers disconnected because they could not keep up (told where to resume)",
            self.subscribers_dropped.clone(),
        );
        registry.register(
            "rate_limited_requests",
            "Write requests refused by the per-key rate limit",
            self.rate_limited.clone(),
        );
        self.service.register(registry);
        registry.register("http_connections", "Client connections being served", self.connections.clone());
        registry.register(
            "http_connections_refused",
            "Connections refused with 503 (or closed) because the connection cap was reached",
            self.connections_refused.clone(),
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabel {
    audit: &'static str,
}

/// The labels of a request: the matched route template, the method, the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

pub(super) fn latency_histogram() -> Histogram {
    // 500 µs … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The service's gauges of the ledger's state, and its request counters and latencies.
///
/// TODO(witnesses): a gauge of each witness's lag (records between the head and the latest
/// checkpoint it cosigned) once witnesses exist; the ledger has none yet.
#[derive(Debug)]
pub struct ServiceMetrics {
    tree_size: Gauge,
    checkpoint_age_seconds: Gauge<f64, AtomicU64>,
    gpus_needing_reset: Gauge,
    artifacts: Family<AuditLabel, Gauge>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            tree_size: Gauge::default(),
            checkpoint_age_seconds: Gauge::default(),
            gpus_needing_reset: Gauge::default(),
            artifacts: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl ServiceMetrics {
    /// Adds every metric to `registry` (names get the `assay_` prefix there).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tree_size_records",
            "Records in the log: the size of the latest signed checkpoint",
            self.tree_size.clone(),
        );
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed (NaN when it cannot be read)",
            self.checkpoint_age_seconds.clone(),
        );
        registry.register(
            "gpus_needing_reset",
            "GPUs (host and PCI id) that an Xid marked as needing a reset and no preflight has found working since",
            self.gpus_needing_reset.clone(),
        );
        registry.register(
            "artifacts",
            "Audited artifacts by audit result: pass (canonical, every claim supported) or fail",
            self.artifacts.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head; a stream's life is not counted), by route template, method and status",
            self.request_seconds.clone(),
        );
    }

    /// Sets the gauges from the ledger's state now: its head, the store's row of the head's
    /// checkpoint, the live projections. The projections' lock is not held across the read.
    pub(super) async fn refresh(&self, ledger: &Ledger, live: &LiveProjections) {
        let size = ledger.head().borrow().size;
        self.tree_size.set(i64::try_from(size).unwrap_or(i64::MAX));
        let age_s = match ledger.store().checkpoint_at(size).await {
            Ok(Some(row)) => (crate::clock::now_ns() - row.signed_at_ns).max(0) as f64 / 1e9,
            Ok(None) => f64::NAN,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the latest checkpoint could not be read");
                f64::NAN
            }
        };
        self.checkpoint_age_seconds.set(age_s);
        let p = live.read();
        self.gpus_needing_reset.set(p.gpus.needing_reset().count() as i64);
        let report = p.audit_report();
        drop(p);
        let passing = report.artifacts.iter().filter(|a| a.passes).count() as i64;
        let failing = report.artifacts.len() as i64 - passing;
        self.artifacts.get_or_create(&AuditLabel { audit: "pass" }).set(passing);
        self.artifacts.get_or_create(&AuditLabel { audit: "fail" }).set(failing);
    }

    pub(super) fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.request_seconds.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }
}
