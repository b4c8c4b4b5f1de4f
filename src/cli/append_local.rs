//! The local append of an input of any size, in two streaming passes so that memory does not
//! grow with it:
//!
//! 1. Check: every envelope is prepared (parsed, schema-checked, signature-verified, in
//!    parallel) and prechecked (keys, roles, ids against the ledger and within the input) a
//!    chunk at a time; only small facts are kept (the input's key changes, its ids on disk,
//!    a digest per chunk). Stdin, and envelopes signed from NDJSON, are spooled to a temporary
//!    file. The first bad line stops it and nothing is stored.
//! 2. Append: the input is read again, each chunk compared with its digest from pass 1,
//!    prepared again (every check but Ed25519: the same bytes verified in pass 1, under the
//!    same keys) on the other core while the sequencer commits the chunks before it, and
//!    acknowledged in input order, each only after its commit.
//!
//! A failure during pass 2 (the process killed, a key revoked meanwhile, the file changed)
//! leaves a prefix of the input appended. Running the same envelopes again appends the rest:
//! those already in are acknowledged as already present (the same bytes under a stored
//! (source, id)), not refused.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use assay::ledger::precheck::PrecheckError;
use assay::ledger::{AppendError, AppendOutcome, Incoming, Ledger, Prepared, Rejection};
use assay_events::cloudevent::CloudEvent;
use assay_events::dsse::Envelope;
use assay_events::keys::SignerKey;
use assay_projections::KeyRegistry;
use tokio::sync::oneshot;

use super::append_input::{Chunk, Lines, Reread, Spool, chunk_digest};
use super::append_sign::sign_chunk;

/// Requests in flight while preparing the next (pipelining checks and commits). 2, not 4:
/// with 4 the sequencer's batches grew to ~4,000 events and the peak RSS of a 200,000-envelope
/// append to 110-131 MiB (goal: under 128 at any size); with 2 it stayed at 89-105 MiB for
/// ~8% more wall time (BENCHMARKS.md, issue 20).
const IN_FLIGHT_MAX: usize = 2;
/// Acknowledgements buffered before a write (a request's 1000 fit).
const ACKS_BUFFER_BYTES: usize = 128 << 10;

/// What pass 1 leaves for pass 2.
struct Checked {
    reread: Reread,
    digests: Vec<[u8; 32]>,
    /// The registry pass 1 verified the signatures under.
    keys: Arc<KeyRegistry>,
}

/// The first bad item of the input: its index, line and why.
struct Refused {
    index: u64,
    lineno: usize,
    reason: Rejection,
}

impl Refused {
    fn into_error(self) -> anyhow::Error {
        anyhow::anyhow!("line {}: {} [{}]", self.lineno, self.reason, self.reason.code())
    }
}

/// Appends the envelopes of `src` (a path or `-`), signing each line with `sign` when the
/// input is NDJSON: checks it whole, then appends it (see the module documentation).
pub async fn append(
    ledger: &Ledger,
    src: &str,
    sign: Option<&SignerKey>,
    chunk: usize,
    json: bool,
) -> anyhow::Result<()> {
    let checked = check(ledger, src, sign, chunk).await?;
    append_checked(ledger, src, checked, chunk, json).await
}

/// The envelope lines of a chunk of input lines, and the items to prepare from them.
pub fn envelopes(sign: Option<&SignerKey>, raw: Chunk) -> anyhow::Result<(Chunk, Vec<Incoming>)> {
    match sign {
        None => {
            let items = raw.iter().map(|(_, l)| Incoming::Json(l.clone())).collect();
            Ok((raw, items))
        }
        Some(key) => {
            let signed = sign_chunk(key, &raw)?;
            let lines = raw.iter().zip(&signed).map(|((n, _), env)| (*n, env.to_json())).collect();
            Ok((lines, signed.into_iter().map(Incoming::Decoded).collect()))
        }
    }
}

/// A chunk of pass 1 read (signed, spooled and digested) whose preparation runs on the worker
/// threads while the chunk before it is prechecked against the store.
struct Staged {
    env_lines: Chunk,
    preparing: tokio::task::JoinHandle<Result<Vec<Prepared>, AppendError>>,
}

/// Reads the next chunk and starts preparing it; None at the end. Its errors (a line too
/// long, a bad NDJSON line) are returned, not raised: they count only once every chunk
/// before it has passed, so the first bad line is still the one reported.
fn stage(
    ledger: &Ledger,
    lines: &mut Lines,
    sign: Option<&SignerKey>,
    chunk: usize,
    spool: &mut Option<Spool>,
    digests: &mut Vec<[u8; 32]>,
) -> anyhow::Result<Option<Staged>> {
    let raw = lines.next_chunk(chunk)?;
    if raw.is_empty() {
        return Ok(None);
    }
    let (env_lines, items) = envelopes(sign, raw)?;
    if let Some(spool) = spool {
        for (n, line) in &env_lines {
            spool.write(*n, line)?;
        }
    }
    digests.push(chunk_digest(&env_lines));
    let ledger = ledger.clone();
    let preparing = tokio::spawn(async move { ledger.prepare(items).await });
    Ok(Some(Staged { env_lines, preparing }))
}

