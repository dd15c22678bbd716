"""A local stand-in for a mail API, for trying the welcome-email plugin.

Usage: python3 examples/mail-api-standin.py 127.0.0.1:8025 mail.log

Every POST is answered 202 and written to the log as one JSON line: the
path, the Authorization header and the JSON body the plugin sent.
"""

import http.server
import json
import sys


class MailApi(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        line = {"path": self.path, "authorization": self.headers.get("authorization"), "body": body}
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
        reply = b'{"id": "msg_1"}'
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, port = sys.argv[1].rsplit(":", 1)
    LOG = sys.argv[2]
    http.server.HTTPServer((host, int(port)), MailApi).serve_forever()
