// Shared by serve_test.mjs and soak_test.mjs: locating the models, installing the OpenAI client
// (npm ci into the work directory), compiling the bundle, starting and stopping `ingot serve`.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
const CI = process.env.CI === "true";

// A missing tool or model: a failure under CI=true, else a skip (ctest's SKIP_RETURN_CODE 77).
export function skipOrFail(msg) {
  console.log((CI ? "FAIL (CI=true): " : "SKIP: ") + msg);
  process.exit(CI ? 1 : 77);
}

export function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
}

export function eq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`check failed: ${msg}\n  got:      ${JSON.stringify(a)}\n  expected: ${JSON.stringify(b)}`);
}

// `npm ci` of tests/serve/package-lock.json into WORK/node, once per lock file; returns the
// official OpenAI client class.
export function openaiClient(work) {
  const dir = process.env.SERVE_NODE_DIR || path.resolve(work, "node");
  fs.mkdirSync(dir, { recursive: true });
  const lock = fs.readFileSync(path.join(here, "package-lock.json"), "utf8");
  const stamp = path.join(dir, "installed-lock.json");
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, "utf8") !== lock) {
    fs.copyFileSync(path.join(here, "package.json"), path.join(dir, "package.json"));
    fs.writeFileSync(path.join(dir, "package-lock.json"), lock);
    const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
    if (r.error) skipOrFail("npm is not available: " + r.error.message);
    if (r.status !== 0) skipOrFail("npm ci failed (no network to the npm registry?)");
    fs.writeFileSync(stamp, lock);
  }
  const require = createRequire(path.join(dir, "package.json"));
  const mod = require("openai");
  return mod.default ?? mod.OpenAI ?? mod;
}

export function modelsDir(arg) {
  const dir = process.env.INGOT_MODELS || arg;
  const gguf = path.join(dir, "stories260K-q8_0.gguf");
  if (!fs.existsSync(gguf)) skipOrFail(`${gguf} not found (set INGOT_MODELS)`);
  return dir;
}

// stories260K-q8_0 compiled for this host (8-bit activations: batch-exact).
export function compileBundle(ingotc, models, work) {
  const out = path.join(work, "stories260K-q8_0.ingot");
  const r = spawnSync(ingotc, ["compile", path.join(models, "stories260K-q8_0.gguf"), "-o", out, "--target", "native"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("ingotc compile failed:\n" + r.stderr);
  return out;
}

// Starts `ingot serve BUNDLE --port 0 ...` and waits for the address on stderr.
export async function startServer(ingot, bundle, args) {
  const proc = spawn(ingot, ["serve", bundle, "--port", "0", ...args], { stdio: ["ignore", "inherit", "pipe"] });
  let err = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ingot serve did not print its address in 60 s:\n" + err)), 60000);
    proc.stderr.on("data", (d) => {
      err += d.toString();
      const m = err.match(/on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`ingot serve exited (${code}):\n${err}`)));
  });
  proc.stderrText = () => err;
  return { proc, url };
}

export async function stopServer(server) {
  const exited = new Promise((resolve) => server.proc.on("exit", (code, sig) => resolve({ code, sig })));
  server.proc.kill("SIGTERM");
  const t = setTimeout(() => server.proc.kill("SIGKILL"), 15000);
  const r = await exited;
  clearTimeout(t);
  return r;
}

// The /metrics text as {name{labels}: value}.
export async function metrics(url) {
  const text = await (await fetch(url + "/metrics")).text();
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
