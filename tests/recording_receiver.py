"""A loopback HTTP receiver for sink tests: records every POST (headers and decoded JSON body),
answers 200, or 503 while ``down`` (counted in ``attempts`` either way, not recorded)."""

from __future__ import annotations

import http.server
import threading

import orjson


class RecordingReceiver:
    def __init__(self, port: int = 0, path: str = "/hook") -> None:
        self.posts: list[tuple[dict[str, str], object]] = []
        self.attempts = 0
        self.down = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with receiver.lock:
                    receiver.attempts += 1
                    down = receiver.down
                    if not down:
                        receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(503 if down else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base_url + path
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list:
        with self.lock:
            return [body for _headers, body in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
