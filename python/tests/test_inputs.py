"""Input forms (memory orders, dtypes, lists, scipy.sparse, 0/1 labels) give the same results, and
bad input raises the documented errors with the CLI's one-line message."""
import json

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import mf, run_cli, same_bits, strip_volatile

FLOW = dict(leak=0.2, until_log10_time=30, progress=False)


@pytest.fixture(scope="module")
def data():
    return mf.gen("gaussian", n=10, d=300, seed=4)


@pytest.fixture(scope="module")
def reference(data):
    X, y = data
    return mf.flow(X, y, 6, **FLOW)


@pytest.mark.parametrize(
    "convert",
    [
        lambda X: np.asfortranarray(X),
        lambda X: X.tolist(),
        lambda X: X[:, ::-1].copy()[:, ::-1],  # negative strides
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],  # a strided view
    ],
    ids=["fortran", "list", "negative-stride", "strided-view"],
)
def test_layouts_give_the_same_result(data, reference, convert):
    X, y = data
    r = mf.flow(convert(X), y, 6, **FLOW)
    assert same_bits(r.W, reference.W)
    assert strip_volatile(r.summary) == strip_volatile(reference.summary)


def test_integer_and_float32_data_are_converted_exactly():
    X = np.zeros((4, 12), dtype=np.int32)
    for i in range(4):
        X[i, 3 * i : 3 * i + 3] = [1, -2, 3]
    y = np.array([1, -1, 1, -1])
    a = mf.flow(X, y, 4, until_log10_time=10, progress=False)
    b = mf.flow(X.astype(np.float64), y.astype(np.float64), 4, until_log10_time=10, progress=False)
    c = mf.flow(X.astype(np.float32), y, 4, until_log10_time=10, progress=False)
    assert same_bits(a.W, b.W) and same_bits(a.W, c.W)


def test_zero_one_labels_equal_minus_one_plus_one(data, reference):
    X, y = data
    r = mf.flow(X, (y > 0).astype(np.int64), 6, **FLOW)
    assert same_bits(r.W, reference.W)


def test_scipy_sparse_equals_dense():
    # Sparse high-dimensional data: 12 points, d = 5000, 40 nonzeros each.
    rng = np.random.default_rng(7)
    n, d = 12, 5000
    X = np.zeros((n, d))
    for i in range(n):
        X[i, rng.choice(d, 40, replace=False)] = rng.standard_normal(40)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    dense = mf.flow(X, y, 6, **FLOW)
    for S in (sp.csr_matrix(X), sp.csc_matrix(X), sp.csr_array(X), sp.coo_matrix(X)):
        r = mf.flow(S, y, 6, **FLOW)
        assert same_bits(r.W, dense.W), type(S)
        assert strip_volatile(r.summary) == strip_volatile(dense.summary)
    assert mf.check(sp.csr_matrix(X), y) == mf.check(X, y)


def test_sparse_duplicates_sum_as_toarray():
    # CSR with a duplicated (row, column) entry: scipy's toarray() sums them.
    S = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 2, 1]), np.array([0, 2, 3, 4])), shape=(3, 3))
    y = np.array([1, -1, 1])
    assert mf.check(S, y) == mf.check(S.toarray(), y)


def test_sparse_wrong_index_is_a_value_error():
    S = sp.csr_matrix(np.eye(3))
    S.indices[1] = 7  # outside the 3 columns
    with pytest.raises(ValueError, match=r"^X: column index 7 of row 1 is outside \[0, 3\)$"):
        mf.check(S, [1, -1, 1])


def cli_message(cli, *args):
    p = run_cli(cli, *args, ok=False)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert line.startswith("marginflow: ") and "\n" not in line
    return line[len("marginflow: "):]


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        (["--leak", "2"], dict(leak=2.0)),
        (["--width", "0"], dict(width=0)),
        (["--init-scale", "-1"], dict(init_scale=-1.0)),
        (["--rtol", "0"], dict(rtol=0.0)),
        (["--until-log10-time", "nan"], dict(until_log10_time=float("nan"))),
        (["--until-time", "inf"], dict(until_time=float("inf"))),
    ],
)
def test_bad_settings_raise_value_error_with_the_cli_message(cli, gauss, flags, kwargs):
    f, X, y = gauss
    args = dict(width=6, progress=False)
    args.update(kwargs)
    width = [] if "--width" in flags else ["--width", "6"]
    msg = cli_message(cli, "flow", "--data", f, *width, *flags)
    with pytest.raises(ValueError) as e:
        mf.flow(X, y, **args)
    assert str(e.value) == msg


def test_bad_outer_file_has_the_cli_message(cli, gauss, tmp_path):
    f, X, y = gauss
    np.save(tmp_path / "a.npy", np.ones(3))
    msg = cli_message(cli, "flow", "--data", f, "--width", 6, "--outer", tmp_path / "a.npy")
    with pytest.raises(ValueError) as e:
        mf.flow(X, y, 6, outer=str(tmp_path / "a.npy"), progress=False)
    assert str(e.value) == msg


