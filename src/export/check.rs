//! `assay verify-export DIR --ledger-key LEDGER.vkey`: checks an export offline, trusting
//! nothing but the ledger key.
//!
//! In order: the manifest and every step's signed checkpoint (under the key); every file's
//! blake3, size and row count, and that no Parquet file lies outside the manifest; then every
//! `events` row in seq order across all partitions — its leaf against its columns (digest =
//! blake3(payload), signatures digest = blake3(signatures)), its payload against its columns
//! and schema, its signature by a key that held a role allowed to emit its type (keys and
//! roles replayed from the exported key events, genesis bound to the key), the chain, and the
//! RFC 6962 root at each step's checkpoint; finally the typed tables and the verdicts, which
//! must equal the tables derived again from the verified events: each step's snapshot in
//! `verdicts_history/checkpoint=<size>/`, and `verdicts/current.parquet`, the only file under
//! `verdicts/`, which must be the latest step's. The first failure is reported with its file,
//! row and seq.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Component, Path};

use arrow_array::{Array, RecordBatch, UInt64Array};
use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::cloudevent::CloudEvent;
use assay_events::dsse::{DecodedEnvelope, VERIFY_BATCH_MAX, signatures_from_json, verify_many};
use assay_events::keys::VerifierKey;
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::{LeafFields, Record};
use assay_kernels::supervise::hash_file;
use assay_projections::Projections;
use assay_projections::authorize::RecordAuthorizer;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use rayon::prelude::*;
use serde::Serialize;

use super::columns::{BatchBuilder, Row};
use super::events::{EventColumns, EventRow};
use super::files::{open_batches, read_all};
use super::manifest::{FileEntry, MANIFEST, Manifest, Step};
use super::typed::{
    CURRENT_VERDICTS, EVENT_TABLES, VERDICTS, VERDICTS_ADDED, VERDICTS_HISTORY, table_of, verdicts_batch,
};
use crate::verify::check_content;

/// Rows checked per parallel stage.
const PAGE_ROWS: usize = 8192;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportReport {
    pub ok: bool,
    /// Records verified.
    pub records: u64,
    /// Files listed in the manifest.
    pub files: u64,
    pub first_bad_file: Option<String>,
    /// Row index within the file (0-based).
    pub first_bad_row: Option<u64>,
    pub first_bad_seq: Option<u64>,
    pub reason: Option<String>,
}

/// A failure: where, and why.
#[derive(Debug, Default)]
struct Bad {
    file: Option<String>,
    row: Option<u64>,
    seq: Option<u64>,
    reason: String,
}

fn bad_file(file: &str, reason: impl Into<String>) -> Bad {
    Bad { file: Some(file.to_owned()), reason: reason.into(), ..Bad::default() }
}

/// Verifies the export in `dir` against `key`; `progress(done, total)` as records are checked.
pub fn verify_export(dir: &Path, key: &VerifierKey, mut progress: impl FnMut(u64, u64)) -> ExportReport {
    let mut records = 0;
    let mut files = 0;
    let outcome = run(dir, key, &mut records, &mut files, &mut progress);
    match outcome {
        Ok(()) => ExportReport {
            ok: true,
            records,
            files,
            first_bad_file: None,
            first_bad_row: None,
            first_bad_seq: None,
            reason: None,
        },
        Err(b) => ExportReport {
            ok: false,
            records,
            files,
            first_bad_file: b.file,
            first_bad_row: b.row,
            first_bad_seq: b.seq,
            reason: Some(b.reason),
        },
    }
}