/// Pass 1: checks every envelope, keeping only small facts. Chunk N+1 is read and prepared
/// (parse, schema, Ed25519, on the worker threads) while chunk N is prechecked (its ids
/// looked up in the store, its signers authorized), so that both cores work; the chunks are
/// still judged in input order, and the first refusal stops it.
async fn check(
    ledger: &Ledger,
    src: &str,
    sign: Option<&SignerKey>,
    chunk: usize,
) -> anyhow::Result<Checked> {
    let mut lines = Lines::open(src)?;
    let mut spool = if src == "-" || sign.is_some() { Some(Spool::new()?) } else { None };
    let mut precheck = ledger.precheck();
    let mut digests = Vec::new();
    let mut first = 0u64;
    let mut refused: Option<Refused> = None;
    let mut next = stage(ledger, &mut lines, sign, chunk, &mut spool, &mut digests);
    loop {
        let Some(Staged { env_lines, preparing }) = std::mem::replace(&mut next, Ok(None))? else { break };
        // At most one chunk is prepared ahead: memory stays a few chunks.
        next = stage(ledger, &mut lines, sign, chunk, &mut spool, &mut digests);
        let n = env_lines.len() as u64;
        let at = |index: usize, reason| Refused {
            index: first + index as u64,
            lineno: env_lines[index].0,
            reason,
        };
        let prepared = preparing.await.map_err(|e| anyhow::anyhow!("preparing a chunk failed: {e}"))?;
        let (prepared, bad) = match prepared {
            Ok(p) => (p, None),
            Err(AppendError::Rejected { index, reason }) => {
                // The lines before it still take part in the whole-input checks (an id they
                // reuse may be the first bad line).
                let before = env_lines[..index].iter().map(|(_, l)| Incoming::Json(l.clone())).collect();
                (ledger.prepare(before).await?, Some(at(index, reason)))
            }
            Err(e) => return Err(e.into()),
        };
        match precheck.check(ledger.store(), &prepared).await {
            Ok(()) => {}
            Err(PrecheckError::Append(AppendError::Rejected { index, reason })) => {
                refused = Some(at(index, reason));
                break;
            }
            Err(e) => return Err(e.into()),
        }
        if bad.is_some() {
            refused = bad;
            break;
        }
        first += n;
    }
    if let Ok(Some(ahead)) = next {
        // Refused before the chunk prepared ahead was needed.
        ahead.preparing.abort();
    }
    let reread = match spool {
        Some(spool) => spool.finish()?,
        None => Reread::File(src.to_owned()),
    };
    // A reuse of an earlier line's id with other bytes, if it comes before the first other
    // refusal, is the first bad line.
    if let Some(index) = precheck.first_reused_id()?
        && refused.as_ref().is_none_or(|r| index < r.index)
    {
        return Err(reused_id(&reread, index, chunk)?.into_error());
    }
    if let Some(r) = refused {
        return Err(r.into_error());
    }
    Ok(Checked { reread, digests, keys: precheck.keys() })
}

/// Reads the input again to name item `index` (which reuses an earlier item's id).
fn reused_id(reread: &Reread, index: u64, chunk: usize) -> anyhow::Result<Refused> {
    let mut lines = reread.open()?;
    let mut first = 0u64;
    loop {
        let raw = lines.next_chunk(chunk)?;
        anyhow::ensure!(!raw.is_empty(), "the input ended before item {index} it was checked with");
        let n = raw.len() as u64;
        if index < first + n {
            let (lineno, line) = &raw[(index - first) as usize];
            let envelope = Envelope::parse(line).context("reading a checked line again")?;
            let event = CloudEvent::parse(&envelope.payload).context("reading a checked line again")?;
            let reason = Rejection::Conflict { event_source: event.source, id: event.id, seq: 0 };
            return Ok(Refused { index, lineno: *lineno, reason });
        }
        first += n;
    }
}

type Pending = (Vec<usize>, oneshot::Receiver<Result<AppendOutcome, AppendError>>);

/// The error of an append request, naming the input line of a refused envelope.
fn at_line(linenos: &[usize], e: AppendError) -> anyhow::Error {
    match e {
        AppendError::Rejected { index, reason } => {
            anyhow::anyhow!("line {}: {reason} [{}]", linenos.get(index).copied().unwrap_or(0), reason.code())
        }
        other => other.into(),
    }
}

