//! Helpers of the runner's CLI tests: a ledger with a key registered as `runner`, the
//! runner's events as recorded, and the checks every test ends with (each event signed by
//! the runner's key, `assay verify` passes).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Key, Lab, Out};

/// A ledger in a temporary folder and a registered runner key.
pub struct Rig {
    pub lab: Lab,
    pub runner: Key,
}

impl Rig {
    pub fn new() -> Rig {
        let lab = Lab::new();
        let runner = lab.producer("runner", &["runner"]);
        Rig { lab, runner }
    }

    /// `assay WORDS… --db DB --key runner.key REST…`.
    pub fn run(&self, words: &[&str], rest: &[&OsStr]) -> Out {
        let mut args: Vec<&OsStr> = vec![OsStr::new("--key"), self.runner.key.as_os_str()];
        args.extend_from_slice(rest);
        self.lab.db(words, &args)
    }

    /// Every record the runner signed, as `assay log --json` prints it.
    pub fn records(&self) -> Vec<Value> {
        self.lab.log(&[]).into_iter().filter(|r| r["source"] == "assay:key/runner").collect()
    }

    /// The runner's events of `ty`: their `event` objects.
    pub fn events(&self, ty: &str) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["type"] == ty).map(|r| r["event"].clone()).collect()
    }

    /// Asserts every runner record is signed by the runner's key (and only it) and that the
    /// whole ledger verifies; returns the runner's records.
    #[track_caller]
    pub fn check_signed_and_verified(&self) -> Vec<Value> {
        let keyid = self.runner.verifier().keyid();
        let records = self.records();
        assert!(!records.is_empty(), "the runner recorded nothing");
        for r in &records {
            let signatures = r["envelope"]["signatures"].as_array().expect("signatures");
            assert_eq!(signatures.len(), 1, "{r}");
            assert_eq!(signatures[0]["keyid"], keyid.as_str(), "{r}");
        }
        let verified = self.lab.verify(&[]);
        assert!(verified.ok, "verify failed: {verified:?}");
        records
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.lab.path(name)
    }
}

/// The shipped campaigns' folder.
pub fn campaigns() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kernels/campaigns")
}

/// The kernel-log fixtures' folder (vendored in the kernels crate).
pub fn xid_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kernels/tests/fixtures/xid")
}

/// RFC 3339 text as nanoseconds.
pub fn ns(time: &Value) -> i64 {
    let text = time.as_str().unwrap_or_else(|| panic!("not a time: {time}"));
    chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339").timestamp_nanos_opt().expect("in range")
}
