//! `assay witness serve`, a C2SP tlog-witness, as a real process over HTTP: every response
//! code the spec names, a forked log refused with the refusal kept as evidence, a kill -9
//! between the durable write and the answer, and concurrent submissions.

use std::collections::{BTreeMap, BTreeSet};

use assay_events::checkpoint::Checkpoint;
use assay_events::cosignature::CosignerVerifier;
use assay_events::note;

use crate::support::witness::{TestLog, WitnessProc, add_checkpoint, body, new_witness_key};

const ORIGIN: &str = "log.test/w";

struct Setup {
    dir: tempfile::TempDir,
    log: TestLog,
    vkey: CosignerVerifier,
    witness: WitnessProc,
    http: reqwest::Client,
}

fn setup(crash: bool) -> Setup {
    let dir = tempfile::tempdir().expect("a folder");
    let log = TestLog::new(ORIGIN, 1);
    let logs = dir.path().join("logs.toml");
    std::fs::write(&logs, log.logs_toml()).expect("logs.toml");
    let (key, vkey) = new_witness_key(dir.path(), "witness.test/w1", "w1.key");
    let witness = WitnessProc::start(&key, &logs, &dir.path().join("w1.db"), "127.0.0.1:0", crash);
    Setup { dir, log, vkey, witness, http: reqwest::Client::new() }
}

/// The checkpoint's size and root when `lines` hold a valid cosignature by `vkey` over it.
fn cosigned(vkey: &CosignerVerifier, checkpoint: &str, lines: &str) -> (u64, assay_events::Hash32) {
    let text = note::parse(checkpoint).expect("a note").text;
    let with = note::parse(&format!("{text}\n{lines}")).expect("cosignature lines");
    assert!(vkey.find(&with).expect("valid").is_some(), "no cosignature by the witness in {lines:?}");
    let c = Checkpoint::from_text(&text).expect("a checkpoint");
    (c.size, c.root)
}

