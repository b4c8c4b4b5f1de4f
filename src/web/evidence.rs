//! Evidence files as the run and event pages show them: path, size and blake3 per file, the
//! digest linked to its blob (`GET /v1/blobs/{blake3}`), and whether the evidence store holds
//! it. Presence is read through the store a name at a time (its size, as `HEAD` does), for at
//! most [`CHECKED_MAX`] distinct files a page; files past that say "not checked".

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::Value;

use super::layout::{bytes, thead};
use crate::blobs::BlobName;
use crate::http::state::AppState;

/// Distinct files a page checks in the store at most.
pub const CHECKED_MAX: usize = 500;
/// Files of one `evidence.captured` listed at most.
const LISTED_MAX: usize = 1000;

/// What the store says of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Stored,
    Missing,
    /// Not asked (past [`CHECKED_MAX`], no store behind this server, or the store failed).
    Unknown,
}

/// The files of an `evidence.captured` event's `data`.
pub fn files(data: &Value) -> impl Iterator<Item = &Value> {
    data.get("files").and_then(Value::as_array).into_iter().flatten().take(LISTED_MAX)
}

fn digest(file: &Value) -> Option<&str> {
    file.get("blake3").and_then(Value::as_str)
}

/// Whether the store holds each of the (first [`CHECKED_MAX`] distinct) digests of `files`.
pub async fn presence<'a>(
    state: &AppState,
    files: impl Iterator<Item = &'a Value>,
) -> BTreeMap<String, Presence> {
    let mut found = BTreeMap::new();
    let Some(blobs) = state.options.blobs.as_ref() else { return found };
    for file in files {
        if found.len() >= CHECKED_MAX {
            break;
        }
        let Some(digest) = digest(file) else { continue };
        if found.contains_key(digest) {
            continue;
        }
        let presence = match BlobName::parse(digest) {
            Ok(name) => match blobs.size(&name).await {
                Ok(Some(_)) => Presence::Stored,
                Ok(None) => Presence::Missing,
                Err(_) => Presence::Unknown,
            },
            Err(_) => Presence::Missing,
        };
        found.insert(digest.to_owned(), presence);
    }
    found
}

/// The files of one `evidence.captured` (its `data`): path, size, digest linked to its blob,
/// and its presence in the store.
pub fn table(data: &Value, presence: &BTreeMap<String, Presence>) -> Markup {
    html! {
        table.evidence {
            (thead(&["path", "bytes", "blake3", "stored"]))
            tbody {
                @for f in files(data) {
                    @let blake3 = digest(f);
                    tr {
                        td.mono { (f.get("path").and_then(Value::as_str).unwrap_or("—")) }
                        td.num { (f.get("bytes").and_then(Value::as_u64).map_or("—".to_owned(), bytes)) }
                        td.mono {
                            @match blake3 {
                                Some(d) => a.blob href={ "/v1/blobs/" (d) } title="the file's bytes" { (d) },
                                None => "—",
                            }
                        }
                        td { (badge(blake3.and_then(|d| presence.get(d)).copied().unwrap_or(Presence::Unknown))) }
                    }
                }
            }
        }
    }
}

fn badge(p: Presence) -> Markup {
    match p {
        Presence::Stored => html! { span.badge.pass.stored { "✓ stored" } },
        Presence::Missing => {
            html! { span.badge.fail.missing title="the evidence store does not hold this file" { "✗ missing" } }
        }
        Presence::Unknown => html! { span.unknown { "not checked" } },
    }
}
