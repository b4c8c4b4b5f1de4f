//! `assay log`: records in seq order, filtered by type and subject.

use std::io::Write;

use assay::clock::rfc3339;
use assay::store::StoredRecord;

use super::{DbArgs, Exit, open};

/// Records read per query.
const PAGE_RECORDS: u32 = 1000;

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(flatten)]
    db: DbArgs,
    #[arg(long = "type")]
    ty: Option<String>,
    #[arg(long)]
    subject: Option<String>,
    /// First seq to show.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// At most this many records (default: all).
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// The `--json` form of one record (also served over HTTP).
pub fn record_json(r: &StoredRecord) -> anyhow::Result<serde_json::Value> {
    let record = r.to_record()?;
    let envelope: serde_json::Value = serde_json::from_slice(&record.envelope().to_json())?;
    let event: serde_json::Value = serde_json::from_slice(&r.payload)?;
    Ok(serde_json::json!({
        "seq": r.seq,
        "digest": r.digest.to_hex(),
        "type": r.ty,
        "subject": r.subject,
        "source": r.source,
        "id": r.event_id,
        "time": r.time,
        "received_at": rfc3339(r.received_at_ns),
        "event": event,
        "envelope": envelope,
    }))
}

pub async fn run(a: LogArgs) -> anyhow::Result<Exit> {
    let store = open::store(&a.db).await?;
    let mut from = a.from;
    let mut left = a.limit.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let want = u32::try_from(left.min(u64::from(PAGE_RECORDS))).unwrap_or(PAGE_RECORDS);
        let page = store.records_filtered(from, want, a.ty.as_deref(), a.subject.as_deref()).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        left -= page.len() as u64;
        for r in &page {
            if a.json {
                serde_json::to_writer(&mut out, &record_json(r)?)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {}  {:<24} {:<32} {}  {}",
                    r.seq,
                    r.time,
                    r.ty,
                    r.subject.as_deref().unwrap_or("-"),
                    r.source,
                    &r.digest.to_hex()[..16]
                )?;
            }
        }
    }
    Ok(Exit::Ok)
}
