//! `assay export parquet`: the round trip (every record of the ledger comes back from the
//! `events` table field for field, the typed tables hold one row per event of their types, the
//! verdicts are the audit's), and incremental exports equal one full export.

use crate::support::export as export_support;

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use assay::export::events::{EventColumns, EventRow};
use assay::export::typed::EVENT_TABLES;
use assay::store::{Durability, Store};
use export_support::{Demo, assay, files_of, manifest, read};

/// Every `events` row, by seq, with the type its partition names.
fn event_rows(dir: &Path) -> BTreeMap<u64, (String, EventRow)> {
    let mut rows = BTreeMap::new();
    for rel in files_of(dir, "events") {
        let ty = rel
            .strip_prefix("events/type=")
            .and_then(|r| r.split_once('/'))
            .map(|(t, _)| t.to_owned())
            .expect("type=");
        for b in read(&dir.join(&rel)) {
            let cols = EventColumns::of(&b).expect("the events columns");
            for i in 0..b.num_rows() {
                let row = cols.row(i);
                assert!(rows.insert(row.seq, (ty.clone(), row)).is_none(), "a seq twice");
            }
        }
    }
    rows
}

/// Every row of a table as one-row batches keyed by (seq, index), across its files.
fn table_rows(dir: &Path, table: &str) -> Vec<RecordBatch> {
    let mut rows: Vec<(u64, RecordBatch)> = Vec::new();
    for rel in files_of(dir, table) {
        for b in read(&dir.join(&rel)) {
            let seqs =
                b.column_by_name("seq").and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned());
            for i in 0..b.num_rows() {
                rows.push((seqs.as_ref().map_or(i as u64, |s| s.value(i)), b.slice(i, 1)));
            }
        }
    }
    rows.sort_by_key(|(seq, _)| *seq);
    rows.into_iter().map(|(_, b)| b).collect()
}

#[tokio::test]
async fn round_trip_record_by_record() {
    let demo = Demo::new(7);
    let out = demo.path("export");
    demo.export(&out, &[]).ok();
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "{report}");

    let store = Store::open(&demo.db(), Durability::Full, false).await.expect("the store");
    let head = store.head().await.expect("head").expect("a ledger");
    let stored = store.records(0, u32::try_from(head.size).expect("small")).await.expect("records");
    assert_eq!(stored.len() as u64, head.size);
    let m = manifest(&out);
    assert_eq!(m["size"], head.checkpoint_size);
    assert_eq!(
        m["checkpoint"],
        store.checkpoint_at(head.checkpoint_size).await.expect("cp").expect("cp").note
    );

    let rows = event_rows(&out);
    assert_eq!(rows.len(), stored.len(), "one row per record");
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in &stored {
        let (ty, row) = &rows[&r.seq];
        assert_eq!(ty, &r.ty, "seq {}: partition", r.seq);
        *by_type.entry(r.ty.clone()).or_default() += 1;
        let record = r.to_record().expect("a record");
        assert_eq!(row.received_at_ns, r.received_at_ns, "seq {}", r.seq);
        assert_eq!(row.time_ns, assay::export::events::time_ns(&r.time), "seq {}", r.seq);
        assert_eq!(
            (&row.source, &row.event_id, &row.subject),
            (&r.source, &r.event_id, &r.subject),
            "seq {}",
            r.seq
        );
        assert_eq!(row.digest, r.digest.to_hex());
        assert_eq!(row.record_hash, r.record_hash.to_hex());
        assert_eq!(row.prev_hash, r.prev_hash.to_hex());
        assert_eq!(row.leaf, record.leaf().to_vec(), "seq {}: leaf", r.seq);
        assert_eq!(row.payload.as_bytes(), r.payload.as_slice(), "seq {}: payload verbatim", r.seq);
        assert_eq!(row.signatures.as_bytes(), r.signatures.as_slice(), "seq {}: signatures verbatim", r.seq);
    }

    // Typed tables: one row per event of their types, values as in the payloads.
    let payloads: BTreeMap<u64, serde_json::Value> =
        stored.iter().map(|r| (r.seq, serde_json::from_slice(&r.payload).expect("JSON"))).collect();
    for t in EVENT_TABLES {
        let want: u64 = t.types.iter().map(|ty| by_type.get(ty.as_str()).copied().unwrap_or(0)).sum();
        let got = table_rows(&out, t.name);
        assert_eq!(got.len() as u64, want, "table {}", t.name);
    }
    let metrics = table_rows(&out, "metrics");
    assert!(!metrics.is_empty());
    for b in &metrics {
        let seq = b
            .column_by_name("seq")
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .expect("seq")
            .value(0);
        let value = b
            .column_by_name("value")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .expect("value")
            .value(0);
        assert_eq!(Some(value), payloads[&seq]["data"]["value"].as_f64(), "metric at seq {seq}");
    }

    // Xids and telemetry name their host (nullable: events from before it was recorded have
    // none), as the payload does.
    for table in ["xids", "telemetry"] {
        let rows = table_rows(&out, table);
        assert!(!rows.is_empty(), "{table}");
        for b in &rows {
            let seq = b
                .column_by_name("seq")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .expect("seq")
                .value(0);
            let field = b.schema().field_with_name("host").expect("a host column").clone();
            assert!(field.is_nullable(), "{table}.host is nullable");
            let host = b
                .column_by_name("host")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("host");
            let want = payloads[&seq]["data"]["host"].as_str();
            assert!(want.is_some(), "the demo's {table} event at seq {seq} names its host");
            assert_eq!((!host.is_null(0)).then(|| host.value(0)), want, "{table} at seq {seq}");
        }
    }

    // Verdicts: the audit's, one row per artifact and per claim.
    let audit = assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    let verdict_rows: usize =
        files_of(&out, "verdicts").iter().flat_map(|f| read(&out.join(f))).map(|b| b.num_rows()).sum();
    let want = audit["artifacts"].as_array().expect("artifacts").len()
        + audit["claims"].as_array().expect("claims").len();
    assert_eq!(verdict_rows, want);
    assert_eq!(files_of(&out, "verdicts"), ["verdicts/current.parquet"]);
    assert_eq!(
        files_of(&out, "verdicts_history"),
        [format!(
            "verdicts_history/checkpoint={}/part-0-{}.parquet",
            head.checkpoint_size,
            head.checkpoint_size - 1
        )]
    );
    let snapshot = read(&out.join(&files_of(&out, "verdicts_history")[0]));
    assert_eq!(read(&out.join("verdicts/current.parquet")), snapshot, "the current verdicts are the step's");

    // The files are ZSTD with statistics.
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(out.join(&files_of(&out, "events")[0])).expect("a file"),
        )
        .expect("a reader"),
    )
    .clone();
    let col = meta.row_group(0).column(0);
    assert!(matches!(col.compression(), parquet::basic::Compression::ZSTD(_)));
    assert!(col.statistics().is_some(), "statistics on seq");
}

