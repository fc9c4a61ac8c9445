"""Peak-memory cost of one X conversion at n = 200, d = 10^5 (160 MB of float64).

Each case runs in a fresh process: build X, record the peak RSS (ru_maxrss), call
marginflow.check (which converts X once, then computes the Gram statistics without further
n×d allocations), record the peak again. Usage: python convert_memory.py
"""
import json
import subprocess
import sys

CASE = r"""
import resource, sys, time, json
import numpy as np
import marginflow as mf
n, d = 200, 100_000
rng = np.random.default_rng(0)
y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
kind = sys.argv[1]
# Each input is built without a transient second n x d array, so the peak before the call is
# the input itself.
if kind == "c-order":
    X = rng.standard_normal((n, d))
elif kind == "fortran":
    X = np.empty((n, d), order="F")
    for j in range(0, d, 1000):
        X[:, j:j + 1000] = rng.standard_normal((n, 1000))
elif kind == "csr":
    import scipy.sparse as sp
    # 1% density, built row by row (scipy.sparse.random would draw a transient n*d permutation).
    cols = [np.unique(rng.integers(0, d, 1000)) for _ in range(n)]
    indptr = np.cumsum([0] + [len(c) for c in cols])
    X = sp.csr_matrix((rng.standard_normal(indptr[-1]), np.concatenate(cols), indptr), shape=(n, d))
import gc; gc.collect()
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
before = peak()
t = time.perf_counter()
mf.check(X, y)
dt = time.perf_counter() - t
print(json.dumps({"case": kind, "peak_before_MiB": before, "peak_after_MiB": peak(), "check_seconds": dt}))
"""

for kind in ("c-order", "fortran", "csr"):
    out = subprocess.run([sys.executable, "-c", CASE, kind], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    r["conversion_MiB"] = r["peak_after_MiB"] - r["peak_before_MiB"]
    print(json.dumps(r))
