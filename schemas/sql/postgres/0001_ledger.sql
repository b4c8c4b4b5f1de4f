-- The ledger's ground state: records, the Merkle tree's complete subtrees, signed checkpoints
-- and the head. Integers are i64 on disk; seq and sizes are u64 in code (never above i64::MAX).

CREATE TABLE records (
    seq          BIGINT PRIMARY KEY,   -- u64, gap-free from 0
    digest       BYTEA    NOT NULL UNIQUE, -- blake3(payload)
    source       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    subject      TEXT,
    time         TEXT    NOT NULL,      -- producer clock, RFC 3339 as sent
    received_at  BIGINT NOT NULL,      -- ns since epoch, sequencer clock
    payload      BYTEA    NOT NULL,      -- CloudEvent bytes, verbatim
    signatures   BYTEA    NOT NULL,      -- canonical signatures JSON
    prev_hash    BYTEA    NOT NULL,
    record_hash  BYTEA    NOT NULL,
    UNIQUE (source, event_id)
);
CREATE INDEX records_type_seq ON records (type, seq);
CREATE INDEX records_subject_seq ON records (subject, seq);

-- Complete subtrees of the RFC 6962 tree: (level, idx) covers leaves [idx << level, (idx + 1) << level).
CREATE TABLE merkle_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- One signed C2SP checkpoint per committed batch.
CREATE TABLE checkpoints (
    size      BIGINT PRIMARY KEY,
    root      BYTEA    NOT NULL,
    note      TEXT    NOT NULL,
    signed_at BIGINT NOT NULL          -- ns since epoch
);

-- Exactly one row once the ledger is initialized.
CREATE TABLE head (
    id              BIGINT PRIMARY KEY CHECK (id = 0),
    size            BIGINT NOT NULL,
    record_hash     BYTEA    NOT NULL,   -- hash of record size-1
    frontier        BYTEA    NOT NULL,   -- compact range [0, size), 32 bytes per set bit of size
    checkpoint_size BIGINT NOT NULL
);

-- Operator settings (not ledger state): where the ledger's signing key lives.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
