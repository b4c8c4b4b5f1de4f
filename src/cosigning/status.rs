//! What `/metrics` shows of each witness: the size it last cosigned, how far it lags the
//! head, and its failed requests.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WitnessLabel {
    pub witness: String,
}

#[derive(Debug, Default)]
pub struct WitnessMetrics {
    pub cosigned_size: Family<WitnessLabel, Gauge>,
    pub lag_entries: Family<WitnessLabel, Gauge>,
    pub lag_seconds: Family<WitnessLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub failures: Family<WitnessLabel, Counter>,
}

impl WitnessMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "witness_cosigned_size",
            "The tree size each witness last cosigned (-1: none yet)",
            self.cosigned_size.clone(),
        );
        registry.register(
            "witness_lag_entries",
            "Records the head is ahead of what each witness last cosigned",
            self.lag_entries.clone(),
        );
        registry.register(
            "witness_lag_seconds",
            "Seconds since the oldest checkpoint each witness has not cosigned was signed (0: up to date)",
            self.lag_seconds.clone(),
        );
        registry.register(
            "witness_failures",
            "add-checkpoint requests to each witness that failed or were refused",
            self.failures.clone(),
        );
    }
}
