#!/usr/bin/env bash
# The GPU self-check: one command, about three minutes on a machine with an NVIDIA GPU.
#
#   tools/gpu-check.sh path/to/assay OUT_DIR
#
# Builds nothing and never resets a GPU or changes its settings (nvidia-smi is only queried).
# With a GPU it runs the doctor, records a preflight, runs smoke.toml and blackwell-fp4.toml
# with --backend cuda (every CUDA cell must match its CPU reference; the deliberately broken
# kernel must fail), a larger-shape campaign for kernel times, one launch that writes to an
# illegal address on purpose (the driver logs Xid 31 or 43, which needs no reset) while
# `xid watch --nvml` follows /dev/kmsg, and a GPU-busy command under `run exec` (NVML
# utilisation in heartbeats, then the quiet window); then verifies the ledger.
#
# Without a GPU (no nvidia-smi, or the doctor exits 1) it runs what can run (doctor,
# preflight, the smoke campaign on the CPU, a supervised command, verify) and says what it
# skipped. Where nvidia-smi lists a GPU but the doctor says kernels cannot run, that is a
# failure, with the doctor's fixes. OUT_DIR gets summary.json (with the doctor's findings)
# and ledger.db. Exit 0 unless a step that ran failed;
# 2 for bad arguments. Needs bash and python3 (for the JSON checks).
set -uo pipefail

