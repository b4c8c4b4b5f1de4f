//! `assay log`: records in seq order, filtered by type and subject, from the database or from
//! a server (`--server URL`).

use std::io::Write;

use assay::view::RecordView;

use super::remote::ServerArgs;
use super::{Exit, ReadDbArgs, open, suggest};

/// Records read per query.
const PAGE_RECORDS: u32 = 1000;

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Only records of this event type (e.g. metric.recorded).
    #[arg(long = "type")]
    ty: Option<String>,
    /// Only records about this subject (e.g. run/r-42).
    #[arg(long)]
    subject: Option<String>,
    /// First seq to show.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// At most this many records (default: all).
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON object per line (the record JSON the HTTP service serves).
    #[arg(long)]
    json: bool,
}

enum Source {
    Db(assay::store::Store),
    Server(assay::client::Client),
}

pub async fn run(a: LogArgs) -> anyhow::Result<Exit> {
    if let Some(ty) = &a.ty {
        suggest::event_type(ty).map_err(|e| anyhow::anyhow!("--type: {e}"))?;
    }
    let source = match a.server.client()? {
        Some(c) => Source::Server(c),
        None => Source::Db(open::store(&a.db).await?),
    };
    let mut from = a.from;
    let mut left = a.limit.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let want = u32::try_from(left.min(u64::from(PAGE_RECORDS))).unwrap_or(PAGE_RECORDS);
        let (page, next) = match &source {
            Source::Server(c) => {
                let page = c.events(from, want, a.ty.as_deref(), a.subject.as_deref()).await?;
                (page.records, page.next)
            }
            Source::Db(s) => {
                let page = s.records_filtered(from, want, a.ty.as_deref(), a.subject.as_deref()).await?;
                let next = page.last().map(|r| r.seq + 1).filter(|_| page.len() == want as usize);
                (page.iter().map(RecordView::of_stored).collect::<Result<Vec<_>, _>>()?, next)
            }
        };
        left -= page.len() as u64;
        for r in &page {
            if a.json {
                serde_json::to_writer(&mut out, r)
                    .map_err(std::io::Error::from)
                    .map_err(super::stdout_error)?;
                writeln!(out).map_err(super::stdout_error)?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {}  {:<24} {:<32} {}  {}",
                    r.seq,
                    r.time,
                    r.ty,
                    r.subject.as_deref().unwrap_or("-"),
                    r.source,
                    &r.digest[..16.min(r.digest.len())]
                )
                .map_err(super::stdout_error)?;
            }
        }
        match next {
            Some(n) => from = n,
            None => break,
        }
    }
    Ok(Exit::Ok)
}
