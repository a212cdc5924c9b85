"""A guestbook: POST /entries (form field `message`) adds an entry to redis, GET /entries lists
them. Every response names its Pod and version (X-Seaworthy-Backend / X-Seaworthy-Version);
/healthz fails while /tmp/seaworthy-unready exists; SIGTERM finishes the requests in flight."""

import html
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import redis

BACKEND = os.environ.get("POD_NAME") or socket.gethostname()
try:
    VERSION = open("/etc/seaworthy-version").read().strip()
except OSError:
    VERSION = "dev"
UNREADY = os.environ.get("SEAWORTHY_UNREADY_FILE", "/tmp/seaworthy-unready")
store = redis.Redis(host=os.environ.get("REDIS_HOST", "guestbook-redis"), port=int(os.environ.get("REDIS_PORT", "6379")), socket_timeout=2)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Seaworthy-Backend", BACKEND)
        self.send_header("X-Seaworthy-Version", VERSION)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(503 if os.path.exists(UNREADY) else 200, "ok\n")
        if self.path in ("/", "/entries"):
            try:
                entries = store.lrange("entries", 0, -1)
            except redis.RedisError as e:
                return self.reply(503, f"guestbook: cannot reach redis: {e}\n")
            items = "".join(f"<li>{html.escape(e.decode())}</li>" for e in entries)
            return self.reply(200, f"<ul>{items}</ul>\n")
        self.reply(404, "not found\n")

    def do_POST(self):
        if self.path != "/entries":
            return self.reply(404, "not found\n")
        length = int(self.headers.get("Content-Length") or 0)
        message = parse_qs(self.rfile.read(length).decode()).get("message", [""])[0]
        if not message:
            return self.reply(400, "guestbook: the form has no message\n")
        try:
            n = store.rpush("entries", message)
        except redis.RedisError as e:
            return self.reply(503, f"guestbook: cannot reach redis: {e}\n")
        self.reply(201, f"added entry {n}\n")

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler)
    # shutdown() from another thread: serve_forever returns, server_close waits for the handlers.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
