//! `assay audit --recompute-from-evidence`: a claim's value recomputed from the metrics files
//! kept as evidence, against the value the recorded `metric.recorded` events give.
//!
//! A metrics file is an evidence file (a `files[]` entry of an `evidence.captured` of the run)
//! whose name is `metrics.jsonl` or ends in `.metrics.jsonl`, in the format `assay run exec
//! --metrics FILE` follows: one JSON object `{"name","step","value","unit"?}` per line
//! (`assay_kernels::supervise::parse_metric`), blank lines skipped. So `run exec --evidence DIR
//! --metrics DIR/metrics.jsonl` keeps the very file its `metric.recorded` events were read
//! from. A run's metrics files are read in the order of their `evidence.captured` events (each
//! blob once), their lines in order, so `last` (highest step, latest line on ties) means what
//! it means for the recorded series.
//!
//! Per standing claim whose check reads a metric (`metric`, `compare` and the group checks),
//! each (run, metric, agg) it rests on is aggregated both ways, exactly
//! (`assay_projections::audit::checks::aggregate`): equal values agree; a different value, or
//! a value on one side only, is a disagreement. A run without a metrics file is reported as not
//! kept, and is no finding. Findings: each disagreement, and each metrics file that is missing
//! from the evidence store, damaged (its bytes do not hash to its name), or holds a line that
//! is not a metric.
//!
//! The log and its evidence are read from a ledger opened here or through a server
//! ([`Evidence`]: `GET /v1/events?type=evidence.captured`, `GET /v1/blobs/{blake3}`).
//!
//! Bounded: a line of at most [`LINE_BYTES_MAX`] bytes (a longer one is a finding), at most
//! [`POINTS_MAX`] points kept (only those of the (run, metric) pairs claims need), blobs read
//! a chunk at a time.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::EventType;
use assay_kernels::supervise::parse_metric;
use assay_projections::Projections;
use assay_projections::audit::checks::aggregate;
use assay_projections::audit::{Agg, Check, ClaimVerdict, MetricPoint};
use serde::Serialize;
use serde_json::Value;

use crate::blobs::source::{BlobSource, Piece, SourceError};
use crate::blobs::{BlobError, BlobName, BlobState, BlobStore, Check as BlobCheck};
use crate::client::{Client, ClientError};
use crate::store::{Store, StoreError};

/// The longest metrics line read.
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// Points kept from metrics files at most.
pub const POINTS_MAX: usize = 10_000_000;
/// Records per page of the walk over `evidence.captured`.
const PAGE_RECORDS: u32 = 1000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecomputeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the evidence store: {0}")]
    Blobs(#[from] BlobError),
    #[error("the metrics files hold more than {POINTS_MAX} points of the claimed metrics; not recomputed")]
    TooManyPoints,
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the server sent record {seq} that is not a CloudEvent: {problem}")]
    Unreadable { seq: u64, problem: String },
}

/// Where the log's `evidence.captured` events and their blobs are read.
#[derive(Clone, Copy)]
pub enum Evidence<'a> {
    /// A ledger opened here and its evidence store.
    Local { store: &'a Store, blobs: &'a BlobStore },
    /// A server's `GET /v1/events` and `GET /v1/blobs/{blake3}`.
    Server(&'a Client),
}

impl Evidence<'_> {
    /// Where its blobs are read.
    fn blobs(&self) -> BlobSource {
        match self {
            Evidence::Local { blobs, .. } => BlobSource::Store((*blobs).clone()),
            Evidence::Server(client) => BlobSource::Server((*client).clone()),
        }
    }
}

/// Whether an evidence file at `path` is a metrics file.
pub fn is_metrics_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "metrics.jsonl" || name.ends_with(".metrics.jsonl")
}

/// What one (claim, run, metric, agg) came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Agree,
    Disagree,
    /// The run kept no metrics file.
    NotKept,
}

/// One value of one claim, recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub artifact: String,
    pub claim: String,
    pub run: String,
    pub metric: String,
    pub agg: &'static str,
    /// From the recorded `metric.recorded` events (`<sum>/<n>` for a mean, exact).
    pub recorded: Option<String>,
    /// From the run's metrics files.
    pub from_evidence: Option<String>,
    pub outcome: Outcome,
}

/// A metrics file that could not be read as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub run: String,
    pub path: String,
    pub blake3: String,
    /// `missing`, `damaged`, or `line <n>: <what is wrong>`.
    pub problem: String,
}

