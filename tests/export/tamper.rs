//! `assay verify-export` finds tampering and names the first bad file, row or seq: one
//! changed cell in a payload, a deleted row group, swapped files, a manifest pointing at
//! another checkpoint — each both as it is and with the manifest's digests updated to cover it.

use crate::support::export as export_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use export_support::{
    Demo, assay, edit_manifest, files_of, keep_row_groups, manifest, read, refresh_manifest_entry,
    row_groups, write,
};
use serde_json::Value;

/// Small row groups so that files have several.
const ROWS: usize = 64;

fn fresh_export(demo: &Demo, name: &str) -> PathBuf {
    let out = demo.path(name);
    demo.export(&out, &["--row-group-rows", &ROWS.to_string()]).ok();
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "the untouched export verifies: {report}");
    out
}

/// [`fresh_export`] of `demo`, which must be the demo of `seed` as [`Demo::new`] made it (nothing
/// appended): exported and verified once per test process and seed, then copied into `demo`'s
/// folder as `name`. The demo of a seed is the same ledger in every copy, so its export is the
/// same files; each test still tampers with its own copy and runs `verify-export` on it, and
/// the untouched export still verifies (once, where it is made).
fn export_of_untouched(demo: &Demo, seed: u64, name: &str) -> PathBuf {
    let built = crate::support::built_once(&format!("export-seed-{seed}-rows-{ROWS}"), |folder| {
        crate::support::copy_folder(&fresh_export(demo, "made"), folder);
    });
    let out = demo.path(name);
    crate::support::copy_folder(&built, &out);
    out
}

fn metrics_file(out: &Path) -> String {
    files_of(out, "events")
        .into_iter()
        .find(|f| f.contains("type=metric.recorded/"))
        .expect("a metrics partition")
}

#[track_caller]
fn assert_bad(
    demo: &Demo,
    out: &Path,
    file: Option<&str>,
    row: Option<u64>,
    seq: Option<u64>,
    reason: &str,
) -> Value {
    let (code, report) = demo.verify_export(out);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false);
    if file.is_some() {
        assert_eq!(report["first_bad_file"].as_str(), file, "{report}");
    }
    if row.is_some() {
        assert_eq!(report["first_bad_row"].as_u64(), row, "{report}");
    }
    if seq.is_some() {
        assert_eq!(report["first_bad_seq"].as_u64(), seq, "{report}");
    }
    let got = report["reason"].as_str().unwrap_or_default();
    assert!(got.contains(reason), "reason {got:?} should mention {reason:?}");
    report
}

/// Replaces one payload cell (row `row` of the file), keeping everything else.
fn change_payload(path: &Path, row: usize) -> u64 {
    let batches = read(path);
    let mut out = Vec::new();
    let mut base = 0;
    let mut seq = 0;
    for b in batches {
        let n = b.num_rows();
        if (base..base + n).contains(&row) {
            let i = row - base;
            let payloads = b
                .column_by_name("payload")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("payload");
            seq = b
                .column_by_name("seq")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .expect("seq")
                .value(i);
            let changed: StringArray = (0..n)
                .map(|k| {
                    let p = payloads.value(k);
                    Some(if k == i { p.replacen("\"value\":", "\"value\":1", 1) } else { p.to_owned() })
                })
                .collect();
            assert_ne!(changed.value(i), payloads.value(i));
            let idx = b.schema().index_of("payload").expect("payload");
            let mut cols = b.columns().to_vec();
            cols[idx] = Arc::new(changed);
            out.push(RecordBatch::try_new(b.schema(), cols).expect("a batch"));
        } else {
            out.push(b);
        }
        base += n;
    }
    write(path, &out, ROWS);
    seq
}

#[test]
fn a_changed_payload_cell() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "payload");
    let file = metrics_file(&out);
    let seq = change_payload(&out.join(&file), 70);
    // As it is: the file's digest no longer matches the manifest.
    assert_bad(&demo, &out, Some(&file), None, None, "blake3");
    // With the manifest updated: the row's payload no longer matches its leaf.
    refresh_manifest_entry(&out, &file);
    assert_bad(
        &demo,
        &out,
        Some(&file),
        Some(70),
        Some(seq),
        "payload does not match the digest in its leaf",
    );
}

