//! `assay export parquet`: records `[since, checkpoint size)` to Parquet, consistent with the
//! latest signed checkpoint (the export ends exactly at its size), with a manifest.
//!
//! While writing, the export re-checks what it copies: every record's digest and record hash,
//! the chain, and the tree root against the checkpoint, which must verify under the genesis
//! ledger key. Files are written to temporary names and renamed into place only once all of
//! that holds, and the manifest comes last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use assay_events::b64;
use assay_events::checkpoint::Checkpoint;
use assay_events::cloudevent::CloudEvent;
use assay_events::keys::VerifierKey;
use assay_events::merkle::Frontier;
use assay_events::{EventType, Hash32};
use assay_projections::Projections;
use rayon::prelude::*;

use super::check_ahead::{CheckedPage, check_ahead};
use super::columns::{BatchBuilder, Row};
use super::events::{self, Prepared};
use super::files::{Finished, PartWriter, ROW_GROUP_ROWS, properties};
use super::manifest::{FORMAT, FileEntry, Manifest, Step};
use super::source::{LedgerSource, replay, scan};
use super::typed::{CURRENT_VERDICTS, EVENT_TABLES, VERDICTS, VERDICTS_HISTORY, table_of, verdicts_batch};
use super::write_behind::{Files, OpenPartition, Stopped, Target, WriteBehind};
use super::{ExportError, PAGE_RECORDS};
use crate::store::StoredRecord;

/// Which tables to write (the CLI writes all; the benchmark measures them apart).
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub events: bool,
    pub typed: bool,
    pub row_group_rows: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { events: true, typed: true, row_group_rows: ROW_GROUP_ROWS }
    }
}

/// What an export run did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// First seq exported by this run.
    pub from: u64,
    /// The checkpoint size it ends at (records exported: `size - from`).
    pub size: u64,
    /// Files this run wrote (empty when there was nothing new).
    pub files: Vec<FileEntry>,
    /// The manifest written, if any.
    pub manifest: Option<PathBuf>,
}

/// Rows buffered per typed table before they are handed to the Parquet writer.
const TYPED_BATCH_ROWS: usize = 8192;

/// Exports `src` into `out`. `since`: append to the export already in `out`, which must end
/// at exactly that seq. `progress(done, total)` after each page.
pub async fn export_parquet<S: LedgerSource>(
    src: &S,
    out: &Path,
    since: Option<u64>,
    options: &ExportOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let previous = Manifest::read(out)?;
    let from = match (&previous, since) {
        (Some(m), Some(s)) if s == m.size => s,
        (Some(m), Some(s)) => {
            return Err(ExportError::Invalid(format!(
                "{} holds an export of seqs 0..{}; --since must be {} (got {s})",
                out.display(),
                m.size,
                m.size
            )));
        }
        (Some(m), None) => {
            return Err(ExportError::Invalid(format!(
                "{} already holds an export of seqs 0..{}; pass --since {} to append to it",
                out.display(),
                m.size,
                m.size
            )));
        }
        (None, Some(s)) if s > 0 => {
            return Err(ExportError::Invalid(format!(
                "--since {s}: {} holds no earlier export (no manifest.json) to append to",
                out.display()
            )));
        }
        (None, _) => 0,
    };
    let cp_row = src.latest_checkpoint().await?;
    let size = cp_row.size;
    if size <= from {
        return Ok(ExportSummary { from, size: from, files: Vec::new(), manifest: None });
    }

    let mut run = Run::new(out, from, size, previous.as_ref(), options)?;
    // Verdicts need the whole history folded: an incremental export first replays what the
    // earlier steps exported.
    if options.typed && from > 0 {
        run.projections = replay(src, from).await?;
    }
    let mut pages = check_ahead(scan(src, from, size, PAGE_RECORDS), options.typed);
    let read = async {
        while let Some(page) = pages.recv().await {
            run.page(page?)?;
            progress(run.frontier.size() - from, size - from);
        }
        Ok(())
    }
    .await;
    let (manifest, files) = run.finish(read, &cp_row.note, previous)?;
    manifest.write(out)?;
    Ok(ExportSummary { from, size, files, manifest: Some(out.join(manifest.versioned_name())) })
}

