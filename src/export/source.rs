//! Where an export reads the ledger from: the store itself (`--db`), or a server (`--server`)
//! through the HTTP client.

use std::future::Future;

use assay_events::cloudevent::CloudEvent;
use assay_events::dsse::{Signature, signatures_from_json};
use assay_events::keys::VerifierKey;
use assay_events::record::Record;
use assay_projections::Projections;
use assay_projections::keys::KeyRegistry;
use rayon::prelude::*;
use tokio::sync::mpsc;

use super::{ExportError, PAGE_RECORDS};
use crate::proof::InclusionProof;
use crate::store::{CheckpointRow, Store, StoredRecord, read_ahead};

/// What an export needs of a ledger.
pub trait LedgerSource: Clone + Send + Sync + 'static {
    /// The latest signed checkpoint (the head's); its note carries the witnesses' cosignature
    /// lines the source has for it (a store's stored ones, a server's `/v1/checkpoint` ones).
    fn latest_checkpoint(&self) -> impl Future<Output = Result<CheckpointRow, ExportError>> + Send;
    /// Records with seq in `[from, from + limit)`, ascending.
    fn records(
        &self,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, ExportError>> + Send;
    /// Inclusion of `seq` in the tree of the checkpoint signed at `size`.
    fn inclusion(
        &self,
        seq: u64,
        size: u64,
    ) -> impl Future<Output = Result<InclusionProof, ExportError>> + Send;
    /// The tree sizes of up to `limit` signed checkpoints from size `from`, ascending. By
    /// default a source keeps no history of checkpoints: only the latest is listed.
    fn checkpoint_sizes(
        &self,
        from: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<u64>, ExportError>> + Send {
        async move {
            let latest = self.latest_checkpoint().await?.size;
            Ok(if latest >= from && limit > 0 { vec![latest] } else { Vec::new() })
        }
    }
}

impl LedgerSource for Store {
    async fn latest_checkpoint(&self) -> Result<CheckpointRow, ExportError> {
        let head = self.head().await?.ok_or_else(|| ExportError::Invalid("the ledger is empty".into()))?;
        let mut row = self.checkpoint_at(head.checkpoint_size).await?.ok_or_else(|| {
            ExportError::Invalid(format!("the checkpoint at size {} is missing", head.checkpoint_size))
        })?;
        row.note = self.note_with_cosignatures(row.size, &row.note).await?;
        Ok(row)
    }

    async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, ExportError> {
        // The bulk read: exports read the whole log in pages.
        Ok(self.records_bulk(from, limit).await?)
    }

    async fn inclusion(&self, seq: u64, size: u64) -> Result<InclusionProof, ExportError> {
        crate::proof::inclusion(self, seq, Some(size)).await.map_err(|e| ExportError::Invalid(e.to_string()))
    }

    async fn checkpoint_sizes(&self, from: u64, limit: u32) -> Result<Vec<u64>, ExportError> {
        Ok(self.checkpoints(from, limit).await?.iter().map(|c| c.size).collect())
    }
}

/// Reads records `[from, end)` from `src` in pages of `page` records, one page ahead of the
/// consumer (see [`read_ahead`]).
pub fn scan<S: LedgerSource>(
    src: &S,
    from: u64,
    end: u64,
    page: u32,
) -> mpsc::Receiver<Result<Vec<StoredRecord>, ExportError>> {
    let src = src.clone();
    read_ahead(from, end, page, move |next, limit| {
        let src = src.clone();
        async move { src.records(next, limit).await }
    })
}

/// The record as stored, parsed, its hashes taken as stored (exports check them separately).
pub fn parse(s: &StoredRecord) -> Result<Record, ExportError> {
    Ok(decode(s)?.into_record(s, s.payload.clone()))
}

/// What a record holds beyond its stored columns: its signatures and its event, parsed.
#[derive(Debug)]
pub struct Decoded {
    pub signatures: Vec<Signature>,
    pub event: CloudEvent,
}

impl Decoded {
    /// The record of `s` whose payload bytes are `payload` (moved in: an export hands over the
    /// page's payloads once the `events` table has its copy, rather than copying each one).
    pub fn into_record(self, s: &StoredRecord, payload: Vec<u8>) -> Record {
        Record {
            seq: s.seq,
            received_at_ns: s.received_at_ns,
            payload,
            signatures: self.signatures,
            prev_hash: s.prev_hash,
            digest: s.digest,
            record_hash: s.record_hash,
            event: self.event,
        }
    }
}

/// [`parse`] without the record: the signatures and the event, read from `s` in place.
pub fn decode(s: &StoredRecord) -> Result<Decoded, ExportError> {
    let bad = |e: String| ExportError::Ledger(format!("record {}: {e}", s.seq));
    let signatures = signatures_from_json(&s.signatures).map_err(|e| bad(e.to_string()))?;
    let event = CloudEvent::parse(&s.payload).map_err(|e| bad(e.to_string()))?;
    Ok(Decoded { signatures, event })
}

/// The ledger key genesis (record 0) names, read through the key registry that folds it. The
/// checkpoint an export reads must then verify under it, so a report needs no key file.
pub async fn genesis_key<S: LedgerSource>(src: &S) -> Result<VerifierKey, ExportError> {
    let first = src.records(0, 1).await?;
    let genesis = first.first().ok_or_else(|| ExportError::Invalid("the ledger is empty".into()))?;
    let mut keys = KeyRegistry::new();
    keys.apply(&parse(genesis)?);
    keys.ledger_key()
        .cloned()
        .ok_or_else(|| ExportError::Ledger("record 0 is not a genesis naming the ledger key".into()))
}

/// The projections folded from records `[0, end)`.
pub async fn replay<S: LedgerSource>(src: &S, end: u64) -> Result<Projections, ExportError> {
    replay_observed(src, end, |_, _| {}).await
}

/// Like [`replay`], showing `observe` the state after each record: (records folded, state).
pub async fn replay_observed<S: LedgerSource>(
    src: &S,
    end: u64,
    mut observe: impl FnMut(u64, &Projections),
) -> Result<Projections, ExportError> {
    let mut p = Projections::new();
    let mut next = 0;
    let mut pages = scan(src, 0, end, PAGE_RECORDS);
    while let Some(page) = pages.recv().await {
        let records: Vec<Record> = page?.par_iter().map(parse).collect::<Result<_, _>>()?;
        for r in &records {
            if r.seq != next {
                return Err(ExportError::Ledger(format!("record {next} is missing")));
            }
            p.apply(r);
            next += 1;
            observe(next, &p);
        }
    }
    if next != end {
        return Err(ExportError::Ledger(format!("record {next} is missing")));
    }
    Ok(p)
}

/// A ledger read over HTTP (`--server`). Records come as the service shows them (verbatim
/// payload, canonical envelope); their leaves are rebuilt here, each chained to the one
/// before — the first from the leaf in an inclusion proof of the record before it — and every
/// export checks the result against the signed checkpoint, so a server cannot slip anything in.
#[derive(Clone)]
pub struct ServerSource {
    client: crate::client::Client,
    /// (next seq, record hash of the seq before it) after the last page read.
    chain: std::sync::Arc<std::sync::Mutex<(u64, assay_events::Hash32)>>,
}

impl ServerSource {
    pub fn new(client: crate::client::Client) -> ServerSource {
        ServerSource {
            client,
            chain: std::sync::Arc::new(std::sync::Mutex::new((0, assay_events::Hash32::ZERO))),
        }
    }

    fn err(e: impl std::fmt::Display) -> ExportError {
        ExportError::Invalid(format!("the server: {e}"))
    }

    /// The record hash of `seq - 1` (zeros for 0).
    async fn prev_hash(&self, seq: u64) -> Result<assay_events::Hash32, ExportError> {
        if seq == 0 {
            return Ok(assay_events::Hash32::ZERO);
        }
        if let Ok(c) = self.chain.lock()
            && c.0 == seq
        {
            return Ok(c.1);
        }
        let p = self.client.inclusion(seq - 1, None).await.map_err(Self::err)?;
        let leaf = assay_events::b64::decode_any(&p.leaf).map_err(Self::err)?;
        let fields = assay_events::record::LeafFields::from_bytes(&leaf).map_err(Self::err)?;
        if fields.seq != seq - 1 {
            return Err(Self::err(format!("the leaf of seq {} is for seq {}", seq - 1, fields.seq)));
        }
        Ok(fields.record_hash())
    }
}

/// A record as the service shows it, made a stored record chained to `prev`.
fn from_view(v: &crate::view::RecordView, prev: assay_events::Hash32) -> Result<StoredRecord, ExportError> {
    let bad = |m: String| ExportError::Invalid(format!("the server's record {}: {m}", v.seq));
    let payload = v.event.get().as_bytes().to_vec();
    let envelope =
        assay_events::dsse::Envelope::parse(v.envelope.get().as_bytes()).map_err(|e| bad(e.to_string()))?;
    if envelope.payload != payload {
        return Err(bad("the envelope's payload differs from the event".into()));
    }
    let signatures = assay_events::dsse::signatures_canonical_json(&envelope.signatures);
    let received_at_ns = chrono::DateTime::parse_from_rfc3339(&v.received_at)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| bad(format!("received_at {:?}", v.received_at)))?;
    let digest = assay_events::Hash32::blake3(&payload);
    let fields = assay_events::record::LeafFields {
        seq: v.seq,
        received_at_ns,
        digest,
        signatures_digest: assay_events::Hash32::blake3(&signatures),
        prev_hash: prev,
    };
    Ok(StoredRecord {
        seq: v.seq,
        digest,
        source: v.source.clone(),
        event_id: v.id.clone(),
        ty: v.ty.clone(),
        subject: v.subject.clone(),
        time: v.time.clone(),
        received_at_ns,
        payload,
        signatures,
        prev_hash: prev,
        record_hash: fields.record_hash(),
    })
}

