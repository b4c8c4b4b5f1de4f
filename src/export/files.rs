//! Parquet files: writer settings (ZSTD, row groups, statistics), a writer that hashes what it
//! writes (blake3, for the manifest), and reading files back.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::ExportError;
use super::manifest::FileEntry;

/// Rows per row group unless the caller asks otherwise.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// ZSTD level: 1 is the fast end, and payload JSON compresses well at it.
const ZSTD_LEVEL: i32 = 1;

/// Writer settings: ZSTD, `row_group_rows` rows per row group, page statistics, no dictionary
/// for the columns listed in `unique` (values that are nearly all distinct), and no statistics
/// for the `opaque` ones (payloads, signatures, leaves: min/max of them prunes nothing).
pub fn properties(row_group_rows: usize, unique: &[&str], opaque: &[&str]) -> WriterProperties {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(concat!("assay ", env!("CARGO_PKG_VERSION")).to_owned());
    for c in unique {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    for c in opaque {
        b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::None);
    }
    b.build()
}

/// A `Write` that feeds blake3 and counts bytes on the way to the file.
pub struct HashingWriter {
    inner: BufWriter<File>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One Parquet file being written: to `<path>.tmp`, renamed into place by
/// [`Finished::publish`]. The columns of each batch are encoded and compressed in parallel
/// (one task per column), and row groups are cut at the configured row count.
pub struct PartWriter {
    /// Path relative to the export folder, `/`-separated.
    rel: String,
    path: PathBuf,
    tmp: PathBuf,
    table: &'static str,
    file: SerializedFileWriter<HashingWriter>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The open row group's column writers and its rows so far.
    group: Option<(Vec<ArrowColumnWriter>, usize)>,
    groups: usize,
    group_rows: usize,
    rows: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl PartWriter {
    pub fn create(
        root: &Path,
        rel: String,
        table: &'static str,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<PartWriter, ExportError> {
        let path = root.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        };
        let group_rows = props.max_row_group_row_count().unwrap_or(ROW_GROUP_ROWS).max(1);
        let (file, factory) =
            ArrowWriter::try_new(sink, schema.clone(), Some(props))?.into_serialized_writer()?;
        Ok(PartWriter {
            rel,
            path,
            tmp,
            table,
            file,
            factory,
            schema,
            group: None,
            groups: 0,
            group_rows,
            rows: 0,
            first_seq: None,
            last_seq: None,
        })
    }

    /// Writes a batch whose rows hold seqs `first..=last` (None for snapshot tables).
    pub fn write(&mut self, batch: &RecordBatch, seqs: Option<(u64, u64)>) -> Result<(), ExportError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.group.is_none() {
                self.group = Some((self.factory.create_column_writers(self.groups)?, 0));
            }
            let Some((writers, rows)) = self.group.as_mut() else { break };
            let n = (self.group_rows - *rows).min(batch.num_rows() - offset);
            let part = batch.slice(offset, n);
            let mut leaves = Vec::with_capacity(writers.len());
            for (field, array) in self.schema.fields().iter().zip(part.columns()) {
                leaves.extend(compute_leaves(field, array)?);
            }
            if leaves.len() != writers.len() {
                return Err(ExportError::Invalid(format!(
                    "{}: {} leaves for {} columns",
                    self.rel,
                    leaves.len(),
                    writers.len()
                )));
            }
            writers.par_iter_mut().zip(leaves.par_iter()).try_for_each(|(w, leaf)| w.write(leaf))?;
            *rows += n;
            offset += n;
            if *rows >= self.group_rows {
                self.close_group()?;
            }
        }
        self.rows += batch.num_rows() as u64;
        if let Some((first, last)) = seqs
            && batch.num_rows() > 0
        {
            self.first_seq.get_or_insert(first);
            self.last_seq = Some(last);
        }
        Ok(())
    }

    /// Closes the open row group: its column chunks, finished in parallel, go to the file.
    fn close_group(&mut self) -> Result<(), ExportError> {
        let Some((writers, _)) = self.group.take() else { return Ok(()) };
        let chunks = writers.into_par_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>, _>>()?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.groups += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes and syncs the file (still under its temporary name) and returns its manifest
    /// entry; [`Finished::publish`] renames it into place.
    pub fn finish(mut self, export_size: u64) -> Result<Finished, ExportError> {
        self.close_group()?;
        let HashingWriter { inner, hasher, bytes } = self.file.into_inner()?;
        let file = inner.into_inner().map_err(|e| ExportError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ExportError::io(&self.tmp, e))?;
        Ok(Finished {
            entry: FileEntry {
                path: self.rel,
                table: self.table.to_owned(),
                rows: self.rows,
                bytes,
                blake3: hasher.finalize().to_hex().to_string(),
                first_seq: self.first_seq,
                last_seq: self.last_seq,
                export_size,
            },
            tmp: self.tmp,
            path: self.path,
        })
    }
}

/// A written file not yet in place.
pub struct Finished {
    pub entry: FileEntry,
    tmp: PathBuf,
    path: PathBuf,
}

impl Finished {
    pub fn publish(self) -> Result<FileEntry, ExportError> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ExportError::io(&self.path, e))?;
        Ok(self.entry)
    }
}

/// Why a Parquet file could not be read (the underlying message as it is: the caller names
/// the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Every batch of a Parquet file, and the row count its footer declares.
pub fn read_all(path: &Path) -> Result<(Vec<RecordBatch>, u64), ReadError> {
    let file = File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let declared = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = builder.with_batch_size(8192).build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((batches, declared))
}

/// A streaming reader over a Parquet file's batches.
pub fn open_batches(
    path: &Path,
    batch_rows: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, ReadError> {
    let file = File::open(path)?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(batch_rows).build()?)
}
