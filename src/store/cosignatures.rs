//! Witnesses' cosignatures of this ledger's checkpoints (`cosignatures`, migration 0004): the
//! log side of C2SP tlog-witness keeps each one it checked, by tree size and witness key. The
//! SQL is shared by both dialects (`cosignatures_backend!`, stamped out in each backend).
//!
//! Readers (the checkpoint endpoints, `verify --witness-policy`, exports and bundles) take the
//! lines for a size and check them again under the witness keys they trust: a row is a claim,
//! not a proof. [`Store::note_with_cosignatures`] is the one way a reader puts them in a note.

use assay_events::note;

use super::{Store, StoreError};

/// One stored cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureRow {
    /// The tree size of the checkpoint it signs.
    pub size: u64,
    /// The witness key's `name+hexid`.
    pub witness: String,
    /// The signature line as a note carries it (`— name base64`), without the newline.
    pub line: String,
    /// The cosignature's own timestamp, seconds since the epoch.
    pub cosigned_at: u64,
}

/// Witness keys one query may name (the largest `--witness` list a server takes).
pub const WITNESSES_MAX: usize = 64;

/// Implements the cosignature methods for `$Store { pool }` over database `$Db`.
macro_rules! cosignatures_backend {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub async fn put_cosignature(
                &self,
                row: &super::cosignatures::CosignatureRow,
            ) -> Result<(), StoreError> {
                let mut q = sqlx::QueryBuilder::<$Db>::new(
                    "INSERT INTO cosignatures (size, witness, line, cosigned_at) ",
                );
                q.push_values([row], |mut b, r| {
                    b.push_bind(r.size as i64)
                        .push_bind(r.witness.as_str())
                        .push_bind(r.line.as_str())
                        .push_bind(r.cosigned_at as i64);
                });
                // A later cosignature of the same checkpoint by the same witness replaces it.
                q.push(
                    " ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line, \
                     cosigned_at = excluded.cosigned_at",
                );
                q.build().execute(&self.pool).await?;
                Ok(())
            }

            pub async fn cosignatures_at(
                &self,
                size: u64,
            ) -> Result<Vec<super::cosignatures::CosignatureRow>, StoreError> {
                let mut q = sqlx::QueryBuilder::<$Db>::new(
                    "SELECT size, witness, line, cosigned_at FROM cosignatures WHERE size = ",
                );
                q.push_bind(size as i64).push(" ORDER BY witness LIMIT ");
                q.push_bind(super::cosignatures::WITNESSES_MAX as i64 * 4);
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(cosignature_from_row).collect()
            }

            pub async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
                use sqlx::Row as _;
                let mut q = sqlx::QueryBuilder::<$Db>::new(
                    "SELECT MAX(size) AS size FROM cosignatures WHERE witness = ",
                );
                q.push_bind(witness);
                let row = q.build().fetch_one(&self.pool).await?;
                Ok(row.try_get::<Option<i64>, _>("size")?.map(|s| s as u64))
            }

            pub async fn sizes_cosigned_by(
                &self,
                witnesses: &[String],
                quorum: usize,
                limit: u32,
            ) -> Result<Vec<u64>, StoreError> {
                use sqlx::Row as _;
                let mut q =
                    sqlx::QueryBuilder::<$Db>::new("SELECT size FROM cosignatures WHERE witness IN (");
                let mut list = q.separated(", ");
                for w in witnesses {
                    list.push_bind(w.as_str());
                }
                q.push(") GROUP BY size HAVING COUNT(*) >= ");
                q.push_bind(quorum as i64).push(" ORDER BY size DESC LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(|r| Ok(r.try_get::<i64, _>("size")? as u64)).collect()
            }
        }

        fn cosignature_from_row(
            r: &<$Db as sqlx::Database>::Row,
        ) -> Result<super::cosignatures::CosignatureRow, StoreError> {
            use sqlx::Row as _;
            Ok(super::cosignatures::CosignatureRow {
                size: r.try_get::<i64, _>("size")? as u64,
                witness: r.try_get("witness")?,
                line: r.try_get("line")?,
                cosigned_at: r.try_get::<i64, _>("cosigned_at")? as u64,
            })
        }
    };
}

pub(crate) use cosignatures_backend;

impl Store {
    /// Keeps one witness's cosignature of the checkpoint at `row.size` (replacing an older one
    /// by the same witness).
    pub async fn put_cosignature(&self, row: &CosignatureRow) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.put_cosignature(row).await,
            Store::Postgres(s) => s.put_cosignature(row).await,
        }
    }

    /// The cosignatures stored for the checkpoint at `size`, by witness.
    pub async fn cosignatures_at(&self, size: u64) -> Result<Vec<CosignatureRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.cosignatures_at(size).await,
            Store::Postgres(s) => s.cosignatures_at(size).await,
        }
    }

    /// `note` (the ledger's checkpoint at `size`) with the signature lines stored for that size
    /// appended, in witness order: each line that reads as a note signature line, up to the
    /// note's limit of signature lines. Nothing is verified here; a reader checks the lines under
    /// the witness keys it trusts (they verify over the note's body). A note that does not parse
    /// is returned as it is.
    pub async fn note_with_cosignatures(&self, size: u64, note: &str) -> Result<String, StoreError> {
        let Ok(parsed) = note::parse(note) else { return Ok(note.to_owned()) };
        let mut lines = parsed.signatures.len();
        let mut out = note.to_owned();
        for row in self.cosignatures_at(size).await? {
            if lines == note::MAX_SIGNATURES {
                break;
            }
            let with = format!("{out}{}\n", row.line);
            if note::parse(&with).is_ok_and(|n| n.signatures.len() == lines + 1) {
                out = with;
                lines += 1;
            }
        }
        Ok(out)
    }

    /// The largest size `witness` (`name+hexid`) cosigned, as stored.
    pub async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.cosigned_size(witness).await,
            Store::Postgres(s) => s.cosigned_size(witness).await,
        }
    }

    /// The sizes, largest first (at most `limit`), with stored cosignatures from at least
    /// `quorum` of `witnesses` (at most [`WITNESSES_MAX`]; none gives none).
    pub async fn sizes_cosigned_by(
        &self,
        witnesses: &[String],
        quorum: usize,
        limit: u32,
    ) -> Result<Vec<u64>, StoreError> {
        if witnesses.is_empty() || witnesses.len() > WITNESSES_MAX {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(s) => s.sizes_cosigned_by(witnesses, quorum, limit).await,
            Store::Postgres(s) => s.sizes_cosigned_by(witnesses, quorum, limit).await,
        }
    }
}
