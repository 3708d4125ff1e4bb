"""A run's rows as its tables read them: a few columns at a time, split by cell.

Two sources with one face. ``FrameRows`` is a frame in memory (a small run read whole, or a frame built
in code). ``ColumnarRows`` is a large run's columnar copy (``calls.parquet``): each figure reads the one
to four columns it needs for every row, splits them by cell and drops them before the next, and text is
read as codes into a small dictionary. Finishing a million calls then holds a few columns of numbers
(8 MB each) and a cell number a row, never every column of every row. Both give each cell its rows in
the order calls.csv has them, so every figure is computed on the same values in the same order whichever
source it came from (sums and means agree to the last bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd

from bench.core.records import CALL_COLUMNS, CANCELLED, TIMING_COLUMNS
from bench.report.columnar import give_back, lean_allocators

KEY: Final = ["scenario", "strategy", "concurrency"]
CellKey = tuple[str, str, int]
EndpointKey = tuple[str, str, int, str]
# Text read as it is (empty when missing) and the numbers a row must have (ValueError naming the line).
TEXT: Final = ("error", "answer", "scenario", "finish_reason", "served_model", "raw_answer")
TIMES: Final = ("scheduled_s", "start_s", "end_s", "latency_s")
BATCH_ROWS: Final = 65_536
_CELL_MIX: Final = np.uint64(0x9E3779B97F4A7C15)  # a cell's number spread over 64 bits (Fibonacci hashing)


def _call_hashes(ids: Any) -> np.ndarray:
    """64-bit hashes of an Arrow column of call ids (null as empty)."""
    import pyarrow.compute as pc

    texts = pc.fill_null(ids, "").to_numpy(zero_copy_only=False)
    return np.asarray(pd.util.hash_array(texts, categorize=False), dtype=np.uint64)


class Split:
    """Rows in groups: ``ids[i]`` is row i's group (0 … count-1); a group's rows keep their order."""

    def __init__(self, ids: np.ndarray, count: int) -> None:
        self.ids = ids
        self.count = count
        self.rows = len(ids)
        self.order: np.ndarray | None = None
        if count > 1:
            self.order = np.argsort(ids, kind="stable")
            self.bounds = np.concatenate(([0], np.cumsum(np.bincount(ids, minlength=count))))
        else:
            self.bounds = np.array([0, len(ids)] if count else [0])

    def coarser(self, group: Sequence[int], count: int) -> Split:
        """Groups of groups: ``group[g]`` is the new group of group g (rows keep their order)."""
        return Split(np.asarray(group, dtype=np.int64)[self.ids] if len(self.ids) else self.ids, count)

    def pieces(self, frame: pd.DataFrame) -> list[pd.DataFrame]:
        """``frame`` (one row per row split) cut into its groups: one copy of its columns at most."""
        if self.order is None:
            return [frame] * self.count
        ordered = frame.take(self.order)
        return [ordered.iloc[int(a) : int(b)] for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True)]


class CallRows(Protocol):
    """What the summary, tally and endpoints tables read of a run's rows (a row written twice counts once)."""

    @property
    def keys(self) -> list[CellKey]: ...  # the cells with rows, in the order their first row came

    @property
    def cells(self) -> Split: ...  # the rows by cell, in ``keys``'s order

    def has(self, name: str) -> bool: ...

    def frame(self, names: Sequence[str]) -> pd.DataFrame: ...  # every row in these columns (those it has)

    def by_endpoint(self) -> tuple[list[EndpointKey], Split]: ...  # the rows by cell and endpoint that answered

    def answer_counts(self, error_answer: str) -> pd.DataFrame: ...  # KEY, answer, count (not ok: error_answer)

    def texts(self, name: str) -> list[str]: ...  # the distinct values of a text column, empty ones aside


def cell_key(raw: Sequence[Any]) -> CellKey:
    return (str(raw[0]), str(raw[1]), int(raw[2]))


