//! Process supervision (Linux): the process tree of a run from `/proc`, its CPU and memory,
//! a metrics file followed as it grows, evidence hashing, and the quiet window (the wake
//! gate). The pieces are plain data and state machines; [`exec`] drives them around a real
//! child process.

mod evidence;
mod exec;
mod metrics;
mod proc;
mod quiet;
mod tree;

pub use evidence::{
    EvidenceFile, FILES_PER_EVENT, bundle_digest, evidence_events, hash_file, hash_folder, hash_reader,
    keep_files, manifest,
};
pub use exec::{ExecError, ExecOptions, ExecReport, GpuUtilization, exec};
pub use metrics::{Metric, MetricLine, MetricLineError, MetricsTail, parse_metric};
pub use proc::{
    ProcStat, clock_ticks_per_second, page_size, parse_stat, read_stat, signal_group, snapshot,
    uptime_seconds,
};
pub use quiet::{Quiesced, QuietConfig, QuietGate, QuietSample, QuietState};
pub use tree::{TreeSample, TreeTracker};
