"""marginflow from Python: generate nearly orthogonal data, run gradient flow to t = 10^100,
compare its limit with the certified max-margin solution, and plot the trajectory (with
matplotlib, if installed).

    pip install ./python        # needs a Rust toolchain
    python examples/quickstart.py
"""
import sys

import numpy as np

import marginflow as mf

# 20 Gaussian points in 4000 dimensions: pairwise inner products << squared norms.
X, y = mf.gen("gaussian", n=20, d=4000, seed=1)
geometry = mf.check(X, y, leak=0.2)
print(f"data: n = {geometry['n']}, d = {geometry['d']}, "
      f"min ||x||^2 / (n max |<x_i,x_k>|) = {geometry['ratio']:.3f}")

# Gradient flow from a small initialization (width 16, leak 0.2) to t = 10^100.
r = mf.flow(X, y, 16, leak=0.2, init_scale=1e-3, until_log10_time=100)
s = r.summary
print(f"flow: {s['status']} at s = {s['s']:.4g} (t = 10^{s['log10_time']:.1f}), "
      f"{s['statistics']['accepted']} steps, {s['statistics']['events']} kink events")
print(f"  normalized margin {s['normalized_margin']:.6f}, stable rank {s['stable_rank']:.4f}, "
      f"sigma3/sigma1 {s['sigma3_over_sigma1']:.2e}")

ref = r.reference
print(f"reference (certified: {ref['certified']}): normalized margin {ref['normalized_margin']:.6f}")
print(f"  cosine(velocity, W*) = 1 - {ref['velocity_gap']:.2e}   (converges exponentially in s)")
print(f"  cosine(position, W*) = 1 - {ref['position_gap']:.2e}   (falls like 1/s^2: the direction error is 1/s)")
print(f"  multiplier error {ref['multiplier_error']:.2e}")

W = r.W  # m x d float64, computed on request
sv = np.linalg.svd(W, compute_uv=False)
print(f"W: shape {W.shape}, stable rank from numpy's SVD {np.sum(sv**2) / sv[0]**2:.4f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: skipping the plot")
    sys.exit(0)

t = r.trajectory
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].plot(t["log10_time"], t["stable_rank"])
ax[0].set_xlabel("log10 t")
ax[0].set_ylabel("stable rank")
ax[1].semilogy(t["s"], 1 - t["cosine_velocity"], label="1 - cos(velocity, W*)")
ax[1].semilogy(t["s"], 1 - t["cosine_position"], label="1 - cos(W, W*)")
ax[1].set_xscale("log")
ax[1].set_xlabel("s (normalized time)")
ax[1].legend()
fig.tight_layout()
fig.savefig("quickstart.png", dpi=100)
print("wrote quickstart.png")