def _first_order(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` renumbered in the order each first appears (as pandas' ``sort=False``), and a first row of each."""
    if not len(ids):
        return ids.astype(np.int64), np.array([], dtype=np.int64)
    uniques, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(len(uniques), dtype=np.int64)
    by_first = np.argsort(first, kind="stable")
    rank[by_first] = np.arange(len(uniques))
    return rank[inverse], first[by_first]


def _pairs_in_order(cells: np.ndarray, codes: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``_first_order`` of ``cells * width + codes`` (a row's cell and a code under ``width``), a block of
    rows at a time: 4 bytes a row for the groups, where sorting every row's pair took ~50."""
    groups = np.empty(len(cells), dtype=np.int32)
    seen: dict[int, int] = {}
    firsts: list[int] = []
    for at in range(0, len(cells), BATCH_ROWS):
        pairs = cells[at : at + BATCH_ROWS].astype(np.int64) * width + codes[at : at + BATCH_ROWS]
        uniques, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
        mapping = np.empty(len(uniques), dtype=np.int32)
        for index in np.argsort(first, kind="stable").tolist():  # in the order each first comes
            value = int(uniques[index])
            if value not in seen:
                seen[value] = len(seen)
                firsts.append(at + int(first[index]))
            mapping[index] = seen[value]
        groups[at : at + len(pairs)] = mapping[inverse.reshape(-1)]
    return groups, np.array(firsts, dtype=np.int64)


class _KeyedRows:
    """What both sources share: each cell's key, in first-seen order, and which cell each row is in."""

    _keys: list[CellKey]
    _cells: Split

    @property
    def keys(self) -> list[CellKey]:
        return self._keys

    @property
    def cells(self) -> Split:
        return self._cells


class FrameRows(_KeyedRows):
    """A frame of calls in memory (``read_calls``'s, or one built in code) as ``CallRows``."""

    def __init__(self, calls: pd.DataFrame) -> None:
        self.calls = calls
        if len(calls):
            ids = calls.groupby(KEY, sort=False).ngroup().to_numpy()
            ids, first = _first_order(ids)
            self._keys = [cell_key(row) for row in calls[KEY].iloc[first].itertuples(index=False)]
        else:
            ids, self._keys = np.array([], dtype=np.int64), []
        self._cells = Split(ids, len(self._keys))

    def has(self, name: str) -> bool:
        return name in self.calls.columns

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        return self.calls[[name for name in names if name in self.calls.columns]]

    def _endpoint_labels(self) -> pd.Series:
        calls = self.calls
        if "endpoint" in calls.columns:
            return calls["endpoint"].astype(object).where(calls["endpoint"].notna(), "").astype(str)
        return pd.Series("", index=calls.index)

    def by_endpoint(self) -> tuple[list[EndpointKey], Split]:
        lean = self.calls[KEY].assign(endpoint=self._endpoint_labels())
        if not len(lean):
            return [], Split(np.array([], dtype=np.int64), 0)
        ids, first = _first_order(lean.groupby([*KEY, "endpoint"], sort=False).ngroup().to_numpy())
        keys = [(*cell_key(row[:3]), str(row[3])) for row in lean.iloc[first].itertuples(index=False)]
        return keys, Split(ids, len(keys))

    def answer_counts(self, error_answer: str) -> pd.DataFrame:
        calls = self.calls
        answers = calls[KEY].assign(answer=calls["answer"].where(calls["status"] == "ok", error_answer))
        counts = answers.groupby([*KEY, "answer"], sort=False).size()
        return counts.rename("count").reset_index()

    def texts(self, name: str) -> list[str]:
        if name not in self.calls.columns:
            return []
        return sorted({str(m) for m in self.calls[name].unique() if m == m and m})


def as_rows(calls: pd.DataFrame | CallRows) -> CallRows:
    """``calls`` as ``CallRows``: a frame in memory wrapped, rows read by columns as they are."""
    return FrameRows(calls) if isinstance(calls, pd.DataFrame) else calls


class ColumnarRows(_KeyedRows):
    """A run's columnar copy as ``CallRows``: key columns read once, a figure's columns when asked.

    A call written twice keeps the row ``read_calls`` keeps (not a cancelled one; then the first); ``kept``
    counts the rows kept."""

    def __init__(self, copy: Path) -> None:
        import pyarrow.parquet as pq

        lean_allocators()
        self.copy = copy
        self.names = set(pq.read_schema(copy).names)
        missing = [name for name in (*KEY, "call_id", "status") if name not in self.names]
        if missing:
            raise ValueError(f"{copy}: missing column(s) {', '.join(missing)}")
        self.rows = int(pq.ParquetFile(copy).metadata.num_rows)
        self.compared = False  # whether two rows' hashes tied and the rows were compared
        ids = self._cell_ids()
        self.keep, self.kept = self._keep(ids)
        if self.keep is not None:
            ids = ids[self.keep]
        self._ids = ids
        self._cells = Split(ids, len(self._keys))

    @property
    def unique(self) -> bool:
        return self.keep is None

    def _cell_ids(self) -> np.ndarray:
        """Each row's cell, numbered in the order the cells first come (a batch of rows at a time)."""
        import pyarrow.parquet as pq

        found: dict[CellKey, int] = {}
        ids = np.empty(self.rows, dtype=np.int32)
        at = 0
        for batch in pq.ParquetFile(self.copy).iter_batches(BATCH_ROWS, columns=KEY, use_threads=False):
            part = batch.to_pandas()
            part["scenario"] = part["scenario"].fillna("")
            grouped = part.groupby(KEY, sort=False)
            local = grouped.ngroup().to_numpy()
            local, first = _first_order(local)
            firsts = part[KEY].iloc[first].itertuples(index=False)
            mapping = np.array([found.setdefault(cell_key(row), len(found)) for row in firsts], dtype=np.int32)
            ids[at : at + len(part)] = mapping[local]
            at += len(part)
        self._keys = list(found)
        return ids

    def _keep(self, ids: np.ndarray) -> tuple[np.ndarray | None, int]:
        """The rows to keep (None: all, no call is there twice) and how many they are.

        Each row's call id and cell are hashed (64 bits) a batch at a time and the hashes sorted in place:
        when no two are equal, no call is there twice (8 bytes a row, then nothing; the common case). Else
        ``_repeats`` finds which rows are repeats, exactly."""
        import pyarrow.parquet as pq

        hashes = np.empty(self.rows, dtype=np.uint64)
        at = 0
        for batch in pq.ParquetFile(self.copy).iter_batches(BATCH_ROWS, columns=["call_id"], use_threads=False):
            part = _call_hashes(batch.column(0))
            part += ids[at : at + len(part)].astype(np.uint64) * _CELL_MIX  # the same id in two cells: two calls
            hashes[at : at + len(part)] = part
            at += len(part)
        hashes.sort()
        repeated = bool(len(hashes) > 1 and (hashes[1:] == hashes[:-1]).any())
        del hashes
        self.compared = repeated
        if not repeated:
            return None, self.rows
        return self._repeats(ids)

    def _repeats(self, ids: np.ndarray) -> tuple[np.ndarray | None, int]:
        """``_keep`` when two hashes tie: the rows sorted by cell and hash, and rows that tie compared by
        their text, so a collision never merges two calls (about 30 bytes a row)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        hashes = np.empty(self.rows, dtype=np.uint64)
        cancelled = np.empty(self.rows, dtype=bool)
        at = 0
        for batch in pq.ParquetFile(self.copy).iter_batches(
            BATCH_ROWS, columns=["call_id", "status"], use_threads=False
        ):
            part = _call_hashes(batch.column(0))
            hashes[at : at + len(part)] = part
            stopped = pc.fill_null(pc.equal(batch.column(1), CANCELLED), False)
            cancelled[at : at + len(part)] = stopped.to_numpy(zero_copy_only=False)
            at += len(part)
        order = np.lexsort((hashes, ids))  # by cell, then hash; ties keep the file's order
        ties = (hashes[order][1:] == hashes[order][:-1]) & (ids[order][1:] == ids[order][:-1])
        del hashes
        if not ties.any():
            return None, self.rows
        tied = np.flatnonzero(ties)
        rows = np.unique(np.concatenate((order[tied], order[tied + 1])))  # in the file's order
        del order, ties
        texts = pq.read_table(self.copy, columns=["call_id"], use_threads=False).column(0).take(rows).to_pylist()
        groups: dict[tuple[int, str], list[int]] = {}
        for row, text in zip(rows.tolist(), texts, strict=True):
            groups.setdefault((int(ids[row]), text or ""), []).append(row)
        keep = np.ones(self.rows, dtype=bool)
        for same in groups.values():
            if len(same) < 2:
                continue  # a hash collision: two calls
            # Written twice or more: its cancelled rows go, then the first of the rest stays.
            rest = [row for row in same if not cancelled[row]]
            keep[same] = False
            if rest:
                keep[rest[0]] = True
        if keep.all():
            return None, self.rows
        return keep, int(keep.sum())

    def has(self, name: str) -> bool:
        return name in CALL_COLUMNS or name in self.names

    def _read(self, name: str, *, text_codes: bool = False) -> Any:
        import pyarrow.parquet as pq

        source = pq.ParquetFile(self.copy, read_dictionary=[name] if text_codes else None)
        return source.read(columns=[name], use_threads=False).column(0)

    def _numbers(self, name: str) -> np.ndarray | None:
        """A column of 8-byte numbers read a row group at a time into one array, typed as Arrow gives it to
        pandas (integers with a null as floats); None when it is not one or its row groups do not count their
        nulls. Reading the column whole, then converting it, held it twice."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = pq.ParquetFile(self.copy)
        kind = source.schema_arrow.field(name).type
        if kind not in (pa.float64(), pa.int64()):
            return None
        index = source.schema_arrow.get_field_index(name)
        nulls = False
        for group in range(source.metadata.num_row_groups):
            stats = source.metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count:
                return None
            nulls = nulls or stats.null_count > 0
        values = np.empty(self.rows, dtype=np.float64 if kind == pa.float64() or nulls else np.int64)
        at = 0
        for group in range(source.metadata.num_row_groups):
            for chunk in source.read_row_group(group, columns=[name], use_threads=False).column(0).chunks:
                values[at : at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                at += len(chunk)
        return values if at == self.rows else None

    def _kept(self, values: np.ndarray) -> np.ndarray:
        return values if self.keep is None else values[self.keep]

    def column(self, name: str) -> pd.Series:
        """One column of the kept rows, typed as ``read_calls`` types it."""
        if name not in self.names:
            if name in TIMING_COLUMNS:  # run folders written before the time was split
                return pd.Series(np.full(len(self._ids), math.nan))
            if name == "reconnects":  # folders from before re-sent connections
                return pd.Series(np.zeros(len(self._ids), dtype=np.int64))
            if name in TEXT:
                return pd.Series([""] * len(self._ids), dtype=object)
            raise ValueError(f"{self.copy}: missing column(s) {name}")
        numbers = self._numbers(name)
        if numbers is not None:
            values = pd.Series(numbers, copy=False)
        else:
            values = self._read(name).to_pandas(self_destruct=True)
        if name in TIMES:
            numbers = pd.to_numeric(values, errors="coerce")
            if numbers.isna().any():
                line = int(numbers.isna().to_numpy().argmax()) + 2
                raise ValueError(f"{self.copy.with_name('calls.csv')}: line {line}: {name} is not a number")
            values = numbers
        if name in TEXT:
            values = values.fillna("")
        if self.keep is not None:
            values = values[self.keep]
        return values.reset_index(drop=True)

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        give_back()
        return pd.DataFrame({name: self.column(name) for name in dict.fromkeys(names)}, copy=False)

    def view(self, names: Sequence[str]) -> pd.DataFrame:
        """The kept rows in their key and these columns, text as categories: what a console line reads of
        a large run (a million rows of a few numbers and codes, not a million strings a text column)."""
        data: dict[str, Any] = {}
        for position, name in enumerate(KEY):
            values = [key[position] for key in self._keys]
            if name == "concurrency":
                data[name] = np.array(values or [0], dtype=np.int64)[self._ids]
            else:
                distinct = list(dict.fromkeys(values))
                where = np.array([distinct.index(value) for value in values] or [0], dtype=np.int32)[self._ids]
                data[name] = pd.Categorical.from_codes(where, categories=distinct or [""])
        for name in dict.fromkeys(names):
            if name in KEY:
                continue
            if name in TEXT or name == "status":
                codes, labels = self.codes(name)
                data[name] = pd.Categorical.from_codes(codes, categories=labels)
            else:
                data[name] = self.column(name)
        return pd.DataFrame(data, copy=False)

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """A text column as a code a kept row and the labels (null and missing as ``""``)."""
        if name not in self.names:
            return np.zeros(len(self._ids), dtype=np.int32), [""]
        labels: dict[str, int] = {"": 0}
        parts: list[np.ndarray] = []
        for chunk in self._read(name, text_codes=True).chunks:
            words = chunk.dictionary.to_pylist()
            mapping = np.array([labels.setdefault(word or "", len(labels)) for word in words] or [0], dtype=np.int32)
            indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            parts.append(np.where(indices >= 0, mapping[np.maximum(indices, 0)], 0).astype(np.int32))
        codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return self._kept(codes), list(labels)

    def by_endpoint(self) -> tuple[list[EndpointKey], Split]:
        codes, labels = self.codes("endpoint")
        ids, first = _pairs_in_order(self._ids, codes, len(labels))
        keys = [(*self._keys[int(self._ids[row])], labels[int(codes[row])]) for row in first]
        return keys, Split(ids, len(keys))

    def answer_counts(self, error_answer: str) -> pd.DataFrame:
        answers, labels = self.codes("answer")
        status, states = self.codes("status")
        if "ok" in states:
            ok = status == states.index("ok")
        else:
            ok = np.zeros(len(status), dtype=bool)
        if error_answer not in labels:
            labels.append(error_answer)
        answers = np.where(ok, answers, np.int32(labels.index(error_answer)))
        del status, ok
        ids, first = _pairs_in_order(self._ids, answers, len(labels))
        counts = np.bincount(ids, minlength=len(first)) if len(first) else np.zeros(0, dtype=np.int64)
        keys = [self._keys[int(self._ids[row])] for row in first]
        return pd.DataFrame(
            {
                "scenario": [key[0] for key in keys],
                "strategy": [key[1] for key in keys],
                "concurrency": np.array([key[2] for key in keys], dtype=np.int64),
                "answer": [labels[int(answers[row])] for row in first],
                "count": counts.astype(np.int64),
            }
        )

    def texts(self, name: str) -> list[str]:
        codes, labels = self.codes(name)
        return sorted({labels[int(code)] for code in np.unique(codes)} - {""})
