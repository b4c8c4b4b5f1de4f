//! Paging through the log one page ahead of the consumer, for every whole-log reader (replay,
//! verify, copy, exports, over a store or over HTTP).

use std::future::Future;

use tokio::sync::mpsc;

use super::StoredRecord;

/// A row of a page read in seq order.
pub trait Paged {
    fn seq(&self) -> u64;
}

impl Paged for StoredRecord {
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl Paged for super::FoldRecord {
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// Pages in flight between the reader and the consumer: one being consumed, one read ahead.
const PAGES_AHEAD: usize = 2;

/// Reads records `[from, end)` with `fetch(next, limit)` in pages of at most `page_records`, one
/// page ahead of the consumer (a channel of two pages), so reading overlaps the caller's work.
/// The stream ends after `end`, at the first empty page, or after the first error, which it
/// passes on. It stops reading when the receiver is dropped.
pub fn read_ahead<T, E, F, Fut>(
    from: u64,
    end: u64,
    page_records: u32,
    mut fetch: F,
) -> mpsc::Receiver<Result<Vec<T>, E>>
where
    T: Paged + Send + 'static,
    E: Send + 'static,
    F: FnMut(u64, u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<T>, E>> + Send,
{
    assert!(page_records > 0, "a page holds at least one record");
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    tokio::spawn(async move {
        let mut next = from;
        // Each page advances `next` by at least one, so this ends by `end`.
        while next < end {
            let limit = u32::try_from((end - next).min(u64::from(page_records))).unwrap_or(page_records);
            let page = fetch(next, limit).await;
            let last = match &page {
                Ok(p) => p.last().map(Paged::seq),
                Err(_) => None,
            };
            if let Some(last) = last {
                assert!(last >= next, "a page starts at or after the seq asked for");
                next = last + 1;
            } else if page.is_ok() {
                return;
            }
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_events::Hash32;

    fn record(seq: u64) -> StoredRecord {
        StoredRecord {
            seq,
            digest: Hash32::ZERO,
            source: String::new(),
            event_id: String::new(),
            ty: String::new(),
            subject: None,
            time: String::new(),
            received_at_ns: 0,
            payload: Vec::new(),
            signatures: Vec::new(),
            prev_hash: Hash32::ZERO,
            record_hash: Hash32::ZERO,
        }
    }

    /// A log of `size` records; fails when asked for `fail_at`.
    fn log(
        size: u64,
        fail_at: Option<u64>,
    ) -> impl FnMut(u64, u32) -> std::future::Ready<Result<Vec<StoredRecord>, u64>> {
        move |next, limit| {
            std::future::ready(if fail_at == Some(next) {
                Err(next)
            } else {
                Ok((next..(next + u64::from(limit)).min(size)).map(record).collect())
            })
        }
    }

    async fn drain(mut rx: mpsc::Receiver<Result<Vec<StoredRecord>, u64>>) -> Vec<Result<Vec<u64>, u64>> {
        let mut out = Vec::new();
        while let Some(page) = rx.recv().await {
            out.push(page.map(|p| p.iter().map(|r| r.seq).collect()));
        }
        out
    }

    #[tokio::test]
    async fn pages_cover_the_range_and_end_at_its_end_or_the_log_end() {
        let pages = drain(read_ahead(2, 9, 3, log(100, None))).await;
        assert_eq!(pages, [Ok(vec![2, 3, 4]), Ok(vec![5, 6, 7]), Ok(vec![8])]);
        let pages = drain(read_ahead(0, u64::MAX, 4, log(6, None))).await;
        assert_eq!(pages, [Ok(vec![0, 1, 2, 3]), Ok(vec![4, 5])]);
        assert!(drain(read_ahead(5, 5, 4, log(6, None))).await.is_empty());
    }

    #[tokio::test]
    async fn an_error_is_passed_on_once_and_ends_the_stream() {
        let pages = drain(read_ahead(0, u64::MAX, 2, log(10, Some(4)))).await;
        assert_eq!(pages, [Ok(vec![0, 1]), Ok(vec![2, 3]), Err(4)]);
    }
}
