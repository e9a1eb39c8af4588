"""Shared by the scripts that compare generations with ../shared/models/reference.json."""
import json
import os
import sys


def load_reference(models):
    """reference.json's "models" table; exits (skip, or fail under CI) when the file is missing."""
    path = os.path.join(models, "reference.json")
    if not os.path.exists(path):
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: {path} missing under CI")
        print(f"SKIP: {path} not found")
        sys.exit(0)
    return json.load(open(path))["models"]


def compare_run(label, out, run, exact):
    """One generation (`out`: prompt_ids, ids, text) against a reference run.

    Returns (ids matched before the first difference, list of failure messages); with `exact`,
    any difference in ids or text is a failure, and the prompt ids must always agree.
    """
    problems = []
    if out["prompt_ids"] != run["prompt_ids"]:
        problems.append(f"FAIL {label} {run['prompt']!r}: prompt ids {out['prompt_ids']} != {run['prompt_ids']}")
    want = run["greedy_ids"]
    same = 0
    while same < len(want) and same < len(out["ids"]) and out["ids"][same] == want[same]:
        same += 1
    if exact and same != len(want):
        problems.append(f"FAIL {label} {run['prompt']!r}: first mismatch at token {same}")
    if exact and out["text"] != run["text"]:
        problems.append(f"FAIL {label} {run['prompt']!r}: text {out['text'][:40]!r} != {run['text'][:40]!r}")
    return same, problems