/// A type name is a path component of `events/type=<type>/`: it must be a plain word.
fn safe_type(ty: &str) -> bool {
    !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A batch and the first and last seq its rows hold.
type Rows = (RecordBatch, (u64, u64));

/// A typed table's rows not yet handed to its writer.
struct Typed {
    builder: BatchBuilder<'static>,
    first: Option<u64>,
    last: u64,
}

impl Typed {
    /// The rows buffered, as a batch, with the seqs they hold (None when there are none).
    fn take(&mut self) -> Result<Option<Rows>, ExportError> {
        if self.builder.rows() == 0 {
            return Ok(None);
        }
        let batch = self.builder.finish()?;
        let first = self.first.take().unwrap_or(self.last);
        Ok(Some((batch, (first, self.last))))
    }
}

/// One export run in progress.
struct Run<'a> {
    out: &'a Path,
    options: &'a ExportOptions,
    from: u64,
    size: u64,
    suffix: String,
    schema: arrow_schema::SchemaRef,
    /// The `events` partitions and typed tables, written on a thread of their own.
    writes: WriteBehind,
    typed: Vec<Typed>,
    frontier: Frontier,
    last_hash: Hash32,
    projections: Projections,
    ledger_key: Option<VerifierKey>,
    origin: Option<String>,
}

impl<'a> Run<'a> {
    fn new(
        out: &'a Path,
        from: u64,
        size: u64,
        previous: Option<&Manifest>,
        options: &'a ExportOptions,
    ) -> Result<Run<'a>, ExportError> {
        let suffix = format!("part-{from}-{}.parquet", size - 1);
        let (frontier, last_hash, ledger_key, origin) = match previous {
            Some(m) => {
                let hashes = m
                    .frontier
                    .iter()
                    .map(|h| b64::decode_any(h).ok().and_then(|b| Hash32::from_slice(&b).ok()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ExportError::Invalid("manifest.json: malformed frontier".into()))?;
                let frontier = Frontier::from_parts(m.size, hashes)
                    .map_err(|e| ExportError::Invalid(format!("manifest.json: frontier: {e}")))?;
                let last = Hash32::from_hex(&m.record_hash)
                    .map_err(|e| ExportError::Invalid(format!("manifest.json: record_hash: {e}")))?;
                let key = VerifierKey::parse(&m.ledger_key)
                    .map_err(|e| ExportError::Invalid(format!("manifest.json: ledger_key: {e}")))?;
                (frontier, last, Some(key), Some(m.origin.clone()))
            }
            None => (Frontier::new(), Hash32::ZERO, None, None),
        };
        let mut typed = Vec::new();
        let mut files = Files { partitions: BTreeMap::new(), typed: Vec::new() };
        if options.typed {
            for t in EVENT_TABLES {
                let props = properties(options.row_group_rows, &[], &[]);
                let writer =
                    PartWriter::create(out, format!("{}/{suffix}", t.name), t.name, t.schema(), props)?;
                files.typed.push(writer);
                typed.push(Typed { builder: t.builder(TYPED_BATCH_ROWS), first: None, last: 0 });
            }
        }
        let schema = events::schema();
        let writes = WriteBehind::start(out, files, open_partition(out, &suffix, &schema, options))?;
        Ok(Run {
            out,
            options,
            from,
            size,
            suffix,
            schema,
            writes,
            typed,
            frontier,
            last_hash,
            projections: Projections::new(),
            ledger_key,
            origin,
        })
    }

