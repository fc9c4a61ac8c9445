"""Long runs release the GIL, show progress on sys.stderr, and stop on Ctrl-C (KeyboardInterrupt)
with a checkpoint that resumes bit for bit."""
import _thread
import json
import threading
import time

import numpy as np
import pytest

from conftest import mf, same_bits

# A small problem whose deep horizon takes several 10^5 Dormand-Prince steps (a few seconds): the
# explicit method is stability-bound there (docs/stiff.md), which makes a long run on demand. It
# must outlast the 1 s before the progress line is first drawn.
LONG = dict(leak=0.5, method="dopri5", until_log10_time=1e6)


@pytest.fixture(scope="module")
def small():
    return mf.gen("gaussian", n=6, d=40, seed=2)


@pytest.fixture(scope="module")
def whole(small):
    X, y = small
    t0 = time.perf_counter()
    r = mf.flow(X, y, 4, **LONG, progress=False)
    return r, time.perf_counter() - t0


def test_gil_is_released_during_a_flow(small, whole, capsys):
    X, y = small
    ticks, stop = [], threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    th = threading.Thread(target=spin)
    th.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    r = mf.flow(X, y, 4, **LONG, progress=True)
    t1 = time.perf_counter()
    stop.set()
    th.join()
    assert r.status == "reached" and t1 - t0 > 1.5, f"the run is too short to tell ({t1 - t0:.2f} s)"
    during = [t for t in ticks if t0 < t < t1]
    mid = 0.5 * (t0 + t1)
    # Holding the GIL for the whole call would leave no tick inside [t0, t1]; ticks in both halves
    # show the thread ran throughout (not only while the call started or ended). No bound on the
    # largest gap: on a loaded machine the scheduler alone can pause the thread for long.
    assert len(during) >= 20, f"{len(during)} ticks in {t1 - t0:.2f} s"
    assert any(t < mid for t in during) and any(t > mid for t in during), f"ticks {during[:3]}…{during[-3:]}"
    # Same result as without the spinning thread and the progress line.
    assert same_bits(r.W, whole[0].W)
    err = capsys.readouterr().err
    assert "flow [" in err and "log10 t" in err and err.endswith("\n")


def test_progress_false_prints_nothing(small, capsys):
    X, y = small
    mf.flow(X, y, 4, leak=0.5, until_log10_time=50, progress=False)
    assert capsys.readouterr().err == ""


def test_ctrl_c_stops_the_flow_writes_a_checkpoint_and_raises(small, whole, tmp_path):
    X, y = small
    full, seconds = whole
    delay = min(0.3, seconds / 4)
    timer = threading.Timer(delay, _thread.interrupt_main)
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        mf.flow(X, y, 4, **LONG, out=tmp_path / "run", save_weights=True, progress=False)
    elapsed = time.perf_counter() - t0
    timer.join()
    # Polled every 0.1 s: the run ends well before it would have finished.
    assert elapsed < delay + 0.5 + 0.5 * seconds, f"stopped after {elapsed:.2f} s (whole run {seconds:.2f} s)"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["statistics"]["accepted"] < full.summary["statistics"]["accepted"]
    assert (tmp_path / "run" / "checkpoint").exists() and (tmp_path / "run" / "W.npy").exists()
    # The checkpoint continues the run to the same end, bit for bit.
    r = mf.resume(tmp_path / "run", X, y, progress=False)
    assert r.status == "reached"
    assert same_bits(r.W, full.W)
    assert r.summary["statistics"] == full.summary["statistics"]


def test_ctrl_c_without_out_raises_too(small, whole):
    X, y = small
    delay = min(0.3, whole[1] / 4)
    timer = threading.Timer(delay, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mf.flow(X, y, 4, **LONG, progress=False)
    timer.join()
