#!/usr/bin/env python3
"""`cmake --install` into a temporary prefix, and programs built against it (docs/packaging.md).

  package_check.py install BUILD PREFIX MODELS   install; check the layout; compile stories260K
                                                 with the installed ingotc into PREFIX/../stories260K.ingot
  package_check.py consumers SOURCE PREFIX       docs/examples/generate.c built with
                                                 `cc $(pkg-config --cflags --libs ingot)` and through
                                                 find_package(ingot); each generates text

Without $INGOT_MODELS/stories260K.gguf the bundle is not made and the consumers only build (SKIP
printed); under CI=true that is a failure.
"""
import glob
import os
import shutil
import subprocess
import sys


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def bundle_path(prefix):
    return os.path.join(os.path.dirname(os.path.abspath(prefix)), "stories260K.ingot")


def install(build, prefix, models):
    models = os.environ.get("INGOT_MODELS", models)
    shutil.rmtree(prefix, ignore_errors=True)
    if os.path.exists(bundle_path(prefix)):
        os.remove(bundle_path(prefix))
    run(["cmake", "--install", build, "--prefix", prefix], stdout=subprocess.DEVNULL)
    problems = []
    for rel in ["bin/ingot", "bin/ingotc", "lib/libingot.so", "lib/libingot.so.0", "include/ingot/ingot.h",
                "lib/pkgconfig/ingot.pc", "lib/cmake/ingot/ingotConfig.cmake",
                "lib/cmake/ingot/ingotConfigVersion.cmake", "lib/cmake/ingot/ingotTargets.cmake"]:
        if not os.path.exists(os.path.join(prefix, rel)):
            problems.append(f"{rel} not installed")
    if not glob.glob(os.path.join(prefix, "lib/libingot.so.0.*")):
        problems.append("lib/libingot.so.0.* not installed")
    if os.path.exists(os.path.join(build, "python")) and not glob.glob(
            os.path.join(prefix, "lib/python3.*/dist-packages/ingot.*.so")):
        problems.append("the Python module was built but not installed in lib/python3.X/dist-packages")
    # The installed runtime command links no compiler.
    ldd = subprocess.run(["ldd", os.path.join(prefix, "bin/ingot")], capture_output=True, text=True).stdout
    if any(w in ldd for w in ("LLVM", "MLIR", "clang")):
        problems.append("bin/ingot loads LLVM/MLIR")
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    model = os.path.join(models, "stories260K.gguf")
    if not os.path.exists(model):
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: {model} missing under CI")
        print(f"SKIP: {model} not found: no bundle for the consumers to run")
        return
    run([os.path.join(prefix, "bin/ingotc"), "compile", model, "-o", bundle_path(prefix), "--target", "native"],
        stdout=subprocess.DEVNULL)
    print("install: ok")


def check_generates(exe, prefix, label):
    bundle = bundle_path(prefix)
    if not os.path.exists(bundle):
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: no bundle under CI ({bundle})")
        print(f"SKIP: {label} built, not run (no bundle)")
        return []
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib"))
    r = subprocess.run([exe, bundle, "Once upon a time", "20"], capture_output=True, text=True, env=env)
    out = r.stdout.strip()
    print(f"{label}: {out!r} {r.stderr.strip()}")
    if r.returncode != 0:
        return [f"{label} exited {r.returncode}: {r.stderr.strip()}"]
    # The prompt, then 20 greedy tokens of a story.
    if not out.startswith("Once upon a time") or len(out.split()) < 10 or "20 generated" not in r.stderr:
        return [f"{label} generated no text: {out!r}"]
    return []


def consumers(source, prefix):
    example = os.path.abspath(os.path.join(source, "docs/examples/generate.c"))
    work = os.path.join(os.path.dirname(os.path.abspath(prefix)), "consumers")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    problems = []
    # pkg-config, as a Makefile or a shell would.
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib/pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "ingot"], env=env, capture_output=True).stdout.split()
    version = run(["pkg-config", "--modversion", "ingot"], env=env, capture_output=True).stdout.strip()
    print("pkg-config:", " ".join(flags), "version", version)
    cc = os.environ.get("CC", "cc")
    exe = os.path.join(work, "generate-pkg-config")
    run([cc, "-std=c99", "-Wall", "-Werror", example, "-o", exe] + flags)
    problems += check_generates(exe, prefix, "pkg-config build")
    # CMake: find_package(ingot) and ingot::ingot.
    build = os.path.join(work, "cmake-build")
    run(["cmake", "-S", os.path.join(source, "tests/package"), "-B", build, "-G", "Ninja",
         f"-DCMAKE_PREFIX_PATH={os.path.abspath(prefix)}", f"-DEXAMPLE_SOURCE={example}",
         f"-DCMAKE_C_COMPILER={cc}"], stdout=subprocess.DEVNULL)
    run(["cmake", "--build", build], stdout=subprocess.DEVNULL)
    problems += check_generates(os.path.join(build, "generate"), prefix, "find_package build")
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print("consumers: ok")


if sys.argv[1] == "install":
    install(*sys.argv[2:5])
elif sys.argv[1] == "consumers":
    consumers(*sys.argv[2:4])
else:
    sys.exit(f"unknown mode {sys.argv[1]}")
