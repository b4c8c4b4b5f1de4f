//! The ledger's tables opened directly, as an attacker with write access to the database
//! would: rows of `records`, `merkle_nodes`, `checkpoints` and `head` changed behind the
//! ledger's back (schemas/sql/{sqlite,postgres}/0001_ledger.sql). Works on a SQLite file and on
//! a PostgreSQL schema URL alike; statements are written once with `?` placeholders and in the
//! SQL both engines accept.

use std::str::FromStr;

use assay::store::{Durability, Store};
use assay_events::Hash32;
use assay_events::checkpoint::Checkpoint;
use assay_events::dsse::{Envelope, signatures_canonical_json, signatures_from_json};
use assay_events::merkle::{Frontier, leaf_hash};
use assay_events::record::Record;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};

/// A connection to either engine.
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// A bound parameter.
pub enum Bind<'a> {
    Int(i64),
    Blob(&'a [u8]),
    Text(&'a str),
    Null,
}

/// `?` placeholders as PostgreSQL's `$1, $2, …` (the statements here hold no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// One connection to a ledger, with its own runtime so tests stay synchronous.
pub struct Db {
    rt: tokio::runtime::Runtime,
    conn: Option<Conn>,
}

impl Db {
    /// Opens the ledger at `target`: a SQLite file path or a `postgres://…?schema=NAME` URL.
    pub fn open(target: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let conn = if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            let (base, schema) = target.split_once("?schema=").expect("a test URL names its schema");
            let options = PgConnectOptions::from_str(base)
                .expect("postgres options")
                .options([("search_path", schema)]);
            Conn::Postgres(rt.block_on(options.connect()).expect("connecting to the ledger schema"))
        } else {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{target}"))
                .expect("sqlite options")
                .create_if_missing(false);
            Conn::Sqlite(rt.block_on(options.connect()).expect("opening the ledger file"))
        };
        Db { rt, conn: Some(conn) }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.conn, Some(Conn::Postgres(_)))
    }

    /// Runs one statement with parameters; returns the rows it changed.
    #[track_caller]
    pub fn run(&mut self, sql: &str, binds: &[Bind]) -> u64 {
        let rt = &self.rt;
        let done = match self.conn.as_mut().expect("open") {
            Conn::Sqlite(c) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = match b {
                        Bind::Int(v) => q.bind(*v),
                        Bind::Blob(v) => q.bind(*v),
                        Bind::Text(v) => q.bind(*v),
                        Bind::Null => q.bind(None::<&str>),
                    };
                }
                rt.block_on(q.execute(c)).map(|d| d.rows_affected())
            }
            Conn::Postgres(c) => {
                let sql = numbered(sql);
                let mut q = sqlx::query(&sql);
                for b in binds {
                    q = match b {
                        Bind::Int(v) => q.bind(*v),
                        Bind::Blob(v) => q.bind(*v),
                        Bind::Text(v) => q.bind(*v),
                        Bind::Null => q.bind(None::<&str>),
                    };
                }
                rt.block_on(q.execute(c)).map(|d| d.rows_affected())
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of one row as `T` (i64 or Vec<u8>), after binding `seq` if given.
    #[track_caller]
    fn one<T>(&mut self, sql: &str, seq: Option<u64>) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + Send
            + Unpin,
    {
        let rt = &self.rt;
        let got = match self.conn.as_mut().expect("open") {
            Conn::Sqlite(c) => {
                let mut q = sqlx::query_scalar::<_, T>(sql);
                if let Some(s) = seq {
                    q = q.bind(s as i64);
                }
                rt.block_on(q.fetch_one(c))
            }
            Conn::Postgres(c) => {
                let sql = numbered(sql);
                let mut q = sqlx::query_scalar::<_, T>(&sql);
                if let Some(s) = seq {
                    q = q.bind(s as i64);
                }
                rt.block_on(q.fetch_one(c))
            }
        };
        got.unwrap_or_else(|e| panic!("{sql} ({seq:?}): {e}"))
    }

    /// Runs one statement; returns the rows it changed.
    #[track_caller]
    pub fn exec(&mut self, sql: &str) -> u64 {
        self.run(sql, &[])
    }

    /// Starts a transaction that holds the writer lock until `COMMIT`.
    pub fn begin(&mut self) {
        let sql = if self.is_postgres() { "BEGIN" } else { "BEGIN IMMEDIATE" };
        self.exec(sql);
    }

    /// One integer from a query.
    #[track_caller]
    pub fn int(&mut self, sql: &str) -> i64 {
        self.one(sql, None)
    }

    /// A BLOB column of one record.
    #[track_caller]
    pub fn blob(&mut self, seq: u64, column: &str) -> Vec<u8> {
        self.one(&format!("SELECT {column} FROM records WHERE seq = ?"), Some(seq))
    }

    /// Overwrites a BLOB column of one record.
    #[track_caller]
    pub fn set_blob(&mut self, seq: u64, column: &str, value: &[u8]) {
        let sql = format!("UPDATE records SET {column} = ? WHERE seq = ?");
        let changed = self.run(&sql, &[Bind::Blob(value), Bind::Int(seq as i64)]);
        assert_eq!(changed, 1, "{sql} ({seq})");
    }

    /// The record as the ledger's hashes see it, rebuilt from the stored columns.
    #[track_caller]
    pub fn record(&mut self, seq: u64) -> Record {
        let received_at: i64 = self.one("SELECT received_at FROM records WHERE seq = ?", Some(seq));
        let payload = self.blob(seq, "payload");
        let signatures = signatures_from_json(&self.blob(seq, "signatures")).expect("stored signatures");
        let prev = Hash32::from_slice(&self.blob(seq, "prev_hash")).expect("prev_hash");
        Record::new(seq, received_at, payload, signatures, prev).expect("stored payload")
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
        self.run("UPDATE head SET record_hash = ?", &[Bind::Blob(prev.0.as_slice())]);
    }

    /// One BLOB from a query.
    #[track_caller]
    pub fn bytes(&mut self, sql: &str) -> Vec<u8> {
        self.one(sql, None)
    }

    /// A TEXT column of one record.
    #[track_caller]
    pub fn text(&mut self, seq: u64, column: &str) -> String {
        self.one(&format!("SELECT {column} FROM records WHERE seq = ?"), Some(seq))
    }

    /// The head's frontier as stored.
    #[track_caller]
    pub fn head_frontier(&mut self) -> Frontier {
        let size = self.int("SELECT size FROM head") as u64;
        let bytes: Vec<u8> = self.one("SELECT frontier FROM head", None);
        Frontier::from_bytes(size, &bytes).expect("the stored frontier")
    }

    /// Writes `envelope` (a signed DSSE envelope, JSON) straight into the log as the record after
    /// the head, as an attacker with the database would: the record row with its chain link
    /// and hash, the tree nodes it completes, and — with `move_head` — the head's size, record
    /// hash and frontier (`checkpoint_size` untouched: no checkpoint can be signed without the
    /// ledger key). Returns the new record's seq.
    pub fn append_forged(&mut self, envelope: &str, move_head: bool) -> u64 {
        let env = Envelope::parse(envelope.as_bytes()).expect("an envelope");
        let mut frontier = self.head_frontier();
        let seq = frontier.size();
        let prev = self.record(seq - 1).record_hash;
        let received_at = self.int(&format!("SELECT received_at FROM records WHERE seq = {}", seq - 1)) + 1;
        let record = Record::new(seq, received_at, env.payload, env.signatures, prev).expect("the payload");
        let e = &record.event;
        let sigs = signatures_canonical_json(&record.signatures);
        let subject = e.subject.as_deref().map_or(Bind::Null, Bind::Text);
        self.run(
            "INSERT INTO records (seq, digest, source, event_id, type, subject, time, received_at, payload, \
             signatures, prev_hash, record_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Bind::Int(seq as i64),
                Bind::Blob(&record.digest.0),
                Bind::Text(&e.source),
                Bind::Text(&e.id),
                Bind::Text(&e.ty),
                subject,
                Bind::Text(&e.time),
                Bind::Int(received_at),
                Bind::Blob(&record.payload),
                Bind::Blob(&sigs),
                Bind::Blob(&prev.0),
                Bind::Blob(&record.record_hash.0),
            ],
        );
        for (id, hash) in frontier.push(leaf_hash(&record.leaf())) {
            self.insert_node(id.level, id.index, &hash);
        }
        if move_head {
            let bytes = frontier.to_bytes();
            self.run(
                "UPDATE head SET size = ?, record_hash = ?, frontier = ? WHERE id = 0",
                &[Bind::Int(frontier.size() as i64), Bind::Blob(&record.record_hash.0), Bind::Blob(&bytes)],
            );
        }
        seq
    }

    /// Inserts one tree node row.
    pub fn insert_node(&mut self, level: u8, index: u64, hash: &Hash32) {
        self.run(
            "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)",
            &[Bind::Int(i64::from(level)), Bind::Int(index as i64), Bind::Blob(&hash.0)],
        );
    }

    /// Inserts one checkpoint row.
    pub fn insert_checkpoint(&mut self, size: u64, root: &Hash32, note: &str) {
        self.run(
            "INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, 0)",
            &[Bind::Int(size as i64), Bind::Blob(&root.0), Bind::Text(note)],
        );
    }

    /// The note of the checkpoint at `size`.
    pub fn note(&mut self, size: u64) -> String {
        self.one("SELECT note FROM checkpoints WHERE size = ?", Some(size))
    }

    pub fn close(mut self) {
        let closed = match self.conn.take() {
            Some(Conn::Sqlite(c)) => self.rt.block_on(c.close()),
            Some(Conn::Postgres(c)) => self.rt.block_on(c.close()),
            None => Ok(()),
        };
        closed.expect("closing the ledger connection");
    }
}