fn run(
    dir: &Path,
    key: &VerifierKey,
    records: &mut u64,
    file_count: &mut u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<(), Bad> {
    let manifest = Manifest::read(dir)
        .map_err(|e| bad_file(MANIFEST, e.to_string()))?
        .ok_or_else(|| bad_file(MANIFEST, "missing: not an export folder"))?;
    *file_count = manifest.files.len() as u64;
    let roots = check_steps(&manifest, key)?;
    check_files(dir, &manifest)?;
    let mut v = EventsCheck::new(dir, &manifest, key.clone(), roots)?;
    v.run(records, progress)?;
    Ok(())
}

/// The manifest's steps: contiguous from 0, each checkpoint signed by `key`, one origin.
/// Returns each step's (size, root).
fn check_steps(m: &Manifest, key: &VerifierKey) -> Result<Vec<(u64, Hash32)>, Bad> {
    let bad = |r: String| bad_file(MANIFEST, r);
    if m.steps.is_empty() {
        return Err(bad("no export steps".into()));
    }
    let mut roots = Vec::with_capacity(m.steps.len());
    let mut next = 0;
    for (i, Step { from, size, checkpoint }) in m.steps.iter().enumerate() {
        if *from != next || size <= from {
            return Err(bad(format!("step {i} covers seqs {from}..{size}, expected to start at {next}")));
        }
        let cp = Checkpoint::open(checkpoint, key).map_err(|e| {
            bad(format!("step {i}: the checkpoint does not verify under the ledger key: {e}"))
        })?;
        if cp.size != *size {
            return Err(bad(format!(
                "step {i}: the checkpoint is signed at size {}, the step ends at {size}",
                cp.size
            )));
        }
        if cp.origin != m.origin {
            return Err(bad(format!(
                "step {i}: the checkpoint is for origin {:?}, not {:?}",
                cp.origin, m.origin
            )));
        }
        roots.push((cp.size, cp.root));
        next = *size;
    }
    if m.size != next || m.last_seq + 1 != next || m.first_seq != 0 {
        return Err(bad(format!(
            "the manifest says seqs {}..={} (size {}), its steps end at {next}",
            m.first_seq, m.last_seq, m.size
        )));
    }
    if m.checkpoint != m.steps[m.steps.len() - 1].checkpoint {
        return Err(bad("the manifest's checkpoint is not its last step's".into()));
    }
    Ok(roots)
}

/// A relative path of plain components.
fn safe_rel(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Digest, size and footer row count of every listed file; no unlisted Parquet file.
fn check_files(dir: &Path, m: &Manifest) -> Result<(), Bad> {
    for f in &m.files {
        if !safe_rel(&f.path) {
            return Err(bad_file(&f.path, "not a relative path inside the export"));
        }
        let path = dir.join(&f.path);
        let (digest, bytes) =
            hash_file(&path).map_err(|e| bad_file(&f.path, format!("cannot be read: {e}")))?;
        if digest != f.blake3 || bytes != f.bytes {
            return Err(bad_file(&f.path, "blake3 or size differs from the manifest"));
        }
        let reader = std::fs::File::open(&path).map_err(|e| bad_file(&f.path, e.to_string()))?;
        let meta = parquet::file::serialized_reader::SerializedFileReader::new(reader)
            .map_err(|e| bad_file(&f.path, format!("not a Parquet file: {e}")))?;
        let rows = parquet::file::reader::FileReader::metadata(&meta).file_metadata().num_rows();
        if u64::try_from(rows).ok() != Some(f.rows) {
            return Err(bad_file(&f.path, format!("holds {rows} rows, the manifest says {}", f.rows)));
        }
    }
    let listed: std::collections::HashSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| bad_file(&d.display().to_string(), e.to_string()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_some_and(|e| e == "parquet") {
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
                if !listed.contains(rel.as_str()) {
                    return Err(bad_file(&rel, "a Parquet file the manifest does not list"));
                }
            }
        }
    }
    Ok(())
}

/// A stream of rows out of one `events` file.
struct Cursor {
    file: usize,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    at: usize,
    /// Row index in the file of `batch`'s first row.
    base: u64,
}

impl Cursor {
    /// The seq of the current row, loading the next batch when needed; None at the end.
    fn peek_seq(&mut self) -> Result<Option<u64>, String> {
        loop {
            if let Some(b) = &self.batch {
                if self.at < b.num_rows() {
                    let seqs = b
                        .column_by_name("seq")
                        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                        .ok_or("no UInt64 column \"seq\"")?;
                    return Ok(Some(seqs.value(self.at)));
                }
                self.base += b.num_rows() as u64;
            }
            self.at = 0;
            match self.reader.next() {
                Some(Ok(b)) => self.batch = Some(b),
                Some(Err(e)) => return Err(e.to_string()),
                None => {
                    self.batch = None;
                    return Ok(None);
                }
            }
        }
    }

    fn take(&mut self) -> Result<(EventRow, u64), String> {
        let b = self.batch.as_ref().ok_or("no current batch")?;
        let row = EventColumns::of(b).map_err(|e| e.to_string())?.row(self.at);
        let index = self.base + self.at as u64;
        self.at += 1;
        Ok((row, index))
    }
}

/// A row with where it came from.
struct Located {
    file: usize,
    row: u64,
    /// The `type=` of its partition.
    ty: String,
    data: EventRow,
}

/// What the typed tables must hold, built while the events are verified, and compared with
/// the files one step at a time.
struct TypedCheck {
    /// Per table: expected rows of the current step.
    builders: Vec<BatchBuilder<'static>>,
    projections: Projections,
}

struct EventsCheck<'m> {
    dir: &'m Path,
    manifest: &'m Manifest,
    files: Vec<&'m FileEntry>,
    /// Per events file: the type its path names.
    types: Vec<String>,
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// Keys and roles as of the next record; genesis must name the trusted ledger key.
    auth: RecordAuthorizer,
    frontier: Frontier,
    last_hash: Hash32,
    roots: Vec<(u64, Hash32)>,
    typed: TypedCheck,
}

