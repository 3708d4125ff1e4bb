"""Where the time went: each cell's latency split into its parts, a stacked-bar plot and the end line.

The parts (``bench.clients.trace``) add up to each call's latency, so their means add up to the mean
latency, and their means over the slowest calls (latency ≥ the cell's p99) add up to those calls'
mean: the two stacks the plot draws. ``ttfb_s`` is drawn as the server's reported time
(``server_s``) and the rest (network, and the response waiting for a busy event loop).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from bench.report.rows import CallRows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TAIL_Q: Final = 0.99
# Drawn bottom to top: the order a call lives them.
STACK: Final = (
    ("prepare_s", "prepare (client builds the request)", "#4c72b0"),
    ("pool_wait_s", "pool wait (no free connection)", "#dd8452"),
    ("connect_s", "connect (TCP/TLS)", "#c44e52"),
    ("server_s", "server (openai-processing-ms)", "#55a868"),
    ("ttfb_rest_s", "rest of TTFB (network, busy loop)", "#8c8c8c"),
    ("body_s", "body (read + parse)", "#8172b3"),
    ("backoff_s", "back-off between retries", "#937860"),
)
# The parts a user changes on the client side, the words for them and what to change.
CLIENT_PARTS: Final = {
    "pool_wait_s": ("client queueing", "raise max connections or lower C"),
    "prepare_s": (
        "client CPU building requests",
        "use a lighter client (--client openai-aiohttp or aiohttp) or lower C",
    ),
    "connect_s": ("connection set-up", "warm the pool (--warmup) or keep connections alive between bursts"),
    "backoff_s": ("retry back-off", "stay under the rate limit (rate_limited, adaptive) or lower C"),
}
DOMINANT: Final = 0.5  # the client parts together are at least this share of the tail's latency
# ... and the part advised on is at least this share of the mean call's: a tail of one or two calls (a small
# cell's p99) held up once (the client's first request, built cold) is no reason to change the client or C.
MEAN_SHARE: Final = 0.1


@dataclass(frozen=True, kw_only=True)
class CellParts:
    """One cell's mean parts over all its calls and over its slowest calls (seconds)."""

    strategy: str
    concurrency: int
    mean: dict[str, float]
    tail: dict[str, float]
    tail_latency_s: float
    calls: int = 0
    opened: int = 0  # calls that opened a connection of their own (``connect_s`` > 0)


def _stack_values(frame: pd.DataFrame) -> dict[str, float]:
    ttfb = frame["ttfb_s"].astype(float)
    server = frame["server_s"].astype(float).fillna(0.0).clip(upper=ttfb)
    columns = {
        "prepare_s": frame["prepare_s"],
        "pool_wait_s": frame["pool_wait_s"],
        "connect_s": frame["connect_s"],
        "server_s": server,
        "ttfb_rest_s": ttfb - server,
        "body_s": frame["body_s"],
        "backoff_s": frame["backoff_s"],
    }
    return {name: float(values.astype(float).mean()) for name, values in columns.items()}


def cell_parts(cell: pd.DataFrame) -> CellParts | None:
    """The cell's parts; None when its calls carry none (``--no-trace``, older run folders)."""
    traced = cell.dropna(subset=["prepare_s"])
    if not len(traced):
        return None
    cut = float(traced["latency_s"].quantile(TAIL_Q))
    tail = traced[traced["latency_s"] >= cut]
    return CellParts(
        strategy=str(cell["strategy"].iloc[0]),
        concurrency=int(cell["concurrency"].iloc[0]),
        mean=_stack_values(traced),
        tail=_stack_values(tail),
        tail_latency_s=float(tail["latency_s"].mean()),
        calls=len(traced),
        opened=int((traced["connect_s"].astype(float) > 0).sum()),
    )


def _cells(calls: pd.DataFrame) -> list[CellParts]:
    found = (cell_parts(cell) for _, cell in calls.groupby(["strategy", "concurrency"], sort=False))
    return [parts for parts in found if parts is not None]


def _rows(frame: Any, keep: np.ndarray) -> Any:
    """The rows of ``keep`` (a frame or series): no copy when it keeps them all (a large run's usual case)."""
    return frame if keep.all() else frame[keep]


