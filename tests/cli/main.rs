//! The `cli` integration tests: one binary, one module per file.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod campaign_diff;
mod campaign_evidence;
mod crash;
mod demo;
mod demo_groups;
mod demo_kernels;
mod evidence;
mod evidence_gate;
mod evidence_gc;
mod gates;
mod gpu_check;
mod gpu_doctor;
mod pipe;
mod proofs;
mod recompute;
mod replay;
mod report;
mod report_corpus;
mod roundtrip;
mod run_campaign;
mod run_command;
mod run_cuda_source;
mod run_exec;
mod schemas;
mod store_scan;
mod tamper;
mod whole_input;
mod xid;