#[test]
fn incremental_exports_equal_one_full_export() {
    let demo = Demo::new(11);
    let inc = demo.path("incremental");
    let size = |dir: &Path| manifest(dir)["size"].as_u64().expect("size");

    demo.export(&inc, &[]).ok();
    let s1 = size(&inc);
    // Nothing new: no new files, no new manifest.
    let again = demo.export(&inc, &["--since", &s1.to_string()]).ok();
    assert!(again.stdout.contains("nothing new"), "{}", again.stdout);
    // Without --since, or with a seq that does not continue the export: refused.
    assert_eq!(demo.export(&inc, &[]).code, 2);
    assert_eq!(demo.export(&inc, &["--since", &(s1 - 1).to_string()]).code, 2);

    demo.append_metrics("r-extra-1", 40);
    demo.export(&inc, &["--since", &s1.to_string()]).ok();
    let s2 = size(&inc);
    assert!(s2 >= s1 + 40);
    demo.append_metrics("r-extra-2", 25);
    let before: Vec<(String, Vec<u8>)> = files_of(&inc, "events")
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(inc.join(&f)).expect("file");
            (f, bytes)
        })
        .collect();
    demo.export(&inc, &["--since", &s2.to_string()]).ok();
    let s3 = size(&inc);
    for (f, bytes) in before {
        assert_eq!(std::fs::read(inc.join(&f)).expect("file"), bytes, "{f} was rewritten");
    }
    for n in [s1, s2, s3] {
        assert!(inc.join(format!("manifest-{n}.json")).is_file(), "manifest-{n}.json kept");
    }
    assert_eq!(manifest(&inc)["steps"].as_array().expect("steps").len(), 3);
    let (code, report) = demo.verify_export(&inc);
    assert_eq!(code, 0, "{report}");

    let full = demo.path("full");
    demo.export(&full, &[]).ok();
    assert_eq!(size(&full), s3);
    let (mi, mf) = (manifest(&inc), manifest(&full));
    for k in ["size", "checkpoint", "record_hash", "frontier", "ledger_key", "origin"] {
        assert_eq!(mi[k], mf[k], "manifest {k}");
    }
    assert_eq!(event_rows(&inc), event_rows(&full), "events");
    for t in EVENT_TABLES {
        assert_eq!(table_rows(&inc, t.name), table_rows(&full, t.name), "table {}", t.name);
    }
    // One current verdicts file, the full export's; one snapshot per step, the latest also
    // the full export's.
    assert_eq!(files_of(&inc, "verdicts"), ["verdicts/current.parquet"]);
    assert_eq!(read(&inc.join("verdicts/current.parquet")), read(&full.join("verdicts/current.parquet")));
    let latest = |dir: &Path| {
        let f = files_of(dir, "verdicts_history")
            .into_iter()
            .find(|f| f.contains(&format!("checkpoint={s3}/")))
            .expect("latest verdicts");
        read(&dir.join(f))
    };
    assert_eq!(latest(&inc), latest(&full));
    assert_eq!(files_of(&inc, "verdicts_history").len(), 3, "one snapshot per step");
}
