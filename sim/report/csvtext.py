"""CSV text of a table formatted column by column with Arrow: the bytes of pandas' ``to_csv``, faster.

:func:`csv_bytes` is what :func:`sim.report.files.write_csv` writes when it applies (``cells.csv``: one row
per cell of every layer); pandas writes the rest. No I/O here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["csv_bytes"]


_CSV_SPECIAL = re.compile(r'[,"\r\n]')
"""Characters that make pandas' csv writer (QUOTE_MINIMAL) quote a field: such frames are left to pandas."""


def _large(text: str):
    import pyarrow as pa

    return pa.scalar(text, pa.large_string())


def _csv_float_strings(values: np.ndarray):
    """float64 ``values`` as Arrow strings, each as Python's ``repr`` (what pandas writes), NaN as "".

    Arrow's shortest round-trip digits are Python's; they differ in form only where Python writes an
    exponent (|x| < 1e-4, |x| >= 1e16), where Arrow chooses one, and for whole numbers ("1" for "1.0"):
    those are mended here, the few exponents by ``repr`` itself.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.cast(pa.array(values), pa.large_string())
    ax = np.abs(values)
    with np.errstate(invalid="ignore"):
        python_repr = ((ax < 1e-4) & (values != 0)) | (ax >= 1e16) | np.asarray(pc.match_substring(out, "e"))
        whole = ~python_repr & (values == np.floor(values))
    if whole.any():
        out = pc.if_else(pa.array(whole), pc.binary_join_element_wise(out, _large(".0"), _large("")), out)
    nan = np.isnan(values)
    if python_repr.any() or nan.any():
        text = np.asarray(out.to_pylist(), dtype=object) if python_repr.any() else None
        if text is not None:
            text[python_repr] = [repr(v) for v in values[python_repr].tolist()]
            text[nan] = ""
            out = pa.array(text, type=pa.large_string())
        else:
            out = pc.if_else(pa.array(nan), _large(""), out)
    return out


def _csv_column(series: pd.Series):
    """One column as the Arrow strings pandas would write, or None when it is left to pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = series.dtype
    values = series.to_numpy()
    if dtype == np.float64:
        return _csv_float_strings(values)
    if dtype == np.bool_:
        return pa.array(np.where(values, "True", "False"), type=pa.large_string())
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pc.cast(pa.array(values), pa.large_string())
    if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        text = pa.array(values, type=pa.large_string(), from_pandas=True)   # NaN and None: null
        if pc.any(pc.match_substring_regex(text, _CSV_SPECIAL.pattern)).as_py():
            return None
        return pc.fill_null(text, _large(""))
    return None


def csv_bytes(df: pd.DataFrame) -> bytes | None:
    """The UTF-8 bytes of ``df.to_csv(index=False, lineterminator="\\n")``, formatted column by column with
    Arrow, or None where this does not apply (pyarrow missing, fewer than 2 columns or no row, a column
    of another dtype, a name or string value pandas would quote): then the caller lets pandas write it.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:   # pragma: no cover - pyarrow is a dependency
        return None
    names = [str(c) for c in df.columns]
    if (df.shape[1] < 2 or len(df) == 0 or not all(isinstance(c, str) for c in df.columns)
            or any(_CSV_SPECIAL.search(n) for n in names)):
        return None
    cols = []
    for i in range(df.shape[1]):
        col = _csv_column(df.iloc[:, i])
        if col is None:
            return None
        cols.append(col)
    lines = pc.binary_join_element_wise(*cols, _large(","))
    lines = pc.binary_join_element_wise(lines, _large("\n"), _large(""))
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    body = memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])]
    return (",".join(names) + "\n").encode("utf-8") + bytes(body)
