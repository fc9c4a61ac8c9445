"""Shared fixtures: the CLI binary (built once with cargo if absent) and a small data set."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import marginflow as mf

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """Path of the `marginflow` binary of this checkout (MARGINFLOW_BIN overrides)."""
    path = pathlib.Path(os.environ.get("MARGINFLOW_BIN", ROOT / "target" / "release" / "marginflow"))
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "marginflow"], cwd=ROOT, check=True)
    return path


def run_cli(cli, *args, ok=True):
    """Run the CLI; return the CompletedProcess (checked for exit 0, or 3 for a run that ended
    before its horizon, when ok)."""
    p = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
    if ok and p.returncode not in (0, 3):
        raise AssertionError(f"marginflow {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p


@pytest.fixture(scope="session")
def gauss(tmp_path_factory, cli):
    """n = 12 Gaussian points in d = 600 (seed 1) from the CLI's `gen`, its file, and (X, y)."""
    d = tmp_path_factory.mktemp("data")
    f = d / "g.json"
    run_cli(cli, "gen", "--kind", "gaussian", "--n", 12, "--d", 600, "--seed", 1, "--out", f)
    doc = json.loads(f.read_text())
    return f, np.array(doc["x"], dtype=np.float64), np.array(doc["y"], dtype=np.float64)


def same_bits(a, b):
    """Arrays equal bit for bit (shape, and every float's bit pattern)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def strip_volatile(summary):
    """A summary without the fields that legitimately differ between two runs (wall time, and
    the peak RSS that only the CLI writes)."""
    return {k: v for k, v in summary.items() if k not in ("wall_seconds", "peak_rss_bytes")}


__all__ = ["mf", "run_cli", "same_bits", "strip_volatile", "ROOT"]