#[test]
fn a_deleted_row_group() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "rowgroup");
    let file = metrics_file(&out);
    let path = out.join(&file);
    let groups = row_groups(&path);
    assert!(groups >= 3, "the metrics file has {groups} row groups");
    let first_missing = {
        let b = read(&path);
        let seqs: Vec<u64> = b
            .iter()
            .flat_map(|b| {
                let s = b
                    .column_by_name("seq")
                    .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                    .expect("seq");
                (0..s.len()).map(|i| s.value(i)).collect::<Vec<_>>()
            })
            .collect();
        seqs[ROWS]
    };
    keep_row_groups(&path, (0..groups).filter(|g| *g != 1).collect(), ROWS);
    assert_bad(&demo, &out, Some(&file), None, None, "blake3");
    refresh_manifest_entry(&out, &file);
    let report = assert_bad(&demo, &out, None, None, Some(first_missing), "is missing");
    assert!(report["first_bad_file"].is_null(), "a missing record is in no file: {report}");
    assert!(
        report["reason"].as_str().unwrap_or_default().contains(&format!("record {first_missing} is missing")),
        "{report}"
    );
}

#[test]
fn swapped_files() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "swap");
    let files = files_of(&out, "events");
    let a = files.iter().find(|f| f.contains("type=run.started/")).expect("run.started").clone();
    let b = files.iter().find(|f| f.contains("type=run.finished/")).expect("run.finished").clone();
    let (pa, pb) = (out.join(&a), out.join(&b));
    let tmp = out.join("swap.tmp");
    std::fs::rename(&pa, &tmp).expect("rename");
    std::fs::rename(&pb, &pa).expect("rename");
    std::fs::rename(&tmp, &pb).expect("rename");
    let listed_first =
        if files.iter().position(|f| *f == a) < files.iter().position(|f| *f == b) { &a } else { &b };
    assert_bad(&demo, &out, Some(listed_first), None, None, "blake3");
    // Manifest entries swapped too: the rows are now in the wrong partitions.
    edit_manifest(&out, |m| {
        for f in m["files"].as_array_mut().expect("files") {
            if f["path"] == a.as_str() {
                f["path"] = b.clone().into();
            } else if f["path"] == b.as_str() {
                f["path"] = a.clone().into();
            }
        }
    });
    let report = assert_bad(&demo, &out, None, Some(0), None, "partition");
    let bad_file = report["first_bad_file"].as_str().unwrap_or_default();
    assert!(bad_file == a || bad_file == b, "{report}");
}

#[test]
fn a_manifest_pointing_at_another_checkpoint() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "checkpoint");
    let size = manifest(&out)["size"].as_u64().expect("size");
    // An earlier checkpoint of the same ledger (genesis is committed alone, under a checkpoint
    // at size 1): validly signed, another tree.
    let first_cp = assay(&["proof", "inclusion", "--db", &demo.db(), "0", "--size", "1", "--json"])
        .ok()
        .json()["checkpoint"]
        .as_str()
        .expect("a note")
        .to_owned();
    assert!(size > 1);
    edit_manifest(&out, |m| {
        m["checkpoint"] = first_cp.clone().into();
        let last = m["steps"].as_array().expect("steps").len() - 1;
        m["steps"][last]["checkpoint"] = first_cp.clone().into();
    });
    assert_bad(&demo, &out, Some("manifest.json"), None, None, "the step ends at");

    // A checkpoint of the same size signed by another ledger's key.
    let other = Demo::new(8);
    let other_out = export_of_untouched(&other, 8, "other");
    let out2 = export_of_untouched(&demo, 7, "checkpoint2");
    let foreign = manifest(&other_out)["checkpoint"].as_str().expect("note").to_owned();
    edit_manifest(&out2, |m| {
        m["checkpoint"] = foreign.clone().into();
        let last = m["steps"].as_array().expect("steps").len() - 1;
        m["steps"][last]["checkpoint"] = foreign.clone().into();
    });
    assert_bad(&demo, &out2, Some("manifest.json"), None, None, "does not verify under the ledger key");
}

