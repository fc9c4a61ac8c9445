"""The Python module and the CLI give the same results bit for bit on the same data and seed."""
import hashlib
import json

import numpy as np
import pytest

from conftest import mf, run_cli, same_bits, strip_volatile


def test_gen_equals_cli_gen(gauss):
    _, X, y = gauss
    Xp, yp = mf.gen("gaussian", n=12, d=600, seed=1)
    assert same_bits(Xp, X) and same_bits(yp, y)
    assert Xp.flags.c_contiguous and Xp.dtype == np.float64


def test_check_equals_cli_check(cli, gauss):
    f, X, y = gauss
    doc = json.loads(run_cli(cli, "check", "--data", f, "--leak", 0.2, "--json").stdout)
    doc.pop("data")
    assert mf.check(X, y, leak=0.2) == doc


def test_flow_equals_cli_flow(cli, gauss, tmp_path):
    f, X, y = gauss
    run = tmp_path / "run"
    out = run_cli(cli, "flow", "--data", f, "--width", 8, "--leak", 0.2, "--seed", 3,
                  "--until-log10-time", 40, "--out", run, "--save-weights", "--json")
    cli_summary = json.loads(out.stdout)
    r = mf.flow(X, y, 8, leak=0.2, seed=3, until_log10_time=40, progress=False)
    assert r.status == "reached"
    # W against the CLI's W.npy, bit for bit (computed on request from the final state).
    assert same_bits(r.W, np.load(run / "W.npy"))
    # Every summary field (numbers, lists, the reference comparison, statistics) but wall time.
    assert strip_volatile(r.summary) == strip_volatile(cli_summary)
    assert r.reference == cli_summary["reference"]
    # The trajectory columns are the CLI's trajectory.jsonl rows.
    rows = [json.loads(line) for line in (run / "trajectory.jsonl").read_text().splitlines()]
    assert len(rows) == len(r.trajectory["s"]) > 10
    assert same_bits(r.trajectory["s"], [row["s"] for row in rows])
    assert same_bits(r.trajectory["log10_loss"], [row["log10_loss"] for row in rows])
    assert list(r.trajectory["accepted"]) == [row["accepted"] for row in rows]
    assert r.trajectory["accepted"].dtype == np.int64
    sv = r.trajectory["singular_values"]
    assert sv.ndim == 2 and sv.shape[0] == len(rows)
    assert same_bits(sv[-1, : len(rows[-1]["singular_values"])], rows[-1]["singular_values"])


def test_flow_out_dir_equals_cli_out_dir(cli, gauss, tmp_path):
    f, X, y = gauss
    run_cli(cli, "flow", "--data", f, "--width", 6, "--until-log10-time", 20, "--out", tmp_path / "c",
            "--save-weights")
    mf.flow(X, y, 6, until_log10_time=20, out=tmp_path / "p", save_weights=True, progress=False)
    for name in ("W.npy", "trajectory.jsonl"):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "p" / name).read_bytes(), name
    sc = json.loads((tmp_path / "c" / "summary.json").read_text())
    sp = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert strip_volatile(sc) == strip_volatile(sp)


def test_resume_continues_bit_for_bit(gauss, tmp_path):
    _, X, y = gauss
    whole = mf.flow(X, y, 8, leak=0.2, until_log10_time=60, progress=False)
    # Stopped mid-run by the step guard (its status says so; no exception), then resumed.
    part = mf.flow(X, y, 8, leak=0.2, until_log10_time=60, max_steps=60, out=tmp_path / "r", progress=False)
    assert part.status == "max_steps"
    resumed = mf.resume(tmp_path / "r", X, y, progress=False)
    assert same_bits(resumed.W, whole.W)
    assert strip_volatile(resumed.summary) == strip_volatile(whole.summary)
    assert same_bits(resumed.trajectory["s"], whole.trajectory["s"])


def test_resume_of_a_cli_run_reads_its_data_path(cli, gauss, tmp_path):
    f, X, y = gauss
    run_cli(cli, "flow", "--data", f, "--width", 6, "--until-log10-time", 30, "--max-steps", 40, "--out",
            tmp_path / "c")
    r = mf.resume(tmp_path / "c", progress=False)
    whole = mf.flow(X, y, 6, until_log10_time=30, progress=False)
    assert same_bits(r.W, whole.W)


