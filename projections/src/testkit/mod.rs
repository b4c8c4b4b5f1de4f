//! Test builders (feature `testkit`): signed records from (type, data) and a
//! given/when/then over [`Projections`].
//!
//! ```
//! use assay_projections::dispatch_decision;
//! use assay_projections::testkit::*;
//!
//! given(vec![run_queued("r1", "p", true), worker_preflight("w1", true, &[GPU0])])
//!     .when(dispatch_requested("r1", "w1", Some(GPU0)))
//!     .then_with(|state, request| {
//!         let d = dispatch_decision(state, request, MAX_AGE_NS).unwrap();
//!         assert!(d.accepted);
//!     });
//! ```
//!
//! Records get sequential seqs; record `seq` is received at `BASE_NS + seq · STEP_NS` and its
//! event `time` is the same instant unless the event says otherwise. Every event is signed by
//! the test key of the first role allowed to emit its type (a genesis registers them all),
//! and its `data` is checked against its schema before it becomes a record.
//!
//! Placeholders resolved when a record is built: in `claim.asserted` `evidence`,
//! `"@evidence:<run>"` becomes the digest of the latest `evidence.captured` of that run; in
//! `dispatch.decided` `request`, `"@request:<run>"` the digest of its latest
//! `dispatch.requested`.

mod events;
pub mod schema;

use assay_events::Hash32;
use assay_events::dsse::DecodedEnvelope;
use assay_events::keys::SignerKey;
use assay_events::record::Record;
use assay_events::roles::{Role, allowed_roles};
use serde_json::{Value, json};

pub use events::*;

use crate::bundle::Projections;
use crate::gates::{LedgerDecision, admission_decision, dispatch_decision};

/// 2026-09-08T00:00:00Z.
pub const BASE_NS: i64 = 1_788_825_600_000_000_000;
/// One second between records.
pub const STEP_NS: i64 = 1_000_000_000;
/// The preflight age limit the testkit's ledger decides dispatches with (5 minutes).
pub const MAX_AGE_NS: i64 = 300 * STEP_NS;

/// Names of the test keys. Each role's key is named after the role; `stranger` is never
/// registered.
pub const KEY_NAMES: &[&str] =
    &["ledger", "admin", "dispatcher", "worker", "runner", "author", "auditor", "stranger"];

/// The deterministic test key `name`.
pub fn key(name: &str) -> SignerKey {
    let seed = *blake3::hash(format!("assay test key {name}").as_bytes()).as_bytes();
    SignerKey::from_seed(name, seed).unwrap_or_else(|e| panic!("test key {name}: {e}"))
}

/// An event to be sequenced.
#[derive(Debug, Clone)]
pub struct Ev {
    pub ty: String,
    pub data: Value,
    pub signer: Option<String>,
    pub time_ns: Option<i64>,
    pub received_at_ns: Option<i64>,
    pub subject: Option<String>,
    pub check_schema: bool,
}

/// An event of type `ty` with `data`.
pub fn ev(ty: &str, data: Value) -> Ev {
    Ev {
        ty: ty.to_owned(),
        data,
        signer: None,
        time_ns: None,
        received_at_ns: None,
        subject: None,
        check_schema: true,
    }
}

impl Ev {
    /// Signed by test key `name` (see [`KEY_NAMES`]) instead of the default.
    pub fn signed_by(mut self, name: &str) -> Ev {
        self.signer = Some(name.to_owned());
        self
    }
    /// The producer's `time`, in Unix ns.
    pub fn at_ns(mut self, t: i64) -> Ev {
        self.time_ns = Some(t);
        self
    }
    /// The ledger's `received_at_ns`.
    pub fn received_at_ns(mut self, t: i64) -> Ev {
        self.received_at_ns = Some(t);
        self
    }
    pub fn subject(mut self, s: &str) -> Ev {
        self.subject = Some(s.to_owned());
        self
    }
    /// Sets `data.host` (the host of a `gpu.xid`, `gpu.telemetry` or `gpu.preflight`).
    pub fn on_host(mut self, host: &str) -> Ev {
        self.data["host"] = host.into();
        self
    }
    /// Skips the schema check (for malformed-data tests).
    pub fn unchecked(mut self) -> Ev {
        self.check_schema = false;
        self
    }
}