/// The whole recomputation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recomputed {
    pub rows: Vec<Row>,
    pub problems: Vec<Problem>,
}

impl Recomputed {
    /// Disagreements and unreadable metrics files.
    pub fn findings(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome == Outcome::Disagree).count() + self.problems.len()
    }
}

fn agg_str(agg: Agg) -> &'static str {
    match agg {
        Agg::Last => "last",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Mean => "mean",
    }
}

/// The (run, metric, agg) each claim rests on, in claim order.
fn needs(p: &Projections, claims: &[&ClaimVerdict]) -> Vec<(String, String, String, String, Agg)> {
    let mut out = Vec::new();
    for c in claims {
        let check =
            p.audit.claims().get(&c.artifact).and_then(|m| m.get(&c.claim)).and_then(|c| c.check.as_ref());
        let Some(check) = check else { continue };
        let agg = match check {
            Check::Metric { agg, .. }
            | Check::Compare { agg, .. }
            | Check::Group { agg, .. }
            | Check::CompareGroups { agg, .. }
            | Check::Replicated { agg, .. } => *agg,
            Check::Kernel { .. } | Check::Completed { .. } => continue,
        };
        let (Some(metric), Some(runs)) = (check.metric(), check.named_runs()) else { continue };
        let mut seen = BTreeSet::new();
        for run in runs.into_iter().filter(|r| seen.insert(*r)) {
            out.push((c.artifact.clone(), c.claim.clone(), run.to_owned(), metric.to_owned(), agg));
        }
    }
    out
}

/// A metrics file a run kept.
struct Kept {
    run: String,
    path: String,
    name: BlobName,
}

/// The metrics files the runs in `runs` kept, in the order of their `evidence.captured`, each
/// blob once per run.
async fn kept_files(from: Evidence<'_>, runs: &BTreeSet<String>) -> Result<Vec<Kept>, RecomputeError> {
    let ty = EventType::EvidenceCaptured.as_str();
    let (mut kept, mut seen) = (Vec::new(), BTreeSet::new());
    let mut next = Some(0);
    while let Some(from_seq) = next {
        let datas: Vec<Value> = match from {
            Evidence::Local { store, .. } => {
                let page = store.records_filtered(from_seq, PAGE_RECORDS, Some(ty), None).await?;
                next = match page.last() {
                    Some(last) if page.len() == PAGE_RECORDS as usize => Some(last.seq + 1),
                    _ => None,
                };
                page.iter()
                    .map(|stored| Ok(stored.to_record()?.event.data))
                    .collect::<Result<_, StoreError>>()?
            }
            Evidence::Server(client) => {
                let page = client.events(from_seq, PAGE_RECORDS, Some(ty), None).await?;
                next = page.next;
                page.records
                    .iter()
                    .map(|r| {
                        let event = assay_events::cloudevent::CloudEvent::parse(r.event.get().as_bytes())
                            .map_err(|e| RecomputeError::Unreadable { seq: r.seq, problem: e.to_string() })?;
                        Ok(event.data)
                    })
                    .collect::<Result<_, RecomputeError>>()?
            }
        };
        for data in &datas {
            let Some(run) = data.get("run").and_then(Value::as_str).filter(|r| runs.contains(*r)) else {
                continue;
            };
            for f in data.get("files").and_then(Value::as_array).into_iter().flatten() {
                let path = f.get("path").and_then(Value::as_str).unwrap_or_default();
                let name = f.get("blake3").and_then(Value::as_str).and_then(|t| BlobName::parse(t).ok());
                if let Some(name) = name.filter(|_| is_metrics_file(path))
                    && seen.insert((run.to_owned(), name))
                {
                    kept.push(Kept { run: run.to_owned(), path: path.to_owned(), name });
                }
            }
        }
    }
    Ok(kept)
}

/// (run, metric) → points, from the metrics files.
type Series = BTreeMap<(String, String), Vec<MetricPoint>>;