    fn page(&mut self, page: CheckedPage) -> Result<(), ExportError> {
        let want_records = self.options.typed;
        let CheckedPage { records: mut page, checked } = page;
        let mut prepared = Vec::with_capacity(page.len());
        let mut decoded = Vec::with_capacity(if want_records { page.len() } else { 0 });
        // Rows of this page per partition, in seq order.
        let mut by_type: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        // Every check first, record by record in seq order (the first record that fails names
        // the error); the tables are written once the whole page holds.
        for (i, (stored, (prep, parts))) in page.iter().zip(checked).enumerate() {
            let seq = self.frontier.size();
            if stored.seq != seq {
                return Err(ExportError::Ledger(format!("record {seq} is missing")));
            }
            let prep = prep.map_err(|e| ExportError::Ledger(e.to_string()))?;
            if stored.prev_hash != self.last_hash {
                return Err(ExportError::Ledger(format!(
                    "record {seq}: prev_hash does not link to record {}",
                    seq.wrapping_sub(1)
                )));
            }
            if seq == 0 {
                self.genesis(stored)?;
            }
            self.frontier.push(prep.leaf_hash);
            self.last_hash = stored.record_hash;
            if self.options.events {
                by_type.entry(stored.ty.as_str()).or_default().push(i);
            }
            if let Some(parts) = parts {
                decoded.push(parts?);
            }
            prepared.push(prep);
        }
        for (ty, rows) in by_type {
            let rows: Vec<(&StoredRecord, &Prepared)> =
                rows.iter().map(|&i| (&page[i], &prepared[i])).collect();
            let batch = events::batch(&self.schema, &rows)?;
            let (first, last) = (rows[0].0.seq, rows[rows.len() - 1].0.seq);
            self.writes.write(Target::Partition(ty.to_owned()), batch, (first, last)).map_err(stopped)?;
        }
        if want_records {
            // Parsed records, dropped together on every core once folded (freeing their `data`
            // trees one by one would hold up the ordered loop).
            let mut folded = Vec::with_capacity(page.len());
            for ((stored, prep), parts) in page.iter_mut().zip(&prepared).zip(decoded) {
                // The `events` batches hold their copy of the payload: the record takes it.
                let payload = std::mem::take(&mut stored.payload);
                let record = parts.into_record(stored, payload);
                if let Some(t) = record.event_type().and_then(table_of) {
                    let typed = &mut self.typed[t];
                    typed.builder.push(&Row {
                        seq: record.seq,
                        time_ns: prep.time_ns,
                        ty: &record.event.ty,
                        data: &record.event.data,
                    });
                    typed.first.get_or_insert(record.seq);
                    typed.last = record.seq;
                    if typed.builder.rows() >= TYPED_BATCH_ROWS
                        && let Some((batch, seqs)) = typed.take()?
                    {
                        self.writes.write(Target::Typed(t), batch, seqs).map_err(stopped)?;
                    }
                }
                self.projections.apply(&record);
                folded.push(record);
            }
            folded.into_par_iter().for_each(drop);
        }
        // The page's rows too, for the same reason.
        page.into_par_iter().for_each(drop);
        Ok(())
    }

    /// Genesis names the origin and the ledger key the checkpoint must verify under.
    fn genesis(&mut self, stored: &StoredRecord) -> Result<(), ExportError> {
        let event =
            CloudEvent::parse(&stored.payload).map_err(|e| ExportError::Ledger(format!("record 0: {e}")))?;
        if event.event_type() != Some(EventType::LedgerInitialized) {
            return Err(ExportError::Ledger("record 0 is not ledger.initialized".into()));
        }
        let key = VerifierKey::parse(event.data["ledger_key"].as_str().unwrap_or_default())
            .map_err(|e| ExportError::Ledger(format!("genesis ledger_key: {e}")))?;
        self.ledger_key = Some(key);
        self.origin = Some(event.data["origin"].as_str().unwrap_or_default().to_owned());
        Ok(())
    }