def cells_of(rows: CallRows, scenario: str | None = None) -> list[CellParts]:
    """``_cells`` of a run's rows (of one ``scenario``'s, when given) read a column or two at a time (a large
    run's): the same figures."""
    groups: dict[tuple[str, int], int] = {}
    mine = [scenario is None or key[0] == scenario for key in rows.keys]
    for (_, strategy, concurrency), wanted in zip(rows.keys, mine, strict=True):
        if wanted:
            groups.setdefault((strategy, concurrency), len(groups))
    # Other scenarios' rows in a group of their own, after these (read, then left out).
    mapping = [groups[key[1:]] if wanted else len(groups) for key, wanted in zip(rows.keys, mine, strict=True)]
    split = rows.cells.coarser(mapping, len(groups) + (not all(mine)))
    traced: list[np.ndarray] = []
    tails: list[np.ndarray] = []
    tail_latency: list[float] = []

    def each(names: tuple[str, ...], figure: Callable[[int, pd.DataFrame], None]) -> None:
        """``figure`` of every group's rows in these columns, which go before the next are read."""
        for index, cell in enumerate(split.pieces(rows.frame(names))):
            figure(index, cell)

    def tail_of(cell: pd.DataFrame) -> None:
        keep = cell["prepare_s"].notna().to_numpy(dtype=bool)
        latency = _rows(cell["latency_s"], keep)
        cut = float(latency.quantile(TAIL_Q)) if len(latency) else math.nan
        tail = (latency >= cut).to_numpy(dtype=bool)
        traced.append(keep)
        tails.append(tail)
        tail_latency.append(float(latency[tail].mean()) if len(latency) else math.nan)

    each(("prepare_s", "latency_s"), lambda index, cell: tail_of(cell))
    mean: list[dict[str, float]] = [{} for _ in range(split.count)]
    slow: list[dict[str, float]] = [{} for _ in range(split.count)]
    opened = [0 for _ in range(split.count)]

    def part(name: str, index: int, cell: pd.DataFrame) -> None:
        values = _rows(cell[name], traced[index])
        mean[index][name] = float(values.astype(float).mean())
        slow[index][name] = float(values[tails[index]].astype(float).mean())
        if name == "connect_s":
            opened[index] = int((values.astype(float) > 0).sum())

    def server(index: int, cell: pd.DataFrame) -> None:
        every = _rows(cell, traced[index])
        for found, frame in ((mean, every), (slow, every[tails[index]])):
            ttfb = frame["ttfb_s"].astype(float)
            server = frame["server_s"].astype(float).fillna(0.0).clip(upper=ttfb)
            found[index]["server_s"] = float(server.mean())
            found[index]["ttfb_rest_s"] = float((ttfb - server).mean())

    for name in ("prepare_s", "pool_wait_s", "connect_s", "body_s", "backoff_s"):
        each((name,), functools.partial(part, name))
    each(("ttfb_s", "server_s"), server)
    order = [name for name, _, _ in STACK]
    return [
        CellParts(
            strategy=strategy,
            concurrency=concurrency,
            mean={name: mean[index][name] for name in order},
            tail={name: slow[index][name] for name in order},
            tail_latency_s=tail_latency[index],
            calls=int(traced[index].sum()),
            opened=opened[index],
        )
        for (strategy, concurrency), index in groups.items()
        if traced[index].any()
    ]


def verdicts(calls: pd.DataFrame | CallRows) -> list[str]:
    """One line per cell whose slowest calls spend most of their time in the client (in a part that weighs
    on the mean call too)."""
    lines: list[str] = []
    for cell in _cells(calls) if isinstance(calls, pd.DataFrame) else cells_of(calls):
        if not cell.tail_latency_s > 0:
            continue
        shares = {part: cell.tail[part] / cell.tail_latency_s for part in CLIENT_PARTS}
        if sum(shares.values()) < DOMINANT:
            continue
        part = max(shares, key=lambda name: shares[name])
        if cell.mean[part] < MEAN_SHARE * sum(cell.mean.values()):
            continue
        what, advice = CLIENT_PARTS[part]
        if part == "connect_s" and _server_closes(cell):
            advice = (
                f"{cell.opened} of {cell.calls} calls opened a connection: the server closes them, "
                "so --warmup cannot help"
            )
        lines.append(
            f"{what} is {100 * shares[part]:.0f} % of p99 latency at C={cell.concurrency} "
            f"({part}, {cell.strategy}): {advice}"
        )
    return lines


def _server_closes(cell: CellParts) -> bool:
    """More calls opened a connection than a pool of C ever needs, twice over: kept-alive ones were closed."""
    return cell.opened > max(2 * cell.concurrency, cell.calls // 2)


def excess_share(cell: pd.DataFrame, part: str) -> float:
    """The share of the latency beyond the server's reported time that ``part`` carries (all calls)."""
    traced = cell.dropna(subset=[part, "server_s"])
    excess = float((traced["latency_s"] - traced["server_s"]).sum())
    return float(traced[part].sum()) / excess if excess > 0 else math.nan


def plot_breakdown(calls: pd.DataFrame | CallRows, scenario: str, path: Path) -> Path | None:
    """``breakdown_figure`` saved as PNG at ``path``; None for untraced calls. ``calls``: the scenario's rows,
    or a large run's rows read a column at a time (the scenario's taken from them)."""
    from bench.report.timeline import DPI

    fig = breakdown_figure(calls, scenario)
    if fig is None:
        return None
    fig.savefig(path, dpi=DPI)
    return path


def breakdown_figure(calls: pd.DataFrame | CallRows, scenario: str) -> Figure | None:
    """Stacked bars per cell: the mean call, and the mean of the calls at or over p99; None untraced."""
    from matplotlib.figure import Figure  # matplotlib costs ~0.5 s to import: only when plotting

    from bench.report.timeline import DPI

    cells = _cells(calls) if isinstance(calls, pd.DataFrame) else cells_of(calls, scenario)
    if not cells:
        return None
    width = max(8.0, 1.3 * len(cells) * 2 + 1)
    fig = Figure(figsize=(width, 6.0), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.arange(len(cells))
    labels = [f"{cell.strategy}\nC={cell.concurrency}" for cell in cells]
    for axis, which, title in ((axes[0], "mean", "mean call"), (axes[1], "tail", f"calls ≥ p{TAIL_Q * 100:.0f}")):
        bottom = np.zeros(len(cells))
        for name, label, shade in STACK:
            heights = np.array([getattr(cell, which)[name] * 1000 for cell in cells])
            axis.bar(x, heights, 0.6, bottom=bottom, color=shade, label=label)
            bottom += heights
        axis.set_xticks(x, labels)
        axis.set_ylabel("milliseconds")
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.08)
    handles, names = axes[0].get_legend_handles_labels()
    # Below the panels, in the stack's order, never over a bar whatever the number of cells.
    fig.legend(
        handles, names, loc="outside lower center", ncols=min(4, int(width // 3)), fontsize=8, title="bottom to top"
    )
    fig.suptitle(f"{scenario}: where the time went")
    return fig
