"""The test's webhook receiver: records every POST body (Alertmanager's webhook payload) as one JSON line."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

LOG = sys.argv[2] if len(sys.argv) > 2 else '/root/webhook.jsonl'


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(LOG, 'a') as f:
            f.write(json.dumps({'received': time.time(), 'path': self.path, 'body': json.loads(body)}) + '\n')
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
