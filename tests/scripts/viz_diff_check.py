#!/usr/bin/env python3
"""`ingotc viz` and `ingotc diff` on the command line (ctest viz_diff_cli).

- `ingotc diff` of a q8_0 and a q4_0 bundle of stories260K lists exactly the weights whose type
  changed and exactly the kernels that differ, both taken independently from `ingot info --tensors`
  of the two bundles; `--html` writes a page with the same lines.
- bad inputs (a missing file, a file that is no model, a truncated bundle, a profile that is not
  JSON, a report of the wrong kind) give an error naming the file, a non-zero exit and no output file.
- `--help` of both commands prints their usage.
- a bundle's viewer carries its kernels, CPU tiers and arena offsets.

usage: viz_diff_check.py INGOTC INGOT MODELS_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ingotc, ingot, models = sys.argv[1], sys.argv[2], os.environ.get("INGOT_MODELS", sys.argv[3])
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args, ok=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


def info_tensors(bundle):
    """(key -> type) with the viewer's key rule: a name, then name@layout for a later copy; and the kernel specs."""
    out = run(ingot, "info", bundle, "--tensors").stdout
    weights, kernels = {}, set()
    section = None
    for line in out.splitlines():
        if line.startswith("tensors:"):
            section = "tensors"
            continue
        if line.startswith("kernels:"):
            section = "kernels"
            continue
        if not line.startswith("  "):
            section = None if not line.startswith(" ") else section
            continue
        if section == "tensors":
            m = re.match(r"^  (\S+)\s+(\S+)\s+\[[^\]]*\]\s+(\S+)\s+offset", line)
            if m:
                name, typ, layout = m.groups()
                key = name if name not in weights else name + "@" + layout
                weights[key] = typ
        elif section == "kernels":
            m = re.match(r"^  ingot_k\d+_\S+\s+(.*), \d+ node\(s\)$", line)
            if m:
                kernels.add(m.group(1))
    return weights, kernels


