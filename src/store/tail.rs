//! What the store holds beyond a tree size, and the truncation `assay recover` makes. The SQL is
//! shared by both dialects (`tail_backend!`, stamped out in each backend).
//!
//! A tree node (level, idx) covers leaves `[idx << level, (idx + 1) << level)`; it reaches past
//! `size` leaves iff `idx >= size >> level` (or its level is out of range). Every query here is
//! one index range per level, never a scan of the table.

use assay_events::merkle::NodeId;

use super::{BatchTx, CheckpointRow, HeadRow, Store, StoreError};

/// Levels a tree node may have: indexes are u64, so no subtree is higher than 63.
pub(crate) const NODE_LEVELS: u8 = 64;

/// A row stored beyond the first `size` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond {
    /// A record with this seq (≥ size).
    Record(u64),
    /// A tree node covering a leaf ≥ size.
    Node(NodeId),
}

impl Beyond {
    /// The first seq the row claims that the first `size` records do not have.
    pub fn first_seq(&self, size: u64) -> u64 {
        match *self {
            Beyond::Record(seq) => seq,
            Beyond::Node(id) => size.max(id.index.checked_shl(u32::from(id.level)).unwrap_or(u64::MAX)),
        }
    }
}

impl std::fmt::Display for Beyond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Beyond::Record(seq) => write!(f, "record {seq}"),
            Beyond::Node(id) => write!(f, "tree node (level {}, index {})", id.level, id.index),
        }
    }
}

/// What [`Store::truncate`] must find (else it changes nothing) and what it leaves.
#[derive(Debug, Clone)]
pub struct Truncation {
    /// Records, tree nodes and checkpoints beyond this size go.
    pub size: u64,
    /// The head as read before the removed rows were saved.
    pub expect_head: HeadRow,
    /// Records with seq ≥ size, as saved.
    pub expect_records: u64,
    /// Checkpoints over more than size records, as saved.
    pub expect_checkpoints: u64,
    /// The head written in its place.
    pub head: HeadRow,
}

/// Rows [`Store::truncate`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Truncated {
    pub records: u64,
    pub nodes: u64,
    pub checkpoints: u64,
    /// Witnesses' cosignatures of the removed checkpoints: kept, they would be served (and
    /// copied into bundles) beside a later checkpoint of the same size and another root.
    pub cosignatures: u64,
}

/// `(level, first index)` of the node ranges that reach past `size` leaves, for levels below
/// the height of `size`; every node of a level at or above it reaches past `size`.
pub(crate) fn levels_beyond(size: u64) -> (Vec<(u8, u64)>, u8) {
    let height = u8::try_from(u64::BITS - size.leading_zeros()).unwrap_or(NODE_LEVELS);
    ((0..height).map(|level| (level, size >> level)).collect(), height)
}

