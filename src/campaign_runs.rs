//! A campaign run's launches read from a ledger, for `assay campaign diff` and
//! `GET /v1/campaigns/{run}[/diff]`. Only the run's launch records are read (by type and
//! subject, on the store's indexes), a page at a time, and folded into
//! [`assay_projections::campaign_diff::RunLaunches`], whose bound stops a run with too many.
//! Then the `gpu.xid` records (by type: their subject is the GPU's, not the run's) from the
//! run's first launch on, of which those naming the run are attached to its launches. The
//! runner records an attached Xid right after the launch it names, so none precedes the run's
//! first launch, and a run's page does not read the Xids of the ledger's whole past.

use assay_events::EventType;
use assay_kernels::sink::is_identifier;
use assay_projections::campaign_diff::{CampaignDiff, CampaignError, RunLaunches, diff};

use crate::replay::trusted;
use crate::store::{Store, StoreError};

/// Records read per query.
const PAGE_RECORDS: u32 = 4096;

/// `gpu.xid` records read at most for one run (every GPU's, from the run's first launch on):
/// far more than a ledger logs in the time of a campaign.
pub const XID_RECORDS_READ_MAX: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignRunError {
    /// Not a run id as the event schemas define one.
    #[error(
        "bad run id {0:?}: a run id is 1-128 characters, an ASCII letter or digit first, then letters, digits and ._:/-"
    )]
    BadRun(String),
    /// No launch has subject `run/<run>`.
    #[error("no run {0:?}: no kernel launch has subject \"run/{0}\"")]
    UnknownRun(String),
    #[error(transparent)]
    TooMany(#[from] CampaignError),
    /// More `gpu.xid` records follow the run's first launch than are read.
    #[error("more than {records_max} gpu.xid records follow the first launch of run {run:?}, the most read")]
    TooManyXidRecords { run: String, records_max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses what is not a run id (before any read).
pub fn check_run_id(run: &str) -> Result<(), CampaignRunError> {
    if is_identifier(run) { Ok(()) } else { Err(CampaignRunError::BadRun(run.to_owned())) }
}

/// The launches of `run`: every `kernel.launch.completed` and `kernel.launch.faulted` with
/// subject `run/<run>`, with the `gpu.xid`s attached to them. A run with no launch is
/// [`CampaignRunError::UnknownRun`].
pub async fn run_launches(store: &Store, run: &str) -> Result<RunLaunches, CampaignRunError> {
    check_run_id(run)?;
    let subject = format!("run/{run}");
    let mut launches = RunLaunches::new(run);
    for ty in [EventType::KernelLaunchCompleted, EventType::KernelLaunchFaulted] {
        let mut from = 0;
        // Each page holds at least one launch or ends the loop, and `launches` refuses more
        // than its bound: at most LAUNCHES_PER_RUN_MAX / PAGE_RECORDS + 1 pages.
        loop {
            let page = store.records_filtered(from, PAGE_RECORDS, Some(ty.as_str()), Some(&subject)).await?;
            for stored in &page {
                launches.apply(&trusted(stored)?)?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE_RECORDS as usize => from = last.seq + 1,
                _ => break,
            }
        }
    }
    let Some(first_seq) = launches.first_seq() else {
        return Err(CampaignRunError::UnknownRun(run.to_owned()));
    };
    attach_xids(store, &mut launches, first_seq).await?;
    Ok(launches)
}

/// Folds the `gpu.xid` records from `from` on into `launches` (those naming its run attach).
async fn attach_xids(
    store: &Store,
    launches: &mut RunLaunches,
    mut from: u64,
) -> Result<(), CampaignRunError> {
    let mut read = 0usize;
    // Each full page adds PAGE_RECORDS to `read`, which is bounded: at most
    // XID_RECORDS_READ_MAX / PAGE_RECORDS + 1 pages.
    loop {
        let page = store.records_filtered(from, PAGE_RECORDS, Some(EventType::GpuXid.as_str()), None).await?;
        read += page.len();
        for stored in &page {
            launches.apply(&trusted(stored)?)?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE_RECORDS as usize => from = last.seq + 1,
            _ => return Ok(()),
        }
        if read >= XID_RECORDS_READ_MAX {
            return Err(CampaignRunError::TooManyXidRecords {
                run: launches.run().to_owned(),
                records_max: XID_RECORDS_READ_MAX,
            });
        }
    }
}

/// The diff of two runs read from `store` (base first).
pub async fn campaign_diff(store: &Store, base: &str, new: &str) -> Result<CampaignDiff, CampaignRunError> {
    check_run_id(base)?;
    check_run_id(new)?;
    let base = run_launches(store, base).await?;
    let new = run_launches(store, new).await?;
    Ok(diff(&base, &new))
}