fn partition_type(path: &str) -> Option<String> {
    let rest = path.strip_prefix("events/type=")?;
    let (ty, file) = rest.split_once('/')?;
    (!file.contains('/')).then(|| ty.to_owned())
}

impl<'m> EventsCheck<'m> {
    fn new(
        dir: &'m Path,
        manifest: &'m Manifest,
        key: VerifierKey,
        roots: Vec<(u64, Hash32)>,
    ) -> Result<Self, Bad> {
        let files: Vec<&FileEntry> = manifest.files.iter().filter(|f| f.table == "events").collect();
        let mut types = Vec::with_capacity(files.len());
        let mut cursors = Vec::with_capacity(files.len());
        let mut heap = BinaryHeap::new();
        for (i, f) in files.iter().enumerate() {
            let ty = partition_type(&f.path)
                .ok_or_else(|| bad_file(&f.path, "an events file outside events/type=<type>/"))?;
            types.push(ty);
            let reader =
                open_batches(&dir.join(&f.path), 4096).map_err(|e| bad_file(&f.path, e.to_string()))?;
            let mut c = Cursor { file: i, reader, batch: None, at: 0, base: 0 };
            if let Some(seq) = c.peek_seq().map_err(|e| bad_file(&f.path, e))? {
                heap.push(Reverse((seq, i)));
            }
            cursors.push(c);
        }
        let builders = EVENT_TABLES.iter().map(|t| t.builder(PAGE_ROWS)).collect();
        Ok(EventsCheck {
            dir,
            manifest,
            files,
            types,
            cursors,
            heap,
            auth: RecordAuthorizer::new(Some(key)),
            frontier: Frontier::new(),
            last_hash: Hash32::ZERO,
            roots,
            typed: TypedCheck { builders, projections: Projections::new() },
        })
    }

    /// The next row in seq order across all files.
    fn next_row(&mut self) -> Result<Option<Located>, Bad> {
        let Some(Reverse((_, i))) = self.heap.pop() else { return Ok(None) };
        let path = &self.files[i].path;
        let c = &mut self.cursors[i];
        let (data, row) = c.take().map_err(|e| bad_file(path, e))?;
        if let Some(seq) = c.peek_seq().map_err(|e| bad_file(path, e))? {
            self.heap.push(Reverse((seq, i)));
        }
        Ok(Some(Located { file: c.file, row, ty: self.types[i].clone(), data }))
    }

    fn bad_at(&self, l: &Located, reason: impl Into<String>) -> Bad {
        Bad {
            file: Some(self.files[l.file].path.clone()),
            row: Some(l.row),
            seq: Some(l.data.seq),
            reason: reason.into(),
        }
    }

