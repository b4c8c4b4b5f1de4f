//! How the service runs: every option of `assay serve`, each queue and wait bounded.

use std::net::SocketAddr;
use std::time::Duration;

use assay_events::keys::SignerKey;

use super::ratelimit::RateLimit;
use crate::blobs::BlobStore;
use crate::cosigning::WitnessSpec;

/// How the service runs. Every queue and wait is bounded.
#[derive(Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Require a bearer token for reads even on loopback (beyond loopback it always is).
    pub require_read_token: bool,
    /// Tokens the operator allows besides those in the store (`--read-token-file`).
    pub read_tokens: Vec<String>,
    /// Per-key limit on appended envelopes; None: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Requests other than live streams end with 408 after this.
    pub request_timeout: Duration,
    /// Events buffered per live subscriber.
    pub stream_buffer_events: usize,
    /// A subscriber whose buffer stays full this long is disconnected (told where to resume).
    pub stream_stall: Duration,
    /// Heartbeat comments on idle streams.
    pub heartbeat: Duration,
    /// When reads need a token, a live stream checks its token again this often and ends
    /// (with a final `error` event) once it is revoked.
    pub stream_token_check: Duration,
    /// After a shutdown signal, connections still open after this are closed.
    pub shutdown_grace: Duration,
    /// A request's head must arrive complete within this long of the server waiting for it
    /// (slowloris; also how long a keep-alive connection waits for its next request).
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long, with no request being handled, is
    /// closed. Live stream heartbeats come at least twice per this.
    pub idle_timeout: Duration,
    /// Connections served at once (lowered to fit the descriptor limit); one more is answered
    /// 503 with Retry-After.
    pub connections_max: usize,
    /// The ledger's signing key, for audit bundles (`/v1/audit/{slug}/bundle`); None: 503.
    pub bundle_key: Option<SignerKey>,
    /// The evidence store behind `/v1/blobs` (its size limit included); None: those routes
    /// answer 503.
    pub blobs: Option<BlobStore>,
    /// Witnesses asked to cosign each checkpoint (`--witness`).
    pub witnesses: Vec<WitnessSpec>,
    /// Cosignatures `/checkpoint` needs (`--witness-quorum`); None: every witness's.
    pub witness_quorum: Option<usize>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            require_read_token: false,
            read_tokens: Vec::new(),
            rate_limit: None,
            request_timeout: Duration::from_secs(30),
            stream_buffer_events: 1024,
            stream_stall: Duration::from_secs(10),
            heartbeat: Duration::from_secs(15),
            stream_token_check: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            connections_max: 1024,
            bundle_key: None,
            blobs: None,
            witnesses: Vec::new(),
            witness_quorum: None,
        }
    }
}
