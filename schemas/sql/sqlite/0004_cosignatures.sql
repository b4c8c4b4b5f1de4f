-- Witnesses' cosignatures (C2SP tlog-cosignature) of this ledger's checkpoints, kept by
-- `assay serve --witness` after checking each under the witness key it was given. Attestations
-- about the log, not the log: a checkpoint is served with the lines stored for its size that
-- still verify under a configured witness key over its body.

CREATE TABLE cosignatures (
    size      INTEGER NOT NULL, -- the tree size of the cosigned checkpoint
    witness   TEXT    NOT NULL, -- the witness key's name+hexid
    line      TEXT    NOT NULL, -- the signature line as a note carries it ("— name base64", no newline)
    cosigned_at INTEGER NOT NULL, -- the cosignature's own time, seconds since the epoch
    PRIMARY KEY (size, witness)
);

CREATE INDEX cosignatures_by_witness ON cosignatures (witness, size);
