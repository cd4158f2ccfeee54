#!/usr/bin/env python3
"""Single-process Python asyncio streaming client of the same design as the vllm-sota
client: a pool of HTTP/1.1 keep-alive connections (one per concurrent stream), the same
request body, chunked-transfer decoding, SSE events split on blank lines, json.loads per
event (what vLLM's/SGLang's clients do), TTFT/ITL timestamps per chunk, output tokens from
`usage`. Stdlib only (asyncio), so no install is needed.

Prints one JSON line: {"requests", "ok", "tokens", "wall_s", "cpu_s", "tokens_per_s",
"cpu_ms_per_request"}.
"""
import argparse
import asyncio
import json
import time


def build_body(model, prompt, output_len):
    return json.dumps({
        "model": model, "prompt": prompt, "max_tokens": output_len, "min_tokens": output_len,
        "ignore_eos": True, "temperature": 0.0, "stream": True,
        "stream_options": {"include_usage": True},
    }).encode()


async def read_chunked(reader):
    """Yields the data of each HTTP/1.1 chunk."""
    while True:
        line = await reader.readline()
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readline()  # trailing CRLF
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


async def one_request(reader, writer, host, body):
    st = time.perf_counter()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: " + host.encode()
                 + b"\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    status = await reader.readline()
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if b" 200 " not in status:
        raise RuntimeError(status.decode(errors="replace"))
    buf = b""
    ttft = None
    last = None
    itls = []
    text = []
    usage_tokens = None
    async for data in read_chunked(reader):
        now = time.perf_counter()
        buf += data
        while True:
            i = buf.find(b"\n\n")
            if i < 0:
                break
            event, buf = buf[:i], buf[i + 2:]
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    continue
                chunk = json.loads(payload)
                choices = chunk.get("choices") or []
                if choices:
                    t = choices[0].get("text") or ""
                    if t:
                        if ttft is None:
                            ttft = now - st
                        else:
                            itls.append(now - last)
                        last = now
                        text.append(t)
                u = chunk.get("usage")
                if u:
                    usage_tokens = u.get("completion_tokens")
    return usage_tokens or 0, ttft, itls


async def worker(host, port, queue, results):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    while True:
        try:
            body = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        results.append(await one_request(reader, writer, f"{host}:{port}", body))
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", default="sim-model")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--output-len", type=int, required=True)
    a = ap.parse_args()
    queue = asyncio.Queue()
    for i in range(a.requests):
        queue.put_nowait(build_body(a.model, f"hello world {i}", a.output_len))
    results = []
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(a.host, a.port, queue, results) for _ in range(a.concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(r[0] for r in results)
    print(json.dumps({
        "requests": a.requests, "ok": sum(1 for r in results if r[0] > 0), "tokens": tokens,
        "wall_s": wall, "cpu_s": cpu, "tokens_per_s": tokens / wall,
        "cpu_ms_per_request": cpu * 1e3 / max(len(results), 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
