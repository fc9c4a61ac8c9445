"""marginflow.frames: results as pandas DataFrames (pandas is optional).

    df = r.to_pandas()                 # a flow or descent result: one row per trajectory row
    runs = marginflow.to_pandas(marginflow.sweep("flow", width=[8, 16], ...))   # one row per run
"""

import numpy as np


def _pandas():
    try:
        import pandas
    except ImportError as e:
        raise ImportError(
            "to_pandas() needs pandas, which is not installed: pip install pandas "
            "(the results' numpy columns, r.trajectory, work without it)"
        ) from e
    return pandas


def trajectory_frame(columns):
    """A DataFrame of a trajectory's numpy columns; the 2-D `singular_values` column becomes
    `sigma_1` … `sigma_K` (NaN where a row lists fewer)."""
    pd = _pandas()
    data = {}
    for key, col in columns.items():
        arr = np.asarray(col)
        if arr.ndim == 2:
            stem = "sigma" if key == "singular_values" else key
            for k in range(arr.shape[1]):
                data[f"{stem}_{k + 1}"] = arr[:, k]
        else:
            data[key] = arr
    return pd.DataFrame(data)


def to_pandas(obj):
    """A DataFrame of a result: a flow or descent result (its trajectory, one row per row), or
    the list of run dicts `sweep` returns (one row per run, nested fields as `a.b` columns)."""
    if hasattr(obj, "trajectory"):
        return trajectory_frame(obj.trajectory)
    if isinstance(obj, dict):
        return trajectory_frame(obj)
    if isinstance(obj, (list, tuple)):
        return _pandas().json_normalize(list(obj))
    raise TypeError(f"to_pandas: expected a flow/descent result or sweep rows, got {type(obj).__name__}")
