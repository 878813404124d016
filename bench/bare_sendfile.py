"""The ceiling of any web server on this machine: answer every request for FILE with
``os.sendfile`` (the kernel copies the page cache to the socket, no user-space copy), no
parsing beyond the request line, no access check (bench/downloads.py runs it).

    python bench/bare_sendfile.py FILE PORT
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def serve(path: str, port: int) -> None:
    size = os.path.getsize(path)
    listener = socket.create_server(("127.0.0.1", port))
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=answer, args=(connection, path, size), daemon=True).start()


def answer(connection: socket.socket, path: str, size: int) -> None:
    with connection, open(path, "rb") as file:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        connection.sendall(head.encode())
        sent = 0
        while sent < size:
            sent += os.sendfile(connection.fileno(), file.fileno(), sent, size - sent)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