/// Implements the tail methods for `$Store { pool }` over database `$Db` (connection `$Conn`);
/// `$begin` (the writer lock) and `$announce` as in `sql_backend!`, whose row helpers it uses.
macro_rules! tail_backend {
    ($Store:ident, $Db:ty, $Conn:ty, $begin:path, $announce:literal) => {
        impl $Store {
            /// The first row stored beyond `size` leaves, on connection `c` (inside a batch
            /// transaction, under the writer lock, or not).
            pub(super) async fn beyond_on(
                c: &mut $Conn,
                size: u64,
            ) -> Result<Option<super::tail::Beyond>, StoreError> {
                use super::tail::{Beyond, levels_beyond};
                let from = i64::try_from(size).unwrap_or(i64::MAX);
                let mut q = QueryBuilder::<$Db>::new("SELECT seq FROM records WHERE seq >= ");
                q.push_bind(from).push(" ORDER BY seq LIMIT 1");
                if let Some(row) = q.build().fetch_optional(&mut *c).await? {
                    return Ok(Some(Beyond::Record(row.try_get::<i64, _>("seq")? as u64)));
                }
                let (levels, height) = levels_beyond(size);
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT level, idx FROM merkle_nodes WHERE level < 0 OR level >= ",
                );
                q.push_bind(i64::from(height));
                for (level, first) in levels {
                    q.push(" UNION ALL SELECT level, idx FROM merkle_nodes WHERE level = ")
                        .push_bind(i64::from(level))
                        .push(" AND idx >= ")
                        .push_bind(first as i64);
                }
                q.push(" LIMIT 1");
                let Some(row) = q.build().fetch_optional(&mut *c).await? else { return Ok(None) };
                let level: i64 = row.try_get("level")?;
                let index: i64 = row.try_get("idx")?;
                Ok(Some(Beyond::Node(assay_events::merkle::NodeId {
                    level: u8::try_from(level).unwrap_or(u8::MAX),
                    index: index as u64,
                })))
            }

            pub async fn beyond(&self, size: u64) -> Result<Option<super::tail::Beyond>, StoreError> {
                let mut c = self.pool.acquire().await?;
                Self::beyond_on(&mut c, size).await
            }

            /// The checkpoint of the largest size at most `size`.
            pub async fn checkpoint_at_most(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT size, root, note, signed_at FROM checkpoints WHERE size <= ",
                );
                q.push_bind(i64::try_from(size).unwrap_or(i64::MAX)).push(" ORDER BY size DESC LIMIT 1");
                let row = q.build().fetch_optional(&self.pool).await?;
                row.as_ref().map(checkpoint_from_row).transpose()
            }

            /// Removes every record, tree node, checkpoint and cosignature beyond `t.size` and writes `t.head`,
            /// in one transaction under the writer lock, provided the head and the number of
            /// records and checkpoints beyond are still what the caller saved; else nothing.
            pub async fn truncate(
                &self,
                t: &super::tail::Truncation,
            ) -> Result<super::tail::Truncated, StoreError> {
                use super::tail::{Truncated, levels_beyond};
                let changed = |what: String| Err(StoreError::Changed(what));
                let mut tx = $begin(&self.pool).await?;
                let head = QueryBuilder::<$Db>::new(
                    "SELECT size, record_hash, frontier, checkpoint_size FROM head WHERE id = 0",
                )
                .build()
                .fetch_optional(&mut *tx)
                .await?;
                if head.map(|r| head_from_row(&r)).transpose()?.as_ref() != Some(&t.expect_head) {
                    return changed("the head moved".into());
                }
                let size = t.size as i64;
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM records WHERE seq >= ");
                q.push_bind(size);
                let records = q.build().execute(&mut *tx).await?.rows_affected();
                if records != t.expect_records {
                    return changed(format!("{records} records beyond {size}, {} saved", t.expect_records));
                }
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM checkpoints WHERE size > ");
                q.push_bind(size);
                let checkpoints = q.build().execute(&mut *tx).await?.rows_affected();
                if checkpoints != t.expect_checkpoints {
                    return changed(format!(
                        "{checkpoints} checkpoints beyond {size}, {} saved",
                        t.expect_checkpoints
                    ));
                }
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM cosignatures WHERE size > ");
                q.push_bind(size);
                let cosignatures = q.build().execute(&mut *tx).await?.rows_affected();
                let (levels, height) = levels_beyond(t.size);
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM merkle_nodes WHERE level < 0 OR level >= ");
                q.push_bind(i64::from(height));
                let mut nodes = q.build().execute(&mut *tx).await?.rows_affected();
                for (level, first) in levels {
                    let mut q = QueryBuilder::<$Db>::new("DELETE FROM merkle_nodes WHERE level = ");
                    q.push_bind(i64::from(level)).push(" AND idx >= ").push_bind(first as i64);
                    nodes += q.build().execute(&mut *tx).await?.rows_affected();
                }
                let h = &t.head;
                let mut q = QueryBuilder::<$Db>::new("UPDATE head SET size = ");
                q.push_bind(h.size as i64)
                    .push(", record_hash = ")
                    .push_bind(h.record_hash.0.as_slice())
                    .push(", frontier = ")
                    .push_bind(h.frontier.as_slice())
                    .push(", checkpoint_size = ")
                    .push_bind(h.checkpoint_size as i64)
                    .push(" WHERE id = 0");
                q.build().execute(&mut *tx).await?;
                if !$announce.is_empty() {
                    QueryBuilder::<$Db>::new($announce).build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(Truncated { records, nodes, checkpoints, cosignatures })
            }
        }
    };
}

pub(crate) use tail_backend;

/// Delegates to the backend.
macro_rules! either {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// The first row stored beyond the first `size` leaves: a record with seq ≥ size, else a
    /// tree node covering a leaf ≥ size. An honest log holds none beyond its head.
    pub async fn beyond(&self, size: u64) -> Result<Option<Beyond>, StoreError> {
        either!(self, s => s.beyond(size).await)
    }

    /// The checkpoint of the largest size at most `size`.
    pub async fn checkpoint_at_most(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
        either!(self, s => s.checkpoint_at_most(size).await)
    }

    /// Removes everything beyond `t.size` and writes `t.head`, all or nothing: fails with
    /// [`StoreError::Changed`], changing nothing, unless the head and the rows beyond are still
    /// what the caller read.
    pub async fn truncate(&self, t: &Truncation) -> Result<Truncated, StoreError> {
        either!(self, s => s.truncate(t).await)
    }
}

impl BatchTx {
    /// [`Store::beyond`] inside this transaction, under the writer lock: no other writer can
    /// commit meanwhile, so anything found is not a commit in flight.
    pub async fn beyond(&mut self, size: u64) -> Result<Option<Beyond>, StoreError> {
        match self {
            BatchTx::Sqlite(tx) => super::SqliteStore::beyond_on(tx, size).await,
            BatchTx::Postgres(tx) => super::PgStore::beyond_on(tx, size).await,
        }
    }
}
