//! Helpers of the export tests: a small demo ledger, the `assay` binary, reading and rewriting
//! Parquet files, and keeping a manifest in step with a rewritten file.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use tempfile::TempDir;

use super::store;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `assay ARGS…`.
pub fn assay<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env_remove("ASSAY_DB")
        .env_remove("ASSAY_LEDGER_KEY")
        .env_remove("ASSAY_LOG")
        .output()
        .expect("running the assay binary");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The folder of the small demo of `seed`, built by the first test of this process that asks for
/// it ([`super::built_once`]). What `assay demo` printed is kept beside it ([`Demo::printed`]).
fn built_demo(seed: u64) -> PathBuf {
    super::built_once(&format!("demo-seed-{seed}"), |lab| {
        let out = assay(&["demo", "--dir", &s(lab), "--size", "small", "--seed", &seed.to_string()]).ok();
        std::fs::write(printed_path(lab), out.stdout).expect("keeping what the demo printed");
    })
}

/// Where [`built_demo`] keeps what `assay demo` printed: beside the folder, so that copies of the
/// folder hold only what the demo wrote.
fn printed_path(lab: &Path) -> PathBuf {
    lab.with_extension("stdout")
}

/// A small demo ledger (`assay demo --size small`) in a temporary folder; under
/// `ASSAY_TEST_STORE=postgres` its ledger is copied into a fresh PostgreSQL schema and used there.
pub struct Demo {
    db: store::TestDb,
    pub dir: TempDir,
}

impl Demo {
    /// The small demo of `seed`, as `assay demo --dir DIR/lab --size small --seed SEED` leaves
    /// it. Each seed is built once per test process and copied for each test (the folder as it
    /// lies, its ledger's key setting pointed at the copy's own key): the export tests asked for
    /// 39 demos of 9 seeds, and a build costs about 2 CPU-seconds where a copy costs none. The
    /// demo is a fixture here; what it generates is checked by the demo's own tests, which
    /// run `assay demo` themselves.
    pub fn new(seed: u64) -> Demo {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let lab = dir.path().join("lab");
        let file = super::copy_lab(&built_demo(seed), &lab);
        let key = std::fs::canonicalize(lab.join("keys/ledger.key")).expect("the copy's ledger key");
        let db = store::TestDb::from_sqlite_shared(&format!("demo-seed-{seed}"), &file, &key);
        Demo { db, dir }
    }

    /// What `assay demo --dir DIR --size small --seed SEED` printed when it built the demo this
    /// is a copy of, for the demo's own tests (they check its summary against the ledger).
    pub fn printed(seed: u64) -> String {
        std::fs::read_to_string(printed_path(&built_demo(seed))).expect("what the demo printed")
    }

