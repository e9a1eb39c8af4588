#!/usr/bin/env python3
"""Records what llama-quantize writes for the weight types and mixtures `ingotc --quant` offers.

  tests/scripts/record_quant_recipes.py [--llama-cpp DIR] [--models DIR] [--ingotc PATH]

For each model below (random-weight GGUFs made by `ingotc synth`, deterministic by seed, and the
shared stories260K.gguf) and each recipe, runs llama-quantize and writes, per 2-D tensor, the type
it chose and the sha256 of its bytes into tests/data/quant_recipes_reference.json. The
QuantRecipes.* tests (tests/passes/quant_recipes_test.cpp) synthesize the same models, run
Ingot's quantize-weights pass with the same recipe and compare type and bytes: Ingot's quantizers
and its q4_k_m / q5_k_m rules are then llama-quantize's, bit for bit. llama.cpp is not needed to
run the tests.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import gguf_tensors  # noqa: E402

# name -> ingotc synth arguments (None: the shared stories260K.gguf)
MODELS = {
    "dense8": ["--dims", "vocab=512,dim=256,layers=8,heads=4,kv=2,ffn=768,ctx=64", "--seed", "11"],
    "tied3": ["--arch", "llama3", "--dims", "vocab=512,dim=256,layers=3,heads=4,kv=2,ffn=512,ctx=64", "--seed", "12"],
    "phi3": ["--arch", "phi3", "--dims", "vocab=512,dim=256,layers=2,heads=4,kv=4,ffn=512,ctx=64", "--seed", "13"],
    "stories260K": None,
}
# Ingot's --quant value -> llama-quantize's type and flags. The plain types are --pure (every
# tensor that type), as Ingot's plain modes are for these types.
RECIPES = {
    "q4_k_m": ("Q4_K_M", []),
    "q5_k_m": ("Q5_K_M", []),
    "q6_k": ("Q6_K", ["--pure"]),
    "q5_k": ("Q5_K_S", ["--pure"]),
    "q5_0": ("Q5_0", ["--pure"]),
    "q5_1": ("Q5_1", ["--pure"]),
}
# Which recipes run on which model (stories260K's 172-column ffn_down has no q5_0/q5_1 form).
PLAN = {"dense8": list(RECIPES), "tied3": ["q4_k_m", "q5_k_m"], "phi3": ["q4_k_m", "q5_k_m"],
        "stories260K": ["q4_k_m", "q5_k_m"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", default=os.path.expanduser("~/.cache/llama.cpp-34af94cd"))
    ap.add_argument("--models", default=os.environ.get("INGOT_MODELS", os.path.join(REPO, "..", "shared", "models")))
    ap.add_argument("--ingotc", default=os.path.join(REPO, "build", "tools", "ingotc"))
    args = ap.parse_args()
    quantize = os.path.join(args.llama_cpp, "build", "bin", "llama-quantize")
    doc = {"about": "per tensor: the type llama-quantize (llama.cpp 34af94cd) chose and the sha256 of its bytes; "
                    "made by tests/scripts/record_quant_recipes.py",
           "models": {}, "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for model, synth in MODELS.items():
            if synth is None:
                src = os.path.join(args.models, "stories260K.gguf")
            else:
                src = os.path.join(tmp, model + ".gguf")
                subprocess.run([args.ingotc, "synth"] + synth + ["-o", src], check=True, stdout=subprocess.DEVNULL)
            doc["models"][model] = {"synth": synth}
            for recipe in PLAN[model]:
                ftype, flags = RECIPES[recipe]
                out = os.path.join(tmp, "%s-%s.gguf" % (model, recipe))
                subprocess.run([quantize] + flags + [src, out, ftype], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                _, tensors = gguf_tensors.read(out)
                rows = {}
                for name, (t, dims, data) in sorted(tensors.items()):
                    if len(dims) == 2:
                        rows[name] = [gguf_tensors.TYPES[t][0], hashlib.sha256(data).hexdigest()]
                doc["recipes"]["%s/%s" % (model, recipe)] = rows
                print(model, recipe, len(rows), "tensors")
    path = os.path.join(REPO, "tests", "data", "quant_recipes_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
