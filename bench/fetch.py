"""Download URL to nowhere with one large receive buffer and print ``BYTES SECONDS``.

    python bench/fetch.py URL

The client side of bench/downloads.py that costs the least: one HTTP/1.1 GET over
loopback, the body received into a reused 4 MiB buffer and dropped. It is the
control for ``curl -o /dev/null`` (16 KiB reads, each written out): where both
clients give the same figure, the client is not what caps it. The time runs from
connecting to the last byte; a status other than 200 or a body shorter than its
Content-Length is an error.
"""

from __future__ import annotations

import socket
import sys
import time
from urllib.parse import urlsplit

BUFFER = 4 * 1024 * 1024


def fetch(url: str) -> tuple[int, float]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    start = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port or 80)) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 * BUFFER)
        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        head = b""
        while b"\r\n\r\n" not in head:
            got = connection.recv_into(view)
            if not got:
                raise RuntimeError(f"{url}: the connection closed before the headers ended")
            head += bytes(view[:got])
        head, _, body = head.partition(b"\r\n\r\n")
        length = _content_length(url, head)
        received = len(body)
        while received < length:
            got = connection.recv_into(view)
            if not got:
                break
            received += got
    if received != length:
        raise RuntimeError(f"{url}: {received} bytes of {length}")
    return received, time.perf_counter() - start


def _content_length(url: str, head: bytes) -> int:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    if status != 200:
        raise RuntimeError(f"{url}: answered {lines[0]}")
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    lengths = [v.strip() for k, v in headers.items() if k.strip().lower() == "content-length"]
    if not lengths:
        raise RuntimeError(f"{url}: no Content-Length")
    return int(lengths[0])


if __name__ == "__main__":
    size, seconds = fetch(sys.argv[1])
    print(size, f"{seconds:.6f}")
