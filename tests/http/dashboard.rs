//! The dashboard against the real server: every page of a fresh ledger is valid HTML; on the
//! small demo ledger the pages show the numbers `/v1` serves; text from producers is escaped;
//! unknown things are 404 pages and bad query parameters 400 pages.

use crate::support::demo;
use crate::support::http as app;

use std::process::Command;

use app::{App, envelope, spawn_app};
use assay_projections::reasons::explain;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::{Value, json};

/// GETs `path`: the status and the body, after checking the page is HTML that parses
/// without a single error.
pub(crate) async fn page(http: &reqwest::Client, base: &str, path: &str) -> (StatusCode, Html) {
    let r = http.get(format!("{base}{path}")).send().await.expect("GET");
    let status = r.status();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = r.text().await.expect("a body");
    assert!(content_type.starts_with("text/html"), "{path}: {status} {content_type}: {text}");
    let html = Html::parse_document(&text);
    assert!(html.errors.is_empty(), "{path}: HTML parse errors {:?}", html.errors);
    assert!(text.starts_with("<!DOCTYPE html>"), "{path}: no doctype");
    (status, html)
}

pub(crate) fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&Selector::parse(css).expect("a selector")).collect()
}

pub(crate) fn text_of(html: &Html, css: &str) -> String {
    let found = select(html, css);
    let first = found.first().unwrap_or_else(|| panic!("no {css}"));
    first.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn attr(html: &Html, css: &str, name: &str) -> String {
    let found = select(html, css);
    let first = found.first().unwrap_or_else(|| panic!("no {css}"));
    first.value().attr(name).unwrap_or_else(|| panic!("{css} has no {name}")).to_owned()
}

/// A duration in milliseconds as the pages write it: the two largest units, rounded at the
/// smaller (`25 h 29 min`, `3 min 12 s`; days from 48 h).
fn readable_duration(ms: u64) -> String {
    let two = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 { format!("{a} {ua}") } else { format!("{a} {ua} {b} {ub}") }
    };
    let s = (ms + 500) / 1000;
    let m = (ms + 30_000) / 60_000;
    if ms < 59_950 {
        let t = format!("{:.1}", ms as f64 / 1000.0);
        format!("{} s", t.strip_suffix(".0").unwrap_or(&t))
    } else if s < 3600 {
        two(s / 60, "min", s % 60, "s")
    } else if m < 48 * 60 {
        two(m / 60, "h", m % 60, "min")
    } else {
        let h = (ms + 1_800_000) / 3_600_000;
        two(h / 24, "d", h % 24, "h")
    }
}

async fn api(app_http: &reqwest::Client, base: &str, path: &str) -> Value {
    let r = app_http.get(format!("{base}{path}")).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("JSON")
}

