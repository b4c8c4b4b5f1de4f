-- Evidence blobs kept in the database (the PostgreSQL backend of the evidence store; beside a
-- SQLite ledger they live in the folder `<ledger>.blobs/` and these tables stay empty). An
-- upload writes its chunks under a fresh upload id and then its row in `blobs`, all in one
-- transaction: a blob is visible only whole, once committed, and only under its true digest.

CREATE TABLE blob_chunks (
    upload TEXT    NOT NULL,        -- a fresh id per upload
    idx    BIGINT NOT NULL,        -- 0, 1, …; every chunk but the last holds exactly 1 MiB
    data   BYTEA    NOT NULL,
    PRIMARY KEY (upload, idx)
);

CREATE TABLE blobs (
    digest     TEXT    PRIMARY KEY, -- lower-case hex blake3 of the bytes
    upload     TEXT    NOT NULL UNIQUE,
    bytes      BIGINT NOT NULL,
    created_at BIGINT NOT NULL     -- ns since epoch
);
