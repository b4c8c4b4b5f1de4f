//! Helpers of the witness tests: [`TestLog`], a log kept in memory that signs checkpoints (and
//! forks of them) and proves consistency; [`WitnessProc`], a real `assay witness serve` child.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use assay_events::Hash32;
use assay_events::b64::encode_std;
use assay_events::checkpoint::Checkpoint;
use assay_events::cosignature::CosignerVerifier;
use assay_events::keys::SignerKey;
use assay_events::merkle::{self, NodeId, leaf_hash};

/// A transparency log in memory: leaves `"{variant} leaf {i}"` (another variant is a fork).
pub struct TestLog {
    pub origin: String,
    pub key: SignerKey,
}

impl TestLog {
    pub fn new(origin: &str, seed: u8) -> TestLog {
        TestLog { origin: origin.to_owned(), key: SignerKey::from_seed(origin, [seed; 32]).expect("a key") }
    }

    fn leaves(variant: u8, size: u64) -> Vec<Hash32> {
        (0..size).map(|i| leaf_hash(format!("{variant} leaf {i}").as_bytes())).collect()
    }

    pub fn root(variant: u8, size: u64) -> Hash32 {
        merkle::root_of(&TestLog::leaves(variant, size))
    }

    /// The signed checkpoint of variant `variant` at `size`.
    pub fn checkpoint(&self, variant: u8, size: u64) -> String {
        Checkpoint { origin: self.origin.clone(), size, root: TestLog::root(variant, size) }.sign(&self.key)
    }

    /// Base64 lines of the consistency proof from `old` to `new` in variant `variant`.
    pub fn proof(variant: u8, old: u64, new: u64) -> Vec<String> {
        if old == 0 || old == new {
            return Vec::new();
        }
        let leaves = TestLog::leaves(variant, new);
        let plan = merkle::consistency_plan(old, new).expect("a plan");
        let node = |id: NodeId| {
            let begin = (id.index << id.level) as usize;
            let end = ((id.index + 1) << id.level) as usize;
            Some(merkle::root_of(&leaves[begin..end]))
        };
        plan.assemble(node).expect("the proof").iter().map(|h| encode_std(&h.0)).collect()
    }

    /// An add-checkpoint body from `old` to variant `variant` at `new`, proof included.
    pub fn body(&self, variant: u8, old: u64, new: u64) -> String {
        body(old, &TestLog::proof(variant, old, new), &self.checkpoint(variant, new))
    }

    /// A `logs.toml` naming this log.
    pub fn logs_toml(&self) -> String {
        format!("[[log]]\norigin = \"{}\"\nvkeys = [\"{}\"]\n", self.origin, self.key.verifier().to_text())
    }
}

/// An add-checkpoint body.
pub fn body(old: u64, proof: &[String], note: &str) -> String {
    let mut b = format!("old {old}\n");
    for l in proof {
        b.push_str(l);
        b.push('\n');
    }
    b.push('\n');
    b.push_str(note);
    b
}

/// `assay witness serve` as a child process; killed (-9) when dropped.
pub struct WitnessProc {
    pub child: Child,
    pub url: String,
    pub key: PathBuf,
    pub logs: PathBuf,
    pub state: PathBuf,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `assay witness key new --name NAME --out DIR/FILE`: the key's path and its vkey.
pub fn new_witness_key(dir: &Path, name: &str, file: &str) -> (PathBuf, CosignerVerifier) {
    let path = dir.join(file);
    let out = super::command()
        .args(["witness", "key", "new", "--name", name, "--out"])
        .arg(&path)
        .output()
        .expect("assay witness key new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vkey = String::from_utf8(out.stdout).expect("UTF-8");
    (path, CosignerVerifier::parse(vkey.trim()).expect("the printed vkey parses"))
}

impl WitnessProc {
    /// Starts the witness on `listen` (`127.0.0.1:0` for any port); `crash` sets the crash
    /// switch (abort right after each durable write).
    pub fn start(key: &Path, logs: &Path, state: &Path, listen: &str, crash: bool) -> WitnessProc {
        let mut c = super::command();
        c.args(["witness", "serve", "--key"])
            .arg(key)
            .arg("--logs")
            .arg(logs)
            .arg("--state")
            .arg(state)
            .args(["--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if crash {
            c.env("ASSAY_WITNESS_CRASH_AFTER_STORE", "1");
        }
        let mut child = c.spawn().expect("assay witness serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("the URL");
        let url = first.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "the witness printed {url:?}");
        WitnessProc { child, url, key: key.to_owned(), logs: logs.to_owned(), state: state.to_owned() }
    }

    /// The port it listens on.
    pub fn listen(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// kill -9, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST `body` to `url/add-checkpoint`: status, content type, text.
pub async fn add_checkpoint(
    http: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, String) {
    let r = http.post(format!("{url}/add-checkpoint")).body(body).send().await.expect("the witness answers");
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
    (status, ct, r.text().await.expect("a body"))
}