    fn run(&mut self, records: &mut u64, progress: &mut impl FnMut(u64, u64)) -> Result<(), Bad> {
        let total = self.manifest.size;
        let mut step = 0usize;
        let mut typed_files = TypedFiles::new(self.dir, self.manifest)?;
        loop {
            let mut page = Vec::with_capacity(PAGE_ROWS);
            while page.len() < PAGE_ROWS {
                match self.next_row()? {
                    Some(l) => page.push(l),
                    None => break,
                }
            }
            if page.is_empty() {
                break;
            }
            // Stage 1, in parallel: each row alone.
            let checked: Vec<Result<(Record, Hash32), String>> = page.par_iter().map(check_row).collect();
            // Stage 2, in order: seq, file step, chain, keys and roles.
            let mut jobs: Vec<(usize, Record, VerifierKey, Hash32)> = Vec::with_capacity(page.len());
            for (i, (l, c)) in page.iter().zip(checked).enumerate() {
                let seq = self.frontier.size() + jobs.len() as u64;
                if l.data.seq != seq {
                    // Signatures of the rows before this one are checked first.
                    self.finish_jobs(&page, jobs, &mut step, &mut typed_files, records, progress)?;
                    // A missing seq belongs to no file: name the seq. A repeated one is in
                    // the file the repeat was read from.
                    return Err(if l.data.seq > seq {
                        Bad {
                            seq: Some(seq),
                            reason: format!(
                                "record {seq} is missing (the next exported seq is {})",
                                l.data.seq
                            ),
                            ..Bad::default()
                        }
                    } else {
                        self.bad_at(l, format!("seq {} appears twice", l.data.seq))
                    });
                }
                let entry = self.files[l.file];
                if seq >= entry.export_size || step_from(self.manifest, entry.export_size) > seq {
                    return Err(self.bad_at(
                        l,
                        format!(
                            "seq {seq} lies outside the step (size {}) that wrote this file",
                            entry.export_size
                        ),
                    ));
                }
                let outcome = c.and_then(|(record, leaf)| {
                    let want_prev =
                        if jobs.is_empty() { self.last_hash } else { jobs[jobs.len() - 1].1.record_hash };
                    if record.prev_hash != want_prev {
                        return Err("prev_hash does not link to the previous record".to_owned());
                    }
                    let key = self.auth.authorize(&record).map_err(|e| e.to_string())?;
                    Ok((record, key, leaf))
                });
                match outcome {
                    Ok((record, key, leaf)) => jobs.push((i, record, key, leaf)),
                    Err(reason) => {
                        let bad = self.bad_at(l, reason);
                        self.finish_jobs(&page, jobs, &mut step, &mut typed_files, records, progress)?;
                        return Err(bad);
                    }
                }
            }
            self.finish_jobs(&page, jobs, &mut step, &mut typed_files, records, progress)?;
        }
        if self.frontier.size() != total {
            return Err(Bad {
                seq: Some(self.frontier.size()),
                reason: format!("record {} is missing: the export ends at {total}", self.frontier.size()),
                ..bad_file(MANIFEST, "")
            });
        }
        if self.manifest.record_hash != self.last_hash.to_hex() {
            return Err(bad_file(MANIFEST, "record_hash is not the last record's hash"));
        }
        let frontier: Vec<String> =
            self.frontier.hashes().iter().map(|h| assay_events::b64::encode_std(&h.0)).collect();
        if self.manifest.frontier != frontier {
            return Err(bad_file(MANIFEST, "frontier is not the tree's compact range"));
        }
        typed_files.check_done()
    }