    /// What `--db` takes for the demo's ledger.
    pub fn db(&self) -> String {
        self.db.target.clone()
    }

    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("lab/keys")
    }

    pub fn ledger_vkey(&self) -> PathBuf {
        self.keys().join("ledger.vkey")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `assay export parquet --db DB --out DIR EXTRA…`.
    pub fn export(&self, out: &Path, extra: &[&str]) -> Out {
        let mut args =
            vec!["export".to_owned(), "parquet".into(), "--db".into(), self.db(), "--out".into(), s(out)];
        args.extend(extra.iter().map(|e| (*e).to_owned()));
        assay(&args)
    }

    /// `assay verify-export DIR --ledger-key LEDGER.vkey --json`, parsed.
    pub fn verify_export(&self, dir: &Path) -> (i32, Value) {
        let out = assay(&["verify-export", &s(dir), "--ledger-key", &s(&self.ledger_vkey()), "--json"]);
        let code = out.code;
        (code, out.json())
    }

    /// `assay log --json` records.
    pub fn log(&self) -> Vec<Value> {
        assay(&["log", "--db", &self.db(), "--json"])
            .ok()
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// `assay append` of `events` (`{"type", "subject", "data"}` each) signed by the demo's
    /// key `key` (a file name under keys/ without `.key`).
    pub fn append(&self, key: &str, events: &[Value]) -> Out {
        let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
        let file = self.path(&format!("append-{key}-{}.ndjson", blake3::hash(lines.as_bytes()).to_hex()));
        std::fs::write(&file, lines).expect("writing the events");
        let key = self.keys().join(format!("{key}.key"));
        assay(&["append", "--db", &self.db(), "--key", &s(&key), "--ndjson", &s(&file)])
    }

    /// Appends `n` metrics for `run` signed by the demo's first runner key.
    pub fn append_metrics(&self, run: &str, n: u64) {
        let key = std::fs::read_dir(self.keys())
            .expect("the keys folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().is_some_and(|f| f.to_string_lossy().starts_with("runner"))
                    && p.extension().is_some_and(|e| e == "key")
            })
            .min()
            .expect("a runner key");
        let lines: String = (0..n)
            .map(|i| {
                format!(
                    "{}\n",
                    serde_json::json!({"type": "metric.recorded", "subject": format!("run/{run}"),
                        "data": {"run": run, "name": "extra/loss", "step": i, "value": 1.0 / (i as f64 + 1.0), "unit": "nats"}})
                )
            })
            .collect();
        let file = self.path(&format!("extra-{run}-{n}.ndjson"));
        std::fs::write(&file, lines).expect("writing metrics");
        assay(&["append", "--db", &self.db(), "--key", &s(&key), "--ndjson", &s(&file)]).ok();
    }
}

pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json")).expect("JSON")
}

/// Files of `table` listed in the manifest, in manifest order.
pub fn files_of(dir: &Path, table: &str) -> Vec<String> {
    manifest(dir)["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["table"] == table)
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect()
}

/// Every batch of a Parquet file.
pub fn read(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches")
}

/// Row groups of a Parquet file.
pub fn row_groups(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("the file");
    ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file").metadata().num_row_groups()
}

/// Rewrites a Parquet file from `batches` (same schema), `row_group_rows` rows per group.
pub fn write(path: &Path, batches: &[RecordBatch], row_group_rows: usize) {
    let schema = batches[0].schema();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(row_group_rows)).build();
    let file = std::fs::File::create(path).expect("creating the file");
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).expect("a writer");
    for b in batches {
        w.write(b).expect("writing");
    }
    w.close().expect("closing");
}

/// Rewrites a Parquet file keeping only the row groups `keep`.
pub fn keep_row_groups(path: &Path, keep: Vec<usize>, row_group_rows: usize) {
    let file = std::fs::File::open(path).expect("the file");
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .with_row_groups(keep)
        .build()
        .expect("a reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches");
    write(path, &batches, row_group_rows);
}

/// Makes the manifests' entry for `rel` match the file as it now is (what someone covering
/// their tracks would do).
pub fn refresh_manifest_entry(dir: &Path, rel: &str) {
    let bytes = std::fs::read(dir.join(rel)).expect("the file");
    let rows: usize = read(&dir.join(rel)).iter().map(RecordBatch::num_rows).sum();
    let digest = blake3::hash(&bytes).to_hex().to_string();
    edit_manifest(dir, |m| {
        for f in m["files"].as_array_mut().expect("files") {
            if f["path"] == rel {
                f["blake3"] = digest.clone().into();
                f["bytes"] = (bytes.len() as u64).into();
                f["rows"] = (rows as u64).into();
            }
        }
    });
}

/// Applies `f` to manifest.json (and the versioned copy of the same step).
pub fn edit_manifest(dir: &Path, f: impl Fn(&mut Value)) {
    let mut m = manifest(dir);
    let versioned = format!("manifest-{}.json", m["size"]);
    f(&mut m);
    let text = serde_json::to_string_pretty(&m).expect("JSON");
    std::fs::write(dir.join("manifest.json"), &text).expect("writing manifest.json");
    std::fs::write(dir.join(versioned), &text).expect("writing the versioned manifest");
}
