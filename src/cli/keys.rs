//! Key files named on the command line: errors say which option named them, and a private
//! key given where a public one belongs (or the other way round) is said to be that.

use std::path::Path;

use anyhow::Context;
use assay::keyfile;
use assay_events::keys::{SignerKey, VerifierKey};

/// The private key `option` names (e.g. `--key`).
pub fn signer(option: &str, path: &Path) -> anyhow::Result<SignerKey> {
    keyfile::read_signer(path).with_context(|| option.to_owned())
}

/// The public key `option` names (e.g. `--vkey`).
pub fn verifier(option: &str, path: &Path) -> anyhow::Result<VerifierKey> {
    keyfile::read_verifier(path).with_context(|| option.to_owned())
}
