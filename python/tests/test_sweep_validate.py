"""sweep returns one flat dict per run equal to the single runs; validate returns the verdicts
and the paths it wrote."""
import json

import numpy as np
import pytest

from conftest import mf, run_cli, strip_volatile


def test_sweep_rows_equal_single_runs(gauss):
    _, X, y = gauss
    rows = mf.sweep("flow", X, y, width=6, leak=[0.1, 0.3], until_log10_time=20, threads=2)
    assert [r["index"] for r in rows] == [0, 1]
    assert [r["leak"] for r in rows] == [0.1, 0.3]
    for r in rows:
        single = mf.flow(X, y, 6, leak=r["leak"], until_log10_time=20, progress=False)
        assert r["stable_rank"] == single.summary["stable_rank"]
        assert r["singular_values"] == single.summary["singular_values"]
        assert r["statistics"] == single.summary["statistics"]


def test_sweep_equals_cli_sweep(cli, tmp_path):
    run_cli(cli, "sweep", "descent", "--n", "8", "--d", "200,400", "--width", "4", "--step-size", "0.1",
            "--steps", "50", "--out", tmp_path / "s")
    cli_rows = [json.loads(line) for line in (tmp_path / "s" / "runs.jsonl").read_text().splitlines()]
    rows = mf.sweep("descent", n=8, d=[200, 400], width=4, step_size=0.1, steps=50)
    assert len(rows) == len(cli_rows) == 2
    for r, c in zip(rows, cli_rows):
        assert r["index"] == c["index"]
        assert {k: r[k] for k in c["values"]} == c["values"]
        assert strip_volatile({k: r[k] for k in c["summary"]}) == strip_volatile(c["summary"])


def test_sweep_bad_list_is_a_value_error():
    with pytest.raises(ValueError, match=r"^--leak: NaN is not a finite number$"):
        mf.sweep("flow", width=4, leak=[0.1, float("nan")])
    with pytest.raises(TypeError, match=r"^leak: expected a number or a sequence of numbers$"):
        mf.sweep("flow", width=4, leak="a,b")


SCENARIO = """
name = "tiny"
width = 8
leak = 0.2
until_log10_time = 60
restarts = 1

[generate]
kind = "gaussian"
n = 8
d = 800
seed = 1
"""


def test_validate_reports_verdicts_and_paths(tmp_path):
    sc = tmp_path / "tiny.toml"
    sc.write_text(SCENARIO)
    rep = mf.validate([sc], out=tmp_path / "out")
    assert rep.report_md == tmp_path / "out" / "report.md" and rep.report_md.exists()
    assert json.loads(rep.report_json.read_text()) == rep.report
    assert rep.plots and all(p.exists() for p in rep.plots)
    claims = rep.verdicts["tiny"]
    assert {"interpolation", "kkt", "rank"} <= set(claims)
    assert rep.passed == rep.report["passed"]


def test_validate_bad_scenario_names_the_file_and_line(tmp_path):
    sc = tmp_path / "bad.toml"
    sc.write_text(SCENARIO + "\nbogus = 1\n")
    with pytest.raises(ValueError, match=r"bad\.toml:\d+: .*unknown key"):
        mf.validate([sc])
