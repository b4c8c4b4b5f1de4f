//! PCI bus ids: the one canonical form lives in [`assay_events::pci`]; projections key every
//! GPU by it, so events recorded in any driver's form are one GPU.

pub use assay_events::pci::{PciId, canonical, same_gpu};
