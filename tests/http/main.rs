//! The `http` integration tests: one binary, one module per file.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod auth;
mod bad_input;
mod blobs;
mod campaigns;
mod dashboard;
mod dashboard_browser;
mod dashboard_evidence;
mod dashboard_login;

mod demo_serve;
mod evidence_remote;
mod evidence_sync;
mod kernels_pages;
mod numbers;
mod remote;
mod report;
mod report_page;
mod schemathesis;
mod serve_cli;
mod stream;
mod tiles;
mod witness;
mod witnessed_log;