def test_a_python_run_with_out_resumes_from_the_cli(cli, gauss, tmp_path):
    _, X, y = gauss
    part = mf.flow(X, y, 6, until_log10_time=30, max_steps=40, out=tmp_path / "p", progress=False)
    assert part.status == "max_steps"
    assert (tmp_path / "p" / "data_path").read_text().splitlines()[1].endswith("data_y.npy")
    run_cli(cli, "flow", "--resume", tmp_path / "p", "--save-weights")
    whole = mf.flow(X, y, 6, until_log10_time=30, progress=False)
    assert same_bits(np.load(tmp_path / "p" / "W.npy"), whole.W)


def test_descent_equals_cli_descent(cli, gauss, tmp_path):
    f, X, y = gauss
    out = run_cli(cli, "descent", "--data", f, "--width", 8, "--step-size", 0.1, "--steps", 300,
                  "--init-scale", 1e-6, "--out", tmp_path / "d", "--save-weights", "--json")
    r = mf.descent(X, y, 8, 0.1, 300, init_scale=1e-6, progress=False)
    assert same_bits(r.W, np.load(tmp_path / "d" / "W.npy"))
    assert strip_volatile(r.summary) == strip_volatile(json.loads(out.stdout))
    rows = [json.loads(line) for line in (tmp_path / "d" / "trajectory.jsonl").read_text().splitlines()]
    assert list(r.trajectory["step"]) == [row["step"] for row in rows]
    assert same_bits(r.trajectory["stable_rank"], [row["stable_rank"] for row in rows])


def test_maxmargin_equals_cli_maxmargin(cli, gauss, tmp_path):
    f, X, y = gauss
    out = run_cli(cli, "maxmargin", "--data", f, "--width", 8, "--leak", 0.2, "--json",
                  "--save-weights", tmp_path / "Wstar.npy")
    r = mf.maxmargin(X, y, 8, leak=0.2)
    assert r.summary == json.loads(out.stdout)
    assert r.summary["certified"] is True
    assert same_bits(r.W, np.load(tmp_path / "Wstar.npy"))


def test_outer_and_W0_arrays_equal_cli_files(cli, gauss, tmp_path):
    f, X, y = gauss
    rng = np.random.default_rng(5)
    a = np.array([0.5, -0.25, 0.5, -0.5, 0.25, -0.5])
    W0 = 1e-3 * rng.standard_normal((6, X.shape[1]))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "W0.npy", W0)
    run_cli(cli, "flow", "--data", f, "--width", 6, "--outer", tmp_path / "a.npy", "--init-file",
            tmp_path / "W0.npy", "--until-log10-time", 20, "--out", tmp_path / "c", "--save-weights")
    r = mf.flow(X, y, 6, outer=a.tolist(), W0=W0, until_log10_time=20, progress=False)
    assert same_bits(r.W, np.load(tmp_path / "c" / "W.npy"))
    sc = json.loads((tmp_path / "c" / "summary.json").read_text())
    skip = ("wall_seconds", "peak_rss_bytes", "settings")  # settings name the files vs the arrays
    assert {k: v for k, v in r.summary.items() if k not in skip} == {k: v for k, v in sc.items() if k not in skip}
    # The W0 array is named in the summary (with the SHA-256 of its float64 entries), not copied.
    sha = hashlib.sha256(np.ascontiguousarray(W0, dtype="<f8").tobytes()).hexdigest()
    assert r.summary["settings"]["model"]["init"] == {"named": {"name": "W0", "sha256": sha}}
    # W0 as a .npy path is the CLI's --init-file exactly, settings included.
    r2 = mf.flow(X, y, 6, outer=str(tmp_path / "a.npy"), W0=tmp_path / "W0.npy", until_log10_time=20,
                 progress=False)
    assert same_bits(r2.W, r.W)
    assert r2.summary["settings"] == sc["settings"]
