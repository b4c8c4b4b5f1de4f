//! The dispatch gate is serialized with appends: concurrent requests for one GPU lane get
//! exactly one acceptance until the holder quiesces.

use crate::support::store;
use assay::clock::now_ns;
use assay::keyfile;
use assay::ledger::{Incoming, Ledger, LedgerOptions, build_envelope};
use assay::store::{Durability, Store};
use assay_events::keys::SignerKey;

use serde_json::{Value, json};

const WORKER: &str = "gpu-node-1";
const GPU: &str = "0000:01:00.0";

struct Lab {
    ledger: Ledger,
    store: Store,
    dispatcher: SignerKey,
    worker: SignerKey,
    runner: SignerKey,
    _db: store::TestDb,
    _dir: tempfile::TempDir,
}

async fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let db = store::TestDb::new(dir.path(), "l.db");
    let store = Store::open(&db.target, Durability::Relaxed, true).await.unwrap();
    let admin = keyfile::generate("admin").unwrap();
    let dispatcher = keyfile::generate("dispatcher").unwrap();
    let worker = keyfile::generate("worker").unwrap();
    let runner = keyfile::generate("runner").unwrap();
    let ledger = Ledger::init(
        store.clone(),
        "gates.test/log",
        keyfile::generate("ledger").unwrap(),
        &[admin.verifier()],
        LedgerOptions::default(),
    )
    .await
    .unwrap();
    let register = |k: &SignerKey, role: &str| {
        let data = json!({"vkey": k.verifier().to_text(), "roles": [role]});
        Incoming::Decoded(build_envelope(
            &admin,
            "key.registered",
            Some(&format!("key/{}", k.name())),
            data,
            None,
            now_ns(),
        ))
    };
    let keys =
        vec![register(&dispatcher, "dispatcher"), register(&worker, "worker"), register(&runner, "runner")];
    ledger.append(keys).await.unwrap();
    let lab = Lab { ledger, store, dispatcher, worker, runner, _db: db, _dir: dir };
    lab.emit(
        &lab.worker,
        "worker.preflight",
        format!("worker/{WORKER}"),
        json!({
            "worker": WORKER, "healthy": true, "checks": [{"name": "nvml", "ok": true}], "gpus": [GPU]
        }),
    )
    .await;
    lab
}

impl Lab {
    async fn emit(&self, key: &SignerKey, ty: &str, subject: String, data: Value) -> u64 {
        let env = build_envelope(key, ty, Some(&subject), data, None, now_ns());
        self.ledger.append(vec![Incoming::Decoded(env)]).await.unwrap().acks[0].seq
    }

    async fn queue(&self, run: &str) {
        self.emit(
            &self.dispatcher,
            "run.queued",
            format!("run/{run}"),
            json!({
                "run": run, "project": "p", "needs_gpu": true, "spec": {}
            }),
        )
        .await;
    }