    /// Stage 3 (signatures, in parallel) and stage 4 (tree, checkpoints, typed tables, in order)
    /// for rows that passed stage 2.
    fn finish_jobs(
        &mut self,
        page: &[Located],
        jobs: Vec<(usize, Record, VerifierKey, Hash32)>,
        step: &mut usize,
        typed_files: &mut TypedFiles,
        records: &mut u64,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<(), Bad> {
        let envelopes: Vec<DecodedEnvelope> = jobs.par_iter().map(|(_, r, _, _)| r.envelope()).collect();
        let pairs: Vec<(&DecodedEnvelope, &VerifierKey)> =
            envelopes.iter().zip(jobs.iter().map(|j| &j.2)).collect();
        let verdicts: Vec<bool> = pairs.par_chunks(VERIFY_BATCH_MAX).flat_map_iter(verify_many).collect();
        for ((i, record, _, leaf), ok) in jobs.into_iter().zip(verdicts) {
            let l = &page[i];
            if !ok {
                return Err(self.bad_at(l, "signature does not verify"));
            }
            self.frontier.push(leaf);
            self.last_hash = record.record_hash;
            *records += 1;
            if let Some(t) = record.event_type().and_then(table_of) {
                let row = Row {
                    seq: record.seq,
                    time_ns: l.data.time_ns,
                    ty: &record.event.ty,
                    data: &record.event.data,
                };
                self.typed.builders[t].push(&row);
                if self.typed.builders[t].rows() >= PAGE_ROWS {
                    let batch =
                        self.typed.builders[t].finish().map_err(|e| bad_file(MANIFEST, e.to_string()))?;
                    typed_files.compare(t, self.roots[*step].0, &batch)?;
                }
            }
            self.typed.projections.apply(&record);
            let size = self.frontier.size();
            if let Some(&(step_size, root)) = self.roots.get(*step)
                && size == step_size
            {
                if self.frontier.root() != root {
                    return Err(self.bad_at(
                        l,
                        format!("the tree of the first {size} records does not match the checkpoint signed at that size"),
                    ));
                }
                for t in 0..EVENT_TABLES.len() {
                    let batch =
                        self.typed.builders[t].finish().map_err(|e| bad_file(MANIFEST, e.to_string()))?;
                    typed_files.compare(t, step_size, &batch)?;
                }
                typed_files.end_step(step_size, &self.typed.projections)?;
                *step += 1;
            }
        }
        progress(self.frontier.size(), self.manifest.size);
        Ok(())
    }
}

fn step_from(m: &Manifest, size: u64) -> u64 {
    m.steps.iter().find(|s| s.size == size).map_or(u64::MAX, |s| s.from)
}

/// Checks of one row that need nothing else: its leaf against its columns, its payload
/// against its columns and schema. Returns the record and its Merkle leaf hash.
fn check_row(l: &Located) -> Result<(Record, Hash32), String> {
    let r = &l.data;
    let leaf = LeafFields::from_bytes(&r.leaf).map_err(|e| e.to_string())?;
    if leaf.seq != r.seq {
        return Err(format!("the leaf is for seq {}", leaf.seq));
    }
    if leaf.received_at_ns != r.received_at_ns {
        return Err("received_at differs from the leaf".into());
    }
    if Hash32::blake3(r.payload.as_bytes()) != leaf.digest {
        return Err("the payload does not match the digest in its leaf".into());
    }
    if r.digest != leaf.digest.to_hex() {
        return Err("the digest column differs from the leaf".into());
    }
    if Hash32::blake3(r.signatures.as_bytes()) != leaf.signatures_digest {
        return Err("the signatures do not match the signatures digest in the leaf".into());
    }
    if r.prev_hash != leaf.prev_hash.to_hex() {
        return Err("the prev_hash column differs from the leaf".into());
    }
    let record_hash = Hash32::blake3(&r.leaf);
    if r.record_hash != record_hash.to_hex() {
        return Err("the record_hash column is not blake3 of the leaf".into());
    }
    let signatures = signatures_from_json(r.signatures.as_bytes()).map_err(|e| format!("signatures: {e}"))?;
    let event = CloudEvent::parse(r.payload.as_bytes()).map_err(|e| format!("payload: {e}"))?;
    if event.ty != l.ty {
        return Err(format!("a {} event in the type={} partition", event.ty, l.ty));
    }
    let time_ns = event.time_ns().ok();
    if event.source != r.source
        || event.id != r.event_id
        || event.subject != r.subject
        || time_ns != r.time_ns
    {
        return Err("the columns disagree with the payload".into());
    }
    let record = Record {
        seq: r.seq,
        received_at_ns: r.received_at_ns,
        payload: r.payload.as_bytes().to_vec(),
        signatures,
        prev_hash: leaf.prev_hash,
        digest: leaf.digest,
        record_hash,
        event,
    };
    check_content(&record).map_err(|e| e.to_string())?;
    Ok((record, leaf_hash(&r.leaf)))
}

/// The typed-table files, by (table, step size), read in step with the verification.
struct TypedFiles<'m> {
    dir: &'m Path,
    /// (table index, step size) → file and its reader position.
    open: BTreeMap<(usize, u64), TypedFile<'m>>,
    /// step size → that step's verdicts snapshot (`verdicts_history/`).
    history: BTreeMap<u64, &'m FileEntry>,
    /// `verdicts/current.parquet`, until it is checked.
    current: Option<&'m FileEntry>,
}

struct TypedFile<'m> {
    entry: &'m FileEntry,
    reader: Option<ParquetRecordBatchReader>,
    pending: Option<RecordBatch>,
    /// Rows of the file compared so far.
    done: u64,
}

