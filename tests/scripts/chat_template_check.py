#!/usr/bin/env python3
"""Chat templates rendered by Python's jinja2 as Hugging Face renders them, against Ingot's engine.

Usage: chat_template_check.py CHECKER TEMPLATE_DIR [MODELS_DIR] [CONSTRUCTS]

Templates: TEMPLATE_DIR/*.jinja (tests/data/chat_templates, see its README) and the
chat_template of MODELS_DIR/tokenizers/*/tokenizer_config.json (INGOT_MODELS overrides MODELS_DIR;
missing models skip, and fail under CI=true). Each is rendered over several conversations (system +
user, multi-turn, tool calls, add_generation_prompt true and false) with the environment of
transformers' _compile_jinja_template: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]), tojson with ensure_ascii=False, raise_exception and
strftime_now (a fixed date here). CONSTRUCTS (tests/data/jinja_constructs.txt) holds small
templates separated by lines "====", each rendered once with CONSTRUCTS_CONTEXT: Jinja's corners
(whitespace control, scoping, Python printing of values, filters, tests, errors). CHECKER (chat_template_check) renders the same cases with Ingot's
engine and compares byte for byte; where jinja2 raises, Ingot must fail too.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

try:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    # Debian's python3-jinja2 (scripts/install-deps.sh) lives in the system interpreter's path,
    # which another python3 first on PATH (pyenv) does not search: run under that one instead.
    import os
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("FAIL: python3-jinja2 is missing (scripts/install-deps.sh installs it)")

DATE = "2024-07-26"


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.strptime(DATE, "%Y-%m-%d").strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city — in °C",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"},
                           "days": {"type": "integer", "minimum": 1, "default": 1}},
            "required": ["city"],
        },
    },
}

CONVERSATIONS = {
    "user": {"messages": [{"role": "user", "content": "Hello! How are you?"}]},
    "system_user": {"messages": [
        {"role": "system", "content": "You are a helpful assistant.\nAnswer briefly."},
        {"role": "user", "content": "  What is 2+2?  "}]},
    "multi_turn": {"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another, in “quotes” and ünïcödé?"},
        {"role": "assistant", "content": "\"Green\"."},
        {"role": "user", "content": "Thanks.\n\nBye."}]},
    "no_system_multi": {"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Tell me a joke."}]},
    "thinking": {"messages": [
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n5"},
        {"role": "user", "content": "times 4?"}]},
    "tools": {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call12345", "type": "function",
                 "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
             "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
            {"role": "assistant", "content": "It is 21.5 °C and clear."},
            {"role": "user", "content": "And tomorrow?"}]},
    "tool_call_null_content": {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "abcdefghi", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "abcdefghi", "content": "-3"}]},
    "multimodal": {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Look closely."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is this? "}]}]},
    "alternation_error": {"messages": [
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"}]},
}


CONSTRUCTS_CONTEXT = {
    "messages": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi\nthere"},
                 {"role": "assistant", "content": "yo", "tool_calls": [
                     {"function": {"name": "f", "arguments": {"a": 1, "b": [1.5, None]}}}]}],
    "tools": [{"name": "t", "x": 1e-7, "y": 3.0, "z": "é\u2028\x01"}],
    "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>"}


def templates(template_dir, models_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(template_dir, "*.jinja"))):
        with open(path, encoding="utf-8") as f:
            out.append((os.path.basename(path)[: -len(".jinja")], f.read(), {"bos_token": "<s>", "eos_token": "</s>"}))
    configs = sorted(glob.glob(os.path.join(models_dir, "tokenizers", "*", "tokenizer_config.json")))
    if not configs:
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: no {models_dir}/tokenizers/*/tokenizer_config.json under CI")
        print(f"SKIP: no tokenizer_config.json under {models_dir}/tokenizers")
    for path in configs:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        name = os.path.basename(os.path.dirname(path))
        tokens = {}
        for key in ("bos_token", "eos_token"):
            v = cfg.get(key)
            if isinstance(v, dict):
                v = v.get("content")
            if v:
                tokens[key] = v
        t = cfg.get("chat_template")
        if isinstance(t, str):
            out.append((name, t, tokens))
        elif isinstance(t, list):
            for entry in t:
                out.append((f"{name}:{entry['name']}", entry["template"], tokens))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    checker, template_dir = sys.argv[1], sys.argv[2]
    models_dir = os.environ.get("INGOT_MODELS", sys.argv[3] if len(sys.argv) > 3 else "../shared/models")
    env = environment()
    cases = []
    for name, source, tokens in templates(template_dir, models_dir):
        tmpl = env.from_string(source)
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (False, True):
                inputs = dict(conv)
                inputs["add_generation_prompt"] = agp
                inputs.update(tokens)
                variables = {"tools": None, "documents": None, **inputs}
                case = {"name": f"{name}/{conv_name}/agp={int(agp)}", "template": source, "inputs": inputs,
                        "date": DATE}
                try:
                    case["expected"] = tmpl.render(**variables)
                except Exception as e:  # jinja2's TemplateError, TypeError, ...: Ingot must fail too
                    case["error"] = f"{type(e).__name__}: {e}"
                    if type(e) is jinja2.exceptions.TemplateError:  # raise_exception(msg): the same msg
                        case["raise"] = str(e)
                cases.append(case)
    if len(sys.argv) > 4:
        with open(sys.argv[4], encoding="utf-8") as f:
            snippets = f.read().split("\n====\n")
        for i, source in enumerate(snippets):
            case = {"name": f"constructs#{i} {source[:50]!r}", "template": source, "inputs": CONSTRUCTS_CONTEXT,
                    "date": DATE}
            try:
                case["expected"] = env.from_string(source).render(documents=None, **CONSTRUCTS_CONTEXT)
            except Exception as e:
                case["error"] = f"{type(e).__name__}: {e}"
            cases.append(case)
    rendered = sum(1 for c in cases if "expected" in c)
    raised = sum(1 for c in cases if "raise" in c)
    print(f"{len(cases)} cases, jinja2 renders {rendered}, raise_exception stops {raised}")
    if rendered < len(cases) // 2:
        sys.exit("FAIL: jinja2 rendered fewer than half of the cases; the conversations are wrong")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cases.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cases, f, ensure_ascii=False)
        r = subprocess.run([checker, path])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