/// Records per request the service serves at most.
const SERVER_PAGE_MAX: u32 = 1000;

impl LedgerSource for ServerSource {
    async fn latest_checkpoint(&self) -> Result<CheckpointRow, ExportError> {
        let note = self.client.checkpoint().await.map_err(Self::err)?;
        let cp = assay_events::checkpoint::Checkpoint::parse_unverified(&note).map_err(Self::err)?;
        Ok(CheckpointRow { size: cp.size, root: cp.root, note, signed_at_ns: 0 })
    }

    async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, ExportError> {
        let mut prev = self.prev_hash(from).await?;
        let page =
            self.client.events(from, limit.min(SERVER_PAGE_MAX), None, None).await.map_err(Self::err)?;
        let mut out = Vec::with_capacity(page.records.len());
        for (i, v) in page.records.iter().enumerate() {
            if v.seq != from + i as u64 {
                return Err(Self::err(format!("asked for seq {}, got {}", from + i as u64, v.seq)));
            }
            let r = from_view(v, prev)?;
            prev = r.record_hash;
            out.push(r);
        }
        if let Ok(mut c) = self.chain.lock() {
            *c = (from + out.len() as u64, prev);
        }
        Ok(out)
    }

    async fn checkpoint_sizes(&self, from: u64, limit: u32) -> Result<Vec<u64>, ExportError> {
        let page = self.client.checkpoints(from, limit).await.map_err(Self::err)?;
        Ok(page.checkpoints.iter().map(|c| c.size).collect())
    }

    async fn inclusion(&self, seq: u64, size: u64) -> Result<InclusionProof, ExportError> {
        let p = self.client.inclusion(seq, Some(size)).await.map_err(Self::err)?;
        Ok(InclusionProof {
            seq: p.seq,
            tree_size: p.tree_size,
            leaf: p.leaf,
            leaf_hash: p.leaf_hash,
            proof: p.proof,
            checkpoint: p.checkpoint,
        })
    }
}
