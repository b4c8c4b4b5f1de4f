//! The kernel pages over real campaign runs: `assay run campaign` runs command cells (real
//! child processes: passes, a wrong answer, a SIGSEGV, a CUDA illegal-address message with an
//! Xid appended to the kernel log it follows, fallbacks) through the real server, twice, with
//! a change between; then `/kernels` lists the runs, `/kernels/run/{run}` draws a run's matrix
//! (cells' classes and texts, the Xid, the fallback, a long kernel name whole, rows and
//! columns chosen, values held), `/kernels/diff` the diff of the two, `/v1/campaigns/…` the
//! attached Xids, and bad or unknown runs are 4xx pages.

use crate::dashboard::{page, select, text_of};
use crate::support::http as app;

use std::path::{Path, PathBuf};

use app::{App, spawn_app};
use reqwest::StatusCode;
use scraper::Html;
use serde_json::{Value, json};

/// A kernel name longer than any fixed label column (110 characters).
const LONG: &str = "flashinfer.batch_decode_with_paged_kv_cache.fp8_e4m3.sm121a.tensor_cores.split_kv.cuda_graph.variant_with_a_tail";

/// `gemm`: m × route × seed. A cell's line in the state file (`M-ROUTE=fail|pass|crash`)
/// decides it; else `good` and `reference` pass, `oob` at m = 64 appends an Xid 13 to the
/// kernel log and prints PyTorch's illegal-address message, and `oob` elsewhere dies of
/// SIGSEGV. Cells that do not pass fall back to `reference`. The long kernel always passes.
const CAMPAIGN: &str = r#"name = "pages"
[[command]]
name = "gemm"
command = ["sh", "-c", """
st=$(grep "^{m}-{route}=" STATE | cut -d= -f2)
case "$st" in fail) exit 1;; pass) exit 0;; crash) kill -SEGV $$;; esac
case {route} in
  good|reference) exit 0;;
esac
if [ {m} = 64 ]; then
  now=$(date -u +%Y-%m-%dT%H:%M:%S.%N+0000)
  echo "$now n1 kernel: NVRM: Xid (PCI:0000:41:00): 13, pid=$$, name=sh, Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0): Out Of Range Address" >> KLOG
  echo 'RuntimeError: CUDA error: an illegal memory access was encountered' >&2
  exit 1
fi
kill -SEGV $$
"""]
fallback = { route = "reference" }
m = [64, 128, 256]
route = ["good", "oob"]
seed = [1]

[[command]]
name = "LONG"
command = ["true"]
n = [1, 2]
"#;

/// A served ledger, a runner key on it, the campaign file, its state file and kernel log.
struct Lab {
    app: App,
    key: PathBuf,
    campaign: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

async fn lab() -> Lab {
    let app = spawn_app().await;
    let runner = app.key("runner", &["runner"]).await;
    let dir = app.dir.path().to_owned();
    let (key, _) = assay::keyfile::write_pair(&dir.join("keys"), &runner).expect("key files");
    let (state, log) = (dir.join("state"), dir.join("kern.log"));
    std::fs::write(&state, "").expect("state");
    std::fs::write(&log, "").expect("kernel log");
    let text = CAMPAIGN
        .replace("STATE", &state.display().to_string())
        .replace("KLOG", &log.display().to_string())
        .replace("LONG", LONG);
    let campaign = dir.join("pages.toml");
    std::fs::write(&campaign, text).expect("campaign");
    Lab { app, key, campaign, state, log }
}

impl Lab {
    /// `assay run campaign` through the server, as run `run`; its summary JSON.
    async fn run(&self, run: &str) -> Value {
        let s = |p: &Path| p.display().to_string();
        let args = vec![
            "run".to_owned(),
            "campaign".to_owned(),
            s(&self.campaign),
            "--server".to_owned(),
            self.app.url.clone(),
            "--key".to_owned(),
            s(&self.key),
            "--run".to_owned(),
            run.to_owned(),
            "--kernel-log".to_owned(),
            s(&self.log),
            "--json".to_owned(),
        ];
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_assay"))
                .args(&args)
                .env_remove("ASSAY_DB")
                .env_remove("ASSAY_TOKEN")
                .output()
                .expect("running assay")
        })
        .await
        .expect("the campaign");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
    }

    async fn page(&self, path: &str) -> (StatusCode, Html) {
        page(&self.app.http, &self.app.url, path).await
    }

    async fn ok(&self, path: &str) -> Html {
        let (status, html) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {}", html.html());
        html
    }
}