/// Rewinds the ledger to its first `keep` records, leaving a ledger that is internally
/// consistent at size `keep`: deletes the later records, every Merkle node that covers a
/// deleted leaf, every checkpoint over more than `keep` records, and rewrites the head (size,
/// last record hash, frontier recomputed from the kept records, latest remaining checkpoint).
/// With `ledger_key` (an attacker who also holds the ledger's signing key) it signs a checkpoint
/// at `keep` where none is stored: the rewound log then ends at a signed checkpoint, as an
/// honest one does, and only a checkpoint saved elsewhere can tell. Without it, the records
/// past the last checkpoint at most `keep` are covered by no signed checkpoint.
pub fn rewind(target: &str, keep: u64, ledger_key: Option<&std::path::Path>) {
    assert!(keep > 0, "genesis stays");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    // The kept records through the library's own reader: StoredRecord -> Record -> leaf,
    // exactly as the sequencer folds them when it opens a ledger.
    let (frontier, last_hash, signed, origin) = rt.block_on(async {
        let store = Store::open(target, Durability::Full, false).await.expect("opening the store");
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
        let signed = store.checkpoint_at(keep).await.expect("reading checkpoints");
        if let Some(cp) = &signed {
            assert_eq!(cp.root, frontier.root(), "the recomputed frontier has the signed root");
        }
        // The log's origin, as its genesis checkpoint names it (this file is also included alone).
        let first = store.checkpoints(0, 1).await.expect("reading checkpoints");
        let origin = first.first().and_then(|c| c.note.lines().next()).unwrap_or_default().to_owned();
        store.close().await;
        (frontier, last, signed.is_some(), origin)
    });
    drop(rt);

    let mut db = Db::open(target);
    db.begin();
    db.exec(&format!("DELETE FROM records WHERE seq >= {keep}"));
    // Node (level, idx) covers leaves [idx << level, (idx + 1) << level). PostgreSQL shifts a
    // bigint by an integer only, hence the cast (a no-op in SQLite).
    db.exec(&format!("DELETE FROM merkle_nodes WHERE ((idx + 1) << CAST(level AS INTEGER)) > {keep}"));
    db.exec(&format!("DELETE FROM checkpoints WHERE size > {keep}"));
    if let Some(path) = ledger_key.filter(|_| !signed) {
        let key = assay::keyfile::read_signer(path).expect("the ledger key");
        let note = Checkpoint { origin: origin.clone(), size: keep, root: frontier.root() }.sign(&key);
        db.insert_checkpoint(keep, &frontier.root(), &note);
    }
    let checkpoint_size = db.int("SELECT MAX(size) FROM checkpoints");
    let done = db.run(
        "UPDATE head SET size = ?, record_hash = ?, frontier = ?, checkpoint_size = ? WHERE id = 0",
        &[
            Bind::Int(keep as i64),
            Bind::Blob(last_hash.0.as_slice()),
            Bind::Blob(&frontier.to_bytes()),
            Bind::Int(checkpoint_size),
        ],
    );
    assert_eq!(done, 1, "rewriting the head");
    db.exec("COMMIT");
    assert_eq!(db.int("SELECT COUNT(*) FROM records") as u64, keep);
    db.close();
}