usage() {
    echo "usage: $0 ASSAY_BINARY OUT_DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
ASSAY=$1
OUT=$2
[ -x "$ASSAY" ] || { echo "gpu-check: $ASSAY is not an executable file" >&2; exit 2; }
command -v python3 >/dev/null || { echo "gpu-check: python3 is needed for the JSON checks" >&2; exit 2; }
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    echo "gpu-check: $OUT is not empty; name a new folder" >&2
    exit 2
fi
mkdir -p "$OUT/work" || exit 2
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
CAMPAIGNS=$HERE/../kernels/campaigns
W=$OUT/work
DB=$OUT/ledger.db
KEY=$W/keys/runner.key
STEPS=$OUT/steps.tsv
: >"$STEPS"

# step NAME STATUS DETAIL: one line of the summary (tabs and newlines in DETAIL flattened).
step() {
    local detail=${3//$'\t'/ }
    printf '%s\t%s\t%s\n' "$1" "$2" "${detail//$'\n'/ }" >>"$STEPS"
    echo "gpu-check: $1: $2${3:+ ($3)}"
}

# check_campaign SUMMARY_JSON BACKEND: every cell on BACKEND passed except the *_broken
# kernels, which must fail; prints why not.
check_campaign() {
    python3 - "$1" "$2" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
want = sys.argv[2]
bad = []
seen = 0
for k in summary["kernels"]:
    broken = k["kernel"].endswith("_broken")
    if k["backend"] == want:
        seen += k["passed"] + k["failed"] + k["faulted"]
    if broken and k["passed"] > 0:
        bad.append(f'{k["kernel"]} passed on {k["backend"]}')
    if not broken and (k["failed"] or k["faulted"]):
        bad.append(f'{k["kernel"]} on {k["backend"]}: {k["failed"]} failed, {k["faulted"]} faulted')
if seen == 0:
    bad.append(f"no cell ran on {want}")
print("; ".join(bad) if bad else f'{summary["totals"]["passed"]} passed, the broken control failed')
sys.exit(1 if bad else 0)
PY
}

# 1. The doctor decides the mode.
"$ASSAY" gpu doctor --json >"$OUT/doctor.json" 2>"$W/doctor.err"
doctor_rc=$?
GPU=0
if [ $doctor_rc -eq 0 ] && command -v nvidia-smi >/dev/null; then
    GPU=1
    step doctor passed "kernels can run"
elif [ $doctor_rc -eq 1 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    # A GPU is there but kernels cannot run: that is the finding, with the doctor's fixes.
    problems=$(python3 -c 'import json,sys; print("; ".join(p["problem"] + " (fix: " + p["fix"] + ")" for p in json.load(open(sys.argv[1]))["problems"]))' "$OUT/doctor.json" 2>&1)
    step doctor failed "nvidia-smi lists a GPU but kernels cannot run: $problems"
elif [ $doctor_rc -eq 1 ]; then
    why="the doctor says kernels cannot run"
    command -v nvidia-smi >/dev/null || why="no nvidia-smi on PATH"
    step doctor passed "no-GPU mode: $why"
else
    step doctor failed "exit $doctor_rc: $(head -c 500 "$W/doctor.err")"
fi
MACHINE=none
if [ $GPU -eq 1 ]; then
    MACHINE=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
fi

# 2. A fresh ledger and a runner key.
if "$ASSAY" init --db "$DB" --origin gpu-check.local/assay --keys "$W/keys" >"$W/init.out" 2>&1 \
    && "$ASSAY" key new --out "$W/keys" runner >>"$W/init.out" 2>&1 \
    && "$ASSAY" key register --db "$DB" --signer "$W/keys/admin.key" --vkey "$W/keys/runner.vkey" --role runner >>"$W/init.out" 2>&1; then
    step ledger passed "$DB"
else
    step ledger failed "$(tail -c 500 "$W/init.out")"
fi

# 3. Preflight: a CPU-only worker is healthy too, so this must pass in both modes.
if "$ASSAY" gpu preflight --db "$DB" --key "$KEY" --json >"$W/preflight.json" 2>&1; then
    step preflight passed "recorded gpu.preflight and worker.preflight"
else
    step preflight failed "$(tail -c 500 "$W/preflight.json")"
fi

# run_campaign NAME FILE BACKEND: runs a campaign and checks it against its references.
run_campaign() {
    local name=$1 file=$2 backend=$3
    if "$ASSAY" run campaign --db "$DB" --key "$KEY" --backend "$backend" --run "check-$name" --json "$file" \
        >"$W/$name.json" 2>"$W/$name.err"; then
        local verdict
        if verdict=$(check_campaign "$W/$name.json" "$backend"); then
            step "$name" passed "$verdict"
        else
            step "$name" failed "$verdict"
        fi
    else
        step "$name" failed "$(tail -c 500 "$W/$name.err")"
    fi
}

# A larger-shape campaign for kernel times (CPU references stay affordable).
cat >"$W/large.toml" <<'TOML'
name = "gpu-check-large"
description = "larger shapes, for kernel times"
seed = [1]
range = [-1.0, 1.0]

[[kernel]]
name = "saxpy"
n = [16777216]
alpha = 1.5
tolerance = 1e-6

[[kernel]]
name = "reduce_sum"
n = [16777216]
block = [256]
tolerance = 1e-1

[[kernel]]
name = "matmul_tiled"
shape = [{ m = 512, n = 512, k = 512 }]
tile = [16, 32]
tolerance = 1e-2

[[kernel]]
name = "softmax_rows"
shape = [{ rows = 4096, cols = 1024 }]
tolerance = 1e-5

[[kernel]]
name = "fp4_dequant_matmul"
shape = [{ m = 256, n = 256, k = 1024 }]
format = ["mxfp4", "nvfp4"]
tolerance = 1e-2
TOML

if [ $GPU -eq 1 ]; then
    run_campaign smoke-cuda "$CAMPAIGNS/smoke.toml" cuda
    run_campaign blackwell-fp4-cuda "$CAMPAIGNS/blackwell-fp4.toml" cuda
    run_campaign large-cuda "$W/large.toml" cuda
else
    run_campaign smoke-cpu "$CAMPAIGNS/smoke.toml" cpu
    for skipped in smoke-cuda blackwell-fp4-cuda large-cuda; do
        step "$skipped" skipped "no GPU"
    done
fi

# 4. A launch that faults on purpose while xid watch follows the kernel log and NVML.
cat >"$W/fault.cu" <<'CU'
// Writes to an illegal address on purpose: the context ends (CUDA_ERROR_ILLEGAL_ADDRESS) and
// the driver logs an Xid (31 or 43); no GPU reset is needed.
extern "C" __global__ void write_illegal(const float* x, const float* y, float* out, unsigned int n) {
    volatile float* bad = (volatile float*)0x8;
    *bad = x[0] + y[0];
    if (threadIdx.x < n) out[threadIdx.x] = 0.0f;
}
CU
cat >"$W/fault.toml" <<'TOML'
name = "gpu-check-fault"
description = "one launch that writes to an illegal address on purpose"
seed = [1]

[[cuda]]
name = "write_illegal"
source = "fault.cu"
entry = "write_illegal"
define = ["alpha"]
grid = [1]
block = [32]
inputs = [{ name = "x", len = "{n}" }, { name = "y", len = "{n}" }]
output = { len = "{n}" }
reference = "saxpy"
n = [32]
alpha = 1.0
TOML
if [ $GPU -eq 1 ]; then
    kmsg=()
    [ -r /dev/kmsg ] && kmsg=(--kmsg /dev/kmsg)
    "$ASSAY" xid watch --db "$DB" --key "$KEY" --nvml "${kmsg[@]}" --exit-after 1 --until-idle 45s --json \
        >"$W/xid.json" 2>"$W/xid.err" &
    watch_pid=$!
    sleep 2
    "$ASSAY" run campaign --db "$DB" --key "$KEY" --backend cuda --isolate --run check-fault --json \
        "$W/fault.toml" >"$W/fault.json" 2>"$W/fault.err"
    wait "$watch_pid"
    fault=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["problems"][0]["what"] if s["problems"] else "no fault")' "$W/fault.json" 2>&1)
    case $fault in
        *ILLEGAL_ADDRESS*) step fault passed "$fault" ;;
        *) step fault failed "expected CUDA_ERROR_ILLEGAL_ADDRESS: $fault" ;;
    esac
    xids=$("$ASSAY" log --db "$DB" --type gpu.xid --json | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["event"]["data"]["code"]) for l in sys.stdin))')
    if [ -n "$xids" ]; then
        step xid passed "Xid $xids"
    else
        step xid failed "no gpu.xid recorded ($(tail -c 300 "$W/xid.err"))"
    fi
