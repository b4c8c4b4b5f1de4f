"""Reads an `assay export parquet` folder with pyarrow and DuckDB and checks that counts and
sums agree with `assay log --json` (one JSON record per line).

Usage: export_check.py EXPORT_DIR LOG_JSONL
Exit status: 0 ok, 1 a check failed, 77 pyarrow or duckdb is not installed.
"""

import collections
import json
import math
import os
import sys

try:
    import duckdb
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
except ImportError as e:  # the caller decides whether a missing module fails or skips
    print(f"missing python module: {e.name}", file=sys.stderr)
    sys.exit(77)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main(export, log_path):
    log = [json.loads(line) for line in open(log_path, encoding="utf-8") if line.strip()]
    manifest = json.load(open(os.path.join(export, "manifest.json"), encoding="utf-8"))
    by_type = collections.Counter(r["type"] for r in log)
    metrics = [r["event"]["data"] for r in log if r["type"] == "metric.recorded"]
    metric_sum = sum(m["value"] for m in metrics)
    xid_code_sum = sum(r["event"]["data"]["code"] for r in log if r["type"] == "gpu.xid")
    check(manifest["size"] == len(log), f"manifest size {manifest['size']} == log records {len(log)}")

    # pyarrow: every file, then the events dataset with its hive partitions.
    rows_by_table = collections.Counter()
    for f in manifest["files"]:
        t = pq.read_table(os.path.join(export, f["path"]))
        check(t.num_rows == f["rows"], f"{f['path']}: {t.num_rows} rows, manifest {f['rows']}")
        rows_by_table[f["table"]] += t.num_rows
    events = ds.dataset(os.path.join(export, "events"), format="parquet", partitioning="hive").to_table()
    check(events.num_rows == len(log), f"pyarrow events rows {events.num_rows} == {len(log)}")
    seqs = sorted(events.column("seq").to_pylist())
    check(seqs == list(range(len(log))), "pyarrow: events hold every seq once")
    counted = collections.Counter(events.column("type").to_pylist())
    check(counted == by_type, "pyarrow: events per type agree with the log")
    metric_values = []
    for f in manifest["files"]:
        if f["table"] == "metrics":
            metric_values += pq.read_table(os.path.join(export, f["path"])).column("value").to_pylist()
    check(len(metric_values) == len(metrics), "pyarrow: one metrics row per metric.recorded")
    check(math.isclose(sum(metric_values), metric_sum, rel_tol=1e-12, abs_tol=1e-9), "pyarrow: metric sum")

    # DuckDB: hive-partitioned events, typed tables, a join.
    con = duckdb.connect()
    glob = lambda table: os.path.join(export, table, "*.parquet")
    ev = f"read_parquet('{os.path.join(export, 'events', '*', '*.parquet')}', hive_partitioning = true)"
    got = dict(con.execute(f"SELECT type, count(*) FROM {ev} GROUP BY type").fetchall())
    check(got == dict(by_type), f"duckdb: events per type {got} == {dict(by_type)}")
    n = con.execute(f"SELECT count(*) FROM {ev} WHERE type = 'metric.recorded'").fetchone()[0]
    check(n == len(metrics), "duckdb: a partition filter on type")
    n, total = con.execute(f"SELECT count(*), sum(value) FROM read_parquet('{glob('metrics')}')").fetchone()
    check(n == len(metrics), "duckdb: metrics rows")
    check(math.isclose(total or 0.0, metric_sum, rel_tol=1e-12, abs_tol=1e-9), f"duckdb: metric sum {total} == {metric_sum}")
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{glob('metrics')}') m JOIN {ev} e USING (seq) "
        "WHERE e.type = 'metric.recorded' AND m.run = json_extract_string(e.payload, '$.data.run')"
    ).fetchone()[0]
    check(n == len(metrics), "duckdb: metrics join events on seq")
    for table in ["runs", "dispatches", "metrics", "kernel_launches", "xids", "telemetry", "claims", "artifacts"]:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{glob(table)}')").fetchone()[0]
        check(n == rows_by_table[table], f"duckdb: {table} rows {n} == {rows_by_table[table]}")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{glob('runs')}') WHERE event = 'started'").fetchone()[0]
    check(n == by_type["run.started"], "duckdb: runs started")
    s = con.execute(f"SELECT coalesce(sum(code), 0) FROM read_parquet('{glob('xids')}')").fetchone()[0]
    check(s == xid_code_sum, "duckdb: xid codes")
    # One identity per GPU: every PCI column holds the canonical form, so the typed tables join
    # on (host, pci) — telemetry with Xids, and the runs on a GPU with the Xids on it.
    canonical = r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$"
    for table, column in [("xids", "pci"), ("telemetry", "pci"), ("runs", "gpu"), ("dispatches", "gpu")]:
        bad = con.execute(
            f"SELECT count(*) FROM read_parquet('{glob(table)}') WHERE {column} IS NOT NULL "
            f"AND NOT regexp_full_match({column}, '{canonical}')"
        ).fetchone()[0]
        check(bad == 0, f"duckdb: {bad} {table}.{column} values not in the canonical PCI form")
    n = con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT host, pci FROM read_parquet('{glob('telemetry')}')) t "
        f"JOIN (SELECT DISTINCT host, pci FROM read_parquet('{glob('xids')}')) x USING (host, pci)"
    ).fetchone()[0]
    check(n > 0, "duckdb: telemetry joins xids on (host, pci)")
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{glob('runs')}') r JOIN read_parquet('{glob('xids')}') x "
        "ON r.host = x.host AND r.gpu = x.pci WHERE r.event = 'started'"
    ).fetchone()[0]
    check(n > 0, "duckdb: runs join xids on (host, gpu = pci)")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{glob('verdicts')}')").fetchone()[0]
    check(n == rows_by_table["verdicts"], "duckdb: the current verdicts")
    vh = f"read_parquet('{os.path.join(export, 'verdicts_history', '*', '*.parquet')}', hive_partitioning = true)"
    n = con.execute(f"SELECT count(*) FROM {vh} WHERE checkpoint = {manifest['size']}").fetchone()[0]
    check(n == rows_by_table["verdicts"], "duckdb: the verdicts snapshot at the export's checkpoint")
    print(f"ok: {len(log)} records, {len(manifest['files'])} files read by pyarrow and duckdb")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