    /// Every `dispatch.decided` record's data, in seq order.
    async fn decisions(&self) -> Vec<Value> {
        let records = self.store.records_filtered(0, 10_000, Some("dispatch.decided"), None).await.unwrap();
        records.iter().map(|r| r.to_record().unwrap().event.data).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_one_lane_get_exactly_one_acceptance() {
    let lab = lab().await;
    let runs: Vec<String> = (0..100).map(|i| format!("r-{i:03}")).collect();
    for run in &runs {
        lab.queue(run).await;
    }
    let mut tasks = Vec::new();
    for run in runs.clone() {
        let ledger = lab.ledger.clone();
        let key = lab.dispatcher.clone();
        tasks.push(tokio::spawn(async move {
            let data = json!({"run": run, "worker": WORKER, "gpu": GPU});
            let env =
                build_envelope(&key, "dispatch.requested", Some(&format!("run/{run}")), data, None, now_ns());
            ledger.append(vec![Incoming::Decoded(env)]).await.unwrap().acks[0].seq
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let decisions = lab.decisions().await;
    assert_eq!(decisions.len(), 100, "one decision per request");
    let accepted: Vec<&Value> = decisions.iter().filter(|d| d["accepted"] == true).collect();
    assert_eq!(accepted.len(), 1, "exactly one acceptance: {accepted:?}");
    let holder = accepted[0]["run"].as_str().unwrap().to_owned();
    let held = format!("lane_held_by:{holder}");
    for d in decisions.iter().filter(|d| d["accepted"] == false) {
        let reasons: Vec<&str> =
            d["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert_eq!(reasons, vec![held.as_str()], "refusal of {}", d["run"]);
    }

    // The lane stays held through the run, and frees once it quiesces.
    let subject = format!("run/{holder}");
    lab.emit(
        &lab.worker,
        "run.started",
        subject.clone(),
        json!({"run": holder, "worker": WORKER, "gpu": GPU}),
    )
    .await;
    lab.emit(
        &lab.worker,
        "run.finished",
        subject.clone(),
        json!({"run": holder, "exit_code": 0, "duration_ms": 10}),
    )
    .await;
    let other = runs.iter().find(|r| **r != holder).unwrap().clone();
    lab.queue("r-late").await;
    let request = |run: &str| json!({"run": run, "worker": WORKER, "gpu": GPU});
    lab.emit(&lab.dispatcher, "dispatch.requested", "run/r-late".into(), request("r-late")).await;
    let last = lab.decisions().await.pop().unwrap();
    assert_eq!(last["accepted"], false, "finished but not quiesced still holds the lane");
    assert_eq!(last["reasons"][0], held.as_str());

    lab.emit(
        &lab.worker,
        "run.quiesced",
        subject,
        json!({
            "run": holder, "quiet_window_ms": 5000, "cpu_pct_max": 1.0, "gpu_util_max": 0.0
        }),
    )
    .await;
    lab.emit(&lab.dispatcher, "dispatch.requested", format!("run/{other}"), request(&other)).await;
    let last = lab.decisions().await.pop().unwrap();
    assert_eq!(last["accepted"], true, "the lane is free after run.quiesced: {last}");
    assert_eq!(last["run"], other.as_str());
    lab.ledger.shutdown().await;
}

#[tokio::test]
async fn a_gpu_that_needs_a_reset_is_refused_until_a_preflight_finds_it_working() {
    let lab = lab().await;
    lab.queue("r-1").await;
    let xid = json!({
        "host": WORKER, "pci": GPU, "code": 79, "pid": null, "process": null,
        "message": "GPU has fallen off the bus.", "source": "kmsg", "severity": "hardware",
        "action": "RESET_GPU", "kernel_time": "2026-09-08T01:00:02+0000"
    });
    lab.emit(&lab.runner, "gpu.xid", format!("gpu/{GPU}"), xid).await;
    let request = json!({"run": "r-1", "worker": WORKER, "gpu": GPU});
    lab.emit(&lab.dispatcher, "dispatch.requested", "run/r-1".into(), request.clone()).await;
    let last = lab.decisions().await.pop().unwrap();
    assert_eq!(last["accepted"], false, "{last}");
    assert_eq!(last["reasons"], json!([format!("gpu_needs_reset:{GPU}")]));

    // The runner's preflight after the reset finds the device working.
    let preflight = json!({
        "host": WORKER, "available": true, "unavailable_reason": null,
        "devices": [{"index": 0, "uuid": "GPU-34d7319c-5b19-1e75-186d-c187099e4fe5",
                     "pci": "00000000:01:00.0", "name": "NVIDIA A100-SXM4-80GB",
                     "memory_bytes": 85_899_345_920_u64, "driver": "570.133.20", "cuda": "12.8"}]
    });
    lab.emit(&lab.runner, "gpu.preflight", format!("worker/{WORKER}"), preflight).await;
    lab.emit(&lab.dispatcher, "dispatch.requested", "run/r-1".into(), request).await;
    let last = lab.decisions().await.pop().unwrap();
    assert_eq!(last["accepted"], true, "{last}");
    lab.ledger.shutdown().await;
}

#[tokio::test]
async fn the_decision_follows_its_request_and_names_it() {
    let lab = lab().await;
    lab.queue("r-1").await;
    let seq = lab
        .emit(
            &lab.dispatcher,
            "dispatch.requested",
            "run/r-1".into(),
            json!({"run": "r-1", "worker": WORKER, "gpu": GPU}),
        )
        .await;
    let records = lab.store.records(seq, 2).await.unwrap();
    assert_eq!(records[1].ty, "dispatch.decided");
    let decided = records[1].to_record().unwrap();
    assert_eq!(decided.event.data["request"], records[0].digest.to_hex());
    assert_eq!(decided.event.source, "assay:key/ledger");
    lab.ledger.shutdown().await;
    let report = assay::verify::verify(&lab.store, None, |_, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn producers_cannot_write_ledger_decisions() {
    let lab = lab().await;
    let env = build_envelope(
        &lab.dispatcher,
        "dispatch.decided",
        Some("run/r-1"),
        json!({"run": "r-1", "worker": WORKER, "gpu": GPU, "accepted": true, "reasons": [],
               "request": "00".repeat(32)}),
        None,
        now_ns(),
    );
    let err = lab.ledger.append(vec![Incoming::Decoded(env)]).await.unwrap_err();
    assert!(err.to_string().contains("written only by the ledger"), "{err}");
    lab.ledger.shutdown().await;
}
