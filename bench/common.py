"""What ``bench.chaos`` and ``bench.soak`` share: ports, processes, RSS, percentiles, tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def work_folder(prefix: str) -> Iterator[Path]:
    """A new folder in the temporary directory for one run (its config, database and
    logs): removed when the run ends well, kept (and named) when it fails, for a look."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    except BaseException:
        print(f"kept {folder} (config, database, logs) for a look", file=sys.stderr)
        raise
    shutil.rmtree(folder, ignore_errors=True)


def clean_env() -> dict[str, str]:
    """This environment without ``BOOXI_*`` variables: the config file alone decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BOOXI_")}


async def start_serve(config: Path, log: Path) -> tuple[asyncio.subprocess.Process, float]:
    """A real ``booxi-mirror serve`` (``python -m cli``), its stderr appended to ``log``;
    returns it once it listens, with the seconds that took (interpreter start included)."""
    began = time.perf_counter()
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "--config",
            str(config),
            "serve",
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=clean_env(),
        )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if b"serving on" not in line:
        raise SystemExit(f"the mirror did not start: {line!r}; see {log}")
    return process, time.perf_counter() - began


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (``VmRSS`` in ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def anon_rss_mb(pid: int) -> float:
    """The anonymous part of the resident set (``RssAnon``): the process's own memory,
    without the database file's pages that the reader maps (``mmap_size``), which count
    in ``VmRSS`` as reads touch them and which the kernel can drop at any time."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no RssAnon for process {pid}")


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` samples, in value per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread * 60


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
