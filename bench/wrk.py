"""Load from a second process: ``wrk`` (Debian's ``wrk`` package) over a list of paths.

A Python load generator tops out near the server it measures (both want a core), so the
read benchmarks drive ``wrk -t1`` and read its summary: requests per second, the latency
distribution, and the answers that were not 2xx/3xx.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_LUA = """
local paths = %(paths)s
local headers = %(headers)s
local etags = %(etags)s
local i = 0
request = function()
  i = i %% #paths + 1
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  if etags[i] ~= nil and etags[i] ~= "" then h["If-None-Match"] = etags[i] end
  return wrk.format("GET", paths[i], h)
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclasses.dataclass(frozen=True)
class Run:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    bad: int  # answers that were not 2xx or 3xx, plus socket errors


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    base: str,
    paths: Sequence[str],
    *,
    seconds: float,
    connections: int,
    headers: Mapping[str, str] | None = None,
    etags: Sequence[str] | None = None,
) -> Run:
    """``wrk -t1 -c<connections> -d<seconds>`` cycling over ``paths`` (each with its
    ``If-None-Match`` when ``etags`` is given)."""
    if not available():
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    script = _LUA % {
        "paths": _lua_list(paths),
        "headers": "{"
        + ",".join(f"[{_lua(k)}]={_lua(v)}" for k, v in (headers or {}).items())
        + "}",
        "etags": _lua_list(etags or []),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--latency"]
            + ["-s", file.name, base],
            capture_output=True,
            text=True,
            timeout=round(seconds) + 60,
            check=True,
        ).stdout
    finally:
        Path(file.name).unlink()
    return _parse(out)


def _parse(out: str) -> Run:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percent = {
        p: float(v) * _UNITS[u] for p, v, u in re.findall(r"\s(\d+)%\s+([\d.]+)(us|ms|s|m)\b", out)
    }
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    return Run(rate, percent.get("50", float("nan")), percent.get("99", float("nan")), bad)


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a Lua string literal for these


def _lua_list(values: Sequence[str]) -> str:
    return "{" + ",".join(_lua(v) for v in values) + "}"
