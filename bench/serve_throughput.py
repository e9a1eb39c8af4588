#!/usr/bin/env python3
"""Throughput of `ingot serve` against llama-server on the same GGUF (issue 18's benchmark).

  bench/serve_throughput.py [--build build] [--work DIR] [--streams 1,2,4,8] [--tokens 128]
                            [--rounds 2] [--threads 2] [--ctx 512] [--llama-server PATH] [--json OUT]
                            [--only ingot|llama] [--serve-args "--lookup 3"] [--prompts distinct|repeat]
                            [--late-prompt WORDS]

Synthesizes a random-weight tinyllama-1.1b q4_0 GGUF (`ingotc synth --shape tinyllama-1.1b
--type q4_0`) and compiles it (`ingotc compile --target native --max-context CTX`) into WORK
(default ~/.cache/ingot-bench/serve) once (again when `ingotc` is newer than the bundle). Then for each server in turn -- `ingot serve BUNDLE
--parallel 8 --threads T --ctx CTX` and `llama-server -m GGUF --parallel 8 -t T -tb T -c 8*CTX` --
and for each stream count N: N clients at once each stream one /v1/completions request of
TOKENS tokens (temperature 0, ignore_eos, a distinct prompt of ~16 tokens per stream); ROUNDS
rounds, each of which runs every stream count once (so the host's drift falls on all counts
alike; the table gives each round's ratio to that round's single stream too). Reports, per server and N: aggregate generated tokens/s (all tokens / wall time from the
first request to the last token), time to first token and inter-token latency (gaps between
streamed chunks, per token) p50/p90/p99 in ms. Run it on an idle machine (it prints `uptime`).

Speculation: --serve-args adds options to `ingot serve` (`--lookup 3`, `--draft S.ingot`), and
--prompts repeat gives every stream a prompt that quotes a text and asks for it again (the load
prompt lookup is for). The draft counters of /metrics are read after each stream count, so the
table also gives the tokens drafted and the share accepted.

A long prompt under load: --late-prompt WORDS sends, once all N streams have 8 tokens each, one
more request with a prompt of about WORDS words (8 tokens); its time to first token and the
longest gap between two chunks of the N streams (the stall its prefill causes; ingot serve
bounds it with --prefill-chunk) join the table, the worst of the rounds.
"""
import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def wait_ready(url, proc, timeout=600):
    end = time.time() + timeout
    u = urllib.parse.urlparse(url)
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("the server exited: %s" % proc.returncode)
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def one_stream(url, prompt, tokens, out):
    u = urllib.parse.urlparse(url)
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True,
                       "stream": True, "cache_prompt": False})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        out["error"] = "HTTP %d: %s" % (r.status, r.read()[:200])
        return
    times, chunks = [], 0
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            break
        j = json.loads(line[6:])
        if j.get("choices") and j["choices"][0].get("text"):
            times.append(time.perf_counter())
            chunks += 1
            out["live_chunks"] = chunks
    out.update(start=t0, times=times, chunks=chunks)