    /// Once reading has stopped (`read`: how): the writes queued so far, whose errors come
    /// first (they concern earlier pages), then how reading ended, then the end state checked
    /// against the checkpoint; closes every file, renames them into place and builds the
    /// manifest.
    fn finish(
        mut self,
        read: Result<(), ExportError>,
        note: &str,
        previous: Option<Manifest>,
    ) -> Result<(Manifest, Vec<FileEntry>), ExportError> {
        let files = self.writes.finish()?;
        read?;
        if self.frontier.size() != self.size {
            return Err(ExportError::Ledger(format!(
                "read {} records, the checkpoint covers {}",
                self.frontier.size(),
                self.size
            )));
        }
        let key = self.ledger_key.clone().ok_or_else(|| ExportError::Ledger("no genesis record".into()))?;
        let origin = self.origin.clone().unwrap_or_default();
        let cp = Checkpoint::open(note, &key).map_err(|e| {
            ExportError::Ledger(format!("the checkpoint does not verify under the genesis ledger key: {e}"))
        })?;
        if cp.size != self.size || cp.root != self.frontier.root() || cp.origin != origin {
            return Err(ExportError::Ledger(format!(
                "the tree of the first {} records does not match the checkpoint signed at that size",
                self.size
            )));
        }
        let mut finished: Vec<Finished> = Vec::new();
        for (_, p) in files.partitions {
            finished.push(p.finish(self.size)?);
        }
        for (t, mut writer) in self.typed.iter_mut().zip(files.typed) {
            if let Some((batch, seqs)) = t.take()? {
                writer.write(&batch, Some(seqs))?;
            }
            finished.push(writer.finish(self.size)?);
        }
        let typed = self.options.typed;
        if typed {
            // The audit at this checkpoint, twice: the step's snapshot in verdicts_history/,
            // and verdicts/current.parquet, which replaces the previous step's.
            let batch = verdicts_batch(&self.projections.audit_report())?;
            let history = format!("{}/checkpoint={}/{}", VERDICTS_HISTORY, self.size, self.suffix);
            for (rel, table) in [(history, VERDICTS_HISTORY), (CURRENT_VERDICTS.to_owned(), VERDICTS.name)] {
                let props = properties(self.options.row_group_rows, &[], &[]);
                let mut w = PartWriter::create(self.out, rel, table, VERDICTS.schema(), props)?;
                w.write(&batch, None)?;
                finished.push(w.finish(self.size)?);
            }
        }
        // Files earlier steps wrote stay as they are; only the current verdicts are replaced.
        let replaced = |path: &str| typed && path == CURRENT_VERDICTS;
        let listed: Vec<&str> = previous
            .iter()
            .flat_map(|m| m.files.iter().map(|f| f.path.as_str()))
            .filter(|p| !replaced(p))
            .collect();
        if let Some(f) = finished.iter().find(|f| listed.contains(&f.entry.path.as_str())) {
            return Err(ExportError::Invalid(format!(
                "{} is already part of the export; refusing to rewrite it",
                f.entry.path
            )));
        }
        // Renamed into place (the current verdicts over the previous ones, atomically) before
        // the manifest that lists them is written.
        let mut files = Vec::with_capacity(finished.len());
        for f in finished {
            files.push(f.publish()?);
        }
        let mut steps = previous.as_ref().map_or_else(Vec::new, |m| m.steps.clone());
        steps.push(Step { from: self.from, size: self.size, checkpoint: note.to_owned() });
        let mut all_files = previous.as_ref().map_or_else(Vec::new, |m| m.files.clone());
        all_files.retain(|f| !replaced(&f.path));
        all_files.extend(files.iter().cloned());
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            origin,
            ledger_key: key.to_text(),
            first_seq: 0,
            last_seq: self.size - 1,
            size: self.size,
            checkpoint: note.to_owned(),
            record_hash: self.last_hash.to_hex(),
            frontier: self.frontier.hashes().iter().map(|h| b64::encode_std(&h.0)).collect(),
            steps,
            files: all_files,
            previous: previous.as_ref().map(Manifest::versioned_name),
        };
        Ok((manifest, files))
    }
}

/// The writer has stopped: its own error is the export's (`Run::finish` returns it), not this
/// placeholder.
fn stopped(e: Stopped) -> ExportError {
    ExportError::Invalid(e.to_string())
}

/// Opens the writer of the `type=<ty>` partition (on its first batch, on the writer's thread).
fn open_partition(
    out: &Path,
    suffix: &str,
    schema: &arrow_schema::SchemaRef,
    options: &ExportOptions,
) -> OpenPartition {
    let (out, suffix, schema, group_rows) =
        (out.to_owned(), suffix.to_owned(), schema.clone(), options.row_group_rows);
    Box::new(move |ty: &str| {
        if !safe_type(ty) {
            return Err(ExportError::Ledger(format!("type {ty:?} is not a plain name")));
        }
        let rel = format!("events/type={ty}/{suffix}");
        let props = properties(group_rows, events::UNIQUE_COLUMNS, events::OPAQUE_COLUMNS);
        PartWriter::create(&out, rel, "events", schema.clone(), props)
    })
}
