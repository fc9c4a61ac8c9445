"""Side by side: the README's flow (n = 20, d = 4000, m = 16, leak 0.2, to t = 10^100) from
Python and from the CLI, alternating, REPS times each (default 21); medians.

- python call: perf_counter around marginflow.flow(X, y, ...) (X conversion, the run, the
  summary dict and the trajectory columns; W is not requested, as the CLI without --out).
- python in-library: the summary's wall_seconds of that call (the library's own clock).
- CLI in-process: the summary's wall_seconds of `marginflow flow ... --json` (same clock, same
  code path; excludes process start and reading the data file).
- CLI process: the whole subprocess, for scale.

Usage: python flow_time.py [REPS]   (needs target/release/marginflow)
"""
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import marginflow as mf

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 21
ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "marginflow"
ARGS = dict(leak=0.2, init_scale=1e-3, until_log10_time=100)

with tempfile.TemporaryDirectory() as tmp:
    data = pathlib.Path(tmp) / "g.json"
    subprocess.run([str(CLI), "gen", "--kind", "gaussian", "--n", "20", "--d", "4000", "--seed", "1",
                    "--out", str(data)], check=True, capture_output=True)
    X, y = mf.gen("gaussian", n=20, d=4000, seed=1)
    cmd = [str(CLI), "flow", "--data", str(data), "--width", "16", "--leak", "0.2", "--init-scale", "1e-3",
           "--until-log10-time", "100", "--json"]
    py_call, py_lib, cli_lib, cli_proc = [], [], [], []
    mf.flow(X, y, 16, **ARGS, progress=False)  # warm-up
    for _ in range(REPS):
        t = time.perf_counter()
        r = mf.flow(X, y, 16, **ARGS, progress=False)
        py_call.append(time.perf_counter() - t)
        py_lib.append(r.summary["wall_seconds"])
        t = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        cli_proc.append(time.perf_counter() - t)
        s = json.loads(out)
        cli_lib.append(s["wall_seconds"])
        assert s["log10_loss"] == r.summary["log10_loss"]

med = {k: statistics.median(v) for k, v in
       dict(python_call=py_call, python_in_library=py_lib, cli_in_process=cli_lib, cli_process=cli_proc).items()}
for k, v in med.items():
    print(f"{k:18s} median {v * 1e3:8.2f} ms")
print(f"python call / CLI in-process: {med['python_call'] / med['cli_in_process']:.3f}")
print(f"python in-library / CLI in-process: {med['python_in_library'] / med['cli_in_process']:.3f}")
