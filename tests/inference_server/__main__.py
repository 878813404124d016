"""Run the scripted inference server: ``python -m tests.inference_server --port 8089``."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import uvicorn

from .app import create_app
from .engine import DropConnection

READY_LINE = "scripted inference server listening on http://{host}:{port}"


class _Server(uvicorn.Server):
    """Prints the ready line once the socket is accepting connections."""

    def __init__(self, config: uvicorn.Config, host: str, port: int) -> None:
        super().__init__(config)
        self.ready_line = READY_LINE.format(host=host, port=port)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            print(self.ready_line, flush=True)


def _not_a_drop(record: logging.LogRecord) -> bool:
    """Keep uvicorn's traceback out of the log for a connection dropped on purpose."""
    return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.inference_server",
        description="Scripted TGI / OpenAI-compatible inference server for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="must be 1: the script queue and request log live in the process",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=0,
        help="answer 429 beyond this many in-flight generations (0 = unlimited)",
    )
    parser.add_argument("--max-log", type=int, default=20_000, help="requests kept in the log")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.workers != 1:
        parser.error("--workers must be 1 (state is kept in process memory)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    config = uvicorn.Config(
        create_app(max_concurrent_requests=args.max_concurrent_requests, max_log=args.max_log),
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        backlog=2048,
    )
    logging.getLogger("uvicorn.error").addFilter(_not_a_drop)
    _Server(config, host, port).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
