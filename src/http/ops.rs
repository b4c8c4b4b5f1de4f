//! Operations: `GET /healthz`, `GET /metrics`, and the service's own metrics.
//!
//! `/metrics` serves every metric of the registry (the append path's, [`ServiceMetrics`], the
//! stream's) in the format the scraper asks for: OpenMetrics 1.0 when `Accept` prefers
//! `application/openmetrics-text` (as Prometheus does), else the Prometheus text format
//! 0.0.4 (`text/plain; version=0.0.4`), which is also the answer to no `Accept` at all or
//! `*/*`. prometheus-client writes OpenMetrics; [`prometheus_text`] rewrites it.
//!
//! The gauges of the ledger's state (tree size, checkpoint age, GPUs needing a reset,
//! artifacts passing and failing) are read at each scrape from what `/v1` serves: the head,
//! the store's checkpoint row, the live projections. Request counts and latencies are counted
//! by [`track_requests`], labelled by the matched route template (never the raw path: label
//! values stay a fixed, small set), method and status.

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, RETRY_AFTER_UNAVAILABLE_S};
use super::metrics::RequestLabels;
#[cfg(doc)]
use super::metrics::ServiceMetrics;
use super::state::AppState;
use super::wire::{ErrorBody, Health};

/// The `Content-Type` of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of OpenMetrics text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `route` label of a request no route matched (a 404).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Health: the server answers, and its ledger reaches its store.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The store is failing: appends are refused until it recovers", body = Health,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let size = state.ledger.head().borrow().size;
    let health =
        |word: &str| Json(Health { status: word.to_owned(), size, origin: state.ledger.origin().to_owned() });
    if state.ledger.healthy() {
        (StatusCode::OK, health("ok")).into_response()
    } else {
        // Load balancers and clients back off for as long as appends would be refused.
        let retry = [(header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE_S.to_string())];
        (StatusCode::SERVICE_UNAVAILABLE, retry, health("store_failing")).into_response()
    }
}

/// Prometheus metrics: the ledger's state (tree size, checkpoint age, GPUs needing a reset,
/// artifacts passing and failing), appends, batch sizes, commit latency, rejections by reason,
/// subscribers, and requests by route and status.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The Prometheus text format 0.0.4, or OpenMetrics 1.0 when `Accept` prefers `application/openmetrics-text`",
            content(
                (String = "text/plain"),
                (String = "application/openmetrics-text"),
            )),
        (status = 401, description = "A bearer token is required", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.metrics.service.refresh(&state.ledger, &state.live).await;
    state.cosigning.refresh(state.ledger.head().borrow().size);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(|e| ApiError::internal("metrics", e.to_string()))?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    Ok(if wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text).into_response()
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], prometheus_text(&text)).into_response()
    })
}

/// Whether `Accept` prefers OpenMetrics to the Prometheus text format: a higher `q` for
/// `application/openmetrics-text` than for `text/plain` (or `text/*`, `*/*`). No `Accept`,
/// and a tie, get the text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > text
}

/// OpenMetrics text, as prometheus-client writes it, in the Prometheus text format 0.0.4:
/// a counter's `# HELP` and `# TYPE` name its `_total` samples, `unknown` is `untyped`, and
/// `# UNIT`, `# EOF` and `_created` samples (which 0.0.4 lacks) are left out. The other
/// types (gauge, histogram) and the samples are the same in both. (No metric here has
/// exemplars or is an info, state set or gauge histogram.)
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP line waits for its TYPE line, which says whether it is a counter.
    let mut help: Option<(&str, &str)> = None;
    let mut counter: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            counter = (kind == "counter").then_some(rest.split(' ').next().unwrap_or(""));
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(family) = counter
            && line.strip_prefix(family).is_some_and(|rest| rest.starts_with("_created"))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A method as a label: the standard ones by name, anything else `other` (so a client cannot
/// make up label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (a `Router::layer`, so it runs after routing and sees [`MatchedPath`]): counts
/// each request and its time to the response head by route template, method and status.
pub async fn track_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels { route, method, status: response.status().as_u16() };
    state.metrics.service.observe(labels, started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::http::metrics::latency_histogram;

    #[test]
    fn accept_chooses_the_format() {
        // What Prometheus sends: OpenMetrics first.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "text/plain; version=0.0.4; q=0.9, application/openmetrics-text; q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("application/openmetrics-text, */*")), "a tie is text");
        assert!(wants_openmetrics(Some("application/openmetrics-text, */*;q=0.8")));
    }

    #[test]
    fn openmetrics_becomes_the_text_format() {
        let mut registry = Registry::with_prefix("t");
        let c: Counter = Counter::default();
        c.inc_by(3);
        registry.register("hits", "Hits", c);
        let g: Gauge = Gauge::default();
        g.set(7);
        registry.register("size_records", "Size", g);
        let h = latency_histogram();
        h.observe(0.01);
        registry.register("wait_seconds", "Wait", h);
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
        assert!(om.contains("# TYPE t_hits counter") && om.ends_with("# EOF\n"), "{om}");
        let text = prometheus_text(&om);
        assert!(
            text.contains("# HELP t_hits_total Hits.\n# TYPE t_hits_total counter\nt_hits_total 3\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE t_size_records gauge\nt_size_records 7\n"), "{text}");
        assert!(text.contains("# TYPE t_wait_seconds histogram\n"), "{text}");
        assert!(text.contains("t_wait_seconds_bucket{le=\"+Inf\"} 1\n"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
    }
}
