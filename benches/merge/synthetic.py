#!/usr/bin/env python3
"""Synthetic sweep for measuring `marginflow sweep merge`: a real 10,000-run plan (written by
`marginflow sweep descent --plan-only`) and, for every run, a run directory as `sweep run` writes
it: result.json with a real descent summary (values changed per run) and trajectory.jsonl with
ROWS real descent rows.

    python3 benches/merge/synthetic.py MARGINFLOW DIR [RUNS] [ROWS]
    /usr/bin/time -v MARGINFLOW sweep merge DIR
"""
import json, os, subprocess, sys, tempfile

exe, out = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100

subprocess.run([exe, "sweep", "descent", "--n", "10", "--d", "50", "--width", "4", "--step-size", "0.1",
                "--steps", "200", "--seed", f"0..{runs - 1}", "--out", out, "--plan-only"], check=True)
# One real descent run gives the summary and row format (200 steps -> more than ROWS rows).
with tempfile.TemporaryDirectory() as t:
    subprocess.run([exe, "gen", "--kind", "gaussian", "--n", "10", "--d", "50", "--out", f"{t}/g.json"],
                   check=True, capture_output=True)
    r = subprocess.run([exe, "descent", "--data", f"{t}/g.json", "--width", "4", "--step-size", "0.1",
                        "--steps", "400", "--out", f"{t}/run", "--json"], check=True, capture_output=True)
    summary = json.loads(r.stdout)
    real_rows = [json.loads(l) for l in open(f"{t}/run/trajectory.jsonl")]
assert len(real_rows) >= rows, len(real_rows)
os.makedirs(f"{out}/runs", exist_ok=True)
for i in range(runs):
    d = f"{out}/runs/{i}"
    os.makedirs(d, exist_ok=True)
    s = dict(summary)
    s["stable_rank"] = summary["stable_rank"] * (1 + i * 1e-6)
    line = {"index": i, "summary": dict(sorted(s.items())), "values": {"seed": float(i)}}
    with open(f"{d}/result.json", "w") as f:
        f.write(json.dumps(line, separators=(",", ":")) + "\n")
    with open(f"{d}/trajectory.jsonl", "w") as f:
        for row in real_rows[:rows]:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
print(f"{runs} runs x {rows} rows in {out}")
