//! The log side of C2SP tlog-witness: `assay serve --witness NAME=URL=VKEY --witness-quorum K`
//! against real `assay witness serve` processes. Two witnesses with quorum 2, one killed: the
//! head carries one cosignature, appends go on, `/checkpoint` stays at the last checkpoint both
//! cosigned, and the witness catches up when it is back; a witness whose record the log's store
//! does not know is resumed from the size its 409 names; `/metrics` shows sizes and lag.

use std::time::{Duration, Instant};

use assay_events::checkpoint::Checkpoint;
use assay_events::cosignature::CosignerVerifier;
use assay_events::note;

use crate::support::witness::{WitnessProc, add_checkpoint, body, new_witness_key};
use crate::support::{Key, Lab, metric_lines};

/// Longest wait for the witnesses to reach a state (they retry within seconds).
const PATIENCE: Duration = Duration::from_secs(90);

struct Witnessed {
    proc: WitnessProc,
    vkey: CosignerVerifier,
}

fn witness(lab: &Lab, name: &str) -> Witnessed {
    let logs = lab.write(
        "logs.toml",
        format!("[[log]]\norigin = \"t.local/assay\"\nvkeys = [\"{}\"]\n", lab.ledger_vkey().to_text()),
    );
    let (key, vkey) = new_witness_key(&lab.path(""), &format!("witness.test/{name}"), &format!("{name}.key"));
    let proc = WitnessProc::start(&key, &logs, &lab.path(&format!("{name}.db")), "127.0.0.1:0", false);
    Witnessed { proc, vkey }
}

fn flag(name: &str, w: &Witnessed) -> String {
    format!("{name}={}={}", w.proc.url, w.vkey.to_text())
}