/// The text of an element, whitespace collapsed.
fn text(e: &scraper::ElementRef<'_>) -> String {
    e.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The matrix cell at (row, column) value: its class attribute and its text.
fn cell(html: &Html, row: &str, col: &str) -> (String, String) {
    let css = format!(r#"#matrix td[data-row="{row}"][data-col="{col}"]"#);
    let found = select(html, &css);
    let td = found.first().unwrap_or_else(|| panic!("no cell {css} in {}", html.html()));
    (td.value().attr("class").unwrap_or("").to_owned(), text(td))
}

/// The texts of the matrix's column and row heads.
fn heads(html: &Html) -> (Vec<String>, Vec<String>) {
    let texts = |css: &str| select(html, css).iter().map(text).collect::<Vec<_>>();
    (texts("#matrix thead th[data-col]"), texts("#matrix tbody th[data-row]"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matrix_and_the_diff_of_real_campaign_runs() {
    let lab = lab().await;
    let base = lab.run("lab/base").await;
    assert_eq!(base["totals"], json!({"passed": 5, "failed": 0, "faulted": 3}), "{base}");
    std::fs::write(&lab.state, "128-good=fail\n256-good=crash\n128-oob=pass\n").expect("state");
    let new = lab.run("lab/new").await;
    assert_eq!(new["totals"], json!({"passed": 4, "failed": 1, "faulted": 3}), "{new}");

    // The API: the Xid on the cell it was attached to, not on its fallback.
    let (status, cells) = lab.app.get("/v1/campaigns/lab/base").await;
    assert_eq!(status, StatusCode::OK, "{cells}");
    let oob64 = cells["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["variant"] == json!({"m": 64, "route": "oob", "seed": 1}))
        .expect("the cell");
    assert_eq!(oob64["error"], "CUDA_ERROR_ILLEGAL_ADDRESS", "{oob64}");
    assert_eq!(oob64["xids"], json!([13]), "{oob64}");
    assert_eq!(oob64["fallback"]["outcome"], "passed", "{oob64}");
    assert!(oob64["fallback"].get("xids").is_none(), "{oob64}");
    let (_, d) = lab.app.get("/v1/campaigns/lab/new/diff?base=lab/base").await;
    let d64 = d["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["variant"]["m"] == 64 && c["variant"]["route"] == "oob");
    let d64 = d64.expect("the cell");
    assert_eq!((&d64["base"]["xids"], &d64["new"]["xids"]), (&json!([13]), &json!([13])), "{d64}");

    // The overview lists the runs, latest first, linked to their matrices.
    let overview = lab.ok("/kernels").await;
    let runs: Vec<(String, String)> = select(&overview, "#campaign-runs tbody tr td.kname a")
        .iter()
        .map(|a| (text(a), a.value().attr("href").unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        runs,
        [
            ("lab/new".to_owned(), "/kernels/run/lab/new".to_owned()),
            ("lab/base".to_owned(), "/kernels/run/lab/base".to_owned())
        ]
    );
    // The heatmap's label column fits the long name (7 px a character at least).
    let label = select(&overview, "#kernel-heatmap text.tick")
        .into_iter()
        .find(|t| text(t).starts_with(LONG))
        .expect("the long kernel's label");
    let x: f64 = label.value().attr("x").and_then(|x| x.parse().ok()).expect("x");
    assert!(
        x >= 7.0 * text(&label).chars().count() as f64,
        "the label is clipped at x={x}: {}",
        text(&label)
    );

    // The run's matrix: the first kernel by name (the long one: "f" < "g"), with its one axis
    // down the rows and no column axis.
    let first = lab.ok("/kernels/run/lab/base").await;
    assert_eq!(text_of(&first, "#kernel-name"), LONG, "the default kernel is the first by name, whole");
    assert_eq!(
        text_of(&first, "#run-totals"),
        "8 cells of 2 kernel(s): 5 passed, 0 failed, 3 faulted; 3 fallback(s) ran."
    );
    let options: Vec<String> = select(&first, "#kernel-form option").iter().map(text).collect();
    assert_eq!(options, [LONG, "gemm"], "kernel names are offered whole");
    assert_eq!(heads(&first), (vec!["—".to_owned()], vec!["1".to_owned(), "2".to_owned()]));
    let (class, _) = cell(&first, "1", "—");
    assert_eq!(class, "k-pass");

    // gemm: rows m (3 values), columns route (2); seed has one value, said once.
    let m = lab.ok("/kernels/run/lab/base?kernel=gemm").await;
    assert_eq!(
        heads(&m),
        (
            vec!["good".to_owned(), "oob".to_owned()],
            vec!["64".to_owned(), "128".to_owned(), "256".to_owned()]
        )
    );
    assert_eq!(text_of(&m, "#constants"), "In every cell: seed=1.");
    assert!(select(&m, "#stacked").is_empty(), "an axis of one value is said once, not stacked");
    let (class, text64) = cell(&m, "64", "oob");
    assert_eq!(class, "k-fault");
    // The fallback's pass ends with its duration.
    let rescued = |head: &str, text: &str| {
        let rest = text.strip_prefix(&format!("{head} → fallback route=reference passed "));
        assert!(rest.is_some_and(|d| d.ends_with('s')), "{text}");
    };
    rescued("faulted CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13", &text64);
    let (class, text128) = cell(&m, "128", "oob");
    assert_eq!(class, "k-fault");
    rescued("faulted SIGNAL_SIGSEGV", &text128);
    let (class, good) = cell(&m, "128", "good");
    assert_eq!(class, "k-pass");
    assert!(good.starts_with("passed "), "{good}");
    let duration = select(&m, r#"#matrix td[data-row="128"][data-col="good"] .detail"#);
    assert!(duration.first().is_some_and(|d| text(d).ends_with('s')), "a pass says its duration: {good}");
    assert_eq!(select(&m, "#matrix .fallback.k-pass").len(), 3, "three fallbacks, all passed");

    // The new run: a failure, a new fault, a fix.
    let n = lab.ok("/kernels/run/lab/new?kernel=gemm").await;
    assert_eq!(cell(&n, "128", "good").0, "k-fail");
    rescued("failed", &cell(&n, "128", "good").1);
    assert_eq!(cell(&n, "256", "good").0, "k-fault");
    rescued("faulted SIGNAL_SIGSEGV", &cell(&n, "256", "good").1);
    assert_eq!(cell(&n, "128", "oob").0, "k-pass");

    // Rows and columns chosen: route down, m across, seed held; m stacked when rows=seed.
    let t = lab.ok("/kernels/run/lab/base?kernel=gemm&rows=route&cols=m&where.seed=1").await;
    assert_eq!(
        heads(&t),
        (
            vec!["64".to_owned(), "128".to_owned(), "256".to_owned()],
            vec!["good".to_owned(), "oob".to_owned()]
        )
    );
    assert!(
        cell(&t, "oob", "64").1.starts_with("faulted CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13"),
        "{:?}",
        cell(&t, "oob", "64")
    );
    let s = lab.ok("/kernels/run/lab/base?kernel=gemm&rows=seed&cols=route").await;
    let (class, oob) = cell(&s, "1", "oob");
    assert_eq!(class, "k-fault", "the worst of the stacked entries");
    assert_eq!(select(&s, r#"#matrix td[data-col="oob"] div.entry"#).len(), 3, "m stacked: {oob}");
    assert!(oob.contains("m=64 faulted") && oob.contains("m=256 faulted"), "{oob}");
    let held = lab.ok("/kernels/run/lab/base?kernel=gemm&where.m=64").await;
    assert_eq!(
        heads(&held),
        (vec!["1".to_owned()], vec!["good".to_owned(), "oob".to_owned()]),
        "held at m=64"
    );
    assert!(cell(&held, "oob", "1").1.contains("Xid 13"), "{:?}", cell(&held, "oob", "1"));
    // The form keeps the choice.
    let chosen: Vec<String> = select(&t, "#layout-form select option[selected]").iter().map(text).collect();
    assert_eq!(chosen, ["route", "m", "1"]);

    // The diff page: counts, the gate, regressions and new faults first, Xids on both sides.
    let dp = lab.ok("/kernels/diff?base=lab/base&new=lab/new").await;
    for (class, n) in
        [("regressed", 1), ("newly_faulted", 1), ("fixed", 1), ("unchanged", 5), ("gone", 0), ("new", 0)]
    {
        assert_eq!(text_of(&dp, &format!("#count-{class}")), n.to_string(), "{class}");
    }
    assert!(
        text_of(&dp, "#diff-gate").starts_with("✗ FAIL 1 regressed and 1 newly faulted"),
        "{}",
        text_of(&dp, "#diff-gate")
    );
    let counted: Vec<String> = select(&dp, "#diff-counts tbody tr")
        .iter()
        .map(|r| r.value().attr("class").unwrap_or("").to_owned())
        .collect();
    assert_eq!(counted, ["d-regressed", "d-newly_faulted", "d-fixed", "d-gone", "d-new", "d-unchanged"]);
    let order: Vec<String> = select(&dp, "#diff-cells tbody tr")
        .iter()
        .map(|r| r.value().attr("data-class").unwrap_or("").to_owned())
        .collect();
    assert_eq!(order[..3], ["regressed", "newly_faulted", "fixed"], "{order:?}");
    assert_eq!(order.len(), 8);
    let regressed = select(&dp, "#diff-cells tr.d-regressed");
    assert!(text(&regressed[0]).contains(r#"{"m":128,"route":"good","seed":1}"#), "{}", text(&regressed[0]));
    assert_eq!(
        select(&dp, "#diff-cells tr.d-regressed td.base .entry")[0].value().attr("class"),
        Some("entry k-pass")
    );
    assert_eq!(
        select(&dp, "#diff-cells tr.d-regressed td.new .entry")[0].value().attr("class"),
        Some("entry k-fail")
    );
    let unchanged_fault = select(&dp, "#diff-cells tr.d-unchanged")
        .into_iter()
        .find(|r| text(r).contains(r#""m":64,"route":"oob""#))
        .expect("the faulting cell");
    assert!(
        text(&unchanged_fault).contains("faulted CUDA_ERROR_ILLEGAL_ADDRESS · Xid 13"),
        "{}",
        text(&unchanged_fault)
    );
    let long = select(&dp, "#diff-cells tr.d-unchanged td.kname").into_iter().find(|t| text(t) == LONG);
    assert!(long.is_some(), "the long kernel name is whole in the diff");
    let timing = select(&dp, "#diff-cells tr.d-unchanged td.timing").iter().map(text).collect::<Vec<_>>();
    assert!(timing.iter().any(|t| t.starts_with("no spread to judge by: ")), "{timing:?}");

    // Bad and unknown runs, kernels, axes and parameters: 4xx pages naming the problem.
    for (path, status, needle) in [
        ("/kernels/run/nope", 404, "no run \"nope\""),
        ("/kernels/run/a%20b", 400, "bad run id"),
        ("/kernels/diff?base=nope&new=lab/new", 404, "no run \"nope\""),
        ("/kernels/diff?base=lab/base&new=nope", 404, "no run \"nope\""),
        ("/kernels/diff?base=a%20b&new=lab/new", 400, "base: bad run id"),
        ("/kernels/diff?new=lab/new", 400, "needs both runs"),
        ("/kernels/diff?base=lab/base&new=lab/new&x=1", 400, "unknown field"),
        ("/kernels/run/lab/base?kernel=nope", 400, "has no kernel \"nope\""),
        ("/kernels/run/lab/base?kernel=gemm&rows=zz", 400, "rows: kernel \"gemm\" has no axis \"zz\""),
        ("/kernels/run/lab/base?kernel=gemm&rows=m&cols=m", 400, "both \"m\""),
        ("/kernels/run/lab/base?kernel=gemm&where.m=65", 400, "no cell of kernel \"gemm\" has m = \"65\""),
        ("/kernels/run/lab/base?bogus=1", 400, "unknown parameter \"bogus\""),
    ] {
        let (got, html) = lab.page(path).await;
        assert_eq!(got.as_u16(), status, "{path}: {}", html.html());
        let detail = text_of(&html, "p.error");
        assert!(detail.contains(needle), "{path}: {detail}");
    }
    lab.app.stop().await;
}
