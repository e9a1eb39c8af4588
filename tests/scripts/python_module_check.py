#!/usr/bin/env python3
"""The Python module, imported from an installed prefix (package_check.py install made it):

  PYTHONPATH=PREFIX/lib/python3.X/dist-packages python3 python_module_check.py PREFIX

Run by Debian's python3. On the stories260K bundle beside the prefix: greedy generate() equals
`ingot run --temp 0 --json` (ids and text), streaming gives the same text, logits() is a float32
array of vocab_size whose argmax after prefill is the first greedy id, save/restore, stop strings,
a second session, and errors raise ingot.Error with the runtime's message.
"""
import json
import os
import subprocess
import sys
import tempfile

prefix = os.path.abspath(sys.argv[1])
bundle = os.path.join(os.path.dirname(prefix), "stories260K.ingot")

import ingot  # noqa: E402
import numpy as np  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


check(os.path.dirname(os.path.abspath(ingot.__file__)) == os.path.abspath(os.environ["PYTHONPATH"]),
      f"the module comes from the prefix ({ingot.__file__})")
check(isinstance(ingot.__version__, str) and ingot.__version__.count(".") == 2, f"__version__ {ingot.__version__}")

# A bad path raises ingot.Error (a RuntimeError) naming the file.
missing = "/nonexistent/dir/model.ingot"
try:
    ingot.Model(missing)
    check(False, "a missing bundle raises")
except ingot.Error as e:
    check(missing in str(e) and isinstance(e, RuntimeError), f"a missing bundle raises ingot.Error naming it: {e}")

if not os.path.exists(bundle):
    if os.environ.get("CI") == "true":
        sys.exit(f"FAIL: {bundle} missing under CI")
    print(f"SKIP: {bundle} not found (no stories260K model)")
    sys.exit(1 if failures else 0)

prompt, n = "Once upon a time", 40
run = json.loads(subprocess.run([os.path.join(prefix, "bin/ingot"), "run", bundle, "-p", prompt, "-n", str(n),
                                 "--temp", "0", "--json", "--threads", "1"],
                                check=True, capture_output=True, text=True).stdout)

m = ingot.Model(bundle, threads=1)
check(m.vocab_size == 512 and m.context_length > 0 and m.eos is not None, f"{m!r}, eos {m.eos}")
check(m.stop_reason is None and m.last_generation == {}, "no generation yet")

# tokenize / detokenize
ids = m.tokenize(prompt)
check(ids == run["prompt_ids"], f"tokenize {ids} == ingot run's prompt_ids")
check(m.tokenize(prompt, add_special=False) == ids[1:], "add_special=False leaves BOS out")
check(m.detokenize(ids) == prompt, "detokenize(tokenize(text)) == text")

# Greedy generation equals ingot run's.
text = m.generate(prompt, max_tokens=n, temperature=0)
last = m.last_generation
check(isinstance(text, str) and text == run["text"], f"generate text {text[:50]!r}... == ingot run's")
check(last["ids"] == run["ids"], f"generated ids == ingot run's ({len(last['ids'])} ids)")
check(m.stop_reason == run["stop_reason"] == "length", f"stop reason {m.stop_reason}")
check(last["prompt_tokens"] == len(ids) and last["generated_tokens"] == n, f"counts {last['prompt_tokens']} {last['generated_tokens']}")
# Every token stays in the context: a continuation follows the last one.
check(m.position == len(ids) + n, f"position {m.position} after the generation")

# Streaming: the same text in pieces; a loop that breaks stops it and frees the session.
m.reset()
pieces = list(m.generate(prompt, max_tokens=n, temperature=0, stream=True))
check(len(pieces) > 1 and "".join(pieces) == run["text"], f"streamed {len(pieces)} pieces, the same text")
check(m.last_generation["ids"] == run["ids"], "streamed ids == ingot run's")
m.reset()
for i, piece in enumerate(m.stream(prompt, max_tokens=n, temperature=0)):
    if i == 2:
        break
m.reset()  # raises if the broken-off stream still held the session
check(m.position == 0, "a stream broken off releases the session")
m.reset()
s = m.stream(prompt, max_tokens=n, temperature=0)
next(s)
try:
    m.decode(1)
    check(False, "the session is refused while a stream of it is open")