#[test]
fn a_changed_typed_table_cell() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "typed");
    let file = files_of(&out, "metrics").into_iter().next().expect("a metrics file");
    let path = out.join(&file);
    let mut batches = read(&path);
    let b = &batches[0];
    let values =
        b.column_by_name("value").and_then(|c| c.as_any().downcast_ref::<Float64Array>()).expect("value");
    let changed: Float64Array =
        (0..b.num_rows()).map(|i| Some(values.value(i) + if i == 5 { 1.0 } else { 0.0 })).collect();
    let idx = b.schema().index_of("value").expect("value");
    let mut cols = b.columns().to_vec();
    cols[idx] = Arc::new(changed);
    batches[0] = RecordBatch::try_new(b.schema(), cols).expect("a batch");
    write(&path, &batches, ROWS);
    refresh_manifest_entry(&out, &file);
    assert_bad(
        &demo,
        &out,
        Some(&file),
        Some(5),
        None,
        "differs from the one derived from the verified events",
    );
}

/// An export of the demo in two steps, the first claim withdrawn between them (so the verdicts
/// differ), copied into `demo`'s folder once per name in `names`. `demo` must be the demo of
/// `seed` as [`Demo::new`] made it (the first step is [`export_of_untouched`]); it holds the
/// withdrawal afterwards. The cases of a test tamper with copies of one export (each its own
/// copy, each checked by `verify-export`) where each made its own: an append, a first and a
/// second export and two `verify-export` runs of the same ledger per case.
fn two_step_exports(demo: &Demo, seed: u64, names: &[&str]) -> Vec<PathBuf> {
    let out = export_of_untouched(demo, seed, "two-step");
    let log = demo.log();
    let claim = log.iter().find(|r| r["type"] == "claim.asserted").expect("a claim");
    let (key, data) = (claim["source"].as_str().expect("source"), &claim["event"]["data"]);
    let withdrawn = serde_json::json!({"type": "claim.withdrawn", "subject": claim["subject"],
        "data": {"artifact": data["artifact"], "claim": data["claim"], "reason": "wrong split"}});
    demo.append(key.strip_prefix("assay:key/").expect("a key"), &[withdrawn]).ok();
    let size = manifest(&out)["size"].as_u64().expect("size").to_string();
    demo.export(&out, &["--since", &size]).ok();
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "the untouched export verifies: {report}");
    names
        .iter()
        .map(|name| {
            let copy = demo.path(name);
            crate::support::copy_folder(&out, &copy);
            copy
        })
        .collect()
}

#[test]
fn stale_or_extra_current_verdicts() {
    let demo = Demo::new(7);
    let [stale, extra, none, earlier] =
        <[PathBuf; 4]>::try_from(two_step_exports(&demo, 7, &["stale", "extra", "none", "earlier"]))
            .expect("four copies");
    // The first step's verdicts put back as the current ones, the manifest covering them.
    let out = stale;
    let first = files_of(&out, "verdicts_history").into_iter().next().expect("the first snapshot");
    std::fs::copy(out.join(&first), out.join("verdicts/current.parquet")).expect("copying");
    refresh_manifest_entry(&out, "verdicts/current.parquet");
    assert_bad(&demo, &out, Some("verdicts/current.parquet"), None, None, "the audit of the verified events");

    // A second verdicts file beside the current one: unlisted, then listed.
    let out = extra;
    let first = files_of(&out, "verdicts_history").into_iter().next().expect("the first snapshot");
    std::fs::copy(out.join(&first), out.join("verdicts/old.parquet")).expect("copying");
    assert_bad(&demo, &out, Some("verdicts/old.parquet"), None, None, "does not list");
    edit_manifest(&out, |m| {
        let files = m["files"].as_array_mut().expect("files");
        let mut entry =
            files.iter().find(|f| f["path"] == "verdicts/current.parquet").expect("current").clone();
        entry["path"] = "verdicts/old.parquet".into();
        files.push(entry);
    });
    refresh_manifest_entry(&out, "verdicts/old.parquet");
    assert_bad(&demo, &out, Some("verdicts/old.parquet"), None, None, "other than verdicts/current.parquet");

    // No current verdicts at all.
    let out = none;
    std::fs::remove_file(out.join("verdicts/current.parquet")).expect("removing");
    edit_manifest(&out, |m| {
        m["files"].as_array_mut().expect("files").retain(|f| f["path"] != "verdicts/current.parquet");
    });
    assert_bad(&demo, &out, Some("manifest.json"), None, None, "no verdicts/current.parquet");

    // Current verdicts that claim an earlier step.
    let out = earlier;
    let step1 = manifest(&out)["steps"][0]["size"].as_u64().expect("size");
    edit_manifest(&out, |m| {
        for f in m["files"].as_array_mut().expect("files") {
            if f["path"] == "verdicts/current.parquet" {
                f["export_size"] = step1.into();
            }
        }
    });
    assert_bad(&demo, &out, Some("verdicts/current.parquet"), None, None, "the latest verdicts are at");
}

