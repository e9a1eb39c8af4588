#!/usr/bin/env python3
"""The same answer on every CPU: recorded ids and logits that every host class must reproduce.

  cross_host_reference.py INGOTC INGOT MODELS [--record]

Issue 14 asks that a `portable` bundle compiled on one host class (AMD Zen 3: AVX2; Intel Xeon:
AVX-512, AMX) run on the other with identical greedy ids. Sessions get one host or the other, so
the check goes through recorded data: tests/data/cross_host_reference.json holds, for each case,
the greedy ids of `ingot run --temp 0` and the SHA-256 of the f32 bits of the logits after the
prompt, recorded on one host (named in the file). On whatever host this runs, each case is
compiled with the default target (`portable`: every tier) and run on EVERY tier this host runs
(`ingot run --tier T`): ids and logits must equal the recording bit for bit. Recorded on AMD and
run on Intel (or the reverse), this is the cross-host promise; on one host it is also the
every-tier promise of ir/float_spec.h.

Cases: random-weight LLaMA GGUFs written by `ingotc synth` with a fixed seed (the Llama-2
vocabulary, small dims, every weight type the synth writes: their default 8-bit activations for
block types), and stories260K-q8_0 (trained weights, real text). The synth models' greedy text
is degenerate; their logits hashes are what makes the check strong.

--record rewrites the JSON from this host's best tier (after checking that every tier here agrees).
"""
import hashlib
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time

TIERS = ("x86-64-v2", "x86-64-v3", "x86-64-v4", "avx512", "amx")
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "cross_host_reference.json")
DIMS = "dim=256,layers=2,heads=4,kv=2,ffn=768,ctx=256"
PROMPT = "Once upon a time, there was a little robot who"
N = 24


def cases(models):
    vocab = os.path.join(models, "vocab", "ggml-vocab-llama-spm.gguf")
    out = []
    for t in ("f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k"):
        out.append((f"synth-{t}", ["synth", "--dims", DIMS, "--type", t, "--vocab", vocab, "--seed", "7"]))
    out.append(("stories260K-q8_0", os.path.join(models, "stories260K-q8_0.gguf")))
    return out


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def runnable_tiers(ingot, bundle):
    info = subprocess.run([ingot, "info", bundle], check=True, capture_output=True, text=True).stdout
    tiers, chosen = [], None
    for line in info.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in TIERS and "section" in line:
            if "runs here" in line:
                tiers.append(words[0])
            if line.endswith("<- chosen"):
                chosen = words[0]
    return tiers, chosen


def run(ingot, bundle, tier):
    r = subprocess.run([ingot, "run", bundle, "--tier", tier, "-p", PROMPT, "-n", str(N), "--temp", "0", "--json", "--logits",
                        "--threads", "2"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ingot run --tier {tier} failed ({r.returncode}): {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    bits = b"".join(struct.pack("<f", x) for x in j["logits_after_prompt"])
    return {"ids": j["ids"], "logits_sha256": hashlib.sha256(bits).hexdigest(), "tier": j.get("tier", tier)}


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    ingotc, ingot = sys.argv[1], sys.argv[2]
    models = os.environ.get("INGOT_MODELS", sys.argv[3])
    record = "--record" in sys.argv[4:]
    if not os.path.isdir(models):
        print(f"{models}: not found (set INGOT_MODELS)")
        return 1 if os.environ.get("CI") == "true" else 77
    ref = {} if record else json.load(open(DATA))
    got, failures, best_tier = {}, 0, None
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in cases(models):
            if isinstance(source, list):
                gguf = os.path.join(tmp, name + ".gguf")
                subprocess.run([ingotc] + source + ["-o", gguf], check=True, capture_output=True, text=True)
            else:
                gguf = source
            bundle = os.path.join(tmp, name + ".ingot")
            subprocess.run([ingotc, "compile", gguf, "-o", bundle], check=True, capture_output=True, text=True)
            tiers, chosen = runnable_tiers(ingot, bundle)
            if not tiers:
                print(f"FAIL {name}: no tier of the portable bundle runs here")
                failures += 1
                continue
            results = {t: run(ingot, bundle, t) for t in tiers}
            best_tier = chosen or tiers[-1]
            best = results[best_tier]
            got[name] = {"ids": best["ids"], "logits_sha256": best["logits_sha256"]}
            want = got[name] if record else ref["cases"].get(name)
            if want is None:
                print(f"FAIL {name}: not in {DATA} (run with --record)")
                failures += 1
                continue
            for t, r in results.items():
                same_ids = r["ids"] == want["ids"]
                same_logits = r["logits_sha256"] == want["logits_sha256"]
                ok = same_ids and same_logits
                failures += 0 if ok else 1
                where = "this host's best tier" if record else f"recorded on {ref['host']} ({ref['tier']})"
                print(f"{'ok  ' if ok else 'FAIL'} {name} --tier {t}: ids {'equal' if same_ids else 'DIFFER'}, "
                      f"logits {'equal' if same_logits else 'DIFFER'} (against {where})")
                if not same_ids:
                    print(f"     got  {r['ids']}\n     want {want['ids']}")
    if record:
        if failures:
            print(f"not recorded: {failures} tier(s) of this host disagree")
            return 1
        out = {"host": cpu_name(), "tier": best_tier, "date": time.strftime("%Y-%m-%d"),
               "made_by": "tests/scripts/cross_host_reference.py --record", "prompt": PROMPT, "tokens": N,
               "synth_dims": DIMS, "cases": got}
        with open(DATA, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"recorded {len(got)} cases from {out['host']} ({best_tier}) into {DATA}")
        return 0
    print(f"{failures} failure(s); this host: {cpu_name()}; recording: {ref['host']} ({ref['tier']}, {ref['date']})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