/// Reads one metrics file into `series` (only the metrics in `wanted`); a problem when it is
/// missing, damaged, or holds a line that is not a metric (its points are then not kept).
async fn read_file(
    blobs: &BlobSource,
    file: &Kept,
    index: u64,
    wanted: &BTreeSet<(String, String)>,
    series: &mut Series,
    points: &mut usize,
) -> Result<Option<String>, RecomputeError> {
    let Some(mut reader) = blobs.open(&file.name).await? else {
        return Ok(Some("missing".into()));
    };
    let mut check = BlobCheck::default();
    let (mut line, mut number, mut too_long) = (Vec::new(), 0u64, false);
    let mut found: Vec<(String, MetricPoint)> = Vec::new();
    let mut bad: Option<String> = None;
    let mut take = |line: &[u8], number: u64, too_long: bool, found: &mut Vec<(String, MetricPoint)>| {
        if bad.is_some() {
            return;
        }
        if too_long {
            bad = Some(format!("line {number}: longer than {LINE_BYTES_MAX} bytes"));
            return;
        }
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            return;
        }
        match parse_metric(text.trim()) {
            Ok(m) => {
                if wanted.contains(&(file.run.clone(), m.name.clone())) {
                    // Files in capture order, lines in file order: the tie-break of `last`.
                    found.push((
                        m.name,
                        MetricPoint { step: m.step, seq: (index << 40) | number, value: m.value },
                    ));
                }
            }
            Err(e) => bad = Some(format!("line {number}: {e}")),
        }
    };
    loop {
        let chunk = match reader.next().await? {
            Piece::Bytes(chunk) => chunk,
            Piece::End => break,
            Piece::Damaged(_) => return Ok(Some("damaged".into())),
        };
        check.update(&chunk);
        for &b in &chunk {
            if b == b'\n' {
                number += 1;
                take(&line, number, too_long, &mut found);
                line.clear();
                too_long = false;
            } else if line.len() < LINE_BYTES_MAX {
                line.push(b);
            } else {
                too_long = true;
            }
        }
        if found.len() > POINTS_MAX {
            return Err(RecomputeError::TooManyPoints);
        }
    }
    if !line.is_empty() || too_long {
        number += 1;
        take(&line, number, too_long, &mut found);
    }
    if !matches!(check.finish(&file.name), BlobState::Whole { .. }) {
        return Ok(Some("damaged".into()));
    }
    if let Some(bad) = bad {
        return Ok(Some(bad));
    }
    *points += found.len();
    if *points > POINTS_MAX {
        return Err(RecomputeError::TooManyPoints);
    }
    for (metric, point) in found {
        series.entry((file.run.clone(), metric)).or_default().push(point);
    }
    Ok(None)
}

/// Recomputes the metric values `claims` rest on from the metrics files kept as evidence
/// (`p` is the state of the log `from` reads).
pub async fn recompute(
    from: Evidence<'_>,
    p: &Projections,
    claims: &[&ClaimVerdict],
) -> Result<Recomputed, RecomputeError> {
    let needs = needs(p, claims);
    let runs: BTreeSet<String> = needs.iter().map(|n| n.2.clone()).collect();
    let wanted: BTreeSet<(String, String)> = needs.iter().map(|n| (n.2.clone(), n.3.clone())).collect();
    let files = kept_files(from, &runs).await?;
    let blobs = from.blobs();
    let (mut series, mut points, mut problems) = (Series::new(), 0usize, Vec::new());
    let mut keeping: BTreeSet<&str> = BTreeSet::new();
    for (index, file) in files.iter().enumerate() {
        keeping.insert(file.run.as_str());
        if let Some(problem) =
            read_file(&blobs, file, index as u64, &wanted, &mut series, &mut points).await?
        {
            problems.push(Problem {
                run: file.run.clone(),
                path: file.path.clone(),
                blake3: file.name.to_hex(),
                problem,
            });
        }
    }
    let rows = needs
        .into_iter()
        .map(|(artifact, claim, run, metric, agg)| {
            let recorded = aggregate(p.audit.series(&run, &metric), agg).map(|a| a.display());
            let kept = keeping.contains(run.as_str());
            let from_evidence = series
                .get(&(run.clone(), metric.clone()))
                .and_then(|s| aggregate(s, agg))
                .map(|a| a.display());
            let outcome = if !kept {
                Outcome::NotKept
            } else if recorded == from_evidence {
                Outcome::Agree
            } else {
                Outcome::Disagree
            };
            Row { artifact, claim, run, metric, agg: agg_str(agg), recorded, from_evidence, outcome }
        })
        .collect();
    Ok(Recomputed { rows, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_files_are_named_so() {
        for yes in ["metrics.jsonl", "out/metrics.jsonl", "train.metrics.jsonl", "a/b/eval.metrics.jsonl"] {
            assert!(is_metrics_file(yes), "{yes}");
        }
        for no in ["metrics.json", "metrics.jsonl.bak", "mymetrics.jsonl", "metrics.jsonl/x", "log.jsonl"] {
            assert!(!is_metrics_file(no), "{no}");
        }
    }
}