#[test]
fn an_export_in_the_format_before_current_verdicts_is_refused_with_a_reason() {
    let demo = Demo::new(7);
    let out = export_of_untouched(&demo, 7, "v1");
    edit_manifest(&out, |m| m["format"] = "assay-export/v1".into());
    let report = assert_bad(&demo, &out, Some("manifest.json"), None, None, "export the ledger again");
    assert!(report["reason"].as_str().is_some_and(|r| r.contains("assay-export/v1")), "{report}");
    let size = manifest(&out)["size"].as_u64().expect("size").to_string();
    demo.append_metrics("r-later", 2);
    let o = demo.export(&out, &["--since", &size]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("assay-export/v1") && o.stderr.contains("empty folder"), "{}", o.stderr);
}

/// Rewrites a verdicts file with its `registration` column replaced by `f` of it (`None`:
/// without the column, as exports wrote it before claims said their registration).
fn rewrite_registration(out: &Path, rel: &str, f: impl Fn(&StringArray) -> Option<StringArray>) {
    let batches: Vec<RecordBatch> = read(&out.join(rel))
        .into_iter()
        .map(|b| {
            let i = b.schema().index_of("registration").expect("a registration column");
            let column = b.column(i).as_any().downcast_ref::<StringArray>().expect("strings");
            match f(column) {
                None => {
                    b.project(&(0..b.num_columns()).filter(|&j| j != i).collect::<Vec<_>>()).expect("project")
                }
                Some(new) => {
                    let mut columns = b.columns().to_vec();
                    columns[i] = Arc::new(new);
                    RecordBatch::try_new(b.schema(), columns).expect("a batch")
                }
            }
        })
        .collect();
    write(&out.join(rel), &batches, ROWS);
    refresh_manifest_entry(out, rel);
}

#[test]
fn verdicts_written_before_registration_verify_and_a_changed_registration_does_not() {
    let demo = Demo::new(7);
    let [older, registered] =
        <[PathBuf; 2]>::try_from(two_step_exports(&demo, 7, &["older", "registered"])).expect("two copies");
    // Every verdicts file of a two-step export as an older export wrote it: still verifies.
    let out = older;
    let mut verdicts = files_of(&out, "verdicts_history");
    verdicts.extend(files_of(&out, "verdicts"));
    for rel in &verdicts {
        rewrite_registration(&out, rel, |_| None);
    }
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "{report}");
    assert!(read(&out.join("verdicts/current.parquet"))[0].schema().index_of("registration").is_err());

    // A claim said to be preregistered that was not.
    let out = registered;
    let flipped = |c: &StringArray| {
        Some(
            c.iter()
                .map(|v| v.map(|v| if v == "post_hoc" { "preregistered" } else { v }))
                .collect::<StringArray>(),
        )
    };
    rewrite_registration(&out, "verdicts/current.parquet", flipped);
    assert_bad(&demo, &out, Some("verdicts/current.parquet"), None, None, "the audit of the verified events");
}
