//! Request and response bodies as they travel, with their OpenAPI schemas. The client
//! ([`crate::client`]) reads the same types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The envelope's schema lives with the record JSON that embeds it; bodies name it from here.
use crate::view::RecordView;
pub use crate::view::{EnvelopeSchema, SignatureSchema};

/// Every error: a short machine-readable code and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// e.g. `bad_signature`, `unknown_key`, `schema_violation`, `malformed_json`, `not_found`.
    pub error: String,
    pub detail: String,
    /// For append errors: the position of the envelope at fault in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub index: Option<usize>,
}

/// Up to 1000 envelopes appended all-or-nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvelopeBatch {
    #[schema(min_items = 1, max_items = 1000)]
    pub envelopes: Vec<EnvelopeSchema>,
}

/// One envelope, or a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AppendRequest {
    Batch(EnvelopeBatch),
    One(EnvelopeSchema),
}

/// The record that holds one appended envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AckBody {
    #[schema(minimum = 0)]
    pub seq: u64,
    /// blake3 of the payload bytes, hex.
    pub digest: String,
    /// True when identical bytes were already stored (no new record).
    pub existed: bool,
}

/// The reply to an append: a record per envelope, in order, and the checkpoint covering them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppendResponse {
    pub records: Vec<AckBody>,
    /// The signed checkpoint note (C2SP tlog-checkpoint) that covers every record above.
    pub checkpoint: String,
}

/// A page of records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventsPage {
    pub records: Vec<RecordView>,
    /// `from` for the next page; null when this page reached the end.
    #[schema(minimum = 0)]
    pub next: Option<u64>,
}

/// `GET /v1/proof/inclusion` (the same JSON as `assay proof inclusion --json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InclusionProof)]
pub struct InclusionProofSchema {
    #[schema(minimum = 0)]
    pub seq: u64,
    #[schema(minimum = 0)]
    pub tree_size: u64,
    /// base64 of the leaf bytes.
    pub leaf: String,
    /// base64 of SHA-256(0x00 ‖ leaf).
    pub leaf_hash: String,
    /// base64 hashes, RFC 9162 order.
    pub proof: Vec<String>,
    /// The checkpoint note signed at `tree_size`.
    pub checkpoint: String,
}

/// `GET /v1/proof/consistency` (the same JSON as `assay proof consistency --json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ConsistencyProof)]
pub struct ConsistencyProofSchema {
    #[schema(minimum = 0)]
    pub old_size: u64,
    #[schema(minimum = 0)]
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    pub proof: Vec<String>,
    /// The checkpoint note signed at `new_size`.
    pub checkpoint: String,
}

/// A projection's state at a seq, with its digest (blake3 of the canonical JSON of `state`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectionBody {
    /// The last record folded in.
    #[schema(minimum = 0)]
    pub seq: Option<u64>,
    pub digest: String,
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// One artifact's audit verdict and its claims' verdicts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactAudit {
    #[schema(minimum = 0)]
    pub seq: Option<u64>,
    #[schema(value_type = Object)]
    pub artifact: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub claims: Vec<serde_json::Value>,
}

/// The dispatch gate's answer: the request's record and the ledger's decision record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DispatchResponse {
    pub request: AckBody,
    pub accepted: bool,
    pub reasons: Vec<String>,
    pub decision: RecordView,
    pub checkpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `store_failing`.
    pub status: String,
    /// The tree size of the latest checkpoint.
    #[schema(minimum = 0)]
    pub size: u64,
    pub origin: String,
}

/// One signed checkpoint: its tree size, root and when it was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointEntry {
    #[schema(minimum = 0)]
    pub size: u64,
    /// The tree's root in standard base64, as the signed note writes it.
    pub root: String,
    /// RFC 3339, the ledger's clock.
    pub signed_at: String,
}

