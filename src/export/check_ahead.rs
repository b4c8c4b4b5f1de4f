//! The order-free part of an export's checks, a page ahead: each record's own hashes (digest,
//! leaf, record hash, [`events::prepare`]) and, when the typed tables are written, its parse
//! ([`decode`]), computed on every core on a thread of its own while the export's ordered stage
//! (the chain, the tree, the first failing record's error, the batches, the fold) handles the
//! page before. Nothing is judged here: each record's results go with its page, in order, and
//! the ordered stage reports the first that fails, as before.

use rayon::prelude::*;
use tokio::sync::mpsc;

use super::ExportError;
use super::events::{self, Prepared, RecordHashError};
use super::source::{Decoded, decode};
use crate::store::StoredRecord;

/// A record's leaf (or why it is bad) and, when typed tables are written, its parse.
pub type Checked = (Result<Prepared, RecordHashError>, Option<Result<Decoded, ExportError>>);

/// A page and its records' results, in the same order.
pub struct CheckedPage {
    pub records: Vec<StoredRecord>,
    pub checked: Vec<Checked>,
}

/// Checked pages waiting for the ordered stage, at most. With the one being checked and the
/// one the ordered stage holds, three pages (and their parses) are in memory past the reader's.
const PAGES_CHECKED_AHEAD: usize = 1;

/// The checked pages, in order, from [`check_ahead`].
pub struct CheckAhead {
    rx: mpsc::Receiver<Result<CheckedPage, ExportError>>,
    /// Taken once the stream has ended, to pass on a panic of the checking thread.
    thread: Option<tokio::task::JoinHandle<()>>,
}

impl CheckAhead {
    /// The next checked page; `None` once every page was handed out. A panic of the checking
    /// thread is raised here, where the stream ends, rather than read as a short stream.
    pub async fn recv(&mut self) -> Option<Result<CheckedPage, ExportError>> {
        let page = self.rx.recv().await;
        if page.is_none()
            && let Some(thread) = self.thread.take()
            && let Err(e) = thread.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        page
    }
}

/// The pages of `pages`, each with its results (`decode_records`: parse them too). A read
/// error is passed on in its place and ends the stream; dropping the receiver stops the
/// thread at its next page.
pub fn check_ahead(
    mut pages: mpsc::Receiver<Result<Vec<StoredRecord>, ExportError>>,
    decode_records: bool,
) -> CheckAhead {
    let (tx, rx) = mpsc::channel(PAGES_CHECKED_AHEAD);
    let thread = tokio::task::spawn_blocking(move || {
        while let Some(page) = pages.blocking_recv() {
            let checked = page.map(|records| {
                let checked = records
                    .par_iter()
                    .map(|s| (events::prepare(s), decode_records.then(|| decode(s))))
                    .collect();
                CheckedPage { records, checked }
            });
            let failed = checked.is_err();
            if tx.blocking_send(checked).is_err() || failed {
                return;
            }
        }
    });
    CheckAhead { rx, thread: Some(thread) }
}
