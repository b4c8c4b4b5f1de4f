//! A witness's own state file (`assay witness serve --state FILE`, migrations in
//! `schemas/sql/witness/`): per log origin the latest checkpoint it cosigned (`witnessed`), and
//! the submissions it refused as contradicting it (`refusals`, evidence for an operator).
//!
//! SQLite with `synchronous=FULL`: a step is on disk when [`WitnessStateStore::step`] returns.
//! A step reads the origin's record, lets the caller decide, and writes the decision in one
//! `BEGIN IMMEDIATE` transaction, under one lock of this process besides: no two steps for
//! any origin interleave, here or in another process on the same file.

use std::str::FromStr;
use std::time::Duration;

use assay_events::Hash32;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::StoreError;

/// Refusals kept in all: beyond this a refusal is answered but not stored (each needs a valid
/// log signature, so only a log's own key can fill the table).
pub const REFUSALS_MAX: i64 = 100_000;

/// The checkpoint a witness last cosigned for one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub origin: String,
    pub size: u64,
    pub root: Hash32,
    /// The note as the log submitted it.
    pub note: String,
}

/// A refused submission kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub origin: String,
    pub received_at_ns: i64,
    /// `fork` or `inconsistent`.
    pub reason: String,
    pub old_size: u64,
    /// The proof lines as submitted, each ending in a newline.
    pub proof: String,
    pub submitted: String,
    pub recorded: String,
}

/// What a step writes: a new record, evidence, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessStep {
    Record(Witnessed),
    Evidence(Refusal),
    Nothing,
}

#[derive(Debug)]
pub struct WitnessStateStore {
    pool: SqlitePool,
    /// One step at a time in this process (the transaction excludes other processes).
    lock: tokio::sync::Mutex<()>,
    path: String,
}

impl WitnessStateStore {
    /// Opens (or, with `create`, creates) the state file.
    pub async fn open(path: &str, create: bool) -> Result<WitnessStateStore, StoreError> {
        // Whichever database a process opens first decides SQLite's allocator.
        super::sqlite_alloc::install();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: path.to_owned(), source })?;
        super::migrations::migrator(super::migrations::WITNESS).await?.run(&pool).await?;
        Ok(WitnessStateStore { pool, lock: tokio::sync::Mutex::new(()), path: path.to_owned() })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads `origin`'s record, hands it to `decide`, writes what it returns and commits, all
    /// in one transaction under the lock; returns `decide`'s answer once it is durable.
    pub async fn step<T>(
        &self,
        origin: &str,
        now_ns: i64,
        decide: impl FnOnce(Option<&Witnessed>) -> (WitnessStep, T),
    ) -> Result<T, StoreError> {
        let _one = self.lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT origin, size, root, note FROM witnessed WHERE origin = ");
        q.push_bind(origin);
        let current =
            q.build().fetch_optional(&mut *tx).await?.map(|r| witnessed_from_row(&r)).transpose()?;
        let (step, answer) = decide(current.as_ref());
        match step {
            WitnessStep::Record(w) => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO witnessed (origin, size, root, note, updated_at) ",
                );
                q.push_values([&w], |mut b, w| {
                    b.push_bind(w.origin.as_str())
                        .push_bind(w.size as i64)
                        .push_bind(w.root.0.to_vec())
                        .push_bind(w.note.as_str())
                        .push_bind(now_ns);
                });
                q.push(
                    " ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, \
                     note = excluded.note, updated_at = excluded.updated_at",
                );
                q.build().execute(&mut *tx).await?;
            }
            WitnessStep::Evidence(r) => {
                let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM refusals")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                if count < REFUSALS_MAX {
                    let mut q = QueryBuilder::<Sqlite>::new(
                        "INSERT INTO refusals (origin, received_at, reason, old_size, proof, submitted, recorded) ",
                    );
                    q.push_values([&r], |mut b, r| {
                        b.push_bind(r.origin.as_str())
                            .push_bind(r.received_at_ns)
                            .push_bind(r.reason.as_str())
                            .push_bind(r.old_size as i64)
                            .push_bind(r.proof.as_str())
                            .push_bind(r.submitted.as_str())
                            .push_bind(r.recorded.as_str());
                    });
                    // The same submission refused again is the same evidence.
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                } else {
                    tracing::warn!(origin, "refusal not kept: {REFUSALS_MAX} refusals are stored already");
                }
            }
            WitnessStep::Nothing => {}
        }
        tx.commit().await?;
        Ok(answer)
    }

    /// Every origin's record, by origin.
    pub async fn witnessed(&self) -> Result<Vec<Witnessed>, StoreError> {
        let rows = sqlx::query("SELECT origin, size, root, note FROM witnessed ORDER BY origin LIMIT 100000")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(witnessed_from_row).collect()
    }

    /// The refusals kept, oldest first, at most `limit` from the `after`-th.
    pub async fn refusals(&self, after: u64, limit: u32) -> Result<Vec<Refusal>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT origin, received_at, reason, old_size, proof, submitted, recorded FROM refusals ORDER BY id LIMIT ",
        );
        q.push_bind(i64::from(limit)).push(" OFFSET ").push_bind(after as i64);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Refusal {
                    origin: r.try_get("origin")?,
                    received_at_ns: r.try_get("received_at")?,
                    reason: r.try_get("reason")?,
                    old_size: r.try_get::<i64, _>("old_size")? as u64,
                    proof: r.try_get("proof")?,
                    submitted: r.try_get("submitted")?,
                    recorded: r.try_get("recorded")?,
                })
            })
            .collect()
    }
}

fn witnessed_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Witnessed, StoreError> {
    let root: Vec<u8> = r.try_get("root")?;
    Ok(Witnessed {
        origin: r.try_get("origin")?,
        size: r.try_get::<i64, _>("size")? as u64,
        root: Hash32::from_slice(&root).map_err(|e| StoreError::Corrupt(format!("witnessed root: {e}")))?,
        note: r.try_get("note")?,
    })
}
