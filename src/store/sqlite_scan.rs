//! Bulk reads of records straight from SQLite's C API, on a connection borrowed from sqlx.
//!
//! sqlx hands each row from its worker thread to the caller one at a time (~13 µs a row here);
//! verify, replay and export read every record, so for them a page is read with one prepared
//! statement stepped in place (~1 µs a row). Same SQL, same rows as `records()`.

// One of the files ARCHITECTURE.md names as holding `unsafe`: SQLite's C API, stepped in place
// (see above); every block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_int};
use std::ptr::{NonNull, null_mut};

use assay_events::Hash32;
use assay_events::hash::HashParseError;
use libsqlite3_sys as ffi;
use sqlx::sqlite::SqlitePool;

use super::backend::RECORD_COLUMNS;
use super::{FoldRecord, StoreError, StoredRecord};

/// Finalizes the statement on every path.
struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared by sqlite3_prepare_v2 and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

fn error(db: *mut ffi::sqlite3, what: &str) -> StoreError {
    // SAFETY: sqlite3_errmsg returns a NUL-terminated string owned by the connection.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    StoreError::Corrupt(format!("{what}: {msg}"))
}

/// Records with seq in `[from, from + limit)`, ascending.
pub async fn records(pool: &SqlitePool, from: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2");
    query(pool, &sql, &[from as i64, i64::from(limit)], limit, row).await
}

/// [`records`] of the columns a fold reads ([`FoldRecord`]).
pub async fn fold_records(pool: &SqlitePool, from: u64, limit: u32) -> Result<Vec<FoldRecord>, StoreError> {
    let sql = format!("SELECT {FOLD_COLUMNS} FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2");
    query(pool, &sql, &[from as i64, i64::from(limit)], limit, fold_row).await
}

/// The columns of [`FoldRecord`], in the order [`fold_row`] reads them.
const FOLD_COLUMNS: &str = "seq, digest, received_at, payload, signatures, prev_hash, record_hash";

/// Tree nodes of one level with index in `[first, last]`, ascending.
pub async fn nodes(
    pool: &SqlitePool,
    level: u8,
    first: u64,
    last: u64,
) -> Result<Vec<(u64, Hash32)>, StoreError> {
    let sql = "SELECT idx, hash FROM merkle_nodes WHERE level = ?1 AND idx BETWEEN ?2 AND ?3 ORDER BY idx";
    let n = u32::try_from(last.saturating_sub(first) + 1).unwrap_or(u32::MAX);
    query(pool, sql, &[i64::from(level), first as i64, last as i64], n, |s| {
        // SAFETY: s is positioned on a row of two columns.
        let idx = unsafe { ffi::sqlite3_column_int64(s, 0) } as u64;
        let hash = hash_column(s, 1).map_err(|e| StoreError::Corrupt(format!("node {idx}: {e}")))?;
        Ok((idx, hash))
    })
    .await
}

/// Prepares `sql`, binds `params` (integers, ?1…), steps every row through `read`.
async fn query<T>(
    pool: &SqlitePool,
    sql: &str,
    params: &[i64],
    expected_rows: u32,
    read: impl Fn(*mut ffi::sqlite3_stmt) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // Stepping a page is blocking work (a page is up to thousands of rows read from disk).
    blocking(|| {
        let sql = CString::new(sql).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut raw: *mut ffi::sqlite3_stmt = null_mut();
        // SAFETY: db is a live connection held locked for this scope; sql is NUL-terminated.
        let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut raw, null_mut()) };
        let stmt = match NonNull::new(raw) {
            Some(s) if rc == ffi::SQLITE_OK => Statement(s),
            _ => return Err(error(db, "prepare")),
        };
        let s = stmt.0.as_ptr();
        for (i, p) in params.iter().enumerate() {
            // SAFETY: s is a prepared statement; parameter indexes are 1-based and in range.
            unsafe { ffi::sqlite3_bind_int64(s, i as c_int + 1, *p) };
        }
        let mut out = Vec::with_capacity(expected_rows.min(1 << 16) as usize);
        loop {
            // SAFETY: stepping a live statement.
            match unsafe { ffi::sqlite3_step(s) } {
                ffi::SQLITE_ROW => out.push(read(s)?),
                ffi::SQLITE_DONE => break,
                _ => return Err(error(db, "step")),
            }
        }
        drop(stmt);
        Ok(out)
    })
}

