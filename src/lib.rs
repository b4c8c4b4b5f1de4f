//! Assay: an auditable, signed, Merkle-logged event ledger for GPU research work.
//!
//! - [`store`]: SQL storage (only it knows SQL).
//! - [`ledger`]: the sequencer and the append path.
//! - [`verify`]: full verification of a stored ledger.
//! - [`proof`]: inclusion and consistency proofs from the store.
//! - [`schema`]: event `data` schemas.

pub mod clock;
pub mod copy;
pub mod demo;
pub mod keyfile;
pub mod ledger;
pub mod proof;
pub mod replay;
pub mod schema;
pub mod store;
pub mod verify;