stories = os.path.join(models, "stories260K.gguf")
if not os.path.exists(stories):
    msg = f"no {stories} (INGOT_MODELS)"
    if os.environ.get("CI") == "true":
        sys.exit("FAIL: " + msg)
    print("SKIP: " + msg)
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    q8, q4 = os.path.join(tmp, "q8.ingot"), os.path.join(tmp, "q4.ingot")
    run(ingotc, "compile", stories, "--quant", "q8_0", "--target", "native", "-o", q8)
    run(ingotc, "compile", stories, "--quant", "q4_0", "--target", "native", "-o", q4)

    # ------------------------------------------------------------------ diff: weights and kernels
    html = os.path.join(tmp, "diff.html")
    d = run(ingotc, "diff", q8, q4, "--html", html).stdout
    listed_weights = {}
    for m in re.finditer(r"^  ~ weight (\S+): (\S+) -> (\S+) ", d, re.M):
        listed_weights[m.group(1)] = (m.group(2), m.group(3))
    wa, ka = info_tensors(q8)
    wb, kb = info_tensors(q4)
    expected = {k: (wa[k], wb[k]) for k in wa if k in wb and wa[k] != wb[k]}
    check(len(expected) > 0, f"the q8_0 and q4_0 bundles have weights of different types ({len(expected)})")
    check(listed_weights == expected,
          f"diff lists exactly the {len(expected)} weights whose type changed "
          f"(extra: {sorted(set(listed_weights) - set(expected))}, missing: {sorted(set(expected) - set(listed_weights))})")
    only_a = {m.group(1) for m in re.finditer(r"^  - kernel (.*) \(\d+ nodes\)$", d, re.M)}
    only_b = {m.group(1) for m in re.finditer(r"^  \+ kernel (.*) \(\d+ nodes\)$", d, re.M)}
    check(only_a == ka - kb and only_b == kb - ka,
          f"diff lists exactly the kernels that differ ({len(ka - kb)} only in A, {len(kb - ka)} only in B)")
    check(len(only_a) > 0 and all("q8_0" in k for k in only_a) and all("q4_0" in k for k in only_b),
          "the differing kernels are the q8_0 matmuls against the q4_0 ones")
    check("~ quantization: q8_0 -> q4_0" in d, "the provenance's quantization differs")
    check(re.search(r"^graph: \d+ vs \d+ nodes; 0 only in A, 0 only in B, 0 changed$", d, re.M) is not None,
          "the graphs agree")
    page = open(html).read()
    check(all(f"weight {k}:" in page for k in expected), "--html lists the same weights")
    same = run(ingotc, "diff", q8, q8).stdout
    check("weights: 0 of" in same and "0 only in A, 0 only in B; 0 nodes run a different kernel" in same,
          "a bundle against itself differs in nothing")

    # ------------------------------------------------------------------ a bundle's viewer
    out = os.path.join(tmp, "b.html")
    r = run(ingotc, "viz", q4, "-o", out)
    page = open(out).read()
    data = json.loads(re.search(r'<script id="ingot-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    check(data["meta"]["kind"] == "bundle" and data["meta"]["layers"] == 5, "the bundle's viewer finds 5 layers")
    check(any(k["symbol"].startswith("ingot_k") and "q4_0" in k["desc"] for k in data["kernels"].values()),
          "the bundle's viewer carries its kernels")
    check(data["meta"]["tiers"] and data["meta"]["host_tier"] in data["meta"]["tiers"], "and its CPU tiers")
    check(len(data["arena"]) > 0, "and its arena offsets")
    check("http://" not in page.replace("http://www.w3.org", "") and "https://" not in page, "the page names no URL")

    # ------------------------------------------------------------------ bad inputs
    def refused(args, names, out_path, what):
        r = run(ingotc, *args, ok=False)
        check(r.returncode != 0 and names in r.stderr and not os.path.exists(out_path),
              f"{what}: exit {r.returncode}, error names {names}, no output ({r.stderr.strip()[:160]})")

    out = os.path.join(tmp, "out.html")
    refused(["viz", os.path.join(tmp, "missing.gguf"), "-o", out], "missing.gguf", out, "a missing model")
    junk = os.path.join(tmp, "junk.gguf")
    with open(junk, "wb") as f:
        f.write(b"GGUF" + os.urandom(200))
    refused(["viz", junk, "-o", out], "junk.gguf", out, "a corrupt GGUF")
    cut = os.path.join(tmp, "cut.ingot")
    with open(q8, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(6000))
    refused(["viz", cut, "-o", out], "cut.ingot", out, "a truncated bundle")
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write("{ not json")
    refused(["viz", q8, "--profile", bad, "-o", out], "bad.json", out, "a profile that is not JSON")
    wrong = os.path.join(tmp, "wrong.json")
    with open(wrong, "w") as f:
        f.write('{"matmuls": []}')
    refused(["viz", q8, "--profile", wrong, "-o", out], "wrong.json", out, "an accuracy report given as a profile")
    refused(["diff", q8, cut], "cut.ingot", out, "diff with a truncated bundle")
    size = os.path.getsize(q8)
    r = run(ingotc, "viz", q8, "-o", q8, ok=False)
    check(r.returncode == 1 and "input" in r.stderr and os.path.getsize(q8) == size,
          "viz refuses to write over its input, which stays as it was")
    r = run(ingotc, "diff", q8, q4, "--html", tmp, ok=False)
    check(r.returncode == 1 and tmp in r.stderr, "diff --html into a directory is refused")
    r = run(ingotc, "diff", q8, ok=False)
    check(r.returncode == 2, f"diff with one argument is a usage error (exit {r.returncode})")
    r = run(ingotc, "viz", q8, "--colour", "x", ok=False)
    check(r.returncode == 2 and "unknown option" in r.stderr, "an unknown option is a usage error")

    # ------------------------------------------------------------------ help
    for cmd in ("viz", "diff"):
        r = run(ingotc, cmd, "--help", ok=False)
        check(r.returncode == 0 and r.stdout.startswith("Usage:") and f"ingotc {cmd}" in r.stdout, f"ingotc {cmd} --help")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
