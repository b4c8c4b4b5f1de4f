//! The SQL both backends share, stamped out per dialect by `sql_backend!`: one source for every
//! query, so SQLite and PostgreSQL cannot drift. Statements are built with `QueryBuilder`, which
//! writes each dialect's placeholders; the one dialect-specific path is how a batch's records and
//! nodes are inserted (`insert_rows!`: multi-row VALUES, or PostgreSQL's arrays through UNNEST).

/// Rows per multi-row INSERT: 12 columns × 64 rows stays far below both engines' bound-parameter
/// limits (SQLite 32766, PostgreSQL 65535) while amortising per-statement overhead.
pub const INSERT_RECORDS_ROWS_MAX: usize = 64;
pub const INSERT_NODES_ROWS_MAX: usize = 256;
/// Pairs per lookup statement (2 parameters each).
pub const LOOKUP_PAIRS_MAX: usize = 256;

/// PostgreSQL's whole-batch inserts (`insert_rows!(unnest, …)`): the columns as arrays.
pub const PG_INSERT_RECORDS: &str = "INSERT INTO records (seq, digest, source, event_id, type, subject, time, \
     received_at, payload, signatures, prev_hash, record_hash) SELECT * FROM UNNEST($1::BIGINT[], \
     $2::BYTEA[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BYTEA[], \
     $10::BYTEA[], $11::BYTEA[], $12::BYTEA[])";
pub const PG_INSERT_NODES: &str = "INSERT INTO merkle_nodes (level, idx, hash) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[])";

/// The settings row [`probe_write`](super::Store::probe_write) writes and deletes in one
/// transaction (never seen by anyone).
pub const WRITE_PROBE_SETTING: &str = "assay.write_probe";

pub const RECORD_COLUMNS: &str = "seq, digest, source, event_id, type, subject, time, received_at, \
                                  payload, signatures, prev_hash, record_hash";