/// Runs blocking `f` where it stalls no other task: on a multi-threaded runtime the worker
/// first hands its queued tasks to another thread (`block_in_place`); on a current-thread
/// runtime (tests), where that is not allowed, in place.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A BLOB column, copied.
fn blob(s: *mut ffi::sqlite3_stmt, i: c_int) -> Vec<u8> {
    // SAFETY: s is positioned on a row; the slice is copied before the next step.
    unsafe { blob_ref(s, i) }.to_vec()
}

/// A hash column, read in place: no buffer per hash (three a record on every whole-log read).
fn hash_column(s: *mut ffi::sqlite3_stmt, i: c_int) -> Result<Hash32, HashParseError> {
    // SAFETY: s is positioned on a row; the slice is copied into the hash before the next step.
    Hash32::from_slice(unsafe { blob_ref(s, i) })
}

/// A BLOB column in place.
///
/// # Safety
/// `s` is positioned on a row, and the slice is not used after the next step or reset of `s`
/// (SQLite owns the bytes until then).
unsafe fn blob_ref<'s>(s: *mut ffi::sqlite3_stmt, i: c_int) -> &'s [u8] {
    // SAFETY: per the contract above; SQLite returns a pointer to `n` bytes (or null if empty).
    unsafe {
        let p = ffi::sqlite3_column_blob(s, i) as *const u8;
        let n = ffi::sqlite3_column_bytes(s, i);
        if p.is_null() || n <= 0 { &[] } else { std::slice::from_raw_parts(p, n as usize) }
    }
}

/// Reads the current row (columns in `RECORD_COLUMNS` order).
fn row(s: *mut ffi::sqlite3_stmt) -> Result<StoredRecord, StoreError> {
    // SAFETY: s is positioned on a row and column indexes are within the 12 selected columns.
    let int = |i: c_int| unsafe { ffi::sqlite3_column_int64(s, i) };
    let bytes = |i: c_int| blob(s, i);
    let text = |i: c_int| -> Result<Option<String>, StoreError> {
        // SAFETY: s is positioned on a row; column indexes are within the 12 selected columns;
        // the text pointer is valid until the next step, and is copied before it.
        unsafe {
            if ffi::sqlite3_column_type(s, i) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let p = ffi::sqlite3_column_text(s, i);
            let n = ffi::sqlite3_column_bytes(s, i);
            let b = if p.is_null() || n <= 0 { &[][..] } else { std::slice::from_raw_parts(p, n as usize) };
            String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
        }
    };
    let seq = int(0) as u64;
    let hash = |i: c_int, what: &str| {
        hash_column(s, i).map_err(|e| StoreError::Corrupt(format!("seq {seq}: {what}: {e}")))
    };
    let required = |i: c_int, what: &str| -> Result<String, StoreError> {
        text(i)?.ok_or_else(|| StoreError::Corrupt(format!("seq {seq}: {what} is NULL")))
    };
    Ok(StoredRecord {
        seq,
        digest: hash(1, "digest")?,
        source: required(2, "source")?,
        event_id: required(3, "event_id")?,
        ty: required(4, "type")?,
        subject: text(5)?,
        time: required(6, "time")?,
        received_at_ns: int(7),
        payload: bytes(8),
        signatures: bytes(9),
        prev_hash: hash(10, "prev_hash")?,
        record_hash: hash(11, "record_hash")?,
    })
}

/// Reads the current row (columns in [`FOLD_COLUMNS`] order).
fn fold_row(s: *mut ffi::sqlite3_stmt) -> Result<FoldRecord, StoreError> {
    // SAFETY: s is positioned on a row and column indexes are within the 7 selected columns.
    let int = |i: c_int| unsafe { ffi::sqlite3_column_int64(s, i) };
    let seq = int(0) as u64;
    let hash = |i: c_int, what: &str| {
        hash_column(s, i).map_err(|e| StoreError::Corrupt(format!("seq {seq}: {what}: {e}")))
    };
    Ok(FoldRecord {
        seq,
        digest: hash(1, "digest")?,
        received_at_ns: int(2),
        payload: blob(s, 3),
        signatures: blob(s, 4),
        prev_hash: hash(5, "prev_hash")?,
        record_hash: hash(6, "record_hash")?,
    })
}
