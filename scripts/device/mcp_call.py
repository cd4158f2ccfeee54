#!/usr/bin/env python3
"""A minimal MCP stdio client (stdlib only) for machines without the MCP SDK, e.g. a GPU box
with no network: starts `vllm-sota mcp`, initializes, calls one tool, optionally polls
job_status until the job ends, and prints every result as JSON lines.

  mcp_call.py BIN TOOL ARGS_JSON [--poll JOB_ARGS_JSON] [--poll-every S] [--max-wait S]
"""
import json
import subprocess
import sys
import time


class Client:
    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "mcp_call.py", "version": "0"}})
        self.notify("notifications/initialized")

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)  # anything but JSON-RPC on stdout is a bug: let it raise
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def call(self, tool, args):
        return self.request("tools/call", {"name": tool, "arguments": args})


def main():
    binary, tool, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
    c = Client(binary)
    res = c.call(tool, args)
    print(json.dumps({"tool": tool, "result": res.get("structuredContent"), "isError": res.get("isError"),
                      "text": None if res.get("structuredContent") else res.get("content")}), flush=True)
    if res.get("isError"):
        sys.exit(1)
    if "--poll" in opts:
        poll = json.loads(opts["--poll"])
        every, deadline = float(opts.get("--poll-every", "30")), time.time() + float(opts.get("--max-wait", "540"))
        while True:
            st = c.call("job_status", dict(poll, wait_s=min(every, 45)))["structuredContent"]
            job = st["job"]
            print(json.dumps({"at": time.strftime("%H:%M:%S"), "status": job["status"], "progress": job["progress"]}), flush=True)
            if job["status"] != "running" or time.time() > deadline:
                print(json.dumps({"final": st}), flush=True)
                break


if __name__ == "__main__":
    main()
