//! `assay xid parse` on the vendored kernel-log fixture and on hostile input, and `assay xid
//! watch` on a file being appended to, recording each new Xid once.

use crate::support;
use crate::support::runner as runner_support;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runner_support::{Rig, xid_fixtures};
use serde_json::{Value, json};

#[test]
fn parse_gives_exactly_the_expected_records() {
    let dir = xid_fixtures();
    let log = dir.join("kmsg-sample.log");
    assert!(log.is_file(), "fixture missing: {}", log.display());
    let expected_path = dir.join("kmsg-sample.expected.json");
    let expected_text = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", expected_path.display()));
    let expected: Value =
        serde_json::from_str(&expected_text).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let lab = support::Lab::new();
    let out = lab.run([OsStr::new("xid"), OsStr::new("parse"), log.as_os_str(), OsStr::new("--json")]).ok();
    let found = out.json_lines();
    let want = expected["xids"].as_array().expect("xids");
    assert_eq!(found.len(), want.len(), "{}", out.stdout);
    for (got, want) in found.iter().zip(want) {
        for key in ["line", "pci", "code", "pid", "name", "message"] {
            assert_eq!(got[key], want[key], "{key} of {got}");
        }
        let keys: Vec<&str> = got.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{got}");
        assert!(got["severity"].is_string() && got["action"].is_string(), "{got}");
    }
    assert_eq!(found[0]["severity"], "driver");
    assert_eq!(found[1]["severity"], "application");
    assert_eq!(found[1]["action"], "RESTART_APP");
    assert_eq!(found[5]["code"], 48);
    assert_eq!(found[5]["severity"], "hardware");
    assert_eq!(found[5]["action"], "RESET_GPU");
    for line in expected["malformed_lines"].as_array().expect("malformed") {
        assert!(out.stderr.contains(&format!(":{line}: malformed Xid line")), "{}", out.stderr);
    }
    // With --host, each object also names it; nothing else changes.
    let hosted = lab
        .run([
            OsStr::new("xid"),
            OsStr::new("parse"),
            log.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--host"),
            OsStr::new("gpu-node-1"),
        ])
        .ok()
        .json_lines();
    assert_eq!(hosted.len(), found.len());
    for (mut with, without) in hosted.into_iter().zip(&found) {
        assert_eq!(with.as_object_mut().expect("object").remove("host"), Some(json!("gpu-node-1")));
        assert_eq!(&with, without);
    }
    let bad = lab.run([
        OsStr::new("xid"),
        OsStr::new("parse"),
        log.as_os_str(),
        OsStr::new("--host"),
        OsStr::new("not a host"),
    ]);
    assert!(bad.code == 2 && bad.stderr.contains("not a valid host name"), "{}", bad.stderr);
    // The human form says the same in words.
    let text = lab.run([OsStr::new("xid"), OsStr::new("parse"), log.as_os_str()]).ok();
    assert!(
        text.stdout.contains("line 9: gpu 0000:01:00.0 Xid 48 [hardware / RESET_GPU]"),
        "{}",
        text.stdout
    );
    assert!(text.stderr.contains("7 Xid(s), 1 malformed line(s)"), "{}", text.stderr);
}

#[test]
fn parse_survives_hostile_input_and_reads_more_shapes() {
    let lab = support::Lab::new();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\xff\xfe garbage \x00 NVRM: Xid (PCI:\xff): 13, x\n");
    bytes.extend_from_slice(&vec![b'A'; 200_000]);
    bytes.extend_from_slice(b"\nNVRM: Xid (PCI:0000:01:00): 13\n");
    bytes.extend_from_slice(
        b"Sep  8 01:00:00 host kernel: [123.4] NVRM: Xid (PCI:0000:b1:00): 145, NVLink: RLW error\n",
    );
    bytes.extend_from_slice(b"4,2280,1399140323,-;NVRM: Xid (PCI:0000:01:00): 79, pid=2131, name=python3, GPU has fallen off the bus.\n");
    bytes.extend_from_slice(b"[ 5.1] NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.\n");
    bytes.extend_from_slice(b"NVRM: Xid (PCI:0000:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)\n");
    bytes.extend_from_slice(b"NVRM: Xid (PCI:0000:01:00): 9999, something new");
    let file = lab.write("hostile.log", bytes);
    let out = lab.run([OsStr::new("xid"), OsStr::new("parse"), file.as_os_str(), OsStr::new("--json")]).ok();
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let found = out.json_lines();
    let codes: Vec<u64> = found.iter().filter_map(|f| f["code"].as_u64()).collect();
    assert_eq!(codes, vec![145, 79, 79, 154, 9999], "{}", out.stdout);
    assert_eq!(found[0]["severity"], "nvlink");
    assert_eq!(found[1]["pid"], 2131);
    assert_eq!(found[1]["name"], "python3");
    assert_eq!(found[2]["pci"], "0000:3b:00.0");
    assert_eq!(found[2]["message"], "GPU 0000:3b:00.0: GPU has fallen off the bus.");
    assert_eq!(found[3]["action"], "REBOOT");
    assert_eq!(found[4]["severity"], "unknown");
    assert_eq!(found[4]["action"], "UNKNOWN");
    assert!(out.stderr.matches("malformed Xid line").count() >= 2, "{}", out.stderr);
    let missing = lab.run([OsStr::new("xid"), OsStr::new("parse"), lab.path("absent.log").as_os_str()]);
    assert_eq!(missing.code, 2);
}

