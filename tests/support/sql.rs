//! The ledger's SQLite file opened directly, as an attacker with write access to the disk
//! would: rows of `records`, `merkle_nodes`, `checkpoints` and `head` changed behind the
//! ledger's back (schemas/sql/sqlite/0001_ledger.sql).

use std::path::Path;
use std::str::FromStr;

use assay::store::{Durability, Store};
use assay_events::Hash32;
use assay_events::dsse::signatures_from_json;
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::Record;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

/// One connection to a ledger file, with its own runtime so tests stay synchronous.
pub struct Db {
    rt: tokio::runtime::Runtime,
    conn: Option<SqliteConnection>,
}

impl Db {
    pub fn open(path: &Path) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .expect("sqlite options")
            .create_if_missing(false);
        let conn = rt.block_on(options.connect()).expect("opening the ledger file");
        Db { rt, conn: Some(conn) }
    }

    fn conn(&mut self) -> (&tokio::runtime::Runtime, &mut SqliteConnection) {
        (&self.rt, self.conn.as_mut().expect("open"))
    }

    /// Runs one statement; returns the rows it changed.
    #[track_caller]
    pub fn exec(&mut self, sql: &str) -> u64 {
        let (rt, conn) = self.conn();
        rt.block_on(sqlx::query(sql).execute(conn)).unwrap_or_else(|e| panic!("{sql}: {e}")).rows_affected()
    }

    /// One integer from a query.
    #[track_caller]
    pub fn int(&mut self, sql: &str) -> i64 {
        let (rt, conn) = self.conn();
        rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(conn))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A BLOB column of one record.
    #[track_caller]
    pub fn blob(&mut self, seq: u64, column: &str) -> Vec<u8> {
        let (rt, conn) = self.conn();
        let sql = format!("SELECT {column} FROM records WHERE seq = ?");
        rt.block_on(sqlx::query_scalar::<_, Vec<u8>>(&sql).bind(seq as i64).fetch_one(conn))
            .unwrap_or_else(|e| panic!("{sql} ({seq}): {e}"))
    }

    /// Overwrites a BLOB column of one record.
    #[track_caller]
    pub fn set_blob(&mut self, seq: u64, column: &str, value: &[u8]) {
        let (rt, conn) = self.conn();
        let sql = format!("UPDATE records SET {column} = ? WHERE seq = ?");
        let done = rt
            .block_on(sqlx::query(&sql).bind(value).bind(seq as i64).execute(conn))
            .unwrap_or_else(|e| panic!("{sql} ({seq}): {e}"));
        assert_eq!(done.rows_affected(), 1, "{sql} ({seq})");
    }

    /// The record as the ledger's hashes see it, rebuilt from the stored columns.
    #[track_caller]
    pub fn record(&mut self, seq: u64) -> Record {
        let (rt, conn) = self.conn();
        let row = rt
            .block_on(
                sqlx::query("SELECT received_at, payload, signatures, prev_hash FROM records WHERE seq = ?")
                    .bind(seq as i64)
                    .fetch_one(conn),
            )
            .unwrap_or_else(|e| panic!("record {seq}: {e}"));
        let signatures =
            signatures_from_json(&row.get::<Vec<u8>, _>("signatures")).expect("stored signatures");
        let prev = Hash32::from_slice(&row.get::<Vec<u8>, _>("prev_hash")).expect("prev_hash");
        Record::new(seq, row.get("received_at"), row.get("payload"), signatures, prev)
            .expect("stored payload")
    }

    /// Recomputes `record_hash` of `seq` from its (possibly changed) columns, as an attacker
    /// covering their tracks would.
    pub fn rehash(&mut self, seq: u64) -> Hash32 {
        let hash = self.record(seq).record_hash;
        self.set_blob(seq, "record_hash", &hash.0);
        hash
    }

    /// Re-links the chain from `seq` to the end (prev_hash and record_hash of every record,
    /// and the head's record hash), so that the chain alone shows nothing.
    pub fn rechain_from(&mut self, seq: u64) {
        let size = self.int("SELECT size FROM head") as u64;
        let mut prev = if seq == 0 { Hash32::ZERO } else { self.record(seq - 1).record_hash };
        for s in seq..size {
            self.set_blob(s, "prev_hash", &prev.0);
            prev = self.rehash(s);
        }
        let (rt, conn) = self.conn();
        rt.block_on(sqlx::query("UPDATE head SET record_hash = ?").bind(prev.0.as_slice()).execute(conn))
            .expect("updating the head");
    }

    pub fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            self.rt.block_on(conn.close()).expect("closing the ledger file");
        }
    }
}

/// Rewinds the ledger file to its first `keep` records, leaving a ledger that is internally
/// consistent at size `keep`: deletes the later records, every Merkle node that covers a
/// deleted leaf, every checkpoint over more than `keep` records, and rewrites the head (size,
/// last record hash, frontier recomputed from the kept records, latest remaining checkpoint).
/// This is what an attacker holding the database and the keys does before appending a
/// different history; only a checkpoint saved elsewhere can tell.
pub fn rewind(path: &Path, keep: u64) {
    assert!(keep > 0, "genesis stays");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    // The kept records through the library's own reader: StoredRecord -> Record -> leaf,
    // exactly as the sequencer folds them when it opens a ledger.
    let (frontier, last_hash) = rt.block_on(async {
        let store =
            Store::open(&path.to_string_lossy(), Durability::Full, false).await.expect("opening the store");
        let mut frontier = Frontier::new();
        let mut last = Hash32::ZERO;
        while frontier.size() < keep {
            let want = u32::try_from((keep - frontier.size()).min(1000)).expect("small");
            let page = store.records(frontier.size(), want).await.expect("reading records");
            assert!(!page.is_empty(), "the ledger holds fewer than {keep} records");
            for stored in page {
                assert_eq!(stored.seq, frontier.size(), "gap-free");
                let record = stored.to_record().expect("a stored record");
                assert_eq!(record.prev_hash, last, "the kept chain links");
                frontier.push(leaf_hash(&record.leaf()));
                last = record.record_hash;
            }
        }
        // Self-check of the recomputation: where a checkpoint was signed at `keep`, its root matches.
        if let Some(cp) = store.checkpoint_at(keep).await.expect("reading checkpoints") {
            assert_eq!(cp.root, frontier.root(), "the recomputed frontier has the signed root");
        }
        store.close().await;
        (frontier, last)
    });
    drop(rt);

    let mut db = Db::open(path);
    db.exec("BEGIN IMMEDIATE");
    db.exec(&format!("DELETE FROM records WHERE seq >= {keep}"));
    // Node (level, idx) covers leaves [idx << level, (idx + 1) << level).
    db.exec(&format!("DELETE FROM merkle_nodes WHERE ((idx + 1) << level) > {keep}"));
    db.exec(&format!("DELETE FROM checkpoints WHERE size > {keep}"));
    let checkpoint_size = db.int("SELECT MAX(size) FROM checkpoints");
    {
        let (rt, conn) = db.conn();
        let done = rt
            .block_on(
                sqlx::query("UPDATE head SET size = ?, record_hash = ?, frontier = ?, checkpoint_size = ? WHERE id = 0")
                    .bind(keep as i64)
                    .bind(last_hash.0.as_slice())
                    .bind(frontier.to_bytes())
                    .bind(checkpoint_size)
                    .execute(conn),
            )
            .expect("rewriting the head");
        assert_eq!(done.rows_affected(), 1);
    }
    db.exec("COMMIT");
    assert_eq!(db.int("SELECT COUNT(*) FROM records") as u64, keep);
    db.close();
}