impl CheckpointEntry {
    pub fn from_row(row: &crate::store::CheckpointRow) -> CheckpointEntry {
        CheckpointEntry {
            size: row.size,
            root: assay_events::b64::encode_std(&row.root.0),
            signed_at: crate::clock::rfc3339(row.signed_at_ns),
        }
    }
}

/// A page of signed checkpoints, ascending by size.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    pub checkpoints: Vec<CheckpointEntry>,
    /// The `from` of the next page; null on the last.
    #[schema(minimum = 0)]
    pub next: Option<u64>,
}

/// Most checkpoints in one page of `/v1/checkpoints` (and of `assay checkpoint --list` reads).
pub const CHECKPOINTS_PAGE_MAX: u32 = 1000;

/// A campaign run's cells (`GET /v1/campaigns/{run}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignCells {
    pub run: String,
    /// `{kernel, variant, outcome (passed|failed|faulted), error?, duration_us?, repeats?
    /// {count, min_us, median_us, p90_us}, xids? [code…] (the attached Xids), launch?, seq,
    /// fallback? {variant, outcome, …, xids?}}`.
    #[schema(value_type = Vec<Object>)]
    pub cells: Vec<serde_json::Value>,
}

/// The regression diff of two campaign runs (`GET /v1/campaigns/{run}/diff?base=RUN`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignDiffBody {
    /// The base run.
    pub base: String,
    /// The new run.
    pub new: String,
    /// Cells per class: `unchanged`, `fixed`, `regressed`, `newly_faulted`, `gone`, `new`.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    /// `{kernel, variant, class, base?, new?, timing? {change (slower|faster|within_spread|
    /// no_spread), ratio, base_us, new_us}}`, sorted by kernel and variant; `base` and `new`
    /// are cells as `GET /v1/campaigns/{run}` serves them (`xids` included).
    #[schema(value_type = Vec<Object>)]
    pub cells: Vec<serde_json::Value>,
}

/// The ledger's `evidence.synced` for one `evidence.captured` (`POST
/// /v1/evidence/{digest}/sync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceSyncBody {
    /// Event digest of the `evidence.captured`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub evidence: String,
    /// Seq of the `evidence.synced` record.
    #[schema(minimum = 0)]
    pub seq: u64,
    /// Event digest of the `evidence.synced` record.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub digest: String,
    /// The files found stored: every one the evidence lists.
    #[schema(minimum = 1)]
    pub files: u64,
    /// True when the log already held the fact (nothing was appended).
    pub existed: bool,
}

/// `POST /v1/blobs/gc`: collect the blobs no event cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobGcRequest {
    /// Only blobs stored longer ago than this many seconds are removed (at least 60).
    #[schema(minimum = 60)]
    pub older_than_s: u64,
    /// List what would be removed; remove nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// When the request was signed, Unix seconds: the server refuses one more than 5 minutes
    /// from its own clock, so a copied request cannot be sent again later.
    pub at_s: i64,
}

/// One blob (or leftover upload file) a collection removed or would remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobGcItem {
    /// The blob's name (blake3, hex), or a leftover upload file's name.
    pub name: String,
    #[schema(minimum = 0)]
    pub bytes: u64,
    /// `blob` or `part` (an upload a crash left unfinished).
    pub kind: String,
}

/// What `POST /v1/blobs/gc` removed, or with `dry_run` would remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobGcBody {
    pub dry_run: bool,
    /// The first 10 000 of them.
    pub removed: Vec<BlobGcItem>,
    /// How many in all.
    #[schema(minimum = 0)]
    pub files: u64,
    #[schema(minimum = 0)]
    pub bytes: u64,
}

/// A blob stored (or found already stored) by `PUT /v1/blobs/{blake3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobPutBody {
    /// The blob's name: the lower-case hex blake3 of its bytes.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub blake3: String,
    #[schema(minimum = 0)]
    pub bytes: u64,
    /// True when the blob was already stored (the body was not read; nothing was written).
    pub existed: bool,
}
