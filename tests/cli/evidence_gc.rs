//! `assay evidence gc`: cited blobs stay whatever their age, uncited ones stored before the
//! bound go (with leftover upload files), young ones stay, a blob stored again counts as new,
//! a dry run removes nothing, and a bad or too short duration is refused with exit status 2.
//! Ages are set from outside: file times in the folder, `blobs.created_at` in PostgreSQL.

use crate::evidence::{blob_folder, cited, exec_writing};
use crate::support::runner::Rig;
use crate::support::sql::{Bind, Db};

use std::ffi::OsStr;
use std::time::{Duration, SystemTime};

const TWO_DAYS: Duration = Duration::from_secs(2 * 86_400);

fn digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Makes everything stored so far two days old.
fn age_everything(rig: &Rig) {
    let then = SystemTime::now() - TWO_DAYS;
    match blob_folder(rig) {
        Some(folder) => {
            for fan in std::fs::read_dir(&folder).unwrap().flatten() {
                for file in std::fs::read_dir(fan.path()).unwrap().flatten() {
                    std::fs::File::open(file.path()).unwrap().set_modified(then).unwrap();
                }
            }
        }
        None => {
            let then_ns = then.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as i64;
            let mut db = Db::open(&rig.lab.db);
            assert!(db.run("UPDATE blobs SET created_at = ?", &[Bind::Int(then_ns)]) > 0);
            db.close();
        }
    }
}

/// Whether the blob `digest` is stored, read from the store itself.
fn stored(rig: &Rig, digest: &str) -> bool {
    match blob_folder(rig) {
        Some(folder) => folder.join(&digest[..2]).join(digest).is_file(),
        None => {
            let mut db = Db::open(&rig.lab.db);
            let n = db.int(&format!("SELECT count(*) FROM blobs WHERE digest = '{digest}'"));
            db.close();
            n == 1
        }
    }
}

fn put(rig: &Rig, name: &str, text: &str) {
    let file = rig.lab.write(name, text);
    rig.lab.db(&["evidence", "put"], &[file.as_os_str()]).ok();
}

fn gc(rig: &Rig, args: &[&str]) -> crate::support::Out {
    rig.lab.db(&["evidence", "gc"], &args.iter().map(OsStr::new).collect::<Vec<_>>())
}

#[test]
fn gc_removes_old_uncited_blobs_and_keeps_cited_and_young_ones() {
    let rig = Rig::new();
    exec_writing(&rig, "r-1", &[("a.txt", "alpha")]).ok();
    assert_eq!(cited(&rig, "r-1")[0].1, digest("alpha"));
    put(&rig, "orphan.txt", "orphan");
    // An upload a crash left behind (folder only: PostgreSQL rolls such uploads back).
    let part = blob_folder(&rig).map(|folder| {
        let part = folder.join("tmp").join("0000-left-behind.part");
        std::fs::write(&part, b"half an upload").unwrap();
        part
    });
    age_everything(&rig);
    if let Some(part) = &part {
        std::fs::File::open(part).unwrap().set_modified(SystemTime::now() - TWO_DAYS).unwrap();
    }
    put(&rig, "young.txt", "young");

    let dry = gc(&rig, &["--older-than", "1d", "--dry-run"]).ok();
    let orphan_line = format!("would remove  {}  6", digest("orphan"));
    assert!(dry.lines().contains(&orphan_line.as_str()), "{}", dry.stdout);
    assert!(!dry.stdout.contains(&digest("alpha")), "a cited blob listed: {}", dry.stdout);
    assert!(!dry.stdout.contains(&digest("young")), "a young blob listed: {}", dry.stdout);
    let expected = if part.is_some() { (2, 6 + 14) } else { (1, 6) };
    let total = format!("would remove {} file(s), {} bytes in all", expected.0, expected.1);
    assert_eq!(dry.lines().last().copied(), Some(total.as_str()), "{}", dry.stdout);
    assert!(stored(&rig, &digest("orphan")), "a dry run removed a blob");
    assert!(part.as_ref().is_none_or(|p| p.exists()), "a dry run removed an upload file");

    let out = gc(&rig, &["--older-than", "1d"]).ok();
    assert!(out.lines().contains(&format!("removed  {}  6", digest("orphan")).as_str()), "{}", out.stdout);
    let total = format!("removed {} file(s), {} bytes in all", expected.0, expected.1);
    assert_eq!(out.lines().last().copied(), Some(total.as_str()), "{}", out.stdout);
    assert!(!stored(&rig, &digest("orphan")));
    assert!(part.as_ref().is_none_or(|p| !p.exists()), "the leftover upload stayed");
    assert!(stored(&rig, &digest("alpha")), "a cited blob was collected");
    assert!(stored(&rig, &digest("young")), "a young blob was collected");
    rig.lab.db(&["evidence", "verify"], &[] as &[&str]).ok();
    let again = gc(&rig, &["--older-than", "1d"]).ok();
    assert_eq!(again.stdout, "removed 0 file(s), 0 bytes in all\n");
}