/// Lines of the watcher's stderr, as they come.
fn stderr_lines(stderr: std::process::ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn watch_records_each_new_xid_once() {
    let rig = Rig::new();
    let log = rig.lab.write(
        "kern.log",
        "[ 1.0] NVRM: Xid (PCI:0000:01:00): 31, pid=1, name=old, an old Xid before the watch\n",
    );
    let mut watcher = support::command()
        .args(["xid", "watch", "--db"])
        .arg(&rig.lab.db)
        .arg("--key")
        .arg(&rig.runner.key)
        .arg("--kmsg")
        .arg(&log)
        .args(["--nvml", "--exit-after", "3", "--until-idle", "60s", "--poll", "20ms", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = stderr_lines(watcher.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the watcher starts");
        if line.starts_with("watching ") {
            break;
        }
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).expect("append");
    let mut append = |text: &str| {
        file.write_all(text.as_bytes()).expect("append");
        file.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
    };
    append(
        "[ 2.0] usb 1-2: new high-speed USB device\n[ 2.1] NVRM: Xid (PCI:0000:41:00): 13, Graphics SM Warp Exception\n",
    );
    // One event, two lines: Xid 79 and the driver's "fallen off the bus" text.
    append("[ 3.0] NVRM: Xid (PCI:0000:3b:00): 79, pid=2131, name=python3, GPU has fallen off the bus.\n");
    append("[ 3.1] NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.\nNVRM: Xid (PCI:0000:01:00): 154 (\n");
    // Written in two pieces: recorded once, when complete.
    append("[ 4.0] NVRM: Xid (PCI:0000:01:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double");
    append(" bit error (DBE) has been detected.\n");
    let output = watcher.wait_with_output().expect("the watcher exits");
    assert!(output.status.success(), "{:?}", output.status);
    let printed: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(printed.len(), 3);
    let events = rig.events("gpu.xid");
    let summary: Vec<(u64, &str)> = events
        .iter()
        .map(|e| (e["data"]["code"].as_u64().unwrap_or(0), e["subject"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(summary, vec![(13, "gpu/0000:41:00.0"), (79, "gpu/0000:3b:00.0"), (48, "gpu/0000:01:00.0")]);
    assert_eq!(
        events[1]["data"],
        // The host defaults to the key's name, as `assay gpu preflight` names its worker.
        json!({
            "host": "runner", "pci": "0000:3b:00.0", "code": 79, "pid": 2131, "process": "python3",
            "message": "GPU has fallen off the bus.", "source": "kmsg", "severity": "hardware",
            "action": "REBOOT", "kernel_time": "3.0",
        })
    );
    assert_eq!(events[2]["data"]["message"], "An uncorrectable double bit error (DBE) has been detected.");
    assert!(events[2]["data"]["pid"].is_null());
    let printed_codes: Vec<&Value> = printed.iter().map(|p| &p["code"]).collect();
    assert_eq!(printed_codes, vec![&json!(13), &json!(79), &json!(48)]);
    rig.check_signed_and_verified();
}

#[test]
fn watch_stops_when_idle_and_handles_truncation() {
    let rig = Rig::new();
    let log = rig.lab.write("kern.log", "");
    let mut watcher = support::command()
        .args(["xid", "watch", "--db"])
        .arg(&rig.lab.db)
        .arg("--key")
        .arg(&rig.runner.key)
        .arg("--kmsg")
        .arg(&log)
        .args(["--until-idle", "1500ms", "--poll", "20ms", "--host", "gpu-node-7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = stderr_lines(watcher.stderr.take().expect("stderr"));
    loop {
        let line = stderr.recv_timeout(Duration::from_secs(60)).expect("the watcher starts");
        if line.starts_with("watching ") {
            break;
        }
    }
    std::fs::write(&log, "NVRM: Xid (PCI:0000:01:00): 13, first\nNVRM: Xid (PCI:0000:01:00): 13, second\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(400));
    // Truncated and rewritten shorter: read again from the start.
    std::fs::write(&log, "NVRM: Xid (PCI:0000:02:00): 62, halt\n").expect("truncate");
    let output = watcher.wait_with_output().expect("exits once idle");
    assert!(output.status.success());
    let messages: Vec<String> = rig
        .events("gpu.xid")
        .iter()
        .filter_map(|e| e["data"]["message"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(messages, vec!["first", "second", "halt"]);
    let hosts: Vec<Value> = rig.events("gpu.xid").iter().map(|e| e["data"]["host"].clone()).collect();
    assert_eq!(hosts, vec![json!("gpu-node-7"); 3]);
    rig.check_signed_and_verified();
}