#[tokio::test]
async fn every_page_of_a_fresh_ledger_is_valid_html() {
    let app = spawn_app().await;
    let genesis = api(&app.http, &app.url, "/v1/events?limit=1").await["records"][0]["digest"]
        .as_str()
        .expect("genesis")
        .to_owned();
    let pages = [
        "/",
        "/artifacts",
        "/queue",
        "/gpus",
        "/kernels",
        "/events",
        "/login",
        &format!("/events/{genesis}"),
    ];
    for path in pages {
        let (status, html) = page(&app.http, &app.url, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!select(&html, "header.top nav a").is_empty(), "{path}: the navigation bar");
    }
    let (_, home) = page(&app.http, &app.url, "/").await;
    assert_eq!(attr(&home, "#headline", "data-passing"), "0");
    assert_eq!(attr(&home, "#headline", "data-canonical"), "0");
    assert_eq!(text_of(&home, "#checkpoint-size"), "1");
    assert!(text_of(&home, "#checkpoint-status").contains("verifies"), "the genesis checkpoint verifies");
    let (_, gpus) = page(&app.http, &app.url, "/gpus").await;
    assert!(select(&gpus, "#xid-timeline").is_empty() && !select(&gpus, "#xid-timeline-empty").is_empty());
    // The static assets are served from the binary.
    for (path, ty) in [("/assets/app.css", "text/css"), ("/assets/live.js", "text/javascript")] {
        let r = app.http.get(app.url(path)).send().await.expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(ty), "{path}");
        assert!(!r.text().await.unwrap().is_empty(), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_things_are_404_pages_and_bad_parameters_400_pages() {
    let app = spawn_app().await;
    let zeros = "0".repeat(64);
    for path in ["/artifacts/no-such-artifact", "/runs/no-such-run", &format!("/events/{zeros}")] {
        let (status, html) = page(&app.http, &app.url, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(text_of(&html, "h1").starts_with("404"), "{path}");
    }
    for path in [
        "/events/not-a-digest",
        "/events?limit=0",
        "/events?limit=1001",
        "/events?from=-1",
        "/events?colour=red",
        "/artifacts?verdict=great",
        "/artifacts?page=0",
        "/artifacts?page=2",
        "/queue?state=sleeping",
        "/queue?page=x",
    ] {
        let (status, html) = page(&app.http, &app.url, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(!text_of(&html, "p.error").is_empty(), "{path}: says what is wrong");
    }
    // Blank form fields mean "not given".
    let (status, _) = page(&app.http, &app.url, "/events?type=&subject=").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = page(&app.http, &app.url, "/artifacts?verdict=&q=").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// Elements that would run script: `<script>` other than ours, and inline event handlers.
fn scripts_injected(html: &Html) -> Vec<String> {
    let mut found = Vec::new();
    for el in select(html, "*") {
        let v = el.value();
        if v.name() == "script" && v.attr("src") != Some("/assets/live.js") {
            found.push(el.html());
        }
        if v.attrs().any(|(name, _)| name.starts_with("on")) {
            found.push(el.html());
        }
    }
    found
}

#[tokio::test]
async fn text_from_producers_is_escaped() {
    let app: App = spawn_app().await;
    let author = app.key("author-x", &["author"]).await;
    let dispatcher = app.key("dispatcher-x", &["dispatcher"]).await;
    let statement = r#"<script>alert("statement")</script><img src=x onerror=alert(1)>"#;
    let location = r#""><svg onload=alert(2)>"#;
    app.append_ok(&[
        envelope(
            &author,
            "claim.asserted",
            "artifact/xss-demo",
            json!({
                "artifact": "xss-demo", "claim": "c1", "statement": statement, "location": location,
                "check": {"kind": "completed", "run": "r-xss"}, "evidence": ["ab".repeat(32)],
            }),
        ),
        envelope(
            &dispatcher,
            "run.queued",
            "run/r-xss",
            json!({"run": "r-xss", "project": "p", "needs_gpu": false, "spec": {"note": "</code><script>alert(3)</script>"}}),
        ),
    ])
    .await;
    for path in [
        "/artifacts/xss-demo",
        "/artifacts?q=%3Cscript%3Ealert(4)%3C/script%3E",
        "/runs/r-xss",
        "/events?type=%22%3E%3Cscript%3Ealert(5)%3C/script%3E",
        "/events?subject=run/r-xss",
        "/",
    ] {
        let (status, html) = page(&app.http, &app.url, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let injected = scripts_injected(&html);
        assert!(injected.is_empty(), "{path}: markup from a producer or the URL became live: {injected:?}");
    }
    // The text is shown, as text.
    let (_, html) = page(&app.http, &app.url, "/artifacts/xss-demo").await;
    assert!(text_of(&html, "#claims td.statement").contains(statement), "the statement is shown verbatim");
    assert!(text_of(&html, "#claims td.statement").contains(location));
    let (_, html) = page(&app.http, &app.url, "/runs/r-xss").await;
    assert!(text_of(&html, "#run-facts").contains("<script>alert(3)</script>"));
    app.stop().await;
}

#[tokio::test]
async fn pages_of_the_demo_show_the_numbers_the_api_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, printed) = demo::serve_copy(&dir.path().join("lab"));
    let url = demo::url(&printed).to_owned();
    let http = reqwest::Client::new();
    let audit = api(&http, &url, "/v1/audit").await["state"].clone();

    let (_, home) = page(&http, &url, "/").await;
    assert_eq!(attr(&home, "#headline", "data-passing"), audit["artifacts_passing"].to_string());
    assert_eq!(attr(&home, "#headline", "data-canonical"), audit["artifacts_canonical"].to_string());
    assert_eq!(text_of(&home, "#headline h1"), audit["headline"].as_str().unwrap());
    for v in ["supported", "contradicted", "unsupported", "tainted"] {
        assert_eq!(text_of(&home, &format!("td[data-verdict={v}]")), audit["verdicts"][v].to_string(), "{v}");
    }
    let size = api(&http, &url, "/healthz").await["size"].as_u64().unwrap();
    assert_eq!(text_of(&home, "#checkpoint-size"), size.to_string());
    // The root in the encoding of the signed note (its third line), and in hex.
    let note = http.get(format!("{url}/v1/checkpoint")).send().await.unwrap().text().await.unwrap();
    let root_b64 = note.lines().nth(2).expect("the note's root line");
    assert_eq!(text_of(&home, "#checkpoint-root"), root_b64);
    let root = assay_events::b64::decode_any(root_b64).expect("base64");
    assert_eq!(
        text_of(&home, "#checkpoint-root-hex"),
        root.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    // GPU and queue health beside the headline: the numbers of /v1/gpus and /v1/queue.
    let gpus = api(&http, &url, "/v1/gpus").await["state"]["devices"].clone();
    let needing: Vec<&String> =
        gpus.as_object().unwrap().iter().filter(|(_, d)| d["needs_reset"] == true).map(|(k, _)| k).collect();
    assert!(!needing.is_empty(), "the demo has a GPU that needs a reset");
    assert_eq!(attr(&home, "#health-gpus", "data-needing-reset"), needing.len().to_string());
    for k in &needing {
        assert!(text_of(&home, "#health-gpus").contains(k.as_str()), "{k} is named beside the headline");
    }
    assert!(!select(&home, "#headline #health").is_empty(), "the health is inside the headline");
    let queue = api(&http, &url, "/v1/queue").await["state"].clone();
    let in_state =
        |s: &str| queue["runs"].as_object().unwrap().values().filter(|r| r["state"] == s).count().to_string();
    for s in ["running", "dispatched", "queued"] {
        assert_eq!(attr(&home, &format!("#health-{s}"), "data-count"), in_state(s), "{s}");
        assert_eq!(attr(&home, &format!("#health-{s}"), "href"), format!("/queue?state={s}"));
    }
    assert_ne!(in_state("running"), "0", "the demo has running runs");
    assert_eq!(select(&home, "#live-feed tbody tr").len(), 25, "the live feed's rows");

    // Artifacts: every failing one listed (over the pages), each with the API's claims.
    let artifacts = audit["artifacts"].as_array().unwrap();
    let failing: Vec<&str> =
        artifacts.iter().filter(|a| a["passes"] == false).map(|a| a["slug"].as_str().unwrap()).collect();
    let (_, list) = page(&http, &url, "/artifacts?verdict=fail").await;
    assert!(text_of(&list, "#artifact-count").starts_with(&format!("{} ", failing.len())));
    let listed: Vec<String> = select(&list, "#artifacts tbody tr")
        .iter()
        .map(|tr| tr.value().attr("data-slug").unwrap().to_owned())
        .collect();
    assert_eq!(listed, failing.iter().take(50).map(|s| s.to_string()).collect::<Vec<_>>());
    let (_, all) = page(&http, &url, "/artifacts").await;
    assert!(text_of(&all, "#artifact-count").starts_with(&format!("{} ", artifacts.len())));
    let searched = failing[0].split('/').next().unwrap();
    let (_, found) = page(&http, &url, &format!("/artifacts?q={searched}")).await;
    assert!(select(&found, "#artifacts tbody tr").iter().all(|tr| {
        tr.value().attr("data-slug").unwrap().contains(searched) || tr.text().any(|t| t.contains(searched))
    }));
    for slug in failing.iter().take(5) {
        let served = api(&http, &url, &format!("/v1/audit/{}", slug.replace('/', "%2F"))).await;
        let (status, html) = page(&http, &url, &format!("/artifacts/{slug}")).await;
        assert_eq!(status, StatusCode::OK, "{slug}");
        let claims = served["claims"].as_array().unwrap();
        assert_eq!(select(&html, "#claims tbody tr").len(), claims.len(), "{slug}");
        for c in claims {
            let id = c["claim"].as_str().unwrap();
            let row = format!("#claims tr[data-claim=\"{id}\"]");
            assert_eq!(attr(&html, &row, "data-verdict"), c["verdict"].as_str().unwrap(), "{slug} {id}");
            assert_eq!(
                attr(&html, &row, "data-registration"),
                c["registration"].as_str().unwrap(),
                "{slug} {id}"
            );
            let reasons = text_of(&html, &format!("{row} td.reasons"));
            for r in c["reasons"].as_array().unwrap() {
                assert!(reasons.contains(r.as_str().unwrap()), "{slug} {id}: {r} in {reasons}");
            }
            // Each reason and context in words, its code beside it.
            let cells: Vec<String> = select(&html, &format!("{row} td.reasons"))
                .iter()
                .map(|td| td.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            for (r, cell) in c["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r, &cells[0]))
                .chain(c["context"].as_array().unwrap().iter().map(|r| (r, &cells[1])))
            {
                let r = r.as_str().unwrap();
                let words = explain(r).unwrap_or_else(|| panic!("{slug} {id}: {r} has no sentence"));
                assert!(
                    cell.contains(&format!("{words} {r}")),
                    "{slug} {id}: {words:?} then {r:?} in {cell:?}"
                );
            }
        }
        let served = &artifacts.iter().find(|a| a["slug"] == *slug).unwrap()["reasons"];
        let why: Vec<String> = select(&html, "#artifact-reasons li")
            .iter()
            .map(|li| li.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let expected: Vec<String> = served
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let r = r.as_str().unwrap();
                format!("{} {r}", explain(r).unwrap_or_else(|| panic!("{slug}: {r} has no sentence")))
            })
            .collect();
        assert_eq!(why, expected, "{slug}: why it does not pass, in words");
    }
    // Every reason the demo's audit gives has a sentence.
    for c in audit["claims"].as_array().unwrap() {
        for r in c["reasons"].as_array().unwrap().iter().chain(c["context"].as_array().unwrap()) {
            assert!(explain(r.as_str().unwrap()).is_some(), "{r} has no sentence");
        }
    }
    // The artifact page's bundle link downloads the bundle (a tar; tests/export/server.rs checks
    // that what it holds verifies).
    let (_, html) = page(&http, &url, &format!("/artifacts/{}", failing[0])).await;
    let href = attr(&html, "#bundle-download", "href");
    let download = http.get(format!("{url}{href}")).send().await.expect("GET bundle");
    assert_eq!(download.status(), StatusCode::OK, "{href}");
    assert_eq!(download.headers()["content-type"], "application/x-tar", "{href}");
    assert!(download.bytes().await.expect("a body").len() > 1024, "{href}: a bundle");

    // Kernels, GPUs, queue: the projections' numbers.
    let kernels = api(&http, &url, "/v1/projections/kernels").await["state"]["totals"].clone();
    let (_, html) = page(&http, &url, "/kernels").await;
    assert_eq!(
        text_of(&html, "#kernel-totals"),
        format!(
            "{} launches: {} passed, {} failed, {} faulted.",
            kernels["launches"], kernels["passed"], kernels["failed"], kernels["faulted"]
        )
    );
    assert!(!select(&html, "#kernel-heatmap g.k-fault").is_empty(), "the demo's simulated faults show");
    let (_, html) = page(&http, &url, "/gpus").await;
    let devices = gpus.as_object().unwrap();
    assert_eq!(select(&html, "#devices tbody tr").len(), devices.len());
    let resets = devices.values().filter(|d| d["needs_reset"] == true).count();
    assert_eq!(select(&html, "#devices tr[data-needs-reset=true]").len(), resets);
    // Every recent Xid is drawn, bursts as one mark that says its count.
    let xids: u64 = devices.values().map(|d| d["xids"]["recent"].as_array().unwrap().len() as u64).sum();
    let marks = select(&html, "#xid-timeline g.xid");
    let counts: Vec<u64> =
        marks.iter().map(|m| m.value().attr("data-count").unwrap().parse().unwrap()).collect();
    assert_eq!(counts.iter().sum::<u64>(), xids, "every recent Xid is in a mark");
    let burst =
        marks.iter().zip(&counts).find(|(_, n)| **n >= 10).expect("the demo's burst of Xids is one mark");
    let label: String =
        burst.0.select(&Selector::parse("text.code").unwrap()).flat_map(|t| t.text()).collect();
    assert!(label.ends_with(&format!("×{}", burst.1)), "a burst is labelled with its count: {label}");
    assert!((marks.len() as u64) < xids, "bursts are not overprinted marks");
    // A time axis with round, distinct tick labels.
    let ticks: Vec<String> =
        select(&html, "#xid-timeline text.tick.time").iter().map(|t| t.text().collect::<String>()).collect();
    assert!(ticks.len() >= 3, "time ticks: {ticks:?}");
    assert_eq!(ticks.iter().collect::<std::collections::BTreeSet<_>>().len(), ticks.len(), "{ticks:?}");
    assert!(text_of(&html, "#xid-timeline text.axis-label").starts_with("time (UTC)"));
    // A device is (host, PCI id): the demo's two H100 nodes share bus ids, and each GPU has
    // its own row in the table and in the timeline.
    let rows: std::collections::BTreeSet<String> = select(&html, "#devices tbody tr")
        .iter()
        .map(|r| format!("{}/{}", r.value().attr("data-host").unwrap(), r.value().attr("data-pci").unwrap()))
        .collect();
    assert_eq!(rows, devices.keys().cloned().collect(), "one row per (host, pci)");
    let with_xids: Vec<&String> =
        devices.iter().filter(|(_, d)| d["xids"]["total"] != 0).map(|(k, _)| k).collect();
    let timeline_rows: Vec<String> = select(&html, "#xid-timeline g.xid-row")
        .iter()
        .map(|r| format!("{}/{}", r.value().attr("data-host").unwrap(), r.value().attr("data-pci").unwrap()))
        .collect();
    assert_eq!(timeline_rows.iter().collect::<Vec<_>>(), with_xids, "one timeline row per GPU with Xids");
    let pcis: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.rsplit_once('/').unwrap().1).collect();
    assert!(pcis.len() < rows.len(), "some PCI id is on two hosts: {rows:?}");
    let (_, html) = page(&http, &url, "/queue").await;
    let lanes: usize =
        queue["lanes"].as_object().unwrap().values().map(|l| l.as_object().unwrap().len()).sum();
    assert_eq!(select(&html, "#lanes tbody tr").len(), lanes);
    // A lane whose GPU needs a reset is never listed as free (the demo's is not held).
    let mut reset_lanes = 0;
    for (worker, gpus_of) in queue["lanes"].as_object().unwrap() {
        for (gpu, lane) in gpus_of.as_object().unwrap() {
            let row = format!("#lanes tr[data-worker=\"{worker}\"][data-gpu=\"{gpu}\"]");
            let resets = needing.contains(&&format!("{worker}/{gpu}"));
            assert_eq!(attr(&html, &row, "data-needs-reset"), resets.to_string(), "{row}");
            let free = lane["holder"].is_null() && !resets;
            assert_eq!(attr(&html, &row, "data-free"), free.to_string(), "{row}");
            assert_eq!(
                select(&html, &format!("{row} .badge.pass")).len(),
                usize::from(free),
                "{row}: free badge"
            );
            if resets {
                reset_lanes += 1;
                assert!(text_of(&html, &row).contains("needs reset"), "{row}");
            }
        }
    }
    assert!(reset_lanes > 0, "the demo's GPU needing a reset has a lane");
    // Durations read in the two largest units ("25 h 29 min"), never as fractional minutes.
    let durations: Vec<(String, String)> = select(&html, "#runs tbody tr")
        .iter()
        .map(|tr| {
            let cells: Vec<String> =
                tr.select(&Selector::parse("td").unwrap()).map(|td| td.text().collect()).collect();
            (cells[0].clone(), cells[7].clone())
        })
        .collect();
    for (run, shown) in &durations {
        let ms = queue["runs"][run]["duration_ms"].as_u64();
        assert_eq!(shown, &ms.map_or("—".to_owned(), readable_duration), "{run}: {ms:?}");
    }
    assert!(durations.iter().any(|(_, d)| d.contains(" h ")), "some demo run took hours: {durations:?}");
    assert_eq!(
        select(&html, "#decisions tbody tr").len(),
        queue["decisions"]["recent"].as_array().unwrap().len()
    );

    // A run: one chart per metric name, heartbeats, evidence.
    let metrics = api(&http, &url, "/v1/events?type=metric.recorded&subject=run/r-0002&limit=1000").await;
    let names: std::collections::BTreeSet<&str> = metrics["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["data"]["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty(), "the demo's run r-0002 records metrics");
    let (_, html) = page(&http, &url, "/runs/r-0002").await;
    let charted: std::collections::BTreeSet<String> = select(&html, "figure.metric g.series[data-series]")
        .iter()
        .filter(|g| !g.value().classes().any(|c| c == "legend"))
        .map(|g| g.value().attr("data-series").unwrap().to_owned())
        .filter(|n| n != "cpu_pct" && n != "rss")
        .collect();
    assert_eq!(charted, names.iter().map(|n| n.to_string()).collect(), "every metric is charted once");
    // train/loss and val/loss on one chart, with ticks and the unit on both axes.
    let loss = "figure[data-metric=loss]";
    let lines: Vec<String> = select(&html, &format!("{loss} svg > g.series[data-series]"))
        .iter()
        .map(|g| g.value().attr("data-series").unwrap().to_owned())
        .collect();
    assert_eq!(lines, ["train/loss", "val/loss"], "one chart for the loss");
    assert!(select(&html, &format!("{loss} svg text.tick.x")).len() >= 3, "x ticks");
    assert!(select(&html, &format!("{loss} svg text.tick.y")).len() >= 3, "y ticks");
    assert_eq!(text_of(&html, &format!("{loss} svg text.axis-label.y")), "loss (nats)");
    assert_eq!(text_of(&html, &format!("{loss} svg text.axis-label.x")), "step");
    assert_eq!(select(&html, &format!("{loss} svg g.legend")).len(), 2, "a legend names both lines");
    assert!(!select(&html, "figure[data-metric=cpu_pct] svg text.tick.x").is_empty(), "heartbeat time ticks");
    assert!(
        select(&html, "figure[data-metric=cpu_pct] svg text.tick.x")
            .iter()
            .any(|t| t.text().collect::<String>().ends_with(" h")),
        "heartbeat ticks read as durations"
    );
    assert!(!select(&html, "figure[data-metric=cpu_pct] polyline").is_empty(), "the CPU chart");
    // A run links the claims that cite it, each to its row on its artifact's page; a chart
    // links the claims that read its metric.
    let citing: Vec<&Value> = audit["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["runs"].as_array().unwrap().iter().any(|r| r == "r-0005"))
        .collect();
    assert!(citing.len() >= 2, "the demo's r-0005 is cited");
    let (_, r5) = page(&http, &url, "/runs/r-0005").await;
    let links: Vec<String> = select(&r5, "#run-claims tbody tr td:nth-child(2) a")
        .iter()
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect();
    let expected: Vec<String> = citing
        .iter()
        .map(|c| {
            format!("/artifacts/{}#claim-{}", c["artifact"].as_str().unwrap(), c["claim"].as_str().unwrap())
        })
        .collect();
    assert_eq!(links, expected);
    let (_, artifact) = page(&http, &url, links[0].split('#').next().unwrap()).await;
    assert_eq!(
        select(&artifact, &format!("tr#{}", links[0].split('#').nth(1).unwrap())).len(),
        1,
        "the claim's row"
    );
    let cites: Vec<String> = select(&r5, "figure[data-metric=loss] .cites a")
        .iter()
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect();
    assert!(
        !cites.is_empty() && cites.iter().all(|h| links.contains(h)),
        "the loss chart's claims: {cites:?}"
    );
    assert!(!select(&html, "table.evidence tbody tr").is_empty(), "the evidence files");
    // Its times are the runner's (the demo's events span days; the ledger received them in
    // seconds), each with the ledger's receive time beside it.
    let run = &queue["runs"]["r-0002"];
    let shown: Vec<String> = select(&html, "#run-facts time")
        .iter()
        .map(|t| t.value().attr("datetime").unwrap().to_owned())
        .collect();
    let producer = &run["producer_time"];
    let expected: Vec<String> = ["queued", "started", "finished", "quiesced"]
        .iter()
        .filter_map(|k| producer[*k].as_str().map(str::to_owned))
        .collect();
    assert_eq!(shown, expected, "the run page shows the producer's times");
    assert!(expected.len() == 4 && expected[0] < expected[3], "r-0002 ran its course: {producer}");

    // Events: filtered as the API filters; an event page holds the envelope and its proof.
    let xid_events = api(&http, &url, "/v1/events?type=gpu.xid&limit=1000").await;
    let (_, html) = page(&http, &url, "/events?type=gpu.xid&limit=1000").await;
    assert_eq!(select(&html, "#events-log tbody tr").len(), xid_events["records"].as_array().unwrap().len());
    let record = &xid_events["records"][0];
    let (_, html) = page(&http, &url, &format!("/events/{}", record["digest"].as_str().unwrap())).await;
    let shown: Value = serde_json::from_str(&text_of(&html, "#envelope")).expect("the envelope is JSON");
    assert_eq!(shown, record["envelope"]);
    let proof = api(&http, &url, &format!("/v1/proof/inclusion?seq={}", record["seq"])).await;
    assert_eq!(select(&html, "ol.proof li").len(), proof["proof"].as_array().unwrap().len());

    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success(), "graceful stop");
}
