"""Reads the verdicts of two `assay export parquet` folders with DuckDB, through the plain glob
the README documents, and checks that each holds one current row per claim and per artifact,
equal to each other and to `assay audit --json`.

Usage: verdicts_check.py INCREMENTAL_DIR FULL_DIR AUDIT_JSON STEPS
(INCREMENTAL_DIR was exported in STEPS steps with --since; FULL_DIR at once.)
Exit status: 0 ok, 1 a check failed, 77 duckdb is not installed.
"""

import json
import os
import sys

try:
    import duckdb
except ImportError as e:  # the caller decides whether a missing module fails or skips
    print(f"missing python module: {e.name}", file=sys.stderr)
    sys.exit(77)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


# The README's query: the verdicts at the export's checkpoint, one row per claim.
QUERY = """
SELECT artifact, claim, verdict, reasons
FROM read_parquet('{export}/verdicts/**/*.parquet')
WHERE level = 'claim'
ORDER BY artifact, claim
"""


def claims(con, export):
    rows = con.execute(QUERY.format(export=export)).fetchall()
    keys = [(a, c) for a, c, _, _ in rows]
    check(len(keys) == len(set(keys)), f"{export}: one row per claim ({len(keys) - len(set(keys))} repeated)")
    return rows


def main(inc, full, audit_path, steps):
    audit = json.load(open(audit_path, encoding="utf-8"))
    con = duckdb.connect()
    got_inc, got_full = claims(con, inc), claims(con, full)
    want = sorted((c["artifact"], c["claim"], c["verdict"], c["reasons"]) for c in audit["claims"])
    check([r[:3] for r in got_inc] == [w[:3] for w in want], "incremental: the audit's verdict for every claim")
    check(got_inc == got_full, "incremental == full")
    check([list(r[3]) for r in got_inc] == [w[3] for w in want], "incremental: the audit's reasons")
    # Artifacts too, and the other glob forms read the same single file.
    for g in ["verdicts/*.parquet", "verdicts/**/*.parquet"]:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{os.path.join(inc, g)}')").fetchone()[0]
        check(n == len(audit["artifacts"]) + len(audit["claims"]), f"{g}: one row per artifact and claim")
    # Every step's snapshot is kept apart, by checkpoint.
    hist = f"read_parquet('{inc}/verdicts_history/*/*.parquet', hive_partitioning = true)"
    n = con.execute(f"SELECT count(DISTINCT checkpoint) FROM {hist}").fetchone()[0]
    check(n == steps, f"verdicts_history: {n} snapshots, {steps} steps")
    print(f"ok: {len(got_inc)} claims, one current row each")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
