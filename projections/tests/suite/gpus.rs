//! The GPU health projection.

use assay_projections::gpus::RECENT_XIDS;
use assay_projections::testkit::*;
use assay_projections::xid_class::XidClass;

const NODE1: Option<&str> = Some("node-1");

#[test]
fn telemetry_xids_and_reset() {
    given(vec![
        gpu_preflight("node-1", true, &[GPU0_NVML, GPU1]),
        gpu_telemetry(GPU0_NVML, 61, 97.0).on_host("node-1"),
        gpu_xid(GPU0, 13, "application", "RESTART_APP").on_host("node-1"),
        gpu_xid(GPU0, 79, "hardware", "RESET_GPU").on_host("node-1"),
        gpu_xid(GPU0, 13, "application", "RESTART_APP").on_host("node-1"),
    ])
    .then(|s| {
        let d = s.gpus.device(NODE1, GPU0).unwrap();
        assert_eq!(d.host.as_deref(), Some("node-1"));
        assert_eq!(d.name.as_deref(), Some("NVIDIA A100-SXM4-80GB"));
        let t = d.telemetry.as_ref().unwrap();
        assert_eq!(
            (t.temp_c, t.util_gpu_pct, t.clocks.get("sm_mhz").copied()),
            (Some(61), Some(97.0), Some(1410))
        );
        assert_eq!(d.xids.total, 3);
        assert_eq!(d.xids.by_code.get(&13), Some(&2));
        assert_eq!(d.xids.by_severity.get(&XidClass::Hardware), Some(&1));
        assert_eq!(d.xids.by_severity.get(&XidClass::Application), Some(&2));
        assert!(d.needs_reset);
        assert_eq!(d.reset_cause.as_ref().map(|c| c.code), Some(79));
        let needing: Vec<String> = s.gpus.needing_reset().map(|(k, _)| k.to_string()).collect();
        assert_eq!(needing, ["node-1/0000:01:00.0"]);
        assert!(!s.gpus.device(NODE1, GPU1).unwrap().needs_reset);
        let json = s.state_json(assay_projections::ProjectionName::Gpus).unwrap();
        assert_eq!(json["devices"]["node-1/0000:01:00.0"]["xids"]["by_code"]["13"], 2);
        assert_eq!(json["devices"]["node-1/0000:01:00.0"]["xids"]["by_severity"]["hardware"], 1);
    })
    // An unavailable preflight does not clear it; an available one listing the device does.
    .when(gpu_preflight("node-1", false, &[GPU0]))
    .then(|s| assert!(s.gpus.device(NODE1, GPU0).unwrap().needs_reset))
    .when(gpu_preflight("node-1", true, &[GPU1]))
    .then(|s| assert!(s.gpus.device(NODE1, GPU0).unwrap().needs_reset))
    .when(gpu_preflight("node-1", true, &[GPU0_NVML]))
    .then(|s| {
        assert!(!s.gpus.device(NODE1, GPU0).unwrap().needs_reset);
        assert_eq!(s.gpus.hosts()["node-1"].devices, [GPU0]);
    });
}

#[test]
fn the_recent_xid_list_is_bounded_but_counts_are_not() {
    let xids: Vec<Ev> =
        (0..RECENT_XIDS + 8).map(|_| gpu_xid(GPU1, 31, "application", "RESTART_APP")).collect();
    given(xids).then(|s| {
        let d = s.gpus.device(None, GPU1).unwrap();
        assert_eq!(d.xids.recent.len(), RECENT_XIDS);
        assert_eq!(d.xids.total, (RECENT_XIDS + 8) as u64);
        assert!(!d.needs_reset);
    });
}

#[test]
fn devices_are_per_host_and_a_reset_on_one_host_leaves_the_same_pci_elsewhere_alone() {
    given(vec![
        gpu_preflight("node-1", true, &[GPU0_NVML]),
        gpu_preflight("node-2", true, &[GPU0_NVML]),
        gpu_telemetry(GPU0_NVML, 44, 10.0).on_host("node-2"),
        gpu_xid(GPU0, 79, "hardware", "RESET_GPU").on_host("node-1"),
    ])
    .then(|s| {
        let keys: Vec<String> = s.gpus.devices().keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["node-1/0000:01:00.0", "node-2/0000:01:00.0"]);
        let (one, two) = (s.gpus.device(NODE1, GPU0).unwrap(), s.gpus.device(Some("node-2"), GPU0).unwrap());
        assert_eq!((one.xids.total, two.xids.total), (1, 0));
        assert!(one.telemetry.is_none() && two.telemetry.as_ref().is_some_and(|t| t.temp_c == Some(44)));
        assert!(one.needs_reset && !two.needs_reset);
        assert_eq!(s.gpus.needs_reset("node-1", GPU0_NVML).map(|c| c.code), Some(79));
        assert_eq!(s.gpus.needs_reset("node-2", GPU0), None);
    })
    // node-2's preflight does not clear node-1's reset; node-1's does.
    .when(gpu_preflight("node-2", true, &[GPU0]))
    .then(|s| assert!(s.gpus.needs_reset("node-1", GPU0).is_some()))
    .when(gpu_preflight("node-1", true, &[GPU0]))
    .then(|s| assert!(s.gpus.needs_reset("node-1", GPU0).is_none()));
}

#[test]
fn a_reset_without_a_host_holds_for_that_pci_on_every_host() {
    given(vec![
        gpu_preflight("node-1", true, &[GPU0]),
        gpu_telemetry(GPU0_NVML, 61, 97.0),
        gpu_xid(GPU0, 48, "hardware", "RESET_GPU"),
    ])
    .then(|s| {
        // Host-less events stay under a host-less key, as recorded.
        let hostless = s.gpus.device(None, GPU0).unwrap();
        assert_eq!(
            (hostless.xids.total, hostless.telemetry.is_some(), hostless.needs_reset),
            (1, true, true)
        );
        assert_eq!(s.gpus.device(NODE1, GPU0).unwrap().xids.total, 0);
        // The known host is marked, and a host never seen before reads as needing it too.
        assert!(s.gpus.device(NODE1, GPU0).unwrap().needs_reset);
        assert_eq!(s.gpus.needs_reset("node-1", GPU0).map(|c| c.code), Some(48));
        assert_eq!(s.gpus.needs_reset("node-9", GPU0).map(|c| c.code), Some(48));
        assert_eq!(s.gpus.needs_reset("node-9", GPU1), None);
        assert_eq!(s.state_json(assay_projections::ProjectionName::Gpus).unwrap()["devices"]["0000:01:00.0"]["needs_reset"], true);
    })
    // A host's preflight clears the host-less entry (as before hosts were recorded) and its own.
    .when(gpu_preflight("node-2", true, &[GPU0]))
    .then(|s| {
        assert_eq!(s.gpus.needs_reset("node-2", GPU0), None);
        assert_eq!(s.gpus.needs_reset("node-9", GPU0), None);
        assert!(s.gpus.needs_reset("node-1", GPU0).is_some());
    });
}
