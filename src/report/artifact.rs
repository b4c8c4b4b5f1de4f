//! One artifact's report: see the parent module.