#[test]
fn a_blob_stored_again_counts_as_stored_then() {
    let rig = Rig::new();
    put(&rig, "orphan.txt", "orphan");
    age_everything(&rig);
    put(&rig, "again.txt", "orphan");
    let out = gc(&rig, &["--older-than", "1d"]).ok();
    assert_eq!(out.stdout, "removed 0 file(s), 0 bytes in all\n");
    assert!(stored(&rig, &digest("orphan")));
}

#[test]
fn gc_refuses_a_bad_or_too_short_duration_and_removes_nothing() {
    let rig = Rig::new();
    put(&rig, "orphan.txt", "orphan");
    age_everything(&rig);
    let out = gc(&rig, &["--older-than", "10s"]).status(2);
    assert!(out.stderr.contains("under 60s"), "{}", out.stderr);
    let out = gc(&rig, &["--older-than", "7y"]).status(2);
    assert!(out.stderr.contains("unknown unit \"y\""), "{}", out.stderr);
    let out = gc(&rig, &["--dry-run"]).status(2);
    assert!(out.stderr.contains("--older-than"), "{}", out.stderr);
    assert!(stored(&rig, &digest("orphan")));
}

/// `POST /v1/blobs/gc` with `body` and no signature, over a plain socket: the status line.
fn unsigned_gc(url: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting");
    write!(
        stream,
        "POST /v1/blobs/gc HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("sending");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("reading");
    raw.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn gc_through_a_server_needs_an_admin_and_keeps_cited_blobs() {
    let rig = Rig::new();
    exec_writing(&rig, "r-1", &[("a.txt", "alpha")]).ok();
    put(&rig, "orphan.txt", "orphan");
    age_everything(&rig);
    put(&rig, "young.txt", "young");
    let served = rig.lab.serve();
    let admin = rig.lab.admin();
    let through = |key: &std::path::Path, extra: &[&str]| {
        let mut args =
            vec![OsStr::new("evidence"), OsStr::new("gc"), OsStr::new("--older-than"), OsStr::new("1d")];
        args.extend([OsStr::new("--server"), OsStr::new(&served.url), OsStr::new("--key"), key.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        rig.lab.run(args)
    };
    // Not an admin: refused, nothing removed.
    let refused = through(&rig.runner.key, &[]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("403") && refused.stderr.contains("admin"), "{}", refused.stderr);
    let status = unsigned_gc(&served.url, r#"{"older_than_s": 86400, "dry_run": false, "at_s": 0}"#);
    assert!(status.contains(" 401 "), "{status}");
    assert!(stored(&rig, &digest("orphan")));

    let dry = through(&admin, &["--dry-run"]).ok();
    assert_eq!(
        dry.lines(),
        [format!("would remove  {}  6", digest("orphan")).as_str(), "would remove 1 file(s), 6 bytes in all"],
        "{}",
        dry.stdout
    );
    assert!(stored(&rig, &digest("orphan")), "a dry run removed a blob");

    let out = through(&admin, &[]).ok();
    assert_eq!(out.lines().last().copied(), Some("removed 1 file(s), 6 bytes in all"), "{}", out.stdout);
    assert!(!stored(&rig, &digest("orphan")));
    assert!(stored(&rig, &digest("alpha")), "a cited blob was collected");
    assert!(stored(&rig, &digest("young")), "a young blob was collected");
    drop(served);
    rig.lab.db(&["evidence", "verify"], &[] as &[&str]).ok();
}
