//! `kill -9` of a long `assay append --ndjson` at different moments: afterwards `verify` passes
//! and every acknowledgement printed before the kill names a record that is there.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{Lab, ack_of, command, metric_lines};

/// Lines per append invocation: enough that a run is still appending when it is killed. 4,000
/// are four requests of 1,000 (`assay append` acknowledges a request at a time), so a kill
/// after a random number of acknowledgements below three quarters still lands with at least
/// one request of 1,000 unacknowledged, in flight or not yet sent: the same moments as with
/// 10,000 lines (before the first acknowledgement; mid-append, between or during commits),
/// for 0.4 of the appending and of the ledger each `verify` reads.
const LINES: u64 = 4_000;
/// Killed runs wanted (each followed by `verify` and another run).
const KILLS: usize = 6;
/// Runs at most: a run may finish before its kill lands (on a quick machine the last
/// acknowledgements come in one burst), so rounds go on until `KILLS` runs died, within this.
const ROUNDS_MAX: usize = 3 * KILLS;

/// When to kill a run.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the start (while the input is read and signed, or the ledger opened).
    After(Duration),
    /// Once this many acknowledgements were printed, plus a pause (mid-commit of a later batch).
    AfterAcks(usize, Duration),
}

/// One run of `append --ndjson FILE --json`, killed with SIGKILL at `moment`. Returns every
/// acknowledgement read from its stdout before it died, and whether it was killed.
fn run_and_kill(
    lab: &Lab,
    key: &support::Key,
    input: &std::path::Path,
    moment: Moment,
) -> (Vec<(u64, String)>, bool) {
    let stderr = std::fs::File::create(lab.path("append.stderr")).expect("stderr file");
    // On PostgreSQL the child's sessions carry a name of their own, so that the test can wait
    // for them to end after the kill (see below).
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let sessions = format!("assay_crash_{}_{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    let on_postgres = lab.db.starts_with("postgres");
    let db = if on_postgres { format!("{}&application_name={sessions}", lab.db) } else { lab.db.clone() };
    let mut child = command()
        .arg("append")
        .arg("--db")
        .arg(&db)
        .arg("--key")
        .arg(&key.key)
        .arg("--ndjson")
        .arg(input)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawning assay append");
    let started = Instant::now();
    let stdout = child.stdout.take().expect("piped stdout");
    let seen = Arc::new(AtomicUsize::new(0));
    let reader = {
        let seen = seen.clone();
        thread::spawn(move || {
            let mut acks = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // A line cut short by the kill was never an acknowledgement.
                    Ok(_) if !line.ends_with('\n') => break,
                    Ok(_) => {
                        acks.push(ack_of(&serde_json::from_str(&line).expect("an ack line")));
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            acks
        })
    };
    let deadline = started + Duration::from_secs(60);
    match moment {
        Moment::After(d) => thread::sleep(d),
        Moment::AfterAcks(n, pause) => {
            while seen.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                if child.try_wait().expect("try_wait").is_some() {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(pause);
        }
    }
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    let acks = reader.join().expect("the reader thread");
    // A COMMIT the child sent before it died still runs to its end in the database; the
    // ledger read next must see it (else the next run's first seq is past the count read).
    if on_postgres {
        support::store::wait_sessions_gone(&db, &sessions, Duration::from_secs(30))
            .expect("the killed append's database sessions end");
    }
    let killed = status.signal() == Some(9);
    if !killed {
        let err = std::fs::read_to_string(lab.path("append.stderr")).unwrap_or_default();
        assert!(status.success(), "append failed on its own ({status}): {err}");
    }
    (acks, killed)
}

#[test]
fn kill_9_loses_no_acknowledged_event() {
    let started = Instant::now();
    let lab = Lab::new();
    let w = lab.worker("w1");
    let input = lab.write("long.ndjson", metric_lines("r-crash", 0, LINES));
    let mut rng = StdRng::seed_from_u64(0x5EED_CAFE);
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut kills = 0;
    let mut mid_append = 0;
    let mut before = lab.records();

    for round in 0..ROUNDS_MAX {
        if kills >= KILLS && mid_append >= 3 {
            break;
        }
        let moment = match round {
            // Before anything can be acknowledged: while reading and signing the input.
            0 => Moment::After(Duration::from_millis(rng.gen_range(50..300))),
            // After a random number of acknowledgements, a random pause into the next batch.
            _ => Moment::AfterAcks(
                rng.gen_range(1..LINES as usize * 3 / 4),
                Duration::from_millis(rng.gen_range(0..40)),
            ),
        };
        let (acks, killed) = run_and_kill(&lab, &w, &input, moment);
        kills += usize::from(killed);
        if killed && !acks.is_empty() && (acks.len() as u64) < LINES {
            mid_append += 1;
        }
        // Acknowledgements are gap-free and continue the ledger.
        for (i, (seq, _)) in acks.iter().enumerate() {
            assert_eq!(*seq, before + i as u64, "round {round} ({moment:?})");
        }

        let v = lab.verify(&[]);
        assert!(v.ok, "verify after kill {round} ({moment:?}): {v:?}");
        assert!(
            v.records >= before + acks.len() as u64,
            "round {round}: acknowledged records are there: {v:?}"
        );
        eprintln!(
            "round {round}: {moment:?}: {} acks, killed {killed}, ledger {} -> {} records, {:?}",
            acks.len(),
            before,
            v.records,
            started.elapsed()
        );
        acked.extend(acks);
        before = v.records;
    }
    assert!(kills >= 5, "at least five runs died by SIGKILL ({kills})");
    assert!(
        mid_append >= 3,
        "at least three kills hit a run that had acknowledged part of its input ({mid_append})"
    );

    // The ledger keeps working: one more full run.
    let last = lab.append_metrics(&w, "r-after", 0, 100);
    let total = lab.records();
    assert_eq!(last.last().map(|a| a.0 + 1), Some(total));

    // Every acknowledged (seq, digest) is in the log.
    #[derive(serde::Deserialize)]
    struct Logged {
        seq: u64,
        digest: String,
    }
    let out = lab.db(&["log"], &["--json"]).ok();
    let log: HashMap<u64, String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Logged>(l).expect("a log line"))
        .map(|l| (l.seq, l.digest))
        .collect();
    assert_eq!(log.len() as u64, total);
    assert!(!acked.is_empty());
    for (seq, digest) in acked.iter().chain(&last) {
        assert_eq!(log.get(seq), Some(digest), "acknowledged seq {seq} is in the log with its digest");
    }
    eprintln!("{} acknowledged events checked in {:?}", acked.len(), started.elapsed());
}
