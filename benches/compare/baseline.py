#!/usr/bin/env python3
"""The scripts a user would write without marginflow: full-W gradient flow with scipy and a numpy
gradient-descent loop, for the side-by-side in docs/performance.md (run by benches/compare/run.sh).

Model (DESIGN.md section 1): f(x; W) = sum_j a_j phi(<w_j, x>), leaky ReLU phi(z) = max(z, gamma z),
balanced outer layer a_j = +1/sqrt(m) for j < ceil(m/2) and -1/sqrt(m) for the rest, logistic
loss L(W) = (1/n) sum_i log(1 + exp(-q_i)), q_i = y_i f(x_i; W).

    -grad_W L = (1/n) [ (a_j phi'(P_ji) y_i s_i) ]_ji X,   P = W X^T,   s_i = 1/(1 + e^{q_i})

  flow:    scipy.integrate.solve_ivp(RK45) on the flattened W (m*d unknowns) in natural time t.
  descent: W <- W - alpha grad L(W), a plain numpy loop.

Prints one JSON line: wall time inside the script (after imports and loading), RHS evaluations,
final normalized margin min_i q_i / ||W||_F; saves the final W with np.save.
"""
import argparse
import json
import time

import numpy as np


def load_csv(path):
    """CSV as written by `marginflow gen`: a header line, then label, features."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    y = a[:, 0].copy()
    y[y == 0] = -1.0
    return np.ascontiguousarray(a[:, 1:]), y


def outer_balanced(m):
    c = 1.0 / np.sqrt(m)
    half = (m + 1) // 2
    return np.where(np.arange(m) < half, c, -c)


class Model:
    def __init__(self, x, y, a, gamma):
        self.x, self.y, self.a, self.gamma = x, y, a, gamma
        self.n = x.shape[0]
        self.nfev = 0

    def neg_grad(self, w):
        p = w @ self.x.T  # m x n
        dphi = np.where(p >= 0.0, 1.0, self.gamma)
        phi = p * dphi
        q = self.y * (self.a @ phi)
        s = 0.5 * (1.0 - np.tanh(0.5 * q))  # 1/(1+e^q) = -l'(q), overflow-free
        c = self.y * s / self.n
        return (self.a[:, None] * dphi * c[None, :]) @ self.x

    def normalized_margin(self, w):
        p = w @ self.x.T
        phi = np.where(p >= 0.0, p, self.gamma * p)
        q = self.y * (self.a @ phi)
        return float(q.min() / np.linalg.norm(w))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["flow", "descent"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--init-file", required=True)
    ap.add_argument("--leak", type=float, default=0.1)
    ap.add_argument("--until-time", type=float, default=2.0)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--atol", type=float, default=1e-10)
    ap.add_argument("--step-size", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--save-weights", required=True)
    args = ap.parse_args()

    x, y = load_csv(args.data)
    w0 = np.load(args.init_file)
    m = w0.shape[0]
    model = Model(x, y, outer_balanced(m), args.leak)
    t0 = time.perf_counter()
    if args.mode == "flow":
        from scipy.integrate import solve_ivp

        shape = w0.shape

        def fun(_t, wflat):
            model.nfev += 1
            return model.neg_grad(wflat.reshape(shape)).ravel()

        sol = solve_ivp(fun, (0.0, args.until_time), w0.ravel(), method="RK45", rtol=args.rtol, atol=args.atol)
        if sol.status != 0:
            raise SystemExit(f"solve_ivp failed: {sol.message}")
        w = sol.y[:, -1].reshape(shape)
        extra = {"steps": int(sol.t.size - 1), "solver_nfev": int(sol.nfev)}
    else:
        w = w0.copy()
        for _ in range(args.steps):
            w += args.step_size * model.neg_grad(w)
            model.nfev += 1
        extra = {"steps": args.steps}
    inner = time.perf_counter() - t0
    np.save(args.save_weights, np.ascontiguousarray(w))
    out = {"inner_seconds": inner, "rhs_evaluations": model.nfev, "normalized_margin": model.normalized_margin(w)}
    out.update(extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
