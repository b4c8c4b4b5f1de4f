//! The GPU health projection.

use assay_projections::gpus::RECENT_XIDS;
use assay_projections::testkit::*;
use assay_projections::xid_class::XidClass;

#[test]
fn telemetry_xids_and_reset() {
    given(vec![
        gpu_preflight("node-1", true, &[GPU0_NVML, GPU1]),
        gpu_telemetry(GPU0_NVML, 61, 97.0),
        gpu_xid(GPU0, 13, "application", "RESTART_APP"),
        gpu_xid(GPU0, 79, "hardware", "RESET_GPU"),
        gpu_xid(GPU0, 13, "application", "RESTART_APP"),
    ])
    .then(|s| {
        let d = s.gpus.device(GPU0).unwrap();
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
        assert_eq!(s.gpus.needing_reset().map(|(p, _)| p).collect::<Vec<_>>(), [GPU0]);
        assert!(!s.gpus.device(GPU1).unwrap().needs_reset);
        let json = s.state_json("gpus").unwrap();
        assert_eq!(json["devices"][GPU0]["xids"]["by_code"]["13"], 2);
        assert_eq!(json["devices"][GPU0]["xids"]["by_severity"]["hardware"], 1);
    })
    // An unavailable preflight does not clear it; an available one listing the device does.
    .when(gpu_preflight("node-1", false, &[GPU0]))
    .then(|s| assert!(s.gpus.device(GPU0).unwrap().needs_reset))
    .when(gpu_preflight("node-1", true, &[GPU1]))
    .then(|s| assert!(s.gpus.device(GPU0).unwrap().needs_reset))
    .when(gpu_preflight("node-1", true, &[GPU0_NVML]))
    .then(|s| {
        assert!(!s.gpus.device(GPU0).unwrap().needs_reset);
        assert_eq!(s.gpus.hosts()["node-1"].devices, [GPU0]);
    });
}

#[test]
fn the_recent_xid_list_is_bounded_but_counts_are_not() {
    let xids: Vec<Ev> =
        (0..RECENT_XIDS + 8).map(|_| gpu_xid(GPU1, 31, "application", "RESTART_APP")).collect();
    given(xids).then(|s| {
        let d = s.gpus.device(GPU1).unwrap();
        assert_eq!(d.xids.recent.len(), RECENT_XIDS);
        assert_eq!(d.xids.total, (RECENT_XIDS + 8) as u64);
        assert!(!d.needs_reset);
    });
}
