//! The export's Parquet files written behind its checks: a thread of their own takes each
//! finished batch from a bounded queue, so the encoding and ZSTD of one page's batches overlap
//! the reading, checking and folding of the next (a file's column chunks are still encoded in
//! parallel, [`PartWriter::write`]). Each file gets the same batches in the same order as when
//! written in line, so its bytes are the same.
//!
//! Errors keep the order of the work: a batch is queued only once its page has passed every
//! check, so a write that fails concerns an earlier page than any check failing meanwhile, and
//! [`WriteBehind::finish`] (which the export calls before anything else once reading stops)
//! reports it first, as the export did when it wrote in line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;

use super::ExportError;
use super::files::PartWriter;

/// Batches queued at most. Each holds at most one page's rows (an `events` partition's part of
/// a page, or a typed table's buffered rows), so with the one being written and the one being
/// built, at most four pages' batches are in memory.
const BATCHES_QUEUED: usize = 2;

/// The files an export writes while it reads: the `events` partitions by type, and the typed
/// tables (in `EVENT_TABLES` order).
pub struct Files {
    pub partitions: BTreeMap<String, PartWriter>,
    pub typed: Vec<PartWriter>,
}

/// Which file a batch goes to.
pub enum Target {
    /// The `events` partition of this type, opened on its first batch.
    Partition(String),
    /// A typed table, by its index in `EVENT_TABLES`.
    Typed(usize),
}

/// A batch and the seqs its rows hold, first and last.
struct Job {
    target: Target,
    batch: RecordBatch,
    seqs: (u64, u64),
}

/// The writer thread has stopped (on an error, which [`WriteBehind::finish`] returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the export's writer stopped")]
pub struct Stopped;

/// Opens the `events` partition of a type (the path is the export's business, not the thread's).
pub type OpenPartition = Box<dyn FnMut(&str) -> Result<PartWriter, ExportError> + Send>;

pub struct WriteBehind {
    queue: SyncSender<Job>,
    thread: JoinHandle<Result<Files, ExportError>>,
}

impl WriteBehind {
    /// Starts the thread that writes into `files` (`out`: the export folder, named if the
    /// thread cannot start).
    pub fn start(out: &Path, files: Files, open: OpenPartition) -> Result<WriteBehind, ExportError> {
        let (queue, jobs) = sync_channel(BATCHES_QUEUED);
        let thread = std::thread::Builder::new()
            .name("export-writer".into())
            .spawn(move || write_all(files, open, jobs))
            .map_err(|e| ExportError::io(out, e))?;
        Ok(WriteBehind { queue, thread })
    }

    /// Queues `batch` for `target` (waits while the queue is full).
    pub fn write(&self, target: Target, batch: RecordBatch, seqs: (u64, u64)) -> Result<(), Stopped> {
        self.queue.send(Job { target, batch, seqs }).map_err(|_| Stopped)
    }

    /// Writes what is queued and hands the files back, or the first write's error.
    pub fn finish(self) -> Result<Files, ExportError> {
        drop(self.queue);
        match self.thread.join() {
            Ok(files) => files,
            // A panic on the writer's thread is the export's, as when it wrote in line.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The thread: every batch in turn, until the queue closes or a write fails (which drops the
/// queue's receiving end, so the next [`WriteBehind::write`] sees [`Stopped`]).
fn write_all(mut files: Files, mut open: OpenPartition, jobs: Receiver<Job>) -> Result<Files, ExportError> {
    for job in jobs {
        let writer = match job.target {
            Target::Partition(ty) => match files.partitions.entry(ty) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let w = open(e.key())?;
                    e.insert(w)
                }
            },
            Target::Typed(t) => {
                files.typed.get_mut(t).ok_or_else(|| ExportError::Invalid(format!("no typed table {t}")))?
            }
        };
        writer.write(&job.batch, Some(job.seqs))?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, UInt64Array};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use super::*;
    use crate::export::files::{properties, read_all};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("seq", DataType::UInt64, false)]))
    }

    fn batch(seqs: std::ops::Range<u64>) -> RecordBatch {
        let column = Arc::new(UInt64Array::from_iter_values(seqs));
        RecordBatch::try_new(schema(), vec![column]).expect("a batch of the schema")
    }

    fn open_in(root: &Path) -> OpenPartition {
        let root = root.to_owned();
        Box::new(move |ty: &str| {
            PartWriter::create(&root, format!("{ty}.parquet"), "t", schema(), properties(4, &[], &[]))
        })
    }

    #[test]
    fn batches_reach_their_files_in_order() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = Files { partitions: BTreeMap::new(), typed: Vec::new() };
        let writes = WriteBehind::start(dir.path(), files, open_in(dir.path())).expect("the thread starts");
        for (ty, seqs) in [("a", 0..3), ("b", 3..5), ("a", 5..11)] {
            let (first, last) = (seqs.start, seqs.end - 1);
            writes.write(Target::Partition(ty.into()), batch(seqs), (first, last)).expect("queued");
        }
        let files = writes.finish().expect("every batch written");
        assert_eq!(files.partitions.keys().collect::<Vec<_>>(), ["a", "b"]);
        let mut read = Vec::new();
        for (ty, writer) in files.partitions {
            let entry = writer.finish(11).expect("closed").publish().expect("in place");
            assert_eq!(
                (entry.first_seq, entry.last_seq),
                if ty == "a" { (Some(0), Some(10)) } else { (Some(3), Some(4)) }
            );
            let (batches, rows) = read_all(&dir.path().join(&entry.path)).expect("readable");
            let seqs: Vec<u64> = batches
                .iter()
                .flat_map(|b| {
                    let c = b.column(0).as_any().downcast_ref::<UInt64Array>().expect("u64 column");
                    (0..c.len()).map(|i| c.value(i)).collect::<Vec<_>>()
                })
                .collect();
            read.push((ty, rows, seqs));
        }
        assert_eq!(
            read,
            [("a".to_owned(), 9, vec![0, 1, 2, 5, 6, 7, 8, 9, 10]), ("b".to_owned(), 2, vec![3, 4])]
        );
    }

    #[test]
    fn the_first_failing_write_is_the_error_and_stops_the_queue() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = Files { partitions: BTreeMap::new(), typed: Vec::new() };
        let open: OpenPartition = Box::new(|ty: &str| Err(ExportError::Ledger(format!("no file for {ty}"))));
        let writes = WriteBehind::start(dir.path(), files, open).expect("the thread starts");
        // The first write fails on the thread; once it has stopped, a write is refused (within
        // the queue's length and the one taken, every later write has waited for it).
        let refused = (0..BATCHES_QUEUED as u64 + 3)
            .map(|i| writes.write(Target::Partition(format!("t{i}")), batch(i..i + 1), (i, i)))
            .find(Result::is_err);
        assert_eq!(refused, Some(Err(Stopped)));
        match writes.finish() {
            Err(ExportError::Ledger(m)) => assert_eq!(m, "no file for t0"),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("the failed write was not reported"),
        }
    }
}
