"""The HTTP ceiling: bare aiohttp answering every GET with the same bytes, as JSON.

    .venv/bin/python -m bench.ceiling --port 8099 --body answer.json

What the read benchmarks compare the mirror with: the cost of HTTP alone, for the same
body, on the same machine, in the same run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    body = args.body.read_bytes()

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    # run_app calls ``print`` once the socket listens: the caller waits for that line
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=lambda _: print(f"listening on http://127.0.0.1:{args.port}", flush=True),
        access_log=None,
    )


if __name__ == "__main__":
    main()