def measure_round(url, n, tokens, prompts, rnd, late_prompt=None):
    """One round of N concurrent streams: the aggregate rate, every stream's TTFT and per-token gaps."""
    outs = [dict() for _ in range(n)]
    threads = [threading.Thread(target=one_stream, args=(url, prompts[(rnd * n + i) % len(prompts)], tokens, outs[i])) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    late = {}
    if late_prompt:
        # Once every stream decodes (8 tokens each), a long prompt arrives: its time to first
        # token, and the longest gap it causes in the decoding streams.
        while any(o.get("live_chunks", 0) < 8 for o in outs) and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        late_thread = threading.Thread(target=one_stream, args=(url, late_prompt, 8, late))
        late_thread.start()
        late_thread.join()
    for t in threads:
        t.join()
    for o in outs + ([late] if late_prompt else []):
        if "error" in o:
            raise RuntimeError(o["error"])
    r = {"ttft": [], "itl": []}
    if late_prompt:
        r["late_ttft"] = (late["times"][0] - late["start"]) * 1000
        r["stall"] = max(b - a for o in outs for a, b in zip(o["times"], o["times"][1:])) * 1000
    end = max(o["times"][-1] for o in outs)
    r["agg"] = n * tokens / (end - t0)
    for o in outs:
        r["ttft"].append((o["times"][0] - o["start"]) * 1000)
        # A chunk may carry several tokens (text held back, or a slow reader): its gap is
        # spread over them, so that every generated token after the first has one value.
        gaps = [b - a for a, b in zip(o["times"], o["times"][1:])]
        per = (tokens - 1) / max(1, len(gaps))
        for g in gaps:
            r["itl"].extend([g * 1000 / per] * max(1, round(per)))
    return r


def summarize(n, runs, late_prompt=None):
    """The rounds of one stream count as a table row: mean aggregate, latency percentiles."""
    ttft = [v for r in runs for v in r["ttft"]]
    itl = [v for r in runs for v in r["itl"]]
    agg = [r["agg"] for r in runs]
    pct = lambda v, p: sorted(v)[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
    extra = {"late_ttft_ms": max(r["late_ttft"] for r in runs), "max_gap_ms": max(r["stall"] for r in runs)} if late_prompt else {}
    return {**extra, "streams": n, "agg_tok_s": statistics.mean(agg), "agg_runs": agg,
            "ttft_ms": {"p50": pct(ttft, 50), "p90": pct(ttft, 90), "p99": pct(ttft, 99)},
            "itl_ms": {"p50": pct(itl, 50), "p90": pct(itl, 90), "p99": pct(itl, 99)}}


def draft_counters(url):
    """ingot serve's draft counters from /metrics (zeros for a server without them)."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace") if r.status == 200 else ""
    got = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("ingot_draft_tokens_total", "ingot_draft_accepted_tokens_total"):
            got[parts[0]] = float(parts[1])
    return got.get("ingot_draft_tokens_total", 0.0), got.get("ingot_draft_accepted_tokens_total", 0.0)


def bench_server(name, argv, url, streams, tokens, rounds, prompts, log, late_prompt=None):
    print("\n== %s: %s" % (name, " ".join(argv)), file=sys.stderr)
    with open(log, "w") as lf:
        proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, proc)
        measure_round(url, 2, 8, prompts, 0)  # warm-up: pages in, threads up
        # Rounds outermost: each round runs every stream count once, so that the host's drift (its
        # speed wanders by 20-50 % within an hour on these VMs) falls on all counts alike and the
        # ratios to one stream compare runs minutes apart, not a quarter hour.
        runs = {n: [] for n in streams}
        loads = {}
        drafted = {n: [0.0, 0.0] for n in streams}
        for rnd in range(rounds):
            for n in streams:
                loads.setdefault(n, float(open("/proc/loadavg").read().split()[0]))
                d0, a0 = draft_counters(url)
                runs[n].append(measure_round(url, n, tokens, prompts, rnd, late_prompt))
                d1, a1 = draft_counters(url)
                drafted[n][0] += d1 - d0
                drafted[n][1] += a1 - a0
        rows = []
        for n in streams:
            r = summarize(n, runs[n], late_prompt)
            r["server"] = name
            r["drafted"], r["accepted"] = drafted[n]
            r["load_before"] = loads[n]
            # The same round's single-stream rate: a ratio from runs minutes apart.
            r["x_single_runs"] = [x["agg"] / s["agg"] for x, s in zip(runs[n], runs[streams[0]])]
            rows.append(r)
            print("%-12s %d streams: %.1f tok/s aggregate; TTFT p50/p90/p99 %.0f/%.0f/%.0f ms; inter-token %.1f/%.1f/%.1f ms" % (
                name, n, r["agg_tok_s"], r["ttft_ms"]["p50"], r["ttft_ms"]["p90"], r["ttft_ms"]["p99"],
                r["itl_ms"]["p50"], r["itl_ms"]["p90"], r["itl_ms"]["p99"]) +
                  ("; late prompt TTFT %.0f ms, longest gap %.0f ms" % (r["late_ttft_ms"], r["max_gap_ms"]) if late_prompt else ""),
                  file=sys.stderr)
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/ingot-bench/serve"))
    ap.add_argument("--streams", default="1,2,4,8")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--llama-server", default=os.path.expanduser("~/.cache/llama.cpp-34af94cd/build/bin/llama-server"))
    ap.add_argument("--only", choices=["ingot", "llama"], help="run one server only")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--serve-args", default="", help="more options for ingot serve, e.g. \"--lookup 3\"")
    ap.add_argument("--prompts", choices=["distinct", "repeat"], default="distinct")
    ap.add_argument("--late-prompt", type=int, metavar="WORDS",
                    help="once the streams decode, send one more request with a prompt of about WORDS words; report its time "
                         "to first token and the longest gap it causes in the streams (the worst of the rounds)")
    a = ap.parse_args()
    ingotc, ingot = os.path.join(a.build, "tools/ingotc"), os.path.join(a.build, "tools/ingot")
    os.makedirs(a.work, exist_ok=True)
    gguf = os.path.join(a.work, "tinyllama-1.1b-q4_0.gguf")
    bundle = os.path.join(a.work, "tinyllama-1.1b-q4_0-ctx%d.ingot" % a.ctx)
    if not os.path.exists(gguf):
        run([ingotc, "synth", "--shape", "tinyllama-1.1b", "--type", "q4_0", "-o", gguf])
    # A bundle older than the compiler holds kernels that may since have changed: compiled again.
    if not os.path.exists(bundle) or os.path.getmtime(bundle) < os.path.getmtime(ingotc):
        run([ingotc, "compile", gguf, "-o", bundle, "--target", "native", "--max-context", str(a.ctx)])
    streams = [int(x) for x in a.streams.split(",")]
    words = "time little dog house river stone cloud apple green music window garden winter summer paper light".split()
    prompts = ["Once upon a time the %s and the %s went to the %s near the %s." % (words[i % 16], words[(i * 3 + 1) % 16],
               words[(i * 5 + 2) % 16], words[(i * 7 + 3) % 16]) for i in range(32)]
    if a.prompts == "repeat":
        prompts = ["Copy this text exactly. Text: %s Copy: %s" % (p, p) for p in prompts]
    late_prompt = None
    if a.late_prompt:
        late_words = ("The old %s stood by the %s." % (words[i % 16], words[(i * 5 + 3) % 16]) for i in range(a.late_prompt))
        late_prompt = " ".join(late_words).split(" ")[:a.late_prompt]
        late_prompt = " ".join(late_prompt)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    print("host: %s, %d CPUs; uptime: %s" % (cpu, os.cpu_count(), subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()), file=sys.stderr)
    rows = []
    port = 18480
    if a.only != "llama":
        name = "ingot serve" + (" " + a.serve_args if a.serve_args else "")
        rows += bench_server(name, [ingot, "serve", bundle, "--port", str(port), "--parallel", "8", "--threads", str(a.threads),
                                    "--ctx", str(a.ctx)] + a.serve_args.split(), "http://127.0.0.1:%d" % port, streams, a.tokens, a.rounds, prompts,
                             os.path.join(a.work, "ingot-serve.log"), late_prompt)
    if a.only != "ingot":
        rows += bench_server("llama-server", [a.llama_server, "-m", gguf, "--host", "127.0.0.1", "--port", str(port + 1), "--parallel", "8",
                                              "-t", str(a.threads), "-tb", str(a.threads), "-c", str(8 * a.ctx), "--no-warmup"],
                             "http://127.0.0.1:%d" % (port + 1), streams, a.tokens, a.rounds, prompts, os.path.join(a.work, "llama-server.log"),
                             late_prompt)
    late_head = " late prompt TTFT ms | longest gap ms |" if late_prompt else ""
    print("\n| server | streams | aggregate tok/s | x single | x single per round | TTFT p50 / p90 / p99 ms | inter-token p50 / p90 / p99 ms | drafted | accepted |"
          + late_head + " load before |")
    print("|---|---:|---:|---:|---|---|---|---:|---:|" + ("---:|---:|" if late_prompt else "") + "---:|")
    for r in rows:
        single = next(x["agg_tok_s"] for x in rows if x["server"] == r["server"] and x["streams"] == streams[0])
        acc = "%d (%.0f %%)" % (r["accepted"], 100 * r["accepted"] / r["drafted"]) if r["drafted"] else "-"
        late_cells = " %.0f | %.0f |" % (r["late_ttft_ms"], r["max_gap_ms"]) if late_prompt else ""
        per_round = " / ".join("%.2f" % v for v in r["x_single_runs"])
        print("| %s | %d | %.1f | %.2f | %s | %.0f / %.0f / %.0f | %.1f / %.1f / %.1f | %s | %s |%s %.2f |" % (
            r["server"], r["streams"], r["agg_tok_s"], r["agg_tok_s"] / single, per_round, r["ttft_ms"]["p50"], r["ttft_ms"]["p90"],
            r["ttft_ms"]["p99"], r["itl_ms"]["p50"], r["itl_ms"]["p90"], r["itl_ms"]["p99"],
            "%d" % r["drafted"] if r["drafted"] else "-", acc, late_cells, r["load_before"]))
    print("uptime after: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
