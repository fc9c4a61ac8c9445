#!/usr/bin/env bash
# Side-by-side of marginflow against the scripts users would otherwise write (benches/compare/baseline.py):
#   flow:    scipy solve_ivp RK45 on the full W in natural time vs `marginflow flow --until-time`,
#   descent: a numpy gradient-descent loop vs `marginflow descent`.
# Same data (`marginflow gen`), same W0 (entries N(0, 1/d), so the flow crosses kinks), same tolerances.
# Prints a Markdown table: whole-process wall and CPU time (medians of REPS runs), RHS evaluations, final
# normalized margin, relative Frobenius difference of the final W, and the time ratio.
#
# Usage: bash benches/compare/run.sh            (from the repository root; never needed by the build)
# Env:   REPS (default 3), N D M (default 20 4000 16), LEAK (0.1), T_END (2), RTOL (1e-8), ATOL (1e-10),
#        STEPS (2000), STEP_SIZE (0.05), WORK (default: a fresh temporary directory),
#        BLAS_THREADS (default 1: OpenBLAS's threads fight over a shared 2-core machine and make numpy
#        ~18x slower there; set to "" to leave the library default).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/benches/compare"
REPS="${REPS:-3}"; N="${N:-20}"; D="${D:-4000}"; M="${M:-16}"; LEAK="${LEAK:-0.1}"
T_END="${T_END:-2}"; RTOL="${RTOL:-1e-8}"; ATOL="${ATOL:-1e-10}"; STEPS="${STEPS:-2000}"; STEP_SIZE="${STEP_SIZE:-0.05}"
BLAS_THREADS="${BLAS_THREADS-1}"
WORK="${WORK:-$(mktemp -d)}"
mkdir -p "$WORK"

if [ ! -x "$HERE/.venv/bin/python" ]; then
  echo "creating $HERE/.venv (numpy, scipy)" >&2
  python3 -m venv "$HERE/.venv"
  "$HERE/.venv/bin/pip" install --quiet numpy scipy
fi
PY="$HERE/.venv/bin/python"
if [ -n "$BLAS_THREADS" ]; then
  export OPENBLAS_NUM_THREADS="$BLAS_THREADS" OMP_NUM_THREADS="$BLAS_THREADS" MKL_NUM_THREADS="$BLAS_THREADS"
fi

echo "building release binary" >&2
(cd "$ROOT" && cargo build --release --quiet)
MF="$ROOT/target/release/marginflow"

DATA="$WORK/data.csv"; W0="$WORK/W0.npy"
"$MF" gen --kind gaussian --n "$N" --d "$D" --seed 1 --out "$DATA" >&2
"$PY" -c "import numpy as np; np.save('$W0', np.random.default_rng(7).normal(0.0, 1.0/np.sqrt($D), ($M, $D)))"

# time_runs LABEL CMD...: run REPS times, whole-process wall, user and system seconds (a Python
# wrapper: wall by perf_counter around spawn and wait, CPU from wait4's rusage; GNU time's 10 ms
# resolution is too coarse for a 10-20 ms process) into WORK/LABEL.times, stdout of the last run
# into WORK/LABEL.json.
time_runs() {
  local label="$1"; shift
  : > "$WORK/$label.times"
  for _ in $(seq "$REPS"); do
    "$PY" - "$WORK/$label.json" "$@" >> "$WORK/$label.times" <<'PYEOF'
import os, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    t0 = time.perf_counter()
    p = subprocess.Popen(sys.argv[2:], stdout=out)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"{sys.argv[2]} failed with status {status}")
print(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f}")
PYEOF
  done
}

echo "load before: $(uptime)" >&2
echo "running marginflow flow x$REPS" >&2
time_runs mf_flow "$MF" flow --data "$DATA" --width "$M" --leak "$LEAK" --init-file "$W0" --until-time "$T_END" \
  --rtol "$RTOL" --atol "$ATOL" --out "$WORK/mf_flow" --save-weights --json
echo "running scipy RK45 x$REPS" >&2
time_runs py_flow "$PY" "$HERE/baseline.py" flow --data "$DATA" --init-file "$W0" --leak "$LEAK" --until-time "$T_END" \
  --rtol "$RTOL" --atol "$ATOL" --save-weights "$WORK/py_flow_W.npy"
echo "running marginflow descent x$REPS" >&2
time_runs mf_gd "$MF" descent --data "$DATA" --width "$M" --leak "$LEAK" --init-file "$W0" --step-size "$STEP_SIZE" \
  --steps "$STEPS" --out "$WORK/mf_gd" --save-weights --json
echo "running numpy GD x$REPS" >&2
time_runs py_gd "$PY" "$HERE/baseline.py" descent --data "$DATA" --init-file "$W0" --leak "$LEAK" --step-size "$STEP_SIZE" \
  --steps "$STEPS" --save-weights "$WORK/py_gd_W.npy"
echo "load after: $(uptime)" >&2

"$PY" - "$WORK" "$N" "$D" "$M" "$T_END" "$RTOL" "$ATOL" "$STEPS" "$STEP_SIZE" "$REPS" "${OPENBLAS_NUM_THREADS:-default}" <<'EOF'
import json, sys
import numpy as np
work, n, d, m, t_end, rtol, atol, steps, alpha, reps, threads = sys.argv[1:]
def med(label):
    """Median whole-process wall time and median CPU time (user + system), seconds."""
    rows = [[float(v) for v in line.split()] for line in open(f"{work}/{label}.times") if line.strip()]
    return float(np.median([r[0] for r in rows])), float(np.median([r[1] + r[2] for r in rows]))
def js(label):
    return json.load(open(f"{work}/{label}.json"))
def rel(a, b):
    a, b = np.load(a), np.load(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
mf, py = js("mf_flow"), js("py_flow")
mg, pg = js("mf_gd"), js("py_gd")
rows = [
    (f"flow to t = {t_end} (rtol {rtol}, atol {atol})",
     "marginflow flow (span-reduced, normalized time, kink events)", "scipy solve_ivp RK45, full W",
     med("mf_flow"), med("py_flow"), mf["statistics"]["rhs_evaluations"], py["rhs_evaluations"],
     mf["normalized_margin"], py["normalized_margin"], rel(f"{work}/mf_flow/W.npy", f"{work}/py_flow_W.npy")),
    (f"{steps} GD steps (step size {alpha})",
     "marginflow descent", "numpy loop, full W",
     med("mf_gd"), med("py_gd"), mg["step"], pg["rhs_evaluations"],
     mg["normalized_margin"], pg["normalized_margin"], rel(f"{work}/mf_gd/W.npy", f"{work}/py_gd_W.npy")),
]
print(f"n = {n}, d = {d}, m = {m}; whole-process wall and CPU (user + sys) time, medians of {reps}; OPENBLAS_NUM_THREADS = {threads}")
print()
print("| task | side | wall (s) | CPU (s) | RHS evaluations | final normalized margin | rel. Frobenius diff of final W | speed-up wall (CPU) |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for task, a, b, ta, tb, ea, eb, qa, qb, diff in rows:
    print(f"| {task} | {a} | {ta[0]:.4f} | {ta[1]:.4f} | {ea} | {qa:.10g} | {diff:.2e} | {tb[0] / ta[0]:.0f}x ({tb[1] / ta[1]:.0f}x) |")
    print(f"| | {b} | {tb[0]:.4f} | {tb[1]:.4f} | {eb} | {qb:.10g} | | |")
EOF
