"""Serves /secret: a word made of the image's variable and the Compose file's."""

import http.server
import os

SECRET = f"{os.environ['SECRET_PREFIX']}-{os.environ['SECRET_WORD']}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (SECRET if self.path == "/secret" else "ok").encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", 8765), Handler).serve_forever()
