"""to_pandas (pandas optional), marginflow.plot (matplotlib optional), and the tutorial notebook
executed with nbclient when Jupyter is installed."""
import pathlib
import sys

import numpy as np
import pytest

import marginflow as mf

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run():
    X, y = mf.gen(kind="gaussian", n=10, d=200, seed=3)
    return mf.flow(X, y, width=8, leak=0.2, until_log10_time=8)


def test_flow_to_pandas(run):
    pd = pytest.importorskip("pandas")
    df = run.to_pandas()
    assert isinstance(df, pd.DataFrame)
    n = len(run.trajectory["s"])
    assert len(df) == n > 5
    assert {"s", "log10_time", "log10_loss", "sigma_1", "sigma_2", "cosine_velocity"} <= set(df.columns)
    np.testing.assert_array_equal(df["sigma_1"].to_numpy(), np.asarray(run.trajectory["singular_values"])[:, 0])
    assert df["s"].is_monotonic_increasing


def test_sweep_to_pandas():
    pd = pytest.importorskip("pandas")
    rows = mf.sweep("flow", kind="gaussian", n=8, d=100, width=[4, 6], leak=0.2, until_log10_time=4)
    df = mf.to_pandas(rows)
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert list(df["width"]) == [4, 6]
    assert "status" in df.columns


def test_to_pandas_without_pandas_says_what_to_install(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        run.to_pandas()


def test_to_pandas_rejects_other_objects():
    pytest.importorskip("pandas")
    with pytest.raises(TypeError, match="to_pandas"):
        mf.to_pandas(42)


def test_plot_helpers_draw_every_figure(run, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import marginflow.plot as mp

    for f in [mp.loss, mp.margin, mp.singular_values, mp.sigma_ratio, mp.gaps, mp.pattern]:
        ax = f(run)
        assert ax.get_xlabel() == "log10 t (physical time)"
        assert len(ax.get_lines()) >= 1, f.__name__
    ax = mp.gaps(run, threshold=1e-8)
    labels = ax.get_legend_handles_labels()[1]
    assert any("theory W*" in l for l in labels) and any("limit W*" in l for l in labels), labels
    sv = mp.singular_values(run)
    assert len({l.get_color() for l in sv.get_lines()}) == len(sv.get_lines()) >= 2
    fig = mp.all_figures(run)
    fig.savefig(tmp_path / "all.png")
    assert (tmp_path / "all.png").stat().st_size > 10_000


def test_plot_without_matplotlib_says_what_to_install(run, monkeypatch):
    import marginflow.plot as mp

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        mp.loss(run)


def test_tutorial_notebook_runs():
    nbformat = pytest.importorskip("nbformat", reason="Jupyter (nbformat) not installed")
    nbclient = pytest.importorskip("nbclient", reason="Jupyter (nbclient) not installed")
    pytest.importorskip("ipykernel", reason="no Jupyter kernel (ipykernel) installed")
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(ROOT / "examples" / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws a figure"
