//! How a producer authorizes an upload: `Assay-Signature: <keyid> <base64 Ed25519 signature>`
//! over `assay blob v1\n<name>\n`. The signature names one blob, so a copy of the header
//! authorizes nothing but storing those exact bytes again; the server checks the key is
//! registered, live, and holds a role that may record evidence (`evidence.captured`). A request
//! to record `evidence.synced` is signed the same way over `assay evidence sync v1\n<event
//! digest>\n`, and a request to collect unreferenced blobs (`POST /v1/blobs/gc`, an admin's)
//! over `assay blob gc v1\n` followed by the request body, which names its own time.

use assay_events::keys::SignerKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::BlobName;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "assay-signature";

/// The bytes signed to authorize storing the blob `name`.
pub fn message(name: &BlobName) -> Vec<u8> {
    format!("assay blob v1\n{name}\n").into_bytes()
}

/// The bytes signed to ask the ledger to record that the files of the `evidence.captured`
/// with event digest `evidence` (hex) are stored (`POST /v1/evidence/{digest}/sync`).
pub fn sync_message(evidence: &str) -> Vec<u8> {
    format!("assay evidence sync v1\n{evidence}\n").into_bytes()
}

/// The bytes signed to ask for a collection whose JSON request body is `body`.
pub fn gc_message(body: &[u8]) -> Vec<u8> {
    let mut message = b"assay blob gc v1\n".to_vec();
    message.extend_from_slice(body);
    message
}

/// The header value `key` sends with the collection request `body`.
pub fn gc_header_value(key: &SignerKey, body: &[u8]) -> String {
    signed_value(key, &gc_message(body))
}

/// The header value `key` sends to upload the blob `name`.
pub fn header_value(key: &SignerKey, name: &BlobName) -> String {
    signed_value(key, &message(name))
}

/// The header value `key` sends to ask for the sync of `evidence` (hex).
pub fn sync_header_value(key: &SignerKey, evidence: &str) -> String {
    signed_value(key, &sync_message(evidence))
}

fn signed_value(key: &SignerKey, message: &[u8]) -> String {
    format!("{} {}", key.keyid(), STANDARD.encode(key.sign(message)))
}

/// The keyid and signature of a header value; `None` when it is not `<keyid> <base64 of 64
/// bytes>`.
pub fn parse_header(value: &str) -> Option<(&str, [u8; 64])> {
    let (keyid, sig) = value.trim().split_once(' ')?;
    let bytes = STANDARD.decode(sig.trim()).ok()?;
    Some((keyid, bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_verifies_only_for_its_blob() {
        let key = SignerKey::from_seed("w1", [7; 32]).unwrap();
        let name = BlobName::of(b"x");
        let value = header_value(&key, &name);
        let (keyid, sig) = parse_header(&value).expect("parses");
        assert_eq!(keyid, key.keyid());
        assert!(key.verifier().verify(&message(&name), &sig));
        assert!(!key.verifier().verify(&message(&BlobName::of(b"y")), &sig));
        assert!(parse_header("w1+00000000").is_none());
        assert!(parse_header("w1+00000000 AAAA").is_none());
    }
}