except ingot.Error as e:
    check("in use" in str(e), f"the session is refused while a stream of it is open: {e}")
s.close()
check(m.stop_reason == "cancelled", f"a closed stream's stop reason: {m.stop_reason}")

# Stop strings end the text before them, streamed or not.
stop_word = run["text"].split()[4]
m.reset()
stopped = m.generate(prompt, max_tokens=n, temperature=0, stop=[stop_word])
check(stopped == run["text"][:run["text"].index(stop_word)] and m.stop_reason == "stop",
      f"stop={stop_word!r}: {stopped!r}, {m.stop_reason}")
m.reset()
check("".join(m.stream(prompt, max_tokens=n, temperature=0, stop=[stop_word])) == stopped, "streamed with a stop string")

# Logits after a prefill: float32, one per vocabulary entry, argmax = the first greedy id.
m.reset()
m.prefill(ids)
logits = m.logits()
check(isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (m.vocab_size,),
      f"logits {type(logits).__name__} {logits.dtype} {logits.shape}")
check(int(np.argmax(logits)) == run["ids"][0], f"argmax after prefill {int(np.argmax(logits))} == first greedy id {run['ids'][0]}")
m.decode(run["ids"][0])
check(int(np.argmax(m.logits())) == run["ids"][1], "argmax after decode == second greedy id")

# save / restore
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "session.bin")
    m.save(path)
    before = m.logits()
    m.decode(run["ids"][1])
    m.restore(path)
    check(m.position == len(ids) + 1 and np.array_equal(m.logits(), before), "restore brings back position and logits")
    try:
        m.restore(os.path.join(tmp, "missing.bin"))
        check(False, "restoring a missing file raises")
    except ingot.Error as e:
        check("missing.bin" in str(e), f"restoring a missing file raises naming it: {e}")

# Seeded sampling repeats; another session over the same weights is independent.
m.reset()
a = m.generate(prompt, max_tokens=20, temperature=0.8, seed=7)
check(m.last_generation["seed"] == 7, "the seed is reported")
s2 = m.session(threads=2)
b = s2.generate(prompt, max_tokens=20, temperature=0.8, seed=7)
check(a == b and s2.position == m.position, "a second session (2 threads) with the same seed: the same text")
check(s2.generate(prompt, max_tokens=n, temperature=0) != "" and m.position == len(ids) + 20, "sessions keep their own context")

# Errors carry the runtime's message.
try:
    m.decode(m.vocab_size + 5)
    check(False, "a token outside the vocabulary raises")
except ingot.Error as e:
    check(str(m.vocab_size + 5) in str(e), f"a token outside the vocabulary raises: {e}")
try:
    m.generate(prompt, max_tokens=-2)
    check(False, "max_tokens=-2 raises")
except ValueError:
    check(True, "max_tokens=-2 raises ValueError")

# Chat: the template renders the conversation, a second turn reuses the first from the session
# (its prompt is longer; the context grows by the new tokens only), streaming works, and a bundle
# without a template says so.
chatml = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
c = m.session(threads=1)
conv = [{"role": "user", "content": "Tell me about a cat."}]
r1 = c.chat(conv, template=chatml, max_tokens=12, temperature=0)
first = c.last_generation
check(r1 != "" and first["prompt_tokens"] > 10, f"chat replies: {r1!r}")
conv += [{"role": "assistant", "content": r1.strip()}, {"role": "user", "content": "And then?"}]
held = c.position
r2 = "".join(c.chat(conv, template=chatml, max_tokens=12, temperature=0, stream=True))
second = c.last_generation
check(second["prompt_tokens"] > held and c.position - held < second["prompt_tokens"] - first["prompt_tokens"] + 14,
      "a second chat turn processes only the new tokens")
check(r2 == second["text"] and r2 != "", "a streamed chat turn gives its text")
try:
    c.chat(conv, max_tokens=2)
    check(False, "chat without a template raises")
except ingot.Error as e:
    check("no chat template" in str(e), f"chat without a template raises: {e}")

print("python module:", "FAILED " + str(len(failures)) if failures else "ok")
sys.exit(1 if failures else 0)
