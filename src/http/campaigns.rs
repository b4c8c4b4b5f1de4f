//! Campaign runs over HTTP: `GET /v1/campaigns/{run}` (the run's cells) and
//! `GET /v1/campaigns/{run}/diff?base=RUN` (the regression diff, the JSON `assay campaign diff
//! --json` prints). Both read the run's launches from the store, a few requests at a time
//! (the replay permits): a diff reads two runs, up to a million launches each.

use assay_projections::campaign_diff::{CampaignDiff, CampaignError, RunCell, RunLaunches};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{Path, Query};
use super::state::AppState;
use super::wire::{CampaignCells, CampaignDiffBody, ErrorBody};
use crate::campaign_runs::{self, CampaignRunError};

impl From<CampaignRunError> for ApiError {
    fn from(e: CampaignRunError) -> ApiError {
        match e {
            CampaignRunError::BadRun(_) => ApiError::bad_request("bad_run", e.to_string()),
            CampaignRunError::UnknownRun(_) => ApiError::not_found(e.to_string()),
            CampaignRunError::TooMany(CampaignError::TooManyXids { .. })
            | CampaignRunError::TooManyXidRecords { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_xids", e.to_string())
            }
            CampaignRunError::TooMany(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_launches", e.to_string())
            }
            CampaignRunError::Store(s) => s.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The run compared against (the one before the change).
    base: String,
}

/// Both routes' query: `base` only on `…/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    base: Option<String>,
}

/// The cells of a run as served.
#[derive(Serialize)]
struct Cells<'a> {
    run: &'a str,
    cells: Vec<RunCell>,
}

/// Holds a replay permit while the store is read.
async fn permit(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state.replays.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))
}

/// A run's launches (with their Xids), read under a replay permit; the dashboard's campaign
/// pages read them through here too, so a page holds the same permits the API does.
pub(crate) async fn read_run(state: &AppState, run: &str) -> Result<RunLaunches, ApiError> {
    campaign_runs::check_run_id(run)?;
    let _permit = permit(state).await?;
    Ok(campaign_runs::run_launches(state.ledger.store(), run).await?)
}

/// The diff of `base` → `new`, read under a replay permit (ids checked first, `base: ` naming
/// a bad base).
pub(crate) async fn read_diff(state: &AppState, base: &str, new: &str) -> Result<CampaignDiff, ApiError> {
    campaign_runs::check_run_id(base).map_err(|e| ApiError::bad_request("bad_run", format!("base: {e}")))?;
    campaign_runs::check_run_id(new)?;
    let _permit = permit(state).await?;
    Ok(campaign_runs::campaign_diff(state.ledger.store(), base, new).await?)
}

/// A campaign run's cells: each (kernel, variant) with its primary launch's outcome, error,
/// duration, repeats and attached Xids (`xids`: the codes of the `gpu.xid` events naming the
/// launch), and the fallback launch that re-ran it (with its own).
#[utoipa::path(
    get,
    path = "/v1/campaigns/{run}",
    tag = "campaigns",
    params(("run" = String, Path, description = "The run id (a `/` in it as itself or `%2F`)")),
    responses(
        (status = 200, description = "The run's cells, sorted by kernel and variant", body = CampaignCells),
        (status = 400, description = "Not a run id", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No kernel launch has this run's subject", body = ErrorBody),
        (status = 422, description = "The run has more launches, or attached Xids, than are read (a million)", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn campaign(State(state): State<AppState>, Path(run): Path<String>) -> Result<Response, ApiError> {
    let launches = read_run(&state, &run).await?;
    Ok(Json(Cells { run: &run, cells: launches.cells() }).into_response())
}

/// The regression diff of `base` → `run`: cells matched by (kernel, variant), each classed
/// unchanged, fixed, regressed, newly_faulted, gone or new, with timing against the spread.
/// `assay campaign diff` exits 1 when any cell regressed or newly faulted.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{run}/diff",
    tag = "campaigns",
    params(("run" = String, Path, description = "The new run"), DiffParams),
    responses(
        (status = 200, description = "The diff, cells sorted by kernel and variant", body = CampaignDiffBody),
        (status = 400, description = "Not a run id, or `base` missing", body = ErrorBody),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
        (status = 404, description = "No kernel launch has the subject of one of the runs", body = ErrorBody),
        (status = 422, description = "A run has more launches, or attached Xids, than are read (a million)", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn campaign_diff(
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(q): Query<DiffParams>,
) -> Result<Json<CampaignDiff>, ApiError> {
    Ok(Json(read_diff(&state, &q.base, &run).await?))
}

/// `/v1/campaigns/{*path}`: a run id may hold `/`, so one route serves both a run's cells and
/// its `…/diff`. A path ending in `/diff` with `base` given is the diff of the run before it;
/// without `base` it is the run of that whole id if it has launches, else a 400 naming the
/// missing `base`.
pub async fn campaign_path(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<CampaignQuery>,
) -> Result<Response, ApiError> {
    match (path.strip_suffix("/diff"), q.base) {
        (Some(run), Some(base)) => {
            let diff = campaign_diff(State(state), Path(run.to_owned()), Query(DiffParams { base })).await?;
            Ok(diff.into_response())
        }
        (None, Some(_)) => {
            Err(ApiError::bad_request("bad_parameter", "`base` applies only to /v1/campaigns/{run}/diff"))
        }
        (Some(_), None) => match campaign(State(state), Path(path.clone())).await {
            Err(e) if e.status == StatusCode::NOT_FOUND || e.code == "bad_run" => Err(ApiError::bad_request(
                "bad_parameter",
                "a diff needs the base run: /v1/campaigns/{run}/diff?base=RUN",
            )),
            other => other,
        },
        (None, None) => campaign(State(state), Path(path)).await,
    }
}
