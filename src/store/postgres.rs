//! The PostgreSQL backend, for several servers on one database. Each batch transaction takes
//! a transaction-scoped advisory lock and then `SELECT … FROM head FOR UPDATE`, so writers are
//! serialized, commit order equals seq order, and no two servers sign inconsistent checkpoints.
//! The queries are in `backend.rs`.

use std::str::FromStr;
use std::time::Duration;

use assay_events::Hash32;
use assay_events::merkle::NodeId;
use assay_events::record::LeafFields;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::{Connection, Executor, QueryBuilder, Row, Transaction};

use super::backend::{
    LOOKUP_PAIRS_MAX, PG_INSERT_NODES, PG_INSERT_RECORDS, RECORD_COLUMNS, WRITE_PROBE_SETTING, insert_rows,
    sql_backend,
};
use super::{CheckpointRow, CommitBatch, Durability, HeadRow, StoreError, StoredId, StoredRecord};

const CONNECTIONS_MAX: u32 = 8;
/// Longest wait for a pooled connection, including the pool's liveness ping of an idle one and
/// opening a new one: a healthy database hands one over in milliseconds, so a wait this long
/// means it stopped answering.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a released connection to answer a ping before it goes back to the pool.
/// sqlx drains what a dropped (timed-out) query left on the connection and pings it on release,
/// without a time limit: on a black-holed network that check would hold the pool slot until the
/// operating system's TCP timeout. Past this bound the connection is closed instead.
const RELEASE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Server-side session settings that end sessions of a vanished client (a crashed host, a
/// black-holed network), so a writer lock it held does not stall other servers' batches for
/// the operating system's TCP timeout. sqlx has no client-side keepalive or TCP_USER_TIMEOUT
/// (libpq's `keepalives*` parameters do not exist there); the client side is bounded by the
/// call timeouts instead. No `statement_timeout`: it only helps while the server answers, and
/// would also cut long legitimate reads (verify, export).
const SESSION_SETTINGS: [(&str, &str); 4] = [
    // No Assay transaction sits idle between its statements for more than milliseconds; a
    // session idle in one this long lost its client, and ending it frees the writer lock.
    ("idle_in_transaction_session_timeout", "30s"),
    // An idle session's peer is probed after 30 s and given up after 3 unanswered probes
    // 10 s apart (ignored on Unix sockets).
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];
/// The advisory lock class every writer of an Assay ledger takes (ASCII "asy" in an int); the
/// object is its schema's name hashed (`hashtext(current_schema())`), so the ledgers that one
/// database holds in several schemas do not serialize each other's writers, and a writer stuck
/// on one (a black-holed network holds its lock until the session times out) stalls no other.
/// A collision of two schemas' hashes only serializes their writers, which is always safe; the
/// `head` row lock taken next is what orders the writers of one ledger in any case.
const WRITER_LOCK_CLASS: i32 = 0x0061_7379;

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// `url` is a `postgres://` URL; an optional `schema=NAME` query parameter keeps the ledger
    /// in its own schema (created if `create`), so one database can hold several ledgers.
    pub async fn open(url: &str, durability: Durability, create: bool) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, durability, create, CONNECTIONS_MAX).await
    }

    /// [`PgStore::open`] with a pool of at most `connections_max` connections (the evidence
    /// store keeps its own pool, so that long uploads never take the sequencer's connections).
    pub async fn open_with(
        url: &str,
        durability: Durability,
        create: bool,
        connections_max: u32,
    ) -> Result<PgStore, StoreError> {
        let open_err = |source| StoreError::Open { target: redact(url), source };
        let (base, schema) = split_schema(url);
        let mut options = PgConnectOptions::from_str(&base).map_err(open_err)?;
        if let Some(schema) = &schema {
            if create {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await
                    .map_err(open_err)?;
                admin.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str()).await?;
                admin.close().await;
            }
            options = options.options([("search_path", schema.as_str())]);
        }
        // Plan every execution with the table as it is now. sqlx prepares each statement once
        // per connection, and after five runs PostgreSQL may switch to a generic plan made when
        // `records` was small (a hash join over a seq scan for the idempotency lookup) and keep
        // it as the table grows: ingest turned quadratic. Custom plans cost a little planning
        // per statement and always pick the unique index.
        options = options.options([("plan_cache_mode", "force_custom_plan")]).options(SESSION_SETTINGS);
        // Relaxed durability: commits return before the WAL is flushed (a crash of the
        // database server may lose the last commits, never corrupt).
        if durability == Durability::Relaxed {
            options = options.options([("synchronous_commit", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(connections_max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // An error closes the connection without reusing it (sqlx closes it hard).
                    match tokio::time::timeout(RELEASE_CHECK_TIMEOUT, conn.ping()).await {
                        // Still inside a transaction (a failed COMMIT left it counted so):
                        // closed, never reused.
                        Ok(answered) => answered.map(|()| !conn.is_in_transaction()),
                        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "a released connection did not answer a ping",
                        ))),
                    }
                })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        if !create {
            // Opening is not making: migrations bring an existing ledger up to date, but an
            // empty database (or schema) is left as it was found, without ledger tables.
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('head') IS NOT NULL").fetch_one(&pool).await?;
            if !exists {
                pool.close().await;
                return Err(StoreError::NoLedger(redact(url)));
            }
        }
        super::migrations::migrator(super::migrations::POSTGRES).await?.run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A listener on [`HEAD_CHANNEL`]: wakes when any server commits.
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(HEAD_CHANNEL).await?;
        Ok(listener)
    }
}

/// Splits a `schema=NAME` parameter off a URL. Schema names are restricted to
/// `[A-Za-z0-9_]` so they can be quoted safely.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None) };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                schema = Some(name.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    let base = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (base, schema)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
        .bind(WRITER_LOCK_CLASS)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The channel on which every commit announces itself (delivered at commit).
pub const HEAD_CHANNEL: &str = "assay_head";

sql_backend!(
    PgStore,
    Postgres,
    PgRow,
    unnest,
    begin,
    " FOR UPDATE",
    "SELECT pg_notify('assay_head', '')",
    "JOIN"
);
super::tokens::tokens_backend!(PgStore, Postgres);
super::cosignatures::cosignatures_backend!(PgStore, Postgres);
// The announcement as in `sql_backend!` above: a truncation moves the head too.
super::tail::tail_backend!(
    PgStore,
    Postgres,
    sqlx::PgConnection,
    begin,
    "SELECT pg_notify('assay_head', '')"
);