/// The status line answered to a POST declaring `length` bytes of body and sending none.
async fn raw_status(url: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let head = format!("POST /add-checkpoint HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n");
    conn.write_all(head.as_bytes()).await.expect("the head is sent");
    let mut answer = vec![0; 512];
    let n = conn.read(&mut answer).await.expect("an answer");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn every_response_code_of_the_spec() {
    let s = setup(false);
    let url = &s.witness.url;
    // 404: an origin the witness does not know.
    let stranger = TestLog::new("log.test/unknown", 2);
    let (status, _, text) = add_checkpoint(&s.http, url, stranger.body(0, 0, 3)).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("log.test/unknown"), "{text}");
    // 403: the right origin, signed by a key the witness does not trust for it.
    let impostor = TestLog::new(ORIGIN, 3);
    let (status, _, text) = add_checkpoint(&s.http, url, impostor.body(0, 0, 3)).await;
    assert_eq!(status, 403, "{text}");
    // 400: old beyond the checkpoint's size, and malformed bodies.
    let (status, _, text) =
        add_checkpoint(&s.http, url, s.log.body(0, 0, 3).replacen("old 0", "old 4", 1)).await;
    assert_eq!((status, text.contains("beyond")), (400, true), "{text}");
    let hash = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=".to_owned();
    let cp = s.log.checkpoint(0, 3);
    for (bad, says) in [
        (body(1, &vec![hash.clone(); 64], &cp), "more than 63"),
        (body(1, &["not base64!".to_owned()], &cp), "proof line 1"),
        (body(0, &[], "log.test/w\nnot a size\n\n— x AAAAAAA=\n"), "not a checkpoint"),
        ("old 00\n\n".to_owned() + &cp, "old <size>"),
    ] {
        let (status, _, text) = add_checkpoint(&s.http, url, bad).await;
        assert_eq!(status, 400, "{says}: {text}");
        assert!(text.contains(says), "{says}: {text}");
    }
    // 413: a body beyond the bound, refused on its declared length before it is read.
    assert!(raw_status(url, 64 * 1024 + 1).await.starts_with("HTTP/1.1 413"));
    // 422: a proof is sent with old 0.
    let (status, _, text) = add_checkpoint(&s.http, url, body(0, std::slice::from_ref(&hash), &cp)).await;
    assert_eq!(status, 422, "{text}");
    // 200: the first checkpoint, from 0.
    let (status, ct, lines) = add_checkpoint(&s.http, url, s.log.body(0, 0, 5)).await;
    assert_eq!(status, 200, "{lines}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(cosigned(&s.vkey, &s.log.checkpoint(0, 5), &lines).0, 5);
    // 409 text/x.tlog.size: old is not the recorded size.
    let (status, ct, text) = add_checkpoint(&s.http, url, s.log.body(0, 3, 8)).await;
    assert_eq!((status, ct.as_str(), text.as_str()), (409, "text/x.tlog.size", "5\n"));
    // 422: a proof that does not verify.
    let (status, _, text) =
        add_checkpoint(&s.http, url, body(5, &TestLog::proof(0, 4, 8), &s.log.checkpoint(0, 8))).await;
    assert_eq!(status, 422, "{text}");
    // 200: consistent growth, with the proof; the same checkpoint again is cosigned again.
    let (status, _, lines) = add_checkpoint(&s.http, url, s.log.body(0, 5, 8)).await;
    assert_eq!(status, 200, "{lines}");
    assert_eq!(cosigned(&s.vkey, &s.log.checkpoint(0, 8), &lines).0, 8);
    let (status, _, lines) = add_checkpoint(&s.http, url, s.log.body(0, 8, 8)).await;
    assert_eq!(status, 200, "{lines}");
    assert_eq!(cosigned(&s.vkey, &s.log.checkpoint(0, 8), &lines).0, 8);
    // 409 without a size: the recorded size with another root.
    let (status, ct, text) = add_checkpoint(&s.http, url, s.log.body(1, 8, 8)).await;
    assert_eq!(status, 409, "{text}");
    assert_ne!(ct, "text/x.tlog.size");
    assert!(text.contains("another root"), "{text}");
    drop(s.dir);
}

#[tokio::test]
async fn a_forked_log_is_refused_and_the_refusal_kept_as_evidence() {
    let s = setup(false);
    let url = &s.witness.url;
    assert_eq!(add_checkpoint(&s.http, url, s.log.body(0, 0, 6)).await.0, 200);
    // The log shows another history: the same size with another root...
    let fork6 = s.log.checkpoint(1, 6);
    assert_eq!(add_checkpoint(&s.http, url, body(6, &[], &fork6)).await.0, 409);
    // ...and a larger tree whose proof only holds in the other history.
    let fork9 = s.log.checkpoint(1, 9);
    let proof = TestLog::proof(1, 6, 9);
    assert_eq!(add_checkpoint(&s.http, url, body(6, &proof, &fork9)).await.0, 422);
    // The genuine history still grows.
    assert_eq!(add_checkpoint(&s.http, url, s.log.body(0, 6, 10)).await.0, 200);
    let out = crate::support::command()
        .args(["witness", "evidence", "--state"])
        .arg(&s.witness.state)
        .output()
        .expect("assay witness evidence");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let recorded = s.log.checkpoint(0, 6);
    assert_eq!(
        (rows[0]["reason"].as_str(), rows[0]["submitted"].as_str(), rows[0]["recorded"].as_str()),
        (Some("fork"), Some(fork6.as_str()), Some(recorded.as_str()))
    );
    assert_eq!(
        (rows[1]["reason"].as_str(), rows[1]["submitted"].as_str(), rows[1]["old_size"].as_u64()),
        (Some("inconsistent"), Some(fork9.as_str()), Some(6))
    );
    assert_eq!(rows[1]["proof"], serde_json::json!(proof));
    // Both notes open under the log's key: evidence that its key signed two histories.
    for r in &rows {
        for field in ["submitted", "recorded"] {
            Checkpoint::open(r[field].as_str().unwrap(), &s.log.key.verifier()).expect("signed by the log");
        }
    }
}

#[tokio::test]
async fn a_kill_between_store_and_answer_loses_nothing() {
    let mut s = setup(true);
    // The witness stores size 5, then dies before answering.
    let sent =
        s.http.post(format!("{}/add-checkpoint", s.witness.url)).body(s.log.body(0, 0, 5)).send().await;
    assert!(sent.is_err(), "the witness aborted before answering: {sent:?}");
    let status = s.witness.child.wait().expect("the witness ended");
    assert!(!status.success(), "{status:?}");
    // Restarted (no crash switch) on the same state: the record survived.
    let (key, logs, state) = (s.witness.key.clone(), s.witness.logs.clone(), s.witness.state.clone());
    s.witness = WitnessProc::start(&key, &logs, &state, "127.0.0.1:0", false);
    let (status, ct, text) = add_checkpoint(&s.http, &s.witness.url, s.log.body(0, 0, 7)).await;
    assert_eq!((status, ct.as_str(), text.as_str()), (409, "text/x.tlog.size", "5\n"));
    // A retry from the size it names is cosigned.
    let (status, _, lines) = add_checkpoint(&s.http, &s.witness.url, s.log.body(0, 5, 7)).await;
    assert_eq!(status, 200, "{lines}");
    assert_eq!(cosigned(&s.vkey, &s.log.checkpoint(0, 7), &lines).0, 7);
}

/// 48 submitters race, half in each of two histories of one log, each starting from old 0 and
/// following the sizes the witness names: exactly one root is ever cosigned per size, and all
/// cosigned roots are of one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_never_cosign_two_roots_for_one_size() {
    let s = setup(false);
    let log = std::sync::Arc::new(s.log);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..48u64 {
        let (log, http, url, vkey) = (log.clone(), s.http.clone(), s.witness.url.clone(), s.vkey.clone());
        tasks.spawn(async move {
            let (variant, size) = ((i % 2) as u8, 1 + i / 2);
            let mut old = 0;
            let mut won = Vec::new();
            for _ in 0..4 {
                if old > size {
                    break;
                }
                let (status, _, text) = add_checkpoint(&http, &url, log.body(variant, old, size)).await;
                match status {
                    200 => {
                        won.push(cosigned(&vkey, &log.checkpoint(variant, size), &text));
                        break;
                    }
                    409 if text.trim().parse::<u64>().is_ok() => old = text.trim().parse().unwrap(),
                    409 | 422 => break,
                    other => panic!("unexpected {other}: {text}"),
                }
            }
            (variant, won)
        });
    }
    let mut roots: BTreeMap<u64, BTreeSet<[u8; 32]>> = BTreeMap::new();
    let mut variants = BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let (variant, won) = r.expect("a submitter");
        for (size, root) in won {
            roots.entry(size).or_default().insert(root.0);
            variants.insert(variant);
        }
    }
    assert!(!roots.is_empty(), "something was cosigned");
    assert!(roots.values().all(|r| r.len() == 1), "two roots cosigned for one size: {roots:?}");
    assert_eq!(variants.len(), 1, "both histories were cosigned");
}
