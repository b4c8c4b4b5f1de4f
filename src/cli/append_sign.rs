//! NDJSON lines `{"type","subject","data"[,"id","time"]}` signed into envelopes by the
//! producer's key, a chunk at a time on every core.

use anyhow::Context;
use assay::ledger::build_envelope;
use assay_events::dsse::DecodedEnvelope;
use assay_events::keys::SignerKey;
use rayon::prelude::*;

use super::suggest;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    ty: String,
    subject: Option<String>,
    data: serde_json::Value,
    id: Option<String>,
    time: Option<String>,
}

fn sign_line(key: &SignerKey, lineno: usize, text: &[u8]) -> anyhow::Result<DecodedEnvelope> {
    let line: Line =
        serde_json::from_slice(text).with_context(|| format!("line {lineno}: malformed JSON"))?;
    suggest::event_type(&line.ty).map_err(|e| anyhow::anyhow!("line {lineno}: {e} [schema_violation]"))?;
    let time_ns = match &line.time {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("line {lineno}: time {t:?} is not RFC 3339"))?
            .timestamp_nanos_opt()
            .with_context(|| format!("line {lineno}: time {t:?} is out of range"))?,
        None => assay::clock::now_ns(),
    };
    Ok(build_envelope(key, &line.ty, line.subject.as_deref(), line.data, line.id, time_ns))
}

/// Signs each line of a chunk (in parallel); the error is the first bad line's.
pub fn sign_chunk(key: &SignerKey, chunk: &[(usize, Vec<u8>)]) -> anyhow::Result<Vec<DecodedEnvelope>> {
    let signed: Vec<anyhow::Result<DecodedEnvelope>> =
        chunk.par_iter().map(|(n, line)| sign_line(key, *n, line)).collect();
    signed.into_iter().collect()
}
