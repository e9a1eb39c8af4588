#!/usr/bin/env python3
"""ingotc chat-template and compile --chat-template, end to end.

Usage: chat_template_cli.py INGOTC MODELS_DIR   (INGOT_MODELS overrides MODELS_DIR)
- chat-template on ../shared/models/tokenizers/qwen3 (a tokenizer-only folder) equals the text in
  which Python's jinja2 renders its template (when jinja2 is present);
- compile fails at once, naming --chat-template, on a model whose template does not parse;
- compile --chat-template FILE stores FILE's template in the bundle, and chat-template BUNDLE
  renders it with the bundle's bos/eos tokens.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ingotc = sys.argv[1]
models = os.environ.get("INGOT_MODELS", sys.argv[2])


def run(*args, ok=True):
    r = subprocess.run([ingotc, *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"FAIL: ingotc {' '.join(args)}: exit {r.returncode}: {r.stderr}")
    if not ok and r.returncode == 0:
        sys.exit(f"FAIL: ingotc {' '.join(args)} succeeded")
    return r


def need(path):
    if os.path.exists(path):
        return True
    if os.environ.get("CI") == "true":
        sys.exit(f"FAIL: {path} missing under CI")
    print(f"SKIP: {path} not found")
    return False


messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
with tempfile.TemporaryDirectory() as tmp:
    mfile = os.path.join(tmp, "messages.json")
    with open(mfile, "w") as f:
        json.dump(messages, f)
    r = run("chat-template", "--help")
    assert "--messages" in r.stdout, r.stdout
    run("chat-template", "--messages", mfile, ok=False)  # no model

    qwen = os.path.join(models, "tokenizers", "qwen3")
    if need(qwen):
        out = run("chat-template", qwen, "--messages", mfile, "--add-generation-prompt").stdout
        try:
            import jinja2
            from jinja2.sandbox import ImmutableSandboxedEnvironment
            cfg = json.load(open(os.path.join(qwen, "tokenizer_config.json")))
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            want = env.from_string(cfg["chat_template"]).render(messages=messages, tools=None, documents=None,
                                                                 add_generation_prompt=True, eos_token=cfg["eos_token"])
            if out != want:
                sys.exit(f"FAIL: chat-template qwen3: {out!r} != {want!r}")
        except ImportError:
            pass
        assert out.endswith("<|im_start|>assistant\n"), out

    hf = os.path.join(models, "stories260K-hf")
    if need(hf):
        bad = os.path.join(tmp, "bad-model")
        shutil.copytree(hf, bad)
        cfg_path = os.path.join(bad, "tokenizer_config.json")
        cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
        cfg["chat_template"] = "{% for m in messages %}{{ m.content | frobnicate }}{% endfor %}"
        json.dump(cfg, open(cfg_path, "w"))
        r = run("compile", bad, "-o", os.path.join(tmp, "bad.ingot"), ok=False)
        if "unknown filter 'frobnicate'" not in r.stderr or "--chat-template" not in r.stderr:
            sys.exit(f"FAIL: compile error does not explain the template problem: {r.stderr}")
        good = os.path.join(tmp, "good.jinja")
        with open(good, "w") as f:
            f.write("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}\n{% endfor %}"
                    "{% if add_generation_prompt %}[assistant] {% endif %}")
        bundle = os.path.join(tmp, "good.ingot")
        run("compile", bad, "--chat-template", good, "--target", "native", "-o", bundle)
        out = run("chat-template", bundle, "--messages", mfile, "--add-generation-prompt").stdout
        want = "<s>[system] Be brief.</s>\n[user] Hi</s>\n[assistant] Hello.</s>\n[user] Bye</s>\n[assistant] "
        if out != want:
            sys.exit(f"FAIL: chat-template on the bundle: {out!r} != {want!r}")
print("chat-template CLI: ok")