def test_single_class_is_rejected(cli, tmp_path):
    X = np.eye(3)
    y = np.ones(3)
    with pytest.raises(ValueError, match=r"^\(X, y\): all 3 labels are \+1: the margin problems"):
        mf.flow(X, y, 4, progress=False)


@pytest.mark.parametrize(
    "X, y, exc, pattern",
    [
        (np.ones(5), [1, -1, 1, -1, 1], ValueError, r"^X: expected a 2-D array"),
        (np.ones((2, 3, 4)), [1, -1], ValueError, r"^X: expected a 2-D array"),
        ([["a", "b"], ["c", "d"]], [1, -1], TypeError, r"^X: not convertible to a float64 array"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), [1, -1], ValueError, r"^X: entry \(0, 1\) is NaN: features must be finite$"),
        (np.eye(2), [1, 2], ValueError, r"^y: label 2 at index 1 is not one of -1, 0, \+1$"),
        (np.eye(3), [1, 0, -1], ValueError, r"^y: label -1 at index 2 mixed with label 0 \(index 1\)"),
        (np.eye(3), [1, -1], ValueError, r"^y: 2 labels for 3 points"),
        (np.zeros((0, 3)), [], ValueError, r"^X: shape \(0, 3\)"),
        (np.array([[0.0, 0.0], [1.0, 0.0]]), [1, -1], ValueError, r"^\(X, y\): point 1 is the zero vector"),
    ],
)
def test_bad_arrays_raise(X, y, exc, pattern):
    with pytest.raises(exc, match=pattern):
        mf.flow(X, y, 4, progress=False)


def test_bad_model_arrays_raise(data):
    X, y = data
    with pytest.raises(ValueError, match=r"^W0: shape \(3, 300\) is not \(width, d\) = \(6, 300\)$"):
        mf.flow(X, y, 6, W0=np.zeros((3, 300)), progress=False)
    with pytest.raises(ValueError, match=r"^outer: expected 6 values \(the width\), got 2$"):
        mf.flow(X, y, 6, outer=np.ones(2), progress=False)
    with pytest.raises(ValueError, match=r"^--init-scale: cannot be used with W0"):
        mf.flow(X, y, 6, W0=np.zeros((6, 300)), init_scale=1.0, progress=False)
    with pytest.raises(ValueError, match=r"^--method: unknown method"):
        mf.flow(X, y, 6, method="rk4", progress=False)
    with pytest.raises(ValueError, match=r"^--save-weights: needs out=DIR$"):
        mf.flow(X, y, 6, save_weights=True, progress=False)
    with pytest.raises(ValueError, match=r"give at most one horizon"):
        mf.flow(X, y, 6, until_s=1.0, until_time=2.0, progress=False)
    with pytest.raises(OSError):
        mf.resume("/nonexistent/run", X, y)


@pytest.mark.skipif(mf.MPFR, reason="this build has MPFR")
def test_precision_above_53_without_mpfr_is_a_clear_error(data):
    X, y = data
    for call in (
        lambda: mf.flow(X, y, 6, precision=256, progress=False),
        lambda: mf.maxmargin(X, y, 6, precision=128),
        lambda: mf.descent(X, y, 6, 0.1, 10, precision=128, progress=False),
    ):
        with pytest.raises(ValueError, match=r"^precision: \d+ bits needs the MPFR build of the Python module"):
            call()


def test_early_end_returns_its_status(data):
    X, y = data
    r = mf.flow(X, y, 6, max_steps=5, progress=False)
    assert r.status == "max_steps" and r.summary["statistics"]["accepted"] + r.summary["statistics"]["rejected"] == 5
    d = mf.descent(X, y, 6, step_size=1e300, steps=50, progress=False)
    assert d.summary["status"] != "completed"


@pytest.mark.skipif(not mf.MPFR, reason="needs the MPFR build (pip install ./python --config-settings=build-args=\"--features mpfr\")")
def test_mpfr_build_runs_high_precision(data):
    X, y = data
    lo = mf.flow(X, y, 6, **FLOW)
    hi = mf.flow(X, y, 6, precision=128, **FLOW)
    assert hi.summary["precision_bits"] == 128
    # Every real number also as a decimal string with all its digits, in the summary and rows.
    assert float(hi.summary["log10_loss_decimal"]) == pytest.approx(hi.summary["log10_loss"], rel=1e-15)
    assert isinstance(hi.trajectory["s_decimal"], list)
    # The same flow: the f64 run agrees to its tolerance.
    assert np.max(np.abs(hi.W - lo.W)) < 1e-6 * np.max(np.abs(lo.W))


def test_W_reconverts_the_callers_arrays_and_refuses_changed_data(data):
    X, y = data
    X = X.copy()
    r = mf.flow(sp.csr_matrix(X), y, 6, **FLOW)
    dense = mf.flow(X, y, 6, **FLOW)
    assert same_bits(r.W, dense.W)  # from the sparse matrix the call was given
    r2 = mf.flow(X, y, 6, **FLOW)
    X[0, 0] += 1.0  # the result holds X by reference, not a copy
    with pytest.raises(ValueError, match=r"data hash .* differs from the data given"):
        r2.W
