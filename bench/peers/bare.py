"""The reference for the feeds benchmark: a bare FastAPI endpoint returning a constant.

Served by uvicorn with the options `bulletin serve` uses (app/serving.py), in one process, so
that a ratio to it measures what Bulletin's read paths add to routing and a response.

    .venv/bin/python bench/peers/bare.py --port 8001     # GET /constant
"""

import argparse

import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.serving import uvicorn_options

app = FastAPI()


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info", help="as BULLETIN_LOG_LEVEL")
    args = parser.parse_args()
    # The same options as `bulletin serve`, the heartbeat at its default.
    options = uvicorn_options(Settings(log_level=args.log_level))
    uvicorn.run("bare:app", host=args.host, port=args.port, workers=1, **options)


if __name__ == "__main__":
    main()