impl<'m> TypedFiles<'m> {
    fn new(dir: &'m Path, m: &'m Manifest) -> Result<TypedFiles<'m>, Bad> {
        let mut open = BTreeMap::new();
        let mut history = BTreeMap::new();
        let mut current = None;
        for f in &m.files {
            if f.table == "events" {
                continue;
            }
            if f.table == VERDICTS_HISTORY {
                if f.path != format!("{VERDICTS_HISTORY}/checkpoint={}/{}", f.export_size, file_name(&f.path))
                {
                    return Err(bad_file(
                        &f.path,
                        format!("a {VERDICTS_HISTORY} file outside {VERDICTS_HISTORY}/checkpoint=<size>/"),
                    ));
                }
                if history.insert(f.export_size, f).is_some() {
                    return Err(bad_file(&f.path, "a second verdicts snapshot of the same step"));
                }
                continue;
            }
            if f.table == VERDICTS.name {
                // A plain glob over verdicts/ must read the current verdicts and nothing else.
                if f.path != CURRENT_VERDICTS {
                    return Err(bad_file(&f.path, format!("a verdicts file other than {CURRENT_VERDICTS}")));
                }
                if current.replace(f).is_some() {
                    return Err(bad_file(&f.path, "listed twice"));
                }
                continue;
            }
            let t = EVENT_TABLES
                .iter()
                .position(|t| t.name == f.table)
                .ok_or_else(|| bad_file(&f.path, format!("unknown table {:?}", f.table)))?;
            if f.path != format!("{}/{}", f.table, file_name(&f.path)) {
                return Err(bad_file(&f.path, format!("a {} file outside {}/", f.table, f.table)));
            }
            if open
                .insert((t, f.export_size), TypedFile { entry: f, reader: None, pending: None, done: 0 })
                .is_some()
            {
                return Err(bad_file(&f.path, "a second file of the same table in one step"));
            }
        }
        // A step exported with typed tables has every one of them, and its verdicts.
        let steps: std::collections::BTreeSet<u64> =
            open.keys().map(|(_, s)| *s).chain(history.keys().copied()).collect();
        for &size in &steps {
            for (t, table) in EVENT_TABLES.iter().enumerate() {
                if !open.contains_key(&(t, size)) {
                    return Err(bad_file(
                        MANIFEST,
                        format!("the step ending at {size} has no {} file", table.name),
                    ));
                }
            }
            if !history.contains_key(&size) {
                return Err(bad_file(
                    MANIFEST,
                    format!("the step ending at {size} has no verdicts snapshot"),
                ));
            }
        }
        // The current verdicts are the latest such step's.
        match (steps.last(), current) {
            (None, None) => {}
            (Some(&last), Some(f)) if f.export_size == last => {}
            (Some(&last), Some(f)) => {
                return Err(bad_file(
                    &f.path,
                    format!(
                        "holds the verdicts of the step ending at {}; the latest verdicts are at {last}",
                        f.export_size
                    ),
                ));
            }
            (Some(&last), None) => {
                return Err(bad_file(
                    MANIFEST,
                    format!("no {CURRENT_VERDICTS}: the verdicts at {last} are not current"),
                ));
            }
            (None, Some(f)) => return Err(bad_file(&f.path, "verdicts of an export without typed tables")),
        }
        Ok(TypedFiles { dir, open, history, current })
    }

    /// `expected` must be the next rows of table `t`'s file of the step ending at `size`.
    fn compare(&mut self, t: usize, size: u64, expected: &RecordBatch) -> Result<(), Bad> {
        if expected.num_rows() == 0 {
            return Ok(());
        }
        let Some(f) = self.open.get_mut(&(t, size)) else {
            // A step exported without typed tables.
            return Ok(());
        };
        let path = &f.entry.path;
        let mut offset = 0;
        while offset < expected.num_rows() {
            if f.pending.as_ref().is_none_or(|b| b.num_rows() == 0) {
                if f.reader.is_none() {
                    f.reader = Some(
                        open_batches(&self.dir.join(path), 4096)
                            .map_err(|e| bad_file(path, e.to_string()))?,
                    );
                }
                match f.reader.as_mut().and_then(Iterator::next) {
                    Some(Ok(b)) => f.pending = Some(b),
                    Some(Err(e)) => return Err(bad_file(path, e.to_string())),
                    None => {
                        return Err(Bad {
                            row: Some(f.done),
                            ..bad_file(path, "rows are missing: the verified events yield more")
                        });
                    }
                }
            }
            let Some(got) = f.pending.take() else { continue };
            let n = got.num_rows().min(expected.num_rows() - offset);
            let want = expected.slice(offset, n);
            if let Some(i) = first_difference(&want, &got.slice(0, n)) {
                let seq = want
                    .column_by_name("seq")
                    .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                    .map(|s| s.value(i));
                return Err(Bad {
                    row: Some(f.done + i as u64),
                    seq,
                    ..bad_file(path, "the row differs from the one derived from the verified events")
                });
            }
            f.pending = Some(got.slice(n, got.num_rows() - n));
            f.done += n as u64;
            offset += n;
        }
        Ok(())
    }

    /// At the end of a step: every typed file of the step fully matched, and its verdicts equal
    /// the audit of the state folded so far.
    fn end_step(&mut self, size: u64, projections: &Projections) -> Result<(), Bad> {
        // The footer's row count equals the manifest's (checked before), so a file is fully
        // matched iff every row the manifest declares was compared.
        for f in self.open.iter().filter(|((_, s), _)| *s == size).map(|(_, f)| f) {
            if f.done != f.entry.rows {
                return Err(Bad {
                    row: Some(f.done),
                    ..bad_file(&f.entry.path, "holds rows the verified events do not yield")
                });
            }
        }
        let snapshot = self.history.remove(&size);
        let current = self.current.take_if(|f| f.export_size == size);
        if snapshot.is_some() || current.is_some() {
            let expected =
                verdicts_batch(&projections.audit_report()).map_err(|e| bad_file(MANIFEST, e.to_string()))?;
            for f in snapshot.into_iter().chain(current) {
                self.compare_verdicts(f, &expected)?;
            }
        }
        Ok(())
    }

    /// The verdicts file `f` holds exactly the rows of `expected`.
    fn compare_verdicts(&self, f: &FileEntry, expected: &RecordBatch) -> Result<(), Bad> {
        let (batches, _) = read_all(&self.dir.join(&f.path)).map_err(|e| bad_file(&f.path, e.to_string()))?;
        let older;
        let expected = match batches.first() {
            Some(b) => {
                older = in_layout_of(expected, b).map_err(|e| bad_file(&f.path, e.to_string()))?;
                &older
            }
            None => expected,
        };
        let got_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut offset = 0;
        for b in &batches {
            let n = b.num_rows().min(expected.num_rows().saturating_sub(offset));
            if let Some(i) = first_difference(&expected.slice(offset, n), &b.slice(0, n)) {
                return Err(Bad {
                    row: Some((offset + i) as u64),
                    ..bad_file(&f.path, "the verdict differs from the audit of the verified events")
                });
            }
            offset += n;
        }
        if got_rows != expected.num_rows() {
            return Err(bad_file(
                &f.path,
                format!(
                    "holds {got_rows} verdict rows, the audit of the verified events yields {}",
                    expected.num_rows()
                ),
            ));
        }
        Ok(())
    }

    /// Every step's verdicts, and the current ones, were checked.
    fn check_done(&self) -> Result<(), Bad> {
        match self.history.values().next().or(self.current.as_ref()) {
            Some(f) => Err(bad_file(&f.path, "verdicts for a checkpoint no step ends at")),
            None => Ok(()),
        }
    }
}

