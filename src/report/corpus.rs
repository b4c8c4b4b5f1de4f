//! The corpus report: see the parent module.