/// Inserts the records and Merkle nodes of `$batch` in the transaction `$tx`. `values`:
/// multi-row INSERTs of bound parameters (SQLite), `OR FAIL`: a failing row fails the
/// statement without undoing its earlier rows, so SQLite keeps no statement journal (a copy of
/// every page each statement changes, written to a temporary file: most of the writes of an
/// append, BENCHMARKS.md); the batch's transaction is rolled back whole on any error anyway.
/// `unnest`: one statement per table with each column bound as an array (PostgreSQL): one
/// round trip, one parse and one plan per batch instead of one per 64 rows.
macro_rules! insert_rows {
    (values, $Db:ty, $tx:ident, $batch:ident) => {{
        for chunk in $batch.records.chunks(INSERT_RECORDS_ROWS_MAX) {
            let mut q = QueryBuilder::<$Db>::new(format!("INSERT OR FAIL INTO records ({RECORD_COLUMNS}) "));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.seq as i64)
                    .push_bind(r.digest.0.as_slice())
                    .push_bind(r.source.as_str())
                    .push_bind(r.event_id.as_str())
                    .push_bind(r.ty.as_str())
                    .push_bind(r.subject.as_deref())
                    .push_bind(r.time.as_str())
                    .push_bind(r.received_at_ns)
                    .push_bind(r.payload.as_slice())
                    .push_bind(r.signatures.as_slice())
                    .push_bind(r.prev_hash.0.as_slice())
                    .push_bind(r.record_hash.0.as_slice());
            });
            q.build().execute(&mut *$tx).await?;
        }
        for chunk in $batch.nodes.chunks(INSERT_NODES_ROWS_MAX) {
            let mut q = QueryBuilder::<$Db>::new("INSERT OR FAIL INTO merkle_nodes (level, idx, hash) ");
            q.push_values(chunk, |mut b, (id, hash)| {
                b.push_bind(i64::from(id.level)).push_bind(id.index as i64).push_bind(hash.0.as_slice());
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
    (unnest, $Db:ty, $tx:ident, $batch:ident) => {{
        let r = &$batch.records;
        if !r.is_empty() {
            sqlx::query(PG_INSERT_RECORDS)
                .bind(r.iter().map(|r| r.seq as i64).collect::<Vec<i64>>())
                .bind(r.iter().map(|r| r.digest.0.as_slice()).collect::<Vec<&[u8]>>())
                .bind(r.iter().map(|r| r.source.as_str()).collect::<Vec<&str>>())
                .bind(r.iter().map(|r| r.event_id.as_str()).collect::<Vec<&str>>())
                .bind(r.iter().map(|r| r.ty.as_str()).collect::<Vec<&str>>())
                .bind(r.iter().map(|r| r.subject.as_deref()).collect::<Vec<Option<&str>>>())
                .bind(r.iter().map(|r| r.time.as_str()).collect::<Vec<&str>>())
                .bind(r.iter().map(|r| r.received_at_ns).collect::<Vec<i64>>())
                .bind(r.iter().map(|r| r.payload.as_slice()).collect::<Vec<&[u8]>>())
                .bind(r.iter().map(|r| r.signatures.as_slice()).collect::<Vec<&[u8]>>())
                .bind(r.iter().map(|r| r.prev_hash.0.as_slice()).collect::<Vec<&[u8]>>())
                .bind(r.iter().map(|r| r.record_hash.0.as_slice()).collect::<Vec<&[u8]>>())
                .execute(&mut *$tx)
                .await?;
        }
        let n = &$batch.nodes;
        if !n.is_empty() {
            sqlx::query(PG_INSERT_NODES)
                .bind(n.iter().map(|(id, _)| i64::from(id.level)).collect::<Vec<i64>>())
                .bind(n.iter().map(|(id, _)| id.index as i64).collect::<Vec<i64>>())
                .bind(n.iter().map(|(_, h)| h.0.as_slice()).collect::<Vec<&[u8]>>())
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

pub(crate) use insert_rows;

/// Implements the store methods for `$Store { pool }` over database `$Db`. `$rows` says how a
/// batch's records and nodes are inserted ([`insert_rows`]); `$begin` opens the
/// batch transaction holding the writer lock; `$for_update` ends the head read inside it;
/// `$announce` (if not empty) runs before commit to tell followers the head moved; `$join`
/// joins a VALUES list to a table so that the list drives the loop (SQLite's `CROSS JOIN`
/// fixes the order; without it SQLite 3.46+ may scan the table with an automatic index).
macro_rules! sql_backend {
    ($Store:ident, $Db:ty, $Row:ty, $rows:ident, $begin:path, $for_update:literal, $announce:literal, $join:literal) => {
        impl $Store {
            pub async fn head(&self) -> Result<Option<HeadRow>, StoreError> {
                let row = QueryBuilder::<$Db>::new(
                    "SELECT size, record_hash, frontier, checkpoint_size FROM head WHERE id = 0",
                )
                .build()
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| head_from_row(&r)).transpose()
            }

            /// Opens a batch transaction holding the writer lock and reads the stored size.
            pub async fn lock(&self) -> Result<(Transaction<'static, $Db>, u64), StoreError> {
                let mut tx = $begin(&self.pool).await?;
                let found = QueryBuilder::<$Db>::new(concat!("SELECT size FROM head WHERE id = 0", $for_update))
                    .build()
                    .fetch_optional(&mut *tx)
                    .await?;
                let found = match found {
                    Some(row) => row.try_get::<i64, _>("size")? as u64,
                    None => 0,
                };
                Ok((tx, found))
            }

            /// Takes the writer lock and commits a write that leaves nothing behind (a settings
            /// row inserted and deleted again): whether the database takes writes now. A full
            /// disk refuses it. (A row set to its own value would not do: SQLite skips writing
            /// a page whose bytes do not change, so such a commit succeeds on a full disk.)
            pub async fn probe_write(&self) -> Result<(), StoreError> {
                let mut tx = $begin(&self.pool).await?;
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO settings (name, value) VALUES (");
                q.push_bind(WRITE_PROBE_SETTING).push(", ").push_bind(WRITE_PROBE_SETTING).push(
                    ") ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                );
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::<$Db>::new("DELETE FROM settings WHERE name = ");
                q.push_bind(WRITE_PROBE_SETTING);
                q.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
                let (tx, found) = self.lock().await?;
                if found != batch.base_size {
                    return Err(StoreError::HeadMoved { expected: batch.base_size, found });
                }
                Self::write(tx, batch).await
            }

            /// Inserts the records and nodes of `part` in the locked transaction, without
            /// committing: a batch's rows may go in several parts while the rest is sequenced,
            /// and [`Self::write`] then writes the last part, checkpoint and head, and commits.
            pub async fn insert(tx: &mut Transaction<'static, $Db>, part: &CommitBatch) -> Result<(), StoreError> {
                let conn: &mut <$Db as sqlx::Database>::Connection = &mut **tx;
                insert_rows!($rows, $Db, conn, part);
                Ok(())
            }

            /// Writes `batch` in the locked transaction and commits.
            pub async fn write(mut tx: Transaction<'static, $Db>, batch: &CommitBatch) -> Result<(), StoreError> {
                insert_rows!($rows, $Db, tx, batch);
                if !batch.checkpoints.is_empty() {
                    let mut q = QueryBuilder::<$Db>::new("INSERT INTO checkpoints (size, root, note, signed_at) ");
                    q.push_values(&batch.checkpoints, |mut b, c| {
                        b.push_bind(c.size as i64)
                            .push_bind(c.root.0.as_slice())
                            .push_bind(c.note.as_str())
                            .push_bind(c.signed_at_ns);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                if let Some(h) = &batch.head {
                    let mut q = QueryBuilder::<$Db>::new(
                        "INSERT INTO head (id, size, record_hash, frontier, checkpoint_size) ",
                    );
                    q.push_values([h], |mut b, h| {
                        b.push_bind(0_i64)
                            .push_bind(h.size as i64)
                            .push_bind(h.record_hash.0.as_slice())
                            .push_bind(h.frontier.as_slice())
                            .push_bind(h.checkpoint_size as i64);
                    });
                    q.push(
                        " ON CONFLICT (id) DO UPDATE SET size = excluded.size, record_hash = excluded.record_hash, \
                         frontier = excluded.frontier, checkpoint_size = excluded.checkpoint_size",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                if !$announce.is_empty() {
                    QueryBuilder::<$Db>::new($announce).build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn records(&self, from: u64, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
                self.records_filtered(from, limit, None, None).await
            }

            pub async fn records_filtered(
                &self,
                from: u64,
                limit: u32,
                ty: Option<&str>,
                subject: Option<&str>,
            ) -> Result<Vec<StoredRecord>, StoreError> {
                let mut q =
                    QueryBuilder::<$Db>::new(format!("SELECT {RECORD_COLUMNS} FROM records WHERE seq >= "));
                q.push_bind(from as i64);
                if let Some(t) = ty {
                    q.push(" AND type = ").push_bind(t);
                }
                if let Some(s) = subject {
                    // A GPU's events may sit under older producers' forms of its PCI id.
                    let forms = assay_events::pci::subject_forms(s);
                    q.push(" AND subject IN (");
                    let mut list = q.separated(", ");
                    for form in forms {
                        list.push_bind(form);
                    }
                    q.push(")");
                }
                q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(record_from_row).collect()
            }

            pub async fn leaves(&self, from: u64, limit: u32) -> Result<Vec<LeafFields>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT seq, received_at, digest, signatures, prev_hash FROM records WHERE seq >= ",
                );
                q.push_bind(from as i64).push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let seq = r.try_get::<i64, _>("seq")? as u64;
                        let digest: Vec<u8> = r.try_get("digest")?;
                        let signatures: Vec<u8> = r.try_get("signatures")?;
                        let prev: Vec<u8> = r.try_get("prev_hash")?;
                        Ok(LeafFields {
                            seq,
                            received_at_ns: r.try_get("received_at")?,
                            digest: hash_from(&digest, &format!("seq {seq}: digest"))?,
                            signatures_digest: Hash32::blake3(&signatures),
                            prev_hash: hash_from(&prev, &format!("seq {seq}: prev_hash"))?,
                        })
                    })
                    .collect()
            }

            pub async fn record_by_digest(&self, digest: &Hash32) -> Result<Option<StoredRecord>, StoreError> {
                let mut q =
                    QueryBuilder::<$Db>::new(format!("SELECT {RECORD_COLUMNS} FROM records WHERE digest = "));
                q.push_bind(digest.0.as_slice());
                let row = q.build().fetch_optional(&self.pool).await?;
                row.as_ref().map(record_from_row).transpose()
            }

            pub async fn find_ids(&self, ids: &[(&str, &str)]) -> Result<Vec<StoredId>, StoreError> {
                let mut found = Vec::new();
                for chunk in ids.chunks(LOOKUP_PAIRS_MAX) {
                    // A VALUES list joined in front: both engines search the unique index per
                    // pair (a row-value IN over VALUES makes SQLite scan the table).
                    let mut q = QueryBuilder::<$Db>::new(
                        "SELECT r.source, r.event_id, r.seq, r.digest, r.signatures FROM (VALUES ",
                    );
                    let mut sep = q.separated(", ");
                    for (source, id) in chunk {
                        sep.push("(CAST(").push_bind_unseparated(*source).push_unseparated(" AS TEXT), CAST(");
                        sep.push_bind_unseparated(*id).push_unseparated(" AS TEXT))");
                    }
                    q.push(concat!(") AS v ", $join, " records r ON r.source = v.column1 AND r.event_id = v.column2"));
                    for row in q.build().fetch_all(&self.pool).await? {
                        let digest: Vec<u8> = row.try_get("digest")?;
                        let signatures: Vec<u8> = row.try_get("signatures")?;
                        found.push(StoredId {
                            source: row.try_get("source")?,
                            event_id: row.try_get("event_id")?,
                            seq: row.try_get::<i64, _>("seq")? as u64,
                            digest: hash_from(&digest, "digest")?,
                            signatures_digest: Hash32::blake3(&signatures),
                        });
                    }
                }
                Ok(found)
            }

            pub async fn nodes(&self, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash32)>, StoreError> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(LOOKUP_PAIRS_MAX) {
                    let mut q = QueryBuilder::<$Db>::new("SELECT m.level, m.idx, m.hash FROM (VALUES ");
                    let mut sep = q.separated(", ");
                    for id in chunk {
                        sep.push("(CAST(").push_bind_unseparated(i64::from(id.level)).push_unseparated(" AS BIGINT), CAST(");
                        sep.push_bind_unseparated(id.index as i64).push_unseparated(" AS BIGINT))");
                    }
                    q.push(concat!(") AS v ", $join, " merkle_nodes m ON m.level = v.column1 AND m.idx = v.column2"));
                    for row in q.build().fetch_all(&self.pool).await? {
                        let level: i64 = row.try_get("level")?;
                        let index: i64 = row.try_get("idx")?;
                        let hash: Vec<u8> = row.try_get("hash")?;
                        let level = u8::try_from(level)
                            .map_err(|_| StoreError::Corrupt(format!("node level {level}")))?;
                        out.push((NodeId { level, index: index as u64 }, hash_from(&hash, "node hash")?));
                    }
                }
                Ok(out)
            }

            pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT size, root, note, signed_at FROM checkpoints WHERE size = ",
                );
                q.push_bind(size as i64);
                let row = q.build().fetch_optional(&self.pool).await?;
                row.as_ref().map(checkpoint_from_row).transpose()
            }

            pub async fn checkpoints(&self, from: u64, limit: u32) -> Result<Vec<CheckpointRow>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new(
                    "SELECT size, root, note, signed_at FROM checkpoints WHERE size >= ",
                );
                q.push_bind(from as i64).push(" ORDER BY size LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(checkpoint_from_row).collect()
            }

            pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
                let mut q = QueryBuilder::<$Db>::new("SELECT value FROM settings WHERE name = ");
                q.push_bind(name);
                let row = q.build().fetch_optional(&self.pool).await?;
                Ok(row.map(|r| r.try_get("value")).transpose()?)
            }

            pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
                let mut q = QueryBuilder::<$Db>::new("INSERT INTO settings (name, value) ");
                q.push_values([(name, value)], |mut b, (n, v)| {
                    b.push_bind(n).push_bind(v);
                });
                q.push(" ON CONFLICT (name) DO UPDATE SET value = excluded.value");
                q.build().execute(&self.pool).await?;
                Ok(())
            }

            pub async fn close(&self) {
                self.pool.close().await;
            }
        }

        fn hash_from(bytes: &[u8], what: &str) -> Result<Hash32, StoreError> {
            Hash32::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
        }

        fn head_from_row(r: &$Row) -> Result<HeadRow, StoreError> {
            let hash: Vec<u8> = r.try_get("record_hash")?;
            Ok(HeadRow {
                size: r.try_get::<i64, _>("size")? as u64,
                record_hash: hash_from(&hash, "head record hash")?,
                frontier: r.try_get("frontier")?,
                checkpoint_size: r.try_get::<i64, _>("checkpoint_size")? as u64,
            })
        }

        fn checkpoint_from_row(r: &$Row) -> Result<CheckpointRow, StoreError> {
            let root: Vec<u8> = r.try_get("root")?;
            Ok(CheckpointRow {
                size: r.try_get::<i64, _>("size")? as u64,
                root: hash_from(&root, "checkpoint root")?,
                note: r.try_get("note")?,
                signed_at_ns: r.try_get("signed_at")?,
            })
        }

        fn record_from_row(r: &$Row) -> Result<StoredRecord, StoreError> {
            let digest: Vec<u8> = r.try_get("digest")?;
            let prev: Vec<u8> = r.try_get("prev_hash")?;
            let hash: Vec<u8> = r.try_get("record_hash")?;
            let seq = r.try_get::<i64, _>("seq")? as u64;
            let at = |what: &str| format!("seq {seq}: {what}");
            Ok(StoredRecord {
                seq,
                digest: hash_from(&digest, &at("digest"))?,
                source: r.try_get("source")?,
                event_id: r.try_get("event_id")?,
                ty: r.try_get("type")?,
                subject: r.try_get("subject")?,
                time: r.try_get("time")?,
                received_at_ns: r.try_get("received_at")?,
                payload: r.try_get("payload")?,
                signatures: r.try_get("signatures")?,
                prev_hash: hash_from(&prev, &at("prev_hash"))?,
                record_hash: hash_from(&hash, &at("record_hash"))?,
            })
        }
    };
}

pub(crate) use sql_backend;