/// Pass 2: reads the checked input again and submits requests of `chunk` envelopes, several
/// in flight, printing acknowledgements in input order, each only after its commit.
async fn append_checked(
    ledger: &Ledger,
    src: &str,
    checked: Checked,
    chunk: usize,
    json: bool,
) -> anyhow::Result<()> {
    let mut lines = checked.reread.open()?;
    let mut digests = checked.digests.iter();
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    // Stdout is line-buffered: a write a line, one a record. The acknowledgements of a request
    // go out together, flushed after its commit.
    let mut stdout = std::io::BufWriter::with_capacity(ACKS_BUFFER_BYTES, std::io::stdout().lock());
    let mut failure: Option<anyhow::Error> = None;
    let mut ended = false;
    loop {
        if failure.is_none() {
            match next_checked(&mut lines, &mut digests, src, chunk) {
                Ok(Some(raw)) => {
                    let linenos: Vec<usize> = raw.iter().map(|(n, _)| *n).collect();
                    let items = raw.into_iter().map(|(_, l)| Incoming::Json(l)).collect();
                    // The bytes are those pass 1 checked (their digest matched): decoded
                    // again, not checked again (neither the rules nor the Ed25519 signatures).
                    let submitted = match ledger.prepare_checked_before(items, checked.keys.clone()).await {
                        Ok(prepared) => ledger.submit(prepared).await,
                        Err(e) => Err(e),
                    };
                    match submitted {
                        Ok(rx) => in_flight.push_back((linenos, rx)),
                        Err(e) => failure = Some(at_line(&linenos, e)),
                    }
                }
                Ok(None) => ended = true,
                Err(e) => failure = Some(e),
            }
        }
        let done = failure.is_some() || ended;
        while in_flight.len() > IN_FLIGHT_MAX || (done && !in_flight.is_empty()) {
            let (linenos, rx) = in_flight.pop_front().expect("non-empty");
            match rx.await.map_err(|_| AppendError::ShuttingDown).and_then(|r| r) {
                Ok(outcome) => {
                    for ack in outcome.acks {
                        print_ack(&mut stdout, ack.seq, ack.digest, ack.existed, json)?;
                    }
                    stdout.flush()?;
                }
                Err(e) => {
                    failure.get_or_insert(at_line(&linenos, e));
                }
            }
        }
        if done {
            break;
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The next chunk of pass 2, if it reads as pass 1 checked it; None at the end.
fn next_checked<'a>(
    lines: &mut Lines,
    digests: &mut impl Iterator<Item = &'a [u8; 32]>,
    src: &str,
    chunk: usize,
) -> anyhow::Result<Option<Chunk>> {
    let raw = lines.next_chunk(chunk)?;
    let changed =
        |at: &str| anyhow::anyhow!("{src} changed after it was checked ({at}); what came before is appended");
    match (digests.next(), raw.first()) {
        (Some(d), Some(_)) if *d == chunk_digest(&raw) => Ok(Some(raw)),
        (Some(_), Some((n, _))) => Err(changed(&format!("at or after line {n}"))),
        (Some(_), None) => Err(changed("it is shorter")),
        (None, Some((n, _))) => Err(changed(&format!("line {n} is new"))),
        (None, None) => Ok(None),
    }
}

/// One acknowledgement: `{"seq":N,"digest":"hex"}` with `json`, else `seq N DIGEST`.
pub fn print_ack(
    out: &mut impl Write,
    seq: u64,
    digest: impl std::fmt::Display,
    existed: bool,
    json: bool,
) -> std::io::Result<()> {
    if json {
        writeln!(out, "{{\"seq\":{seq},\"digest\":\"{digest}\"}}")
    } else if existed {
        writeln!(out, "seq {seq} {digest} (already present)")
    } else {
        writeln!(out, "seq {seq} {digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pass 2 appends a chunk only when it reads what pass 1 checked, line numbers included:
    /// a changed byte, a moved blank line, a longer or a shorter input is refused, naming
    /// where.
    #[test]
    fn a_chunk_whose_bytes_changed_since_the_check_is_refused() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("input");
        let src = path.to_str().expect("UTF-8");
        std::fs::write(&path, "a\nb\n\nc\n").expect("written");
        let mut lines = Lines::open(src).expect("opened");
        let digests = [
            chunk_digest(&lines.next_chunk(2).expect("read")),
            chunk_digest(&lines.next_chunk(2).expect("read")),
        ];
        let second_pass = |text: &str| -> Vec<Result<bool, String>> {
            std::fs::write(&path, text).expect("written");
            let mut lines = Lines::open(src).expect("opened");
            let mut checked = digests.iter();
            (0..3)
                .map(|_| {
                    next_checked(&mut lines, &mut checked, src, 2)
                        .map(|c| c.is_some())
                        .map_err(|e| e.to_string())
                })
                .collect()
        };
        assert_eq!(second_pass("a\nb\n\nc\n"), [Ok(true), Ok(true), Ok(false)]);
        let changed = second_pass("a\nb\n\nC\n");
        assert_eq!(changed[0], Ok(true));
        assert!(
            changed[1]
                .as_ref()
                .is_err_and(|e| e.contains("changed after it was checked (at or after line 4)")),
            "{changed:?}"
        );
        let moved = second_pass("a\n\nb\nc\n");
        assert!(moved[0].as_ref().is_err_and(|e| e.contains("at or after line 1")), "{moved:?}");
        let longer = second_pass("a\nb\n\nc\nd\n");
        // The line joins the last chunk, which then differs.
        assert!(longer[1].as_ref().is_err_and(|e| e.contains("at or after line 4")), "{longer:?}");
        let shorter = second_pass("a\nb\n");
        assert!(shorter[1].as_ref().is_err_and(|e| e.contains("shorter")), "{shorter:?}");
    }
}