/// A log being written: records with seqs from 0, chained.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    records: Vec<Record>,
}

impl Ledger {
    /// A log holding the genesis and the registration of every role's test key.
    pub fn new() -> Ledger {
        let mut l = Ledger::bare();
        l.push(genesis());
        for role in ["dispatcher", "worker", "runner", "author", "auditor"] {
            l.push(key_registered(role, &[role]));
        }
        l
    }

    /// An empty log.
    pub fn bare() -> Ledger {
        Ledger::default()
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Builds the next record from `e` without appending it.
    pub fn build(&self, e: Ev) -> Record {
        let seq = self.records.len() as u64;
        let mut data = e.data;
        self.resolve_placeholders(&e.ty, &mut data);
        if e.check_schema
            && let Err(err) = schema::validate(&e.ty, &data)
        {
            panic!("test event does not match its schema: {err}\n{data}");
        }
        let received = e.received_at_ns.unwrap_or(BASE_NS + seq as i64 * STEP_NS);
        let time_ns = e.time_ns.unwrap_or(received);
        let signer_name = e.signer.unwrap_or_else(|| default_signer(&e.ty).to_owned());
        let signer = key(&signer_name);
        let subject = e.subject.or_else(|| subject_of(&e.ty, &data, &signer_name));
        let mut payload = json!({
            "specversion": "1.0",
            "id": format!("ev-{seq}"),
            "source": format!("assay:key/{signer_name}"),
            "type": e.ty,
            "time": rfc3339(time_ns),
            "datacontenttype": "application/json",
            "data": data,
        });
        if let (Some(s), Some(obj)) = (subject, payload.as_object_mut()) {
            obj.insert("subject".into(), Value::String(s));
        }
        let bytes = payload.to_string().into_bytes();
        let envelope = DecodedEnvelope::sign(bytes, &signer);
        let prev = self.records.last().map_or(Hash32::ZERO, |r| r.record_hash);
        Record::new(seq, received, envelope.payload, envelope.signatures, prev)
            .unwrap_or_else(|err| panic!("test record {seq}: {err}"))
    }

    /// Builds the next record from `e` and appends it.
    pub fn push(&mut self, e: Ev) -> Record {
        let r = self.build(e);
        self.records.push(r.clone());
        r
    }

    fn latest_digest(&self, ty: &str, run: &str) -> Option<String> {
        self.records
            .iter()
            .rev()
            .find(|r| r.event.ty == ty && r.event.data["run"].as_str() == Some(run))
            .map(|r| r.digest.to_hex())
    }

    fn resolve_placeholders(&self, ty: &str, data: &mut Value) {
        let resolve = |s: &str| -> Option<String> {
            if let Some(run) = s.strip_prefix("@evidence:") {
                return Some(self.latest_digest("evidence.captured", run).unwrap_or_else(|| "0".repeat(64)));
            }
            if let Some(run) = s.strip_prefix("@request:") {
                return Some(self.latest_digest("dispatch.requested", run).unwrap_or_else(|| "0".repeat(64)));
            }
            None
        };
        match ty {
            "claim.asserted" => {
                for item in data.get_mut("evidence").and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(d) = item.as_str().and_then(resolve) {
                        *item = Value::String(d);
                    }
                }
            }
            "evidence.synced" => {
                if let Some(item) = data.get_mut("evidence")
                    && let Some(d) = item.as_str().and_then(resolve)
                {
                    *item = Value::String(d);
                }
            }
            "dispatch.decided" => {
                if let Some(item) = data.get_mut("request")
                    && let Some(d) = item.as_str().and_then(resolve)
                {
                    *item = Value::String(d);
                }
            }
            _ => {}
        }
    }
}

/// The test key that signs `ty` by default: the first role allowed to emit it.
pub fn default_signer(ty: &str) -> &'static str {
    allowed_roles(ty).and_then(|r| r.first()).map_or("admin", |r: &Role| r.as_str())
}