/// Appends `n` metrics through the server.
fn append(lab: &Lab, key: &Key, url: &str, run: &str, n: u64) {
    let file = lab.write(&format!("{run}.ndjson"), metric_lines(run, 0, n));
    let out = lab.run([
        "append".as_ref(),
        "--server".as_ref(),
        url.as_ref(),
        "--key".as_ref(),
        key.key.as_os_str(),
        "--ndjson".as_ref(),
        file.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.acks().len() as u64, n, "{out:?}");
}

async fn text(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.expect("the server answers");
    (r.status().as_u16(), r.text().await.expect("a body"))
}

/// The note's size and which of `witnesses` cosigned it (validly).
fn read(note_text: &str, witnesses: &[&CosignerVerifier]) -> (u64, Vec<bool>) {
    let n = note::parse(note_text).expect("a note");
    let size = Checkpoint::from_text(&n.text).expect("a checkpoint").size;
    (size, witnesses.iter().map(|w| w.find(&n).expect("no invalid line").is_some()).collect())
}

/// Polls `what` until `done` holds of it; fails after [`PATIENCE`] showing the last value.
async fn until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    mut what: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let v = what().await;
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "still not there: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(metrics: &str, name: &str, witness: &str) -> Option<f64> {
    let prefix = format!("{name}{{witness=\"{witness}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_two_with_one_witness_down_then_back() {
    let lab = Lab::new();
    let worker = lab.worker("w");
    let w1 = witness(&lab, "w1");
    let mut w2 = witness(&lab, "w2");
    let served = lab.serve_with(&[
        "--witness",
        &flag("w1", &w1),
        "--witness",
        &flag("w2", &w2),
        "--witness-quorum",
        "2",
    ]);
    let http = reqwest::Client::new();
    let (v1, v2) = (&w1.vkey, &w2.vkey);
    let head_url = format!("{}/v1/checkpoint", served.url);
    let quorum_url = format!("{}/checkpoint", served.url);
    append(&lab, &worker, &served.url, "r-1", 3);
    let size = lab.records();
    // Both cosign the head; /checkpoint serves it.
    let (_, both) =
        until(|| text(&http, &head_url), |(_, t)| read(t, &[v1, v2]) == (size, vec![true, true])).await;
    let (status, quorum) = text(&http, &quorum_url).await;
    assert_eq!((status, quorum.as_str()), (200, both.as_str()));

    // w2 goes down: appends still succeed, the head gets w1's cosignature only.
    w2.proc.kill9();
    append(&lab, &worker, &served.url, "r-2", 3);
    let later = lab.records();
    assert!(later > size);
    until(|| text(&http, &head_url), |(_, t)| read(t, &[v1, v2]) == (later, vec![true, false])).await;
    // /checkpoint stays at the latest checkpoint both cosigned.
    let (status, quorum) = text(&http, &quorum_url).await;
    assert_eq!((status, read(&quorum, &[v1, v2])), (200, (size, vec![true, true])));
    let (_, metrics) = text(&http, &format!("{}/metrics", served.url)).await;
    assert_eq!(metric(&metrics, "assay_witness_cosigned_size", "w1"), Some(later as f64), "{metrics}");
    assert_eq!(metric(&metrics, "assay_witness_cosigned_size", "w2"), Some(size as f64), "{metrics}");
    assert_eq!(metric(&metrics, "assay_witness_lag_entries", "w2"), Some((later - size) as f64), "{metrics}");
    assert!(metric(&metrics, "assay_witness_failures_total", "w2").is_some_and(|n| n >= 1.0), "{metrics}");

    // w2 comes back on the same address and state: it catches up without another append.
    let listen = w2.proc.listen();
    let (key, logs, state) = (w2.proc.key.clone(), w2.proc.logs.clone(), w2.proc.state.clone());
    w2.proc = WitnessProc::start(&key, &logs, &state, &listen, false);
    let v2 = &w2.vkey;
    until(|| text(&http, &quorum_url), |(s, t)| *s == 200 && read(t, &[v1, v2]) == (later, vec![true, true]))
        .await;
    let (_, metrics) = text(&http, &format!("{}/metrics", served.url)).await;
    assert_eq!(metric(&metrics, "assay_witness_lag_entries", "w2"), Some(0.0), "{metrics}");
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_the_store_knows_nothing_of_is_resumed_from_its_409() {
    let lab = Lab::new();
    let worker = lab.worker("w");
    lab.append_metrics(&worker, "r-1", 0, 4);
    let w1 = witness(&lab, "w1");
    let http = reqwest::Client::new();
    // The witness cosigned this ledger at `size` before this server ever asked it.
    let note = lab.checkpoint();
    let size = Checkpoint::open(&note, &lab.ledger_vkey()).expect("a checkpoint").size;
    assert_eq!(add_checkpoint(&http, &w1.proc.url, body(0, &[], &note)).await.0, 200);
    lab.append_metrics(&worker, "r-2", 0, 3);
    let head = lab.records();
    // The server starts from old 0, is told `size`, proves from there.
    let served = lab.serve_with(&["--witness", &flag("w1", &w1)]);
    let quorum_url = format!("{}/checkpoint", served.url);
    until(|| text(&http, &quorum_url), |(s, t)| *s == 200 && read(t, &[&w1.vkey]) == (head, vec![true]))
        .await;
    let (_, metrics) = text(&http, &format!("{}/metrics", served.url)).await;
    assert_eq!(metric(&metrics, "assay_witness_cosigned_size", "w1"), Some(head as f64), "{metrics}");
    assert!(metric(&metrics, "assay_witness_failures_total", "w1").is_none_or(|n| n == 0.0), "{metrics}");
    assert!(size < head);
}

#[test]
fn witness_flags_are_checked_before_serving() {
    let lab = Lab::new();
    let vkey = assay_events::cosignature::Cosigner::from_seed("witness.test/w", [9; 32]).unwrap().verifier();
    let one = format!("w1=http://127.0.0.1:9={}", vkey.to_text());
    for (args, says) in [
        (
            vec!["--witness", one.as_str(), "--witness-quorum", "2"],
            "--witness-quorum 2 exceeds the 1 --witness",
        ),
        (vec!["--witness", "w1=http://127.0.0.1:9=nope"], "not a witness vkey"),
        (vec!["--witness", one.as_str(), "--witness", one.as_str()], "two --witness are named w1"),
    ] {
        let out = lab.db(&["serve"], &args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}
