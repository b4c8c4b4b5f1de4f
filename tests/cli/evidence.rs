//! The evidence store through the real binary: `run exec --evidence` keeps every file before
//! citing it, `evidence verify` names missing and corrupt blobs, the same bytes are stored
//! once, and a writer killed with SIGKILL mid-upload leaves nothing under a blob name.

use crate::support;
use crate::support::blobs::named_files;
use crate::support::runner::Rig;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `run exec` with a short quiet window, writing `files` (name, contents) into the evidence
/// folder `ev-<run>`.
pub fn exec_writing(rig: &Rig, run: &str, files: &[(&str, &str)]) -> support::Out {
    let folder = rig.path(&format!("ev-{run}"));
    let script: String = files
        .iter()
        .map(|(name, text)| format!("printf '%s' '{text}' > '{}/{name}'\n", folder.display()))
        .collect();
    exec_script(rig, run, &[], &script)
}

/// `run exec` of `run` with `ev-<run>` as its evidence folder and `extra` options, running
/// `sh -c script` with a short quiet window.
pub fn exec_script(rig: &Rig, run: &str, extra: &[&OsStr], script: &str) -> support::Out {
    let folder = rig.path(&format!("ev-{run}"));
    let mut args = vec![OsStr::new("--run"), OsStr::new(run), OsStr::new("--evidence"), folder.as_os_str()];
    args.extend_from_slice(extra);
    args.extend(
        ["--quiet-window", "100ms", "--sample-every", "20ms", "--quiesce-timeout", "10s", "--", "sh", "-c"]
            .map(OsStr::new),
    );
    args.push(OsStr::new(script));
    rig.run(&["run", "exec"], &args)
}

