//! `assay campaign diff BASE_RUN NEW_RUN`: which cells of a campaign changed between two runs
//! (after a patch or a driver update), from the database or from a server (`--server URL`).
//! Exit status 1 when a cell regressed or newly faulted, so CI can gate on it.

use assay::campaign_runs::{campaign_diff, check_run_id};
use assay_projections::campaign_diff::{CampaignDiff, CellDiff, Class, Side, TimingChange};

use super::remote::ServerArgs;
use super::table::Table;
use super::{Exit, ReadDbArgs, open};

#[derive(clap::Subcommand)]
pub enum CampaignCommand {
    /// Compare two campaign runs cell by cell: unchanged, fixed, regressed, newly faulted, gone,
    /// new, and timing beyond the spread. Exit status 1 when a cell regressed or newly faulted.
    Diff(DiffArgs),
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The run compared against (before the change).
    base_run: String,
    /// The run after the change.
    new_run: String,
    #[command(flatten)]
    db: ReadDbArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Print the diff as JSON (the body of GET /v1/campaigns/{run}/diff).
    #[arg(long)]
    json: bool,
}

pub async fn run(command: CampaignCommand) -> anyhow::Result<Exit> {
    match command {
        CampaignCommand::Diff(a) => diff(a).await,
    }
}

async fn diff(a: DiffArgs) -> anyhow::Result<Exit> {
    check_run_id(&a.base_run)?;
    check_run_id(&a.new_run)?;
    let diff = match a.server.client()? {
        Some(client) => client.campaign_diff(&a.base_run, &a.new_run).await?,
        None => {
            let store = open::store(&a.db).await?;
            let diff = campaign_diff(&store, &a.base_run, &a.new_run).await;
            store.close().await;
            diff?
        }
    };
    if a.json {
        outln!("{}", serde_json::to_string(&diff)?);
    } else {
        out!("{}", text(&diff));
    }
    if diff.gate_failed() {
        eprintln!(
            "error: campaign diff: {} cells regressed and {} newly faulted from {} to {}",
            diff.counts.regressed, diff.counts.newly_faulted, diff.base, diff.new
        );
        return Ok(Exit::VerifyFailed);
    }
    Ok(Exit::Ok)
}

/// `failed`, `faulted: TIMEOUT (fallback passed)`, or `-` for no launch.
fn side_text(side: Option<&Side>) -> String {
    let Some(side) = side else { return "-".to_owned() };
    let mut text = side.launch.outcome_text();
    if let Some(f) = &side.fallback {
        text += &format!(" (fallback {})", f.launch.outcome_text());
    }
    text
}

/// A cell whose outcomes read differently (unchanged cells too: faulted → failed).
fn changed(c: &CellDiff) -> bool {
    c.class != Class::Unchanged || side_text(c.base.as_ref()) != side_text(c.new.as_ref())
}

/// Counts, then the changed cells (regressions and new faults first), then timing changes
/// beyond the spread.
fn text(d: &CampaignDiff) -> String {
    let counts: Vec<String> =
        Class::ALL.iter().map(|c| format!("{} {}", d.counts.get(*c), c.as_str().replace('_', " "))).collect();
    let mut out = format!("campaign diff {} → {}: {}\n", d.base, d.new, counts.join(", "));
    let mut cells: Vec<&CellDiff> = d.cells.iter().filter(|c| changed(c)).collect();
    cells.sort_by_key(|c| c.class.rank());
    if !cells.is_empty() {
        let mut table = Table::new(&["CLASS", "KERNEL", "VARIANT", "BASE", "NEW"]);
        for c in cells {
            table.row(vec![
                c.class.as_str().to_owned(),
                c.kernel.clone(),
                c.variant.to_string(),
                side_text(c.base.as_ref()),
                side_text(c.new.as_ref()),
            ]);
        }
        out += &table.render();
    }
    let timed: Vec<_> = d.cells.iter().filter_map(|c| c.timing.map(|t| (c, t))).collect();
    if timed.is_empty() {
        return out;
    }
    let count = |change: TimingChange| timed.iter().filter(|(_, t)| t.change == change).count();
    out += &format!(
        "timing: {} slower, {} faster, {} within the spread, {} without a spread (no repeats on both sides)\n",
        count(TimingChange::Slower),
        count(TimingChange::Faster),
        count(TimingChange::WithinSpread),
        count(TimingChange::NoSpread)
    );
    let mut table = Table::new(&["CHANGE", "KERNEL", "VARIANT", ">BASE US", ">NEW US", ">RATIO"]);
    for (c, t) in
        timed.iter().filter(|(_, t)| matches!(t.change, TimingChange::Slower | TimingChange::Faster))
    {
        table.row(vec![
            t.change.as_str().to_owned(),
            c.kernel.clone(),
            c.variant.to_string(),
            t.base_us.to_string(),
            t.new_us.to_string(),
            t.ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
        ]);
    }
    if !table.is_empty() {
        out += &table.render();
    }
    out
}
