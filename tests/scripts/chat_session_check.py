#!/usr/bin/env python3
"""A three-turn `ingot chat` in a pseudo-terminal (issue 17's acceptance).

  chat_session_check.py INGOTC INGOT MODELS_DIR

Compiles stories260K-q8_0 (8-bit activations: every kernel rounds alike however the tokens are
split into calls), holds a conversation of three user turns with a ChatML-style template, and
checks:
  - each turn reuses the whole previous conversation from the KV cache (the "[turn k: R of P
    prompt tokens reused ...]" line: R covers the previous turn's prompt and reply);
  - every greedy reply equals `ingot run --temp 0` on the rendered history (the same template,
    rendered here in Python), i.e. what one pass over the concatenated conversation gives;
  - Ctrl-C stops a reply and the chat goes on; /save writes the session and its messages; end
    of input exits with status 0.
"""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
N = 24


def render(messages, add_generation_prompt):
    text = "".join("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]) for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


class Pty:
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        self.out = b""

    def read_until(self, pattern, timeout=60):
        rx = re.compile(pattern)
        end = time.time() + timeout
        while time.time() < end:
            m = rx.search(self.out.decode("utf-8", "replace"))
            if m:
                return m
            r, _, _ = select.select([self.fd], [], [], 0.5)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.out += data
        raise RuntimeError("timed out waiting for %r; output so far:\n%s" % (pattern, self.out.decode("utf-8", "replace")))

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self):
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def main():
    ingotc, ingot, models = sys.argv[1], sys.argv[2], os.environ.get("INGOT_MODELS", sys.argv[3])
    model = os.path.join(models, "stories260K-q8_0.gguf")
    if not os.path.exists(model):
        if os.environ.get("CI") == "true":
            sys.exit("FAIL: %s missing under CI" % model)
        print("SKIP: %s not found" % model)
        return 0
    failures = []
    with tempfile.TemporaryDirectory(prefix="chat_check_") as tmp:
        bundle = os.path.join(tmp, "s.ingot")
        tpl = os.path.join(tmp, "chatml.jinja")
        with open(tpl, "w") as f:
            f.write(TEMPLATE)
        subprocess.run([ingotc, "compile", model, "-o", bundle, "--target", "native"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        system = "You are a storyteller."
        chat = Pty([ingot, "chat", bundle, "--chat-template", tpl, "--temp", "0", "-n", str(N), "--system", system,
                    "--threads", "2"])
        turns = ["Tell me about a cat.", "What did the cat eat?", "And then?"]
        stats = []
        for k, text in enumerate(turns, 1):
            chat.read_until(r"\n> $" if k == 1 else r"\[turn %d:[^\]]*\]\s*\r?\n> $" % (k - 1))
            chat.send(text + "\n")
            m = chat.read_until(r"\[turn %d: (\d+) of (\d+) prompt tokens reused, (\d+) processed; reply (\d+) tokens" % k)
            stats.append(tuple(int(x) for x in m.groups()))
        chat.read_until(r"\[turn 3:[^\]]*\]\s*\r?\n> $")
        chat.send("/save %s\n" % os.path.join(tmp, "conv"))
        chat.read_until(r"saved the session")
        os.write(chat.fd, b"\x04")  # end of input
        code = chat.wait()
        if code != 0:
            failures.append("ingot chat exited with %d at end of input" % code)

        # Ctrl-C during a long reply stops that reply and the chat goes on. A random-weight model
        # of stories110M's shape almost never emits its end token and takes seconds for 1500.
        big = os.path.join(tmp, "big.gguf")
        subprocess.run([ingotc, "synth", "--shape", "s110m", "--type", "q8_0", "-o", big], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        big_bundle = os.path.join(tmp, "big.ingot")
        subprocess.run([ingotc, "compile", big, "-o", big_bundle, "--target", "native", "--max-context", "2048"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        chat = Pty([ingot, "chat", big_bundle, "--chat-template", tpl, "--temp", "0", "-n", "1500"])
        chat.read_until(r"\n> $")
        chat.send("Tell me a very long story.\n")
        time.sleep(1.0)
        chat.send("\x03")  # Ctrl-C from the terminal: SIGINT to the foreground process
        m = chat.read_until(r"\[turn 1: [^\]]*reply (\d+) tokens[^\]]*; ([a-z ]+)\]", timeout=120)
        if m.group(2) != "interrupted" or int(m.group(1)) >= 1500:
            failures.append("Ctrl-C did not stop the reply: %s tokens, %s" % (m.group(1), m.group(2)))
        chat.read_until(r"\n> $")
        chat.send("Go on.\n")  # the chat goes on: a second reply, interrupted the same way
        time.sleep(1.0)
        chat.send("\x03")
        m = chat.read_until(r"\[turn 2: [^\]]*; ([a-z ]+)\]\s*\r?\n> $", timeout=120)
        if m.group(1) != "interrupted":
            failures.append("the second reply was not interrupted: %s" % m.group(1))
        os.write(chat.fd, b"\x04")
        code = chat.wait()
        if code != 0:
            failures.append("ingot chat exited with %d at end of input after Ctrl-C" % code)

        with open(os.path.join(tmp, "conv.messages.json")) as f:
            messages = json.load(f)
        roles = [m["role"] for m in messages]
        if roles != ["system", "user", "assistant", "user", "assistant", "user", "assistant"]:
            failures.append("saved messages have roles %s" % roles)
        # KV reuse: turn k reuses at least the whole prompt of turn k-1 (and most of its reply).
        for k in range(1, len(stats)):
            reused, prompt, processed, reply = stats[k]
            prev_prompt = stats[k - 1][1]
            if reused < prev_prompt:
                failures.append("turn %d reused %d tokens, fewer than the %d of the previous prompt" % (k + 1, reused, prev_prompt))
            if processed > prompt - prev_prompt:
                failures.append("turn %d processed %d tokens, more than its new %d" % (k + 1, processed, prompt - prev_prompt))
        # Every reply equals one ingot run over the rendered history before it.
        for k in range(3):
            history = messages[:2 + 2 * k]
            prompt_text = render(history, True)
            p = subprocess.run([ingot, "run", bundle, "-p", prompt_text, "--temp", "0", "-n", str(N), "--json"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                failures.append("ingot run failed: %s" % p.stderr[-400:])
                continue
            want = json.loads(p.stdout)["text"].lstrip(" \n")
            got = messages[2 + 2 * k]["content"]
            # The chat ends a reply at the end-of-turn token; run at EOS: the same here (</s>).
            if got != want:
                failures.append("reply %d: chat %r != run %r" % (k + 1, got, want))
        print("turn stats (reused, prompt, processed, reply):", stats)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