/// The (blake3, bytes) of each file the run's `evidence.captured` cites, by path.
pub fn cited(rig: &Rig, run: &str) -> Vec<(String, String, u64)> {
    rig.events("evidence.captured")
        .iter()
        .filter(|e| e["data"]["run"] == run)
        .flat_map(|e| e["data"]["files"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["blake3"].as_str().unwrap().to_owned(),
                f["bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The blob folder beside a SQLite ledger; `None` on PostgreSQL (blobs live in the database).
pub fn blob_folder(rig: &Rig) -> Option<PathBuf> {
    if support::store::is_postgres() {
        return None;
    }
    Some(PathBuf::from(format!("{}.blobs", rig.lab.db)))
}

fn verify(rig: &Rig) -> support::Out {
    rig.lab.db(&["evidence", "verify"], &[] as &[&str])
}

#[test]
fn run_exec_keeps_each_file_before_citing_it_and_verify_names_damage() {
    let rig = Rig::new();
    exec_writing(&rig, "r-1", &[("a.txt", "alpha"), ("b.txt", "beta")]).ok();
    let files = cited(&rig, "r-1");
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0].1, blake3::hash(b"alpha").to_hex().to_string());
    let out = verify(&rig).ok();
    assert!(out.stderr.contains("2 cited evidence file(s), every one stored whole"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let Some(folder) = blob_folder(&rig) else {
        return support::skip::say("damaging blobs on disk", "the blobs are in PostgreSQL");
    };
    let (a, b) = (&files[0].1, &files[1].1);
    let a_path = folder.join(&a[..2]).join(a);
    std::fs::write(&a_path, b"alphA").expect("damaging a blob");
    std::fs::remove_file(folder.join(&b[..2]).join(b)).expect("removing a blob");
    let out = verify(&rig).status(1);
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines.iter().any(|l| l.starts_with(a.as_str()) && l.contains("corrupt") && l.contains("a.txt")),
        "{}",
        out.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with(b.as_str()) && l.contains("missing") && l.contains("b.txt")),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("2 of 2 cited evidence file(s) missing or corrupt"), "{}", out.stderr);
    // Put back from elsewhere, the log's evidence is whole again.
    std::fs::remove_file(&a_path).unwrap();
    let again = rig.lab.write("again-a.txt", "alpha");
    let again_b = rig.lab.write("again-b.txt", "beta");
    let out = rig.lab.db(&["evidence", "put"], &[again.as_os_str(), again_b.as_os_str()]).ok();
    assert_eq!(out.lines()[0], format!("{a}  5  {}", again.display()));
    verify(&rig).ok();
}

#[test]
fn the_same_file_from_two_runs_is_stored_once() {
    let rig = Rig::new();
    exec_writing(&rig, "r-1", &[("log.txt", "same bytes")]).ok();
    exec_writing(&rig, "r-2", &[("other-name.txt", "same bytes"), ("x.txt", "x")]).ok();
    let (one, two) = (cited(&rig, "r-1"), cited(&rig, "r-2"));
    assert_eq!(one[0].1, two[0].1, "the same bytes, the same digest");
    let out = verify(&rig).ok();
    assert!(out.stderr.contains("2 cited evidence file(s)"), "{}", out.stderr);
    if let Some(folder) = blob_folder(&rig) {
        let named = named_files(&folder);
        assert_eq!(named.len(), 2, "one blob per distinct content: {named:?}");
        for (name, hash) in &named {
            assert_eq!(name, hash, "every blob lies under its true name");
        }
    }
}

#[test]
fn put_refuses_bad_input_and_stores_nothing() {
    let rig = Rig::new();
    let good = rig.lab.write("good.txt", "good");
    let missing = rig.path("no-such-file");
    let out = rig.lab.db(&["evidence", "put"], &[good.as_os_str(), missing.as_os_str()]).status(2);
    assert!(out.stderr.contains("no-such-file"), "{}", out.stderr);
    let big = rig.lab.write("big.txt", "0123456789");
    let out = rig
        .lab
        .db(&["evidence", "put"], &[OsStr::new("--blob-bytes-max"), OsStr::new("9"), big.as_os_str()])
        .status(2);
    assert!(out.stderr.contains("more than --blob-bytes-max 9"), "{}", out.stderr);
    if let Some(folder) = blob_folder(&rig) {
        assert!(named_files(&folder).is_empty(), "{:?}", named_files(&folder));
    }
    let out = rig.lab.db(&["evidence", "put"], &[good.as_os_str()]).ok();
    assert_eq!(out.stdout, format!("{}  4  {}\n", blake3::hash(b"good").to_hex(), good.display()));
}

#[test]
fn sigkill_during_an_upload_leaves_no_blob_under_a_real_name() {
    let rig = Rig::new();
    let Some(folder) = blob_folder(&rig) else {
        return support::skip::say("SIGKILL mid-upload into a folder", "the blobs are in PostgreSQL");
    };
    // Large enough that the upload is caught under way.
    let big = rig.path("big.bin");
    let file = std::fs::File::create(&big).unwrap();
    let total: u64 = 256 << 20;
    file.set_len(total).unwrap();
    drop(file);
    let mut child = support::command()
        .args(["evidence", "put", "--db", &rig.lab.db])
        .arg(&big)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("assay evidence put starts");
    let tmp = folder.join("tmp");
    let started = Instant::now();
    let partial = loop {
        let part = std::fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .find(|len| *len > 0);
        if let Some(len) = part {
            break len;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no upload under way");
        assert!(child.try_wait().unwrap().is_none(), "the upload ended before it was seen");
        std::thread::sleep(Duration::from_millis(1));
    };
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(partial < total, "the upload was under way ({partial} of {total} bytes)");
    let named = named_files(&folder);
    assert!(named.iter().all(|(name, hash)| name == hash), "a partial blob under a name: {named:?}");
    assert!(named.is_empty() || named.len() == 1, "{named:?}");
    // The next upload of the same file completes and is whole.
    let out = rig.lab.db(&["evidence", "put"], &[big.as_os_str()]).ok();
    assert!(out.stdout.contains(&format!("  {total}  ")), "{}", out.stdout);
    let named = named_files(&folder);
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].0, named[0].1);
}

/// `assay copy` takes the evidence the log cites along (from either backend into a SQLite
/// file's folder), not uploads no event cites; a cited blob the source lacks is named and the
/// log still copies.
#[test]
fn copy_takes_the_cited_evidence_along() {
    let rig = Rig::new();
    exec_writing(&rig, "r-1", &[("a.txt", "alpha"), ("b.txt", "beta")]).ok();
    let uncited = rig.lab.write("uncited.txt", "nobody cites this");
    rig.lab.db(&["evidence", "put"], &[uncited.as_os_str()]).ok();
    let copy = |to: &std::path::Path| {
        rig.lab.run([
            OsStr::new("copy"),
            OsStr::new("--from"),
            OsStr::new(&rig.lab.db),
            OsStr::new("--to"),
            to.as_os_str(),
        ])
    };
    let to = rig.path("copy.db");
    let out = copy(&to).ok();
    assert!(out.stdout.contains("copied 2 evidence blob(s), 9 bytes; 0 already there"), "{}", out.stdout);
    let mut named: Vec<String> = named_files(&PathBuf::from(format!("{}.blobs", to.display())))
        .into_iter()
        .map(|(n, h)| {
            assert_eq!(n, h, "a blob under its own name");
            n
        })
        .collect();
    named.sort();
    let mut names: Vec<String> = cited(&rig, "r-1").into_iter().map(|f| f.1).collect();
    names.sort();
    assert_eq!(named, names, "the cited blobs, and only they");
    let out =
        rig.lab.run([OsStr::new("evidence"), OsStr::new("verify"), OsStr::new("--db"), to.as_os_str()]).ok();
    assert!(out.stderr.contains("2 cited evidence file(s), every one stored whole"), "{}", out.stderr);
    let Some(folder) = blob_folder(&rig) else {
        return support::skip::say("removing a blob from the source", "the blobs are in PostgreSQL");
    };
    let a = &cited(&rig, "r-1")[0].1;
    std::fs::remove_file(folder.join(&a[..2]).join(a)).unwrap();
    let to = rig.path("copy-2.db");
    let out = copy(&to).ok();
    assert!(out.stdout.contains("copied 1 evidence blob(s)"), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("evidence {a} missing in the source")) && out.stderr.contains("a.txt"),
        "{}",
        out.stderr
    );
    rig.lab.run([OsStr::new("evidence"), OsStr::new("verify"), OsStr::new("--db"), to.as_os_str()]).status(1);
}
