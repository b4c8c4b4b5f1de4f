//! Key files named on the command line: errors say which option named them, and a private
//! key given where a public one belongs (or the other way round) is said to be that.

use std::path::Path;

use anyhow::Context;
use assay::keyfile;
use assay_events::keys::{SignerKey, VerifierKey};
use assay_events::witness_policy::{POLICY_BYTES_MAX, WitnessPolicy};

/// The private key `option` names (e.g. `--key`).
pub fn signer(option: &str, path: &Path) -> anyhow::Result<SignerKey> {
    keyfile::read_signer(path).with_context(|| option.to_owned())
}

/// The public key `option` names (e.g. `--vkey`).
pub fn verifier(option: &str, path: &Path) -> anyhow::Result<VerifierKey> {
    keyfile::read_verifier(path).with_context(|| option.to_owned())
}

/// The witness policy `--witness-policy` names (at most `POLICY_BYTES_MAX` bytes read).
pub fn witness_policy(path: &Path) -> anyhow::Result<WitnessPolicy> {
    use std::io::Read as _;
    let what = || format!("--witness-policy {}", path.display());
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(POLICY_BYTES_MAX as u64 + 1).read_to_string(&mut text))
        .with_context(what)?;
    WitnessPolicy::parse(&text).with_context(what)
}
