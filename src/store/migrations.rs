//! The schema migrations, embedded in the binary: one list per database (`schemas/sql/*`).
//!
//! Built through sqlx's public `MigrationSource` rather than its `migrate!` macro, so that the
//! build compiles no proc macro that links sqlx's drivers a second time (for the host). A
//! migration is named as `migrate!` names it (the version and description from the file name
//! `NNNN_words.sql`, underscores read as spaces) and its checksum is SHA-384 of the file's
//! bytes, as both compute it: ledgers made by earlier builds open unchanged (the unit test
//! below pins the rows earlier builds wrote).

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// (version, description, SQL) of each migration of one database, in order.
type Embedded = &'static [(i64, &'static str, &'static str)];

pub(crate) const SQLITE: Embedded = &[
    (1, "ledger", include_str!("../../schemas/sql/sqlite/0001_ledger.sql")),
    (2, "read tokens", include_str!("../../schemas/sql/sqlite/0002_read_tokens.sql")),
    (3, "blobs", include_str!("../../schemas/sql/sqlite/0003_blobs.sql")),
    (4, "cosignatures", include_str!("../../schemas/sql/sqlite/0004_cosignatures.sql")),
];

pub(crate) const POSTGRES: Embedded = &[
    (1, "ledger", include_str!("../../schemas/sql/postgres/0001_ledger.sql")),
    (2, "read tokens", include_str!("../../schemas/sql/postgres/0002_read_tokens.sql")),
    (3, "blobs", include_str!("../../schemas/sql/postgres/0003_blobs.sql")),
    (4, "cosignatures", include_str!("../../schemas/sql/postgres/0004_cosignatures.sql")),
];

pub(crate) const WITNESS: Embedded =
    &[(1, "witness", include_str!("../../schemas/sql/witness/0001_witness.sql"))];

#[derive(Debug)]
struct Source(Embedded);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { Ok(migrations(self.0)) })
    }
}

fn migrations(list: Embedded) -> Vec<Migration> {
    list.iter()
        .map(|&(version, description, sql)| {
            // As sqlx reads a folder: a file may opt out of the transaction on its first line.
            let no_tx = sql.starts_with("-- no-transaction");
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                no_tx,
            )
        })
        .collect()
}

/// The migrator of one database's list.
pub(crate) async fn migrator(list: Embedded) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(list)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `_sqlx_migrations` as builds with sqlx's `migrate!` wrote it (version, description,
    /// checksum): an embedded list that differs in any of them would refuse every existing
    /// ledger ("migration was previously applied but has been modified").
    const RECORDED: &[(Embedded, Embedded)] = &[
        (
            SQLITE,
            &[
                (
                    1,
                    "ledger",
                    "a5a91130c8d99a4691bec69a47ff14f4ab4e3ba9291875f3ad329f9a5d9479ed8c0cc2d75b89c7084b63bf73a662cf12",
                ),
                (
                    2,
                    "read tokens",
                    "8d68eb39618aa1e7c1392a6ba3107b6b3a2aebf1ed32211d50328cd9e659ae08d7a7cb73dae128329ebe99a93af04c65",
                ),
                (
                    3,
                    "blobs",
                    "0a056ac04e8bb334b3a935028c08c7acc6bbbc5cef0017dfc848ea7d840a7c537aae0feb3ccec4bcaa92cd13e98bd2a0",
                ),
                (
                    4,
                    "cosignatures",
                    "aac67c310eb285f21e9eeec23ca225949a0324d685609ee6898311ca6dc903bb847c625f1a3ef773efbcb8b1313bb6fe",
                ),
            ],
        ),
        (
            POSTGRES,
            &[
                (
                    1,
                    "ledger",
                    "9d54e2138f53318dba2ab20b30a2bebbee9849bd4e7e3908ad328a1aee6ee49cd539eee3aba52b5ae9fab514be78a65a",
                ),
                (
                    2,
                    "read tokens",
                    "7b06f628fcedc93605f9a66b0f00c3d8bb95117924cfe3b2818f4d9305df341d8a3bc415ddf8898ff35e32da5f18f440",
                ),
                (
                    3,
                    "blobs",
                    "399b689eec196fa92f7349e3ed18766963b4e3889d46b49320cf34dd71dbfdcdd7a720cacdb38b38172579d347436f71",
                ),
                (
                    4,
                    "cosignatures",
                    "e3a7ae8c94d9bb36b213434d6004be992642f5a289da6a218fc582324c4cf94a9c961c335b801c0fe51c625b53ab92c6",
                ),
            ],
        ),
    ];

    #[test]
    fn the_embedded_migrations_are_the_ones_existing_ledgers_recorded() {
        for (list, recorded) in RECORDED {
            let ours: Vec<(i64, String, String)> = migrations(list)
                .iter()
                .map(|m| (m.version, m.description.to_string(), hex::encode(&m.checksum)))
                .collect();
            let theirs: Vec<(i64, String, String)> =
                recorded.iter().map(|(v, d, c)| (*v, (*d).to_owned(), (*c).to_owned())).collect();
            assert_eq!(ours, theirs);
        }
        assert!(migrations(WITNESS).iter().all(|m| !m.no_tx && m.migration_type == MigrationType::Simple));
    }

    /// Every file of `schemas/sql/<db>/` is in its list, so a new migration cannot be left out.
    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES), ("witness", WITNESS)] {
            let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/sql").join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            let named: Vec<String> =
                list.iter().map(|(v, d, _)| format!("{v:04}_{}.sql", d.replace(' ', "_"))).collect();
            assert_eq!(files, named, "schemas/sql/{dir}");
            for ((_, _, sql), file) in list.iter().zip(&files) {
                assert_eq!(*sql, std::fs::read_to_string(folder.join(file)).unwrap(), "{dir}/{file}");
            }
        }
    }
}
