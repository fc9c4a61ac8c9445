"""marginflow.plot: the validate report's flow figures with matplotlib (optional).

Every function takes a flow result (`marginflow.flow(...)`) and an optional matplotlib `ax`,
draws against log10 t (the theorems' time) with normalized time s on a secondary top axis, and
returns the axes:

    import marginflow.plot as mp
    r = marginflow.flow(X, y, width=16, until_log10_time=100)
    mp.gaps(r); mp.singular_values(r); mp.sigma_ratio(r, threshold=0.05)
"""

import numpy as np


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("marginflow.plot needs matplotlib, which is not installed: pip install matplotlib") from e
    return plt


def _col(r, key):
    t = r.trajectory
    return np.asarray(t[key], dtype=float) if key in t else None


def _axes(r, ax, ylabel, title):
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7.6, 4.4))
    ax.set_xlabel("log10 t (physical time)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.25)
    lt, s = _col(r, "log10_time"), _col(r, "s")
    ok = np.isfinite(lt) & np.isfinite(s) & (s > 0)
    if ok.sum() >= 2:
        lt_ok, ls_ok = lt[ok], np.log10(s[ok])

        def to_s(x):
            return 10 ** np.interp(x, lt_ok, ls_ok)

        def to_t(v):
            return np.interp(np.log10(np.maximum(v, 1e-300)), ls_ok, lt_ok)

        top = ax.secondary_xaxis("top", functions=(to_s, to_t))
        top.set_xlabel("normalized time s")
    return ax


def _finish(ax):
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(fontsize=8)
    return ax


def loss(r, ax=None):
    """−log10 L (log axis) with the interpolation threshold −log10(log 2 / n)."""
    ax = _axes(r, ax, "-log10 L", "loss")
    ax.semilogy(_col(r, "log10_time"), -_col(r, "log10_loss"), label="-log10 L")
    n = r.summary.get("shape", {}).get("n")
    if n:
        ax.axhline(-np.log10(np.log(2) / n), ls="--", color="0.35", label="-log10(log 2 / n)")
    return _finish(ax)


def margin(r, ax=None):
    """Normalized margin with the max margins of the theory pattern's and the limit pattern's QPs."""
    ax = _axes(r, ax, "normalized margin", "normalized margin")
    ax.plot(_col(r, "log10_time"), _col(r, "normalized_margin"), label="flow")
    for key, label, style in [("reference", "QP, theory pattern", "--"), ("limit_reference", "QP, limit pattern", ":")]:
        q = (r.summary.get(key) or {}).get("normalized_margin")
        if q is not None:
            ax.axhline(q, ls=style, color="C3" if key == "reference" else "C2", label=label)
    return _finish(ax)


def singular_values(r, ax=None):
    """The trajectory's singular values (log axis), each with its own colour, dash and marker."""
    ax = _axes(r, ax, "singular values of W", "singular values")
    sv = np.atleast_2d(np.asarray(r.trajectory["singular_values"], dtype=float))
    lt = _col(r, "log10_time")
    styles, marks = ["-", "--", ":", "-."], "o^xs*dv+"
    for k in range(sv.shape[1]):
        ax.semilogy(lt, sv[:, k], ls=styles[k % 4], marker=marks[k % 8], markevery=max(1, len(lt) // 12),
                    ms=4, label=f"σ{k + 1}")
    return _finish(ax)


def sigma_ratio(r, ax=None, threshold=None):
    """σ3/σ1 (log axis), with the `rank` claim's threshold when given."""
    ax = _axes(r, ax, "σ3/σ1", "σ3/σ1")
    ax.semilogy(_col(r, "log10_time"), _col(r, "sigma3_over_sigma1"), label="σ3/σ1")
    if threshold is not None:
        ax.axhline(threshold, ls="--", color="0.35", label=f"threshold {threshold:g}")
    return _finish(ax)


def gaps(r, ax=None, threshold=None, late_decades=1.0):
    """Position and velocity gaps 1 − cos against the theory pattern's W*, the fitted position-gap
    slope over the last `late_decades` decades of s, the velocity-gap threshold when given, and
    the gaps against the limit pattern's W* at the end."""
    ax = _axes(r, ax, "gap 1 - cos", "position and velocity gaps")
    lt, s = _col(r, "log10_time"), _col(r, "s")
    floor = 1e-16
    cp, cv = _col(r, "cosine_position"), _col(r, "cosine_velocity")
    if cp is not None:
        gp = np.maximum(1 - cp, floor)
        ax.semilogy(lt, gp, label="position gap, theory W*")
        late = np.isfinite(gp) & (s >= s[np.isfinite(s)].max() / 10**late_decades) & (gp > floor)
        if late.sum() >= 3:
            b, a = np.polyfit(np.log10(1 / s[late]), np.log10(gp[late]), 1)
            ax.semilogy(lt[late], 10 ** (a + b * np.log10(1 / s[late])), "k:", label=f"fit: ∝ s^-{b:.2f}")
    if cv is not None:
        ax.semilogy(lt, np.maximum(1 - cv, floor), label="velocity gap, theory W*")
    if threshold is not None:
        ax.axhline(threshold, ls="--", color="0.35", label=f"velocity-gap threshold {threshold:g}")
    lim = r.summary.get("limit_reference") or {}
    end = r.summary.get("log10_time")
    for key, label, mk, c in [("cosine_position", "position", "s", "C0"), ("cosine_velocity", "velocity", "^", "C1")]:
        if lim.get(key) is not None and end is not None:
            ax.semilogy([end], [max(1 - lim[key], floor)], mk, color=c, ms=9, label=f"{label} gap, limit W*, at the end")
    return _finish(ax)


def pattern(r, ax=None):
    """Activation-pattern agreement with the theory pattern."""
    ax = _axes(r, ax, "fraction of the theory pattern", "pattern agreement")
    ax.plot(_col(r, "log10_time"), _col(r, "pattern_agreement"))
    return _finish(ax)


def all_figures(r):
    """The six figures in one matplotlib figure (3×2), returned."""
    plt = _plt()
    fig, axes = plt.subplots(3, 2, figsize=(14, 12), constrained_layout=True)
    for f, ax in zip([loss, margin, singular_values, sigma_ratio, gaps, pattern], axes.flat):
        f(r, ax=ax)
    return fig
