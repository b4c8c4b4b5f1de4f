//! Errors of the ledger's operations: one enum per operation.

use assay_events::cloudevent::CloudEventError;
use assay_events::dsse::EnvelopeError;
use assay_events::roles::Role;
use assay_events::source::SOURCE_KEY_PREFIX;
use assay_projections::authorize::{AuthError, GENESIS_TYPE};
use assay_projections::keys::KeyProblem;

use crate::schema::SchemaError;
use crate::store::StoreError;

/// Why one envelope was refused. Nothing of the request it came in is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    #[error("payload: {0}")]
    Event(#[from] CloudEventError),
    #[error("schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("payload is {bytes} bytes; the limit is {max} bytes")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("source {event_source:?} must be assay:key/<name> of a key that signed the envelope")]
    SourceNotSigner { event_source: String },
    #[error("unknown key {0}: it was never registered")]
    UnknownKey(String),
    #[error("key {keyid} was revoked at seq {seq}")]
    RevokedKey { keyid: String, seq: u64 },
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    #[error("key {keyid} may not emit {ty}: it needs one of the roles {needed}")]
    RoleNotAllowed { keyid: String, ty: String, needed: String },
    #[error("{0} is written only by the ledger itself")]
    LedgerOnly(String),
    #[error("(source, id) = ({event_source}, {id}) already names seq {seq} with other bytes")]
    Conflict { event_source: String, id: String, seq: u64 },
    #[error("subject must be {expected:?}, got {got:?}")]
    Subject { expected: String, got: Option<String> },
    #[error("{0}")]
    KeyState(String),
    #[error("the ledger is not initialized")]
    NotInitialized,
}

impl Rejection {
    /// The class of the problem, for exit codes and HTTP statuses.
    pub fn class(&self) -> RejectionClass {
        match self {
            Rejection::Conflict { .. } => RejectionClass::Conflict,
            Rejection::PayloadTooLarge { .. } => RejectionClass::TooLarge,
            Rejection::UnknownKey(_) | Rejection::RevokedKey { .. } | Rejection::BadSignature(_) => {
                RejectionClass::Unauthorized
            }
            Rejection::RoleNotAllowed { .. }
            | Rejection::LedgerOnly(_)
            | Rejection::SourceNotSigner { .. } => RejectionClass::Forbidden,
            Rejection::Schema(_) | Rejection::Subject { .. } | Rejection::KeyState(_) => {
                RejectionClass::Unprocessable
            }
            _ => RejectionClass::BadRequest,
        }
    }

    /// A short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Envelope(_) => "bad_envelope",
            Rejection::Event(_) => "bad_event",
            Rejection::Schema(_) => "schema_violation",
            Rejection::PayloadTooLarge { .. } => "payload_too_large",
            Rejection::SourceNotSigner { .. } => "source_not_signer",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::RevokedKey { .. } => "revoked_key",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::RoleNotAllowed { .. } => "role_not_allowed",
            Rejection::LedgerOnly(_) => "ledger_only",
            Rejection::Conflict { .. } => "conflict",
            Rejection::Subject { .. } => "bad_subject",
            Rejection::KeyState(_) => "key_state",
            Rejection::NotInitialized => "not_initialized",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionClass {
    BadRequest,
    Unauthorized,
    Forbidden,
    Conflict,
    TooLarge,
    Unprocessable,
}

/// Ingest's answer for each reason the authorizer gives (reasons only stored records can
/// have, such as a source that names no key, never reach here: `prepare` binds the source to
/// its signature first).
impl From<AuthError> for Rejection {
    fn from(e: AuthError) -> Rejection {
        match e {
            AuthError::Key(KeyProblem::Revoked { keyid, seq }) => Rejection::RevokedKey { keyid, seq },
            AuthError::Key(KeyProblem::Unknown(keyid)) => Rejection::UnknownKey(keyid),
            AuthError::BadSignature(keyid) => Rejection::BadSignature(keyid),
            AuthError::RoleNotAllowed { keyid, ty, needed } => {
                let needed: Vec<&str> = needed.iter().map(Role::as_str).collect();
                Rejection::RoleNotAllowed { keyid, ty, needed: needed.join("|") }
            }
            AuthError::UnknownType(ty) => Rejection::Schema(SchemaError::UnknownType(ty)),
            AuthError::LedgerOnly(ty) | AuthError::NotLedgerKey(ty) => Rejection::LedgerOnly(ty),
            // A producer's genesis past record 0 is a ledger-only type like the others.
            AuthError::SecondGenesis => Rejection::LedgerOnly(GENESIS_TYPE.to_owned()),
            AuthError::NotGenesis | AuthError::NoGenesis => Rejection::NotInitialized,
            AuthError::SourceNamesNoKey(event_source) => Rejection::SourceNotSigner { event_source },
            AuthError::NoSourceSignature(name) => {
                Rejection::SourceNotSigner { event_source: format!("{SOURCE_KEY_PREFIX}{name}") }
            }
            e @ (AuthError::GenesisKey(_)
            | AuthError::GenesisNotTrusted { .. }
            | AuthError::GenesisNotSelfSigned
            | AuthError::GenesisNotThisLedger
            | AuthError::GenesisOrigin(_)
            | AuthError::GenesisCosigned
            | AuthError::KeyChangeVkey(_)
            | AuthError::LedgerKeyChange(_)
            | AuthError::RevocationFinal { .. }
            | AuthError::NotRegistered(_)
            | AuthError::AlreadyRevoked(_)) => Rejection::KeyState(e.to_string()),
        }
    }
}

/// Errors of [`crate::ledger::Ledger::append`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error("envelope {index}: {reason}")]
    Rejected { index: usize, reason: Rejection },
    #[error("a request holds {got} envelopes; the limit is {max}")]
    TooManyEnvelopes { got: usize, max: usize },
    #[error("the ledger could not commit: {0}")]
    Storage(String),
    #[error("the ledger is shutting down")]
    ShuttingDown,
}

/// Errors of opening or initializing a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger is not initialized (run `assay init`)")]
    NotInitialized,
    #[error("the ledger is already initialized with {0} records; refusing to re-initialize")]
    AlreadyInitialized(u64),
    #[error("the ledger key {given} is not this ledger's key {expected}")]
    WrongLedgerKey { given: String, expected: String },
    #[error("stored ledger is inconsistent: {0}")]
    Inconsistent(String),
    /// The store holds what no checkpoint signed by this ledger covers: records past the last
    /// signed checkpoint, a head that no signed checkpoint matches, or rows beyond the head.
    /// This ledger's sequencer did not commit them (every batch it commits ends with a signed
    /// checkpoint, in the same transaction) and will not sign over them.
    #[error(
        "{found}; this ledger did not commit that and will not extend the log over it: run `assay verify`, \
         then `assay recover --truncate-to {truncate_to}` (it keeps what it removes in a file)"
    )]
    Unsigned { found: String, truncate_to: u64 },
    /// The sequencer refused or could not commit the genesis record (the reason, not a
    /// source: the message already holds it).
    #[error("genesis rejected: {0}")]
    Genesis(AppendError),
}

/// Why a sequencer batch failed as a whole: nothing of it is acknowledged, and every request
/// in it gets [`AppendError::Storage`] with this text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Catching up with the store (or rebuilding from it) failed.
    #[error(transparent)]
    Fold(#[from] OpenError),
}