else
    step fault skipped "no GPU"
    step xid skipped "no GPU"
fi

# 5. A supervised command: heartbeats (with NVML utilisation on a GPU), then the quiet window.
if "$ASSAY" init --db "$W/busy.db" --origin gpu-check.local/busy --keys "$W/busy-keys" >"$W/busy.out" 2>&1 \
    && "$ASSAY" key register --db "$W/busy.db" --signer "$W/busy-keys/admin.key" --vkey "$W/keys/runner.vkey" --role runner >>"$W/busy.out" 2>&1; then
    # Without a GPU the supervised command is the small campaign on the CPU (quick).
    backend=cpu
    nvml=(--no-nvml)
    busy=$CAMPAIGNS/smoke.toml
    if [ $GPU -eq 1 ]; then
        backend=cuda
        nvml=()
        busy=$W/large.toml
    fi
    # The command runs the campaign, then idles a little so heartbeats span both.
    printf '#!/bin/sh\n"$1" run campaign --db "$2" --key "$3" --backend "$4" --run busy "$5" && sleep 3\n' >"$W/busy.sh"
    "$ASSAY" run exec --db "$DB" --key "$KEY" --run check-exec "${nvml[@]}" --sample-every 500ms \
        --heartbeat-every 1s --quiet-window 2s --quiesce-timeout 60s -- \
        sh "$W/busy.sh" "$ASSAY" "$W/busy.db" "$KEY" "$backend" "$busy" >"$W/exec.out" 2>&1
    exec_rc=$?
    verdict=$("$ASSAY" log --db "$DB" --subject run/check-exec --json | python3 -c '
import json, sys
records = [json.loads(line) for line in sys.stdin]
types = [r["type"] for r in records]
beats = [r for r in records if r["type"] == "run.heartbeat"]
util = [b for b in beats if b["event"]["data"].get("gpu_util_pct") is not None]
print(len(beats), "heartbeats,", len(util), "with NVML utilisation,", "quiesced" if "run.quiesced" in types else "not quiesced")
' 2>&1)
    # On a GPU the heartbeats must carry NVML utilisation; without one, only their presence.
    util_ok=1
    [ $GPU -eq 1 ] && [[ $verdict == *", 0 with NVML"* ]] && util_ok=0
    if [ $exec_rc -eq 0 ] && [ $util_ok -eq 1 ] && [[ $verdict == *", quiesced"* ]] && [[ $verdict != 0* ]]; then
        step exec passed "$verdict"
    else
        step exec failed "exit $exec_rc, $verdict: $(tail -c 300 "$W/exec.out")"
    fi
else
    step exec failed "$(tail -c 500 "$W/busy.out")"
fi

# 6. The ledger verifies.
if "$ASSAY" verify --db "$DB" --json >"$W/verify.json" 2>&1; then
    step verify passed "$(head -c 200 "$W/verify.json")"
else
    step verify failed "$(head -c 500 "$W/verify.json")"
fi

# The summary: the steps, the machine, kernel times and NVML samples where they ran.
"$ASSAY" log --db "$DB" --json >"$W/log.ndjson" 2>/dev/null
python3 - "$STEPS" "$W/log.ndjson" "$OUT/summary.json" "$GPU" "$MACHINE" "$OUT/doctor.json" <<'PY'
import json, sys
steps_file, log_file, out_file, gpu, machine, doctor_file = sys.argv[1:7]
steps = []
for line in open(steps_file):
    name, status, detail = line.rstrip("\n").split("\t", 2)
    steps.append({"name": name, "status": status, "detail": detail})
times, util = [], []
for line in open(log_file):
    record = json.loads(line)
    data = record["event"]["data"]
    if record["type"] == "kernel.launch.completed" and data.get("run") == "check-large-cuda":
        times.append({"kernel": data["kernel"], "variant": data["variant"], "duration_us": data.get("duration_us")})
    if record["type"] == "run.heartbeat" and data.get("gpu_util_pct") is not None:
        util.append(data["gpu_util_pct"])
failed = [s["name"] for s in steps if s["status"] == "failed"]
try:
    doctor = json.load(open(doctor_file))
except (OSError, ValueError):
    doctor = None
summary = {
    "mode": "gpu" if gpu == "1" else "no-gpu",
    "machine": machine,
    "ok": not failed,
    "failed": failed,
    "skipped": [s["name"] for s in steps if s["status"] == "skipped"],
    "steps": steps,
    "kernel_times": times,
    "nvml_gpu_util_pct": util,
    "ledger": "ledger.db",
    "doctor": doctor,
}
json.dump(summary, open(out_file, "w"), indent=2)
print(json.dumps({"ok": summary["ok"], "failed": failed, "skipped": summary["skipped"]}))
sys.exit(1 if failed else 0)
PY
