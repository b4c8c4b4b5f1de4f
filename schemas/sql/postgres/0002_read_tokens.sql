-- Bearer tokens for reads over HTTP beyond loopback (`assay token create|revoke`). Derived
-- operator configuration, not ledger state: only a SHA-256 of each token is kept.

CREATE TABLE read_tokens (
    name       TEXT    PRIMARY KEY,
    hash       BYTEA    NOT NULL UNIQUE, -- SHA-256 of the token text
    created_at BIGINT NOT NULL,        -- ns since epoch
    revoked_at BIGINT                  -- ns since epoch; NULL while the token is valid
);
