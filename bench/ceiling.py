"""The HTTP ceiling: bare aiohttp answering GETs with the same bytes, as JSON.

    .venv/bin/python -m bench.ceiling --port 8099 --body answer.json
    .venv/bin/python -m bench.ceiling --port 8099 --bodies bodies.json

What the read benchmarks compare the mirror with: the cost of HTTP alone, for the same
bodies, on the same machine, in the same run. ``--body``: one body for every path.
``--bodies``: a JSON object of path (with its query string, as sent) to a file holding that
path's body, so that each request gets the very bytes the mirror gave the same request
(one dictionary lookup per request; an unknown path gets a 404).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--body", type=Path, help="one body for every path")
    given.add_argument("--bodies", type=Path, help="a JSON object of path to body file")
    args = parser.parse_args()
    one = args.body.read_bytes() if args.body is not None else None
    files = json.loads(args.bodies.read_text()) if args.bodies is not None else {}
    bodies = {path: Path(file).read_bytes() for path, file in files.items()}

    async def answer(request: web.Request) -> web.Response:
        found = one if one is not None else bodies.get(request.raw_path)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found, content_type="application/json")

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
