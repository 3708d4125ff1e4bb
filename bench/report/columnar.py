"""A columnar copy of a large calls.csv (``calls.parquet``, through pyarrow when installed), read back by reports.

calls.csv stays the contract; the copy sits beside it and is trusted only while it was made from the
calls.csv on disk (its metadata records the CSV's size in bytes: a resumed run that appended rows makes
the copy stale, and the next finish or report makes a new one). Text is stored as sent (the ``'`` that
calls.csv puts before a formula-like cell is taken off once, here, not on every read).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.records import CALL_COLUMNS, CallRecord

PARQUET_FILE: Final = "calls.parquet"
# About 100,000 rows: below it reading calls.csv takes a second or two and a copy would not pay.
COLUMNAR_BYTES: Final = 20 * 1024 * 1024
_META_KEY: Final = b"bench.csv_bytes"
GROUP_ROWS: Final = 16_384  # rows a row group of the copy (at least)
_FLOATS: Final = frozenset(
    name for name, kind in CallRecord.__annotations__.items() if "float" in str(kind) and name in CALL_COLUMNS
)
_INTS: Final = frozenset(
    name
    for name, kind in CallRecord.__annotations__.items()
    if str(kind).startswith("int") and "str" not in str(kind) and name in CALL_COLUMNS
)


_M_MMAP_THRESHOLD: Final = -3  # glibc's mallopt parameter
_MAPPED_BYTES: Final = 128 * 1024
_lean = False


def has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def give_back() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``) before a large read: what the
    last figure freed in small blocks no longer counts in the next one's peak. Nothing elsewhere."""
    if _lean and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (AttributeError, OSError):
            pass


def lean_allocators() -> None:
    """Give memory back as a large run's finish frees it, so that its peak is one step's, not every step's.

    Arrow's buffers come from the system allocator (its default, mimalloc, kept ~50 MB of the conversion
    of a million rows after they were freed), and glibc maps every block of 128 KB or more on its own and
    unmaps it when freed (by default, once a mapped block is freed, blocks up to its size come from the
    heap and stay there: a figure's 8 MB columns piled up as ~60 MB). Once a process, before its first
    large read; nothing else changes (a block mapped costs a page fault a page, against a finish's
    seconds). Where glibc or pyarrow are not there, nothing happens."""
    global _lean
    if _lean:
        return
    _lean = True
    if has_pyarrow():
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MAPPED_BYTES)
        except (AttributeError, OSError):  # not glibc (musl has no mallopt)
            pass


def columnar_path(calls_csv: Path) -> Path:
    return calls_csv.with_name(PARQUET_FILE)


def is_large(calls_csv: Path) -> bool:
    try:
        return calls_csv.stat().st_size >= COLUMNAR_BYTES
    except OSError:
        return False


def current(calls_csv: Path) -> Path | None:
    """The columnar copy when it was made from the calls.csv now on disk, else None."""
    copy = columnar_path(calls_csv)
    if not copy.is_file() or not has_pyarrow():
        return None
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(copy).metadata or {}
        return copy if int(meta.get(_META_KEY, b"-1")) == calls_csv.stat().st_size else None
    except (OSError, ValueError):
        return None


def large_copy(calls_csv: Path) -> Path | None:
    """A large calls.csv's columnar copy (made now if missing or stale); None for a small one, or without
    pyarrow, or when the CSV holds what the copy's types refuse."""
    if not is_large(calls_csv):
        return None
    return current(calls_csv) or write_columnar(calls_csv)


def write_columnar(calls_csv: Path) -> Path | None:
    """Stream calls.csv into calls.parquet (a block at a time: memory does not grow with the rows); None
    when pyarrow is missing or the CSV holds what its types refuse (the reports then read the CSV)."""
    if not has_pyarrow():
        return None
    lean_allocators()
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    size = calls_csv.stat().st_size
    with calls_csv.open("rb") as probe:
        header = probe.readline().decode("utf-8").strip().split(",")
    types: dict[str, Any] = {}
    for name in header:
        types[name] = pa.float64() if name in _FLOATS else pa.int64() if name in _INTS else pa.string()
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    # 256 KB blocks read (the reader keeps a few dozen in flight: 1 MB blocks held ~40 MB), written as row
    # groups of ~16k rows: the writer keeps every row group's metadata until it closes, and a million rows
    # in groups of one block's rows (~1,200) made that ~100 MB; groups of ~64k held ~20 MB more while they
    # were gathered and written (a million rows: 223 MB at the peak against 203).
    read = pacsv.ReadOptions(block_size=1 << 18, use_threads=False)
    target = columnar_path(calls_csv)
    partial = target.with_name(target.name + ".partial")
    try:
        reader = pacsv.open_csv(calls_csv, read_options=read, convert_options=convert)
        schema = reader.schema.with_metadata({_META_KEY: str(size).encode()})
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            pending: list[Any] = []
            for batch in reader:
                columns = []
                for column in batch.columns:
                    if pa.types.is_string(column.type):  # stored as sent: csv_plain, vectorised
                        quoted = pc.fill_null(pc.starts_with(column, "'"), False)
                        column = pc.if_else(quoted, pc.utf8_slice_codeunits(column, 1), column)
                    columns.append(column)
                pending.append(pa.RecordBatch.from_arrays(columns, schema=schema))
                if sum(part.num_rows for part in pending) >= GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=GROUP_ROWS * 2)
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=GROUP_ROWS * 2)
        os.replace(partial, target)
    except (pa.ArrowInvalid, OSError, ValueError):
        partial.unlink(missing_ok=True)
        return None
    return target


def column_names(copy: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(copy).names)


def read_columnar(copy: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """calls.parquet as ``read_calls`` hands calls.csv over (persona ids numeric when every one is).

    Column by column, each converted then dropped from Arrow: the peak is the frame and one column,
    not the frame and the whole table (text stays in Arrow's buffers, numbers become numpy arrays)."""
    import pyarrow.parquet as pq

    lean_allocators()
    source = pq.ParquetFile(copy)
    names = columns if columns is not None else source.schema_arrow.names
    data: dict[str, Any] = {}
    for name in names:
        column = source.read(columns=[name], use_threads=False).column(0)
        data[name] = column.to_pandas(self_destruct=True)
        del column
    frame = pd.DataFrame(data, copy=False)
    if "persona_id" in frame.columns:
        try:
            frame["persona_id"] = frame["persona_id"].astype("int64")
        except (ValueError, TypeError):
            pass
    return frame