/// The subject the README's table gives an event.
fn subject_of(ty: &str, data: &Value, signer: &str) -> Option<String> {
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    Some(match ty {
        "ledger.initialized" | "audit.attested" => "ledger".to_owned(),
        "key.registered" | "key.revoked" => format!("key/{}", s("vkey")?.split('+').next()?),
        t if t.starts_with("control.") => "control".to_owned(),
        "worker.preflight" => format!("worker/{}", s("worker")?),
        "gpu.preflight" => format!("worker/{}", s("host").unwrap_or(signer)),
        "gpu.telemetry" | "gpu.xid" => format!("gpu/{}", s("pci")?),
        t if t.starts_with("artifact.") => format!("artifact/{}", s("slug")?),
        t if t.starts_with("claim.") => format!("artifact/{}", s("artifact")?),
        _ => format!("run/{}", s("run")?),
    })
}

/// The RFC 3339 text the testkit writes as an event's `time`.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A scenario: a log, the state folded from it, and the last record.
#[derive(Debug, Clone)]
pub struct Scenario {
    ledger: Ledger,
    state: Projections,
    last: Option<Record>,
}

/// The state after `events`, sequenced as the ledger would: after genesis and key
/// registrations, each `dispatch.requested` and `artifact.submitted` is followed by the
/// ledger's decision.
pub fn given(events: Vec<Ev>) -> Scenario {
    let mut s = Scenario::from_ledger(Ledger::new());
    for e in events {
        s = s.sequence(e);
    }
    s
}

/// Like [`given`], but without gate decisions: exactly `events` after the genesis.
pub fn given_raw(events: Vec<Ev>) -> Scenario {
    let mut s = Scenario::from_ledger(Ledger::new());
    for e in events {
        s = s.when(e);
    }
    s
}

impl Scenario {
    pub fn from_ledger(ledger: Ledger) -> Scenario {
        let state = Projections::replay(ledger.records());
        let last = ledger.records().last().cloned();
        Scenario { ledger, state, last }
    }

    /// Appends and applies one record (no gate).
    pub fn when(mut self, e: Ev) -> Scenario {
        let r = self.ledger.push(e);
        self.state.apply(&r);
        self.last = Some(r);
        self
    }

    /// Appends and applies one record; if it is a request a gate decides, appends and applies
    /// the ledger's decision too (the last record is then the decision).
    pub fn sequence(self, e: Ev) -> Scenario {
        let s = self.when(e);
        match s.last.as_ref().map(|r| r.event.ty.as_str()) {
            Some("dispatch.requested" | "artifact.submitted") => s.decide(),
            _ => s,
        }
    }

    /// Runs the gate on the last record (a `dispatch.requested` or `artifact.submitted`) and
    /// appends the ledger's decision.
    pub fn decide(self) -> Scenario {
        let Some(request) = self.last.clone() else { return self };
        let decision = match request.event.ty.as_str() {
            "dispatch.requested" => {
                dispatch_decision(&self.state, &request, MAX_AGE_NS).map(|d| decision_event(&d))
            }
            "artifact.submitted" => admission_decision(&self.state, &request).map(|d| decision_event(&d)),
            _ => return self,
        };
        match decision {
            Ok(e) => self.when(e),
            Err(err) => panic!("gate: {err}"),
        }
    }

    pub fn then(self, f: impl FnOnce(&Projections)) -> Scenario {
        f(&self.state);
        self
    }

    /// `f` with the state and the last record.
    pub fn then_with(self, f: impl FnOnce(&Projections, &Record)) -> Scenario {
        if let Some(last) = &self.last {
            f(&self.state, last);
        }
        self
    }

    pub fn state(&self) -> &Projections {
        &self.state
    }

    pub fn records(&self) -> &[Record] {
        self.ledger.records()
    }

    pub fn last(&self) -> Option<&Record> {
        self.last.as_ref()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// The ledger's event for a gate decision.
pub fn decision_event(d: &impl LedgerDecision) -> Ev {
    ev(d.event_type().as_str(), d.ledger_event_data()).signed_by("ledger").subject(&d.subject())
}