/// `expected` without the columns added since `file`'s layout ([`VERDICTS_ADDED`]) that
/// `file` lacks, so a verdicts file an older export wrote is compared on what it holds.
fn in_layout_of(expected: &RecordBatch, file: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let schema = expected.schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| {
            let name = schema.field(i).name();
            !VERDICTS_ADDED.contains(&name.as_str()) || file.schema().column_with_name(name).is_some()
        })
        .collect();
    expected.project(&keep)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, f)| f)
}

/// The first row where two batches of equal length differ (names, types or values).
fn first_difference(a: &RecordBatch, b: &RecordBatch) -> Option<usize> {
    let same_shape = a.num_columns() == b.num_columns()
        && a.schema()
            .fields()
            .iter()
            .zip(b.schema().fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type());
    if !same_shape {
        return Some(0);
    }
    let equal = |x: &RecordBatch, y: &RecordBatch| {
        x.columns().iter().zip(y.columns()).all(|(c, d)| c.as_ref() == d.as_ref())
    };
    if a.num_rows() == b.num_rows() && equal(a, b) {
        return None;
    }
    (0..a.num_rows().min(b.num_rows()))
        .find(|&i| !equal(&a.slice(i, 1), &b.slice(i, 1)))
        .or(Some(a.num_rows().min(b.num_rows())))
}
