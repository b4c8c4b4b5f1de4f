-- The state of a C2SP witness (`assay witness serve --state FILE`): per log origin, the latest
-- checkpoint it cosigned, and the refused submissions that may prove a log misbehaved.

CREATE TABLE witnessed (
    origin     TEXT    PRIMARY KEY,
    size       INTEGER NOT NULL,
    root       BLOB    NOT NULL, -- 32 bytes
    note       TEXT    NOT NULL, -- the checkpoint note as the log submitted it
    updated_at INTEGER NOT NULL  -- ns since epoch
);

-- A submission under a valid log signature that the witness refused because it contradicts
-- what it cosigned: the same size with another root (`fork`), or a consistency proof that does
-- not lead from the recorded checkpoint to the submitted one (`inconsistent`).
CREATE TABLE refusals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    origin      TEXT    NOT NULL,
    received_at INTEGER NOT NULL, -- ns since epoch
    reason      TEXT    NOT NULL, -- fork | inconsistent
    old_size    INTEGER NOT NULL,
    proof       TEXT    NOT NULL, -- the consistency proof lines as submitted, each ending in a newline
    submitted   TEXT    NOT NULL, -- the submitted checkpoint note
    recorded    TEXT    NOT NULL, -- the note of the checkpoint the witness had cosigned
    UNIQUE (origin, submitted, old_size, proof)
);
