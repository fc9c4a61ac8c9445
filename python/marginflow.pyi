"""marginflow: gradient flow on two-layer leaky-ReLU networks, followed deep into the asymptotic
regime and checked against certified max-margin solutions (Frei, Vardi, Bartlett, Srebro, Hu,
ICLR 2023).

    import marginflow
    X, y = marginflow.gen("gaussian", n=20, d=4000, seed=1)
    r = marginflow.flow(X, y, 16, leak=0.2, until_log10_time=100)
    r.reference["cosine_velocity"], r.trajectory["stable_rank"], r.W.shape

Names and defaults are the CLI's (`marginflow flow --until-log10-time` is `until_log10_time=`).
X: any float64-convertible 2-D array (C or Fortran order; a C-contiguous float64 array is copied
once as a block, others converted in one pass) or a scipy.sparse matrix (densified once); y in
{-1, +1} or {0, 1}.

Errors: bad data or settings raise ValueError with the CLI's one-line message (which names the
CLI flag, e.g. "--leak: must be in (0, 1), got 2"); an array argument of the wrong kind raises
TypeError; an unreadable or unwritable file raises OSError. A run that ends before its horizon is
not an error: `status` says why ("max_steps", "non_finite", "diverged", "loss_increased",
"interrupted"). Long runs release the GIL; Ctrl-C stops them at the next step (checkpoint written
when `out` is given) and raises KeyboardInterrupt.
"""

import os
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

ArrayLike = Union[npt.ArrayLike, Any]  # numpy arrays, nested lists, scipy.sparse matrices
PathLike = Union[str, os.PathLike]
Numbers = Union[float, Sequence[float]]

#: Whether this build has arbitrary precision (`precision` other than 53 bits).
MPFR: bool
__version__: str

class FlowResult:
    """The end of a gradient-flow run."""

    #: The fields of summary.json: status, s, log10_time, log10_loss, frobenius_norm, min_margin,
    #: normalized_margin, singular_values, stable_rank, sigma3_over_sigma1, pattern_agreement,
    #: loss_weights, statistics, settings, reference, … (`_decimal` strings above 53 bits).
    summary: Dict[str, Any]
    #: One numpy column per trajectory field (log-spaced in s); singular_values is 2-D (rows × k).
    trajectory: Dict[str, np.ndarray]
    @property
    def W(self) -> np.ndarray:
        """Final weights W (m×d float64), computed on first access from the final state and the
        caller's X (held by reference; ValueError if it changed since the run); equal bit for bit
        to the CLI's `--save-weights` W.npy."""
    @property
    def reference(self) -> Optional[Dict[str, Any]]:
        """summary["reference"]: normalized_margin, cosine_position, cosine_velocity,
        multiplier_error, kkt_stationarity, kkt_complementarity, certified."""
    @property
    def status(self) -> str:
        """summary["status"]: "reached", or why the run ended earlier."""
    def to_pandas(self) -> Any:
        """The trajectory as a pandas DataFrame (singular_values as sigma_1 … sigma_K);
        ImportError naming pandas when it is not installed."""

class MaxMarginResult:
    #: The CLI's maxmargin JSON: norm, normalized_margin, multipliers, active, certified,
    #: certificate, singular_values, rank, structure, linear, z_margin_ratio, balanced,
    #: linear_boundary_agreement.
    summary: Dict[str, Any]
    #: W* (m×d float64), or None when the QP was not solved.
    W: Optional[np.ndarray]

class DescentResult:
    summary: Dict[str, Any]
    #: One row per step for the first 100 steps, log-spaced after (`step` 0 is the start).
    trajectory: Dict[str, np.ndarray]
    #: Final W (m×d float64).
    W: np.ndarray
    def to_pandas(self) -> Any:
        """The trajectory as a pandas DataFrame (ImportError naming pandas when absent)."""

def to_pandas(obj: Any) -> Any:
    """A pandas DataFrame of a flow/descent result's trajectory, or of the run dicts `sweep`
    returns (one row per run, nested fields as `a.b` columns). The figures of `validate` are in
    the submodule `marginflow.plot` (matplotlib): loss, margin, singular_values, sigma_ratio,
    gaps, pattern, all_figures, each `f(result, ax=None)`, against log10 t with s on top."""

class Report:
    passed: bool
    #: report.json as a dict.
    report: Dict[str, Any]
    #: {scenario: {claim: verdict}}, verdicts "holds", "FAILS", "fails (expected)", …
    verdicts: Dict[str, Dict[str, str]]
    report_md: Optional[os.PathLike]
    report_json: Optional[os.PathLike]
    plots: List[os.PathLike]

