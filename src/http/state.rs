//! What every handler shares.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, watch};

use super::auth::ReadAuth;
use super::metrics::HttpMetrics;
use super::options::ServeOptions;
use super::ratelimit::RateLimiter;
use super::rendered::RenderCache;
use crate::cosigning::Cosigning;
use crate::ledger::Ledger;
use crate::live::LiveProjections;

/// Replays for `?at=SEQ` running at once (each folds the log from the start).
const REPLAYS_AT_ONCE: usize = 2;

/// Cheap to clone: every request takes a copy.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub ledger: Ledger,
    pub live: Arc<LiveProjections>,
    pub options: Arc<ServeOptions>,
    pub read_auth: Arc<ReadAuth>,
    pub limiter: Option<Arc<RateLimiter>>,
    pub metrics: Arc<HttpMetrics>,
    pub registry: Arc<Registry>,
    /// Turns true when the server begins to shut down: live streams end.
    pub shutdown: watch::Receiver<bool>,
    pub replays: Arc<Semaphore>,
    pub renders: Arc<RenderCache>,
    /// The corpus report of the latest checkpoint (`/report`).
    pub corpus_report: crate::report::corpus::CorpusCache,
    /// The witnesses asked to cosign checkpoints, and the quorum `/checkpoint` needs.
    pub cosigning: Arc<Cosigning>,
}

impl AppState {
    pub fn new(
        ledger: Ledger,
        live: LiveProjections,
        options: ServeOptions,
        read_auth: ReadAuth,
        shutdown: watch::Receiver<bool>,
        cosigning: Cosigning,
    ) -> AppState {
        let metrics = Arc::new(HttpMetrics::default());
        let mut registry = Registry::with_prefix("assay");
        ledger.metrics().register(&mut registry);
        metrics.register(&mut registry);
        cosigning.register(&mut registry);
        let limiter = options.rate_limit.map(|l| Arc::new(RateLimiter::new(l)));
        AppState(Arc::new(Shared {
            ledger,
            live: Arc::new(live),
            options: Arc::new(options),
            read_auth: Arc::new(read_auth),
            limiter,
            metrics,
            registry: Arc::new(registry),
            shutdown,
            replays: Arc::new(Semaphore::new(REPLAYS_AT_ONCE)),
            renders: Arc::new(RenderCache::default()),
            corpus_report: Default::default(),
            cosigning: Arc::new(cosigning),
        }))
    }

    /// A copy of the live projections if they are folded from exactly the records `[0, size)`
    /// (what [`crate::export::bundle::plan`]'s `folded` takes: it saves replaying the log
    /// unless a commit lands in between).
    pub fn live_at(&self, size: u64) -> Option<assay_projections::Projections> {
        let p = self.live.read();
        (p.seq().map(|s| s + 1) == Some(size)).then(|| p.clone())
    }
}