def gen(
    kind: Literal["gaussian", "mixture", "orthogonal"] = "gaussian",
    n: int = 20,
    d: int = 4000,
    seed: int = 0,
    mean_norm: Optional[float] = None,
    label_noise: float = 0.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic data, bit for bit what `marginflow gen` writes: (X n×d, y in {-1,+1}).

    >>> X, y = gen("mixture", n=20, d=2000, seed=3, label_noise=0.1)
    """

def check(X: ArrayLike, y: ArrayLike, leak: float = 0.1, constant: float = 3.0) -> Dict[str, Any]:
    """Near-orthogonality statistics (`marginflow check --json`, with `hash` instead of the
    file name): n, d, positives, negatives, min_sq_norm, max_sq_norm, max_abs_inner, ratio,
    paper_ratio, leak, constant, condition."""

def flow(
    X: ArrayLike,
    y: ArrayLike,
    width: int,
    leak: float = 0.1,
    outer: Union[Literal["balanced", "random"], PathLike, npt.ArrayLike, None] = None,
    init_scale: Optional[float] = None,
    W0: Union[npt.ArrayLike, PathLike, None] = None,
    loss: Literal["logistic", "exponential"] = "logistic",
    seed: int = 0,
    until_time: Optional[float] = None,
    until_log10_time: Optional[float] = None,
    until_s: Optional[float] = None,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    method: Optional[Literal["auto", "dopri5", "verner98", "seulex"]] = None,
    events: Union[bool, Literal["on", "off"], None] = None,
    precision: Optional[int] = None,
    max_steps: Optional[int] = None,
    out: Optional[PathLike] = None,
    save_weights: bool = False,
    checkpoint_every: float = 60.0,
    progress: bool = True,
    engine: Optional[Literal["dual", "span"]] = None,
) -> FlowResult:
    """Gradient flow in normalized time (`marginflow flow`). Defaults: outer "balanced",
    init_scale 1e-3 (or W0, m×d), horizon t = 10^100, rtol 1e-10, atol 1e-12, method "auto",
    events on, precision 53 (f64; more needs the MPFR build). With `out`, DIR gets
    trajectory.jsonl, summary.json, checkpoint (every `checkpoint_every` s, at the end and on
    Ctrl-C), with `save_weights` W.npy, and the data (data_X.npy, data_y.npy, named in
    data_path) so that `marginflow flow --resume DIR` continues the run. `progress`: a status
    line on sys.stderr for runs longer than a second.

    >>> r = flow(X, y, 16, leak=0.2, until_log10_time=100)
    >>> r.reference["cosine_velocity"]
    """

def resume(
    dir: PathLike,
    X: Optional[ArrayLike] = None,
    y: Optional[ArrayLike] = None,
    until_time: Optional[float] = None,
    until_log10_time: Optional[float] = None,
    until_s: Optional[float] = None,
    max_steps: Optional[int] = None,
    save_weights: bool = False,
    checkpoint_every: float = 60.0,
    progress: bool = True,
) -> FlowResult:
    """Continue the run in `dir` from its checkpoint (`flow --resume DIR`), bit for bit as an
    uninterrupted run. Pass (X, y) for a run started from Python; a CLI run's data file is
    read from DIR/data_path. The checkpoint refuses other data."""

def maxmargin(
    X: ArrayLike,
    y: ArrayLike,
    width: int,
    leak: float = 0.1,
    outer: Union[Literal["balanced", "random"], PathLike, npt.ArrayLike, None] = None,
    init_scale: Optional[float] = None,
    W0: Union[npt.ArrayLike, PathLike, None] = None,
    loss: Literal["logistic", "exponential"] = "logistic",
    seed: int = 0,
    pattern_from: Optional[PathLike] = None,
    precision: int = 53,
    test_points: int = 1000,
    out: Optional[PathLike] = None,
    save_weights: Optional[PathLike] = None,
) -> MaxMarginResult:
    """Certified max-margin solutions (`marginflow maxmargin`): the network QP on the theory's
    activation pattern (or the final pattern of the flow run in `pattern_from`) and the linear
    problem. `out`: the report JSON file; `save_weights`: W* as .npy."""

def descent(
    X: ArrayLike,
    y: ArrayLike,
    width: int,
    step_size: float,
    steps: int,
    activation: Literal["leaky", "smooth"] = "leaky",
    smoothness: float = 1.0,
    leak: float = 0.1,
    outer: Union[Literal["balanced", "random"], PathLike, npt.ArrayLike, None] = None,
    init_scale: Optional[float] = None,
    W0: Union[npt.ArrayLike, PathLike, None] = None,
    loss: Literal["logistic", "exponential"] = "logistic",
    seed: int = 0,
    precision: int = 53,
    out: Optional[PathLike] = None,
    save_weights: bool = False,
    progress: bool = True,
) -> DescentResult:
    """Full-batch gradient descent W <- W - step_size * grad L(W) (`marginflow descent`).

    >>> r = descent(X, y, 16, step_size=0.05, steps=2000, init_scale=1e-6)
    >>> r.trajectory["stable_rank"][:3]
    """

def sweep(
    what: Literal["flow", "descent"],
    X: Optional[ArrayLike] = None,
    y: Optional[ArrayLike] = None,
    *,
    kind: Literal["gaussian", "mixture", "orthogonal"] = "gaussian",
    n: Optional[Numbers] = None,
    d: Optional[Numbers] = None,
    data_seed: Optional[Numbers] = None,
    mean_norm: Optional[Numbers] = None,
    width: Optional[Numbers] = None,
    leak: Optional[Numbers] = None,
    outer: str = "balanced",
    init_scale: Optional[Numbers] = None,
    init_relative: bool = False,
    seed: Optional[Numbers] = None,
    loss: Literal["logistic", "exponential"] = "logistic",
    step_size: Optional[Numbers] = None,
    steps: Optional[Numbers] = None,
    activation: Literal["leaky", "smooth"] = "leaky",
    smoothness: Optional[Numbers] = None,
    until_log10_time: Optional[Numbers] = None,
    rtol: Optional[Numbers] = None,
    threads: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """The cartesian product of the listed options, run in parallel (`marginflow sweep`);
    results do not depend on `threads`. One flat dict per run: index, the swept values, the
    summary's fields (or `error`).

    >>> import pandas as pd
    >>> pd.DataFrame(sweep("descent", n=20, d=[1000, 4000], width=16, step_size=0.05, steps=500))
    """

def validate(scenarios: Optional[Sequence[PathLike]] = None, out: Optional[PathLike] = None) -> Report:
    """Check the theorem's claims on scenario files, or the built-in suite when None
    (`marginflow validate`); with `out`, write report.md, report.json and the SVG plots there."""
