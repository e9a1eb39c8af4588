// Soak test of `ingot serve` (issue 18): REQUESTS requests (default 200; SOAK_REQUESTS=1000 for
// the full run) from 16 concurrent clients against --parallel 4 on loopback, about one in five
// cancelled at a random moment (before the response, or mid-stream). Checks: the server never
// dies, every completed response is well-formed (JSON fields, finish reasons, usage counts;
// streams: only `data: {...}` events and comments, ending with `data: [DONE]`), and its resident
// memory stays steady: after the first tenth of the requests, VmRSS (sampled every 25 ms from
// /proc/PID/status) grows by at most SOAK_RSS_MB (default 16) MB (0: not checked, for the
// sanitizer build, where LeakSanitizer checks the server at its exit).
//
//   node soak_test.mjs INGOTC INGOT MODELS_DIR WORK_DIR
import fs from "node:fs";
import { check, compileBundle, metrics, modelsDir, openaiClient, startServer, stopServer } from "./common.mjs";

const [ingotc, ingot, modelsArg, work] = process.argv.slice(2);
const models = modelsDir(modelsArg);
fs.mkdirSync(work, { recursive: true });
const OpenAI = openaiClient(work);
const bundle = compileBundle(ingotc, models, work);
const TOTAL = Number(process.env.SOAK_REQUESTS || 200);
const CLIENTS = 16;
const RSS_BOUND_MB = Number(process.env.SOAK_RSS_MB || 16);

const server = await startServer(ingot, bundle, ["--parallel", "4", "--threads", "1", "--queue", "64"]);
const url = server.url;
const client = new OpenAI({ baseURL: url + "/v1", apiKey: "none", maxRetries: 0, timeout: 120000 });
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.proc.pid}/status`, "utf8"))[1]);

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const words = ["Once upon a time", "The little dog", "Tom and Sue", "A big red ball", "One day", "The sun was hot", "Lily had a toy", "In the park"];
const stats = { done: 0, cancelled: 0, streamed: 0, plain: 0, errors: [], tokens: 0 };
let rssWarm = 0, rssMax = 0, issued = 0;
const samples = [];
const quartiles = [];  // VmRSS when a quarter, half, three quarters of the requests had ended
const sampler = setInterval(() => {
  try {
    const r = rssKb();
    samples.push(r);
    const ended = stats.done + stats.cancelled;
    while (quartiles.length < 3 && ended >= (TOTAL * (quartiles.length + 1)) / 4) quartiles.push(r);
    if (stats.done + stats.cancelled >= TOTAL / 10) {
      if (!rssWarm) rssWarm = r;
      rssMax = Math.max(rssMax, r);
    }
  } catch (e) {
    stats.errors.push("server process gone: " + e);
  }
}, 25);

function checkFinish(f, what) {
  check(f === "stop" || f === "length", `${what}: finish_reason ${f}`);
}

// A stream read with fetch: every event checked by hand.
async function rawStream(body, signal) {
  const res = await fetch(url + (body.messages ? "/v1/chat/completions" : "/v1/completions"), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
  check(res.status === 200, "stream status " + res.status);
  check(res.headers.get("content-type").startsWith("text/event-stream"), "content type");
  const text = await res.text();
  const events = text.split("\n\n").filter((e) => e.length);
  check(events[events.length - 1] === "data: [DONE]", "ends with [DONE]: " + text.slice(-200));
  let finish = null, usage = null;
  for (const e of events.slice(0, -1)) {
    if (e.startsWith(":")) continue;
    check(e.startsWith("data: "), "event format: " + e);
    const j = JSON.parse(e.slice(6));
    check(typeof j.id === "string" && typeof j.created === "number", "chunk id/created");
    if (j.usage) usage = j.usage;
    if (j.choices.length && j.choices[0].finish_reason) finish = j.choices[0].finish_reason;
  }
  checkFinish(finish, "raw stream");
  check(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= body.max_tokens, "usage " + JSON.stringify(usage));
  stats.tokens += usage.completion_tokens;
}

async function one(i) {
  const chat = rand() < 0.5, stream = rand() < 0.6, cancel = rand() < 0.2, raw = stream && rand() < 0.5;
  const max_tokens = 1 + Math.floor(rand() * 200);
  const temperature = rand() < 0.5 ? 0 : 0.8;
  const prompt = words[Math.floor(rand() * words.length)] + (rand() < 0.3 ? " " + words[Math.floor(rand() * words.length)] : "");
  const body = { model: "m", max_tokens, temperature, seed: i, ...(chat ? { messages: [{ role: "user", content: prompt }] } : { prompt }) };
  const controller = new AbortController();
  if (cancel) setTimeout(() => controller.abort(), Math.floor(rand() * 30));
  try {
    if (raw) {
      await rawStream({ ...body, stream: true, stream_options: { include_usage: true } }, controller.signal);
    } else if (stream) {
      const s = chat ? await client.chat.completions.create({ ...body, stream: true }, { signal: controller.signal })
        : await client.completions.create({ ...body, stream: true }, { signal: controller.signal });
      let finish = null;
      for await (const c of s) {
        check(c.choices.length === 1, "one choice per chunk");
        if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
      }
      checkFinish(finish, "stream");
    } else {
      const r = chat ? await client.chat.completions.create(body, { signal: controller.signal })
        : await client.completions.create(body, { signal: controller.signal });
      checkFinish(r.choices[0].finish_reason, "response");
      check(typeof (chat ? r.choices[0].message.content : r.choices[0].text) === "string", "text");
      check(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= max_tokens, "usage " + JSON.stringify(r.usage));
      check(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, "usage sum");
      stats.tokens += r.usage.completion_tokens;
    }
    stream ? stats.streamed++ : stats.plain++;
    stats.done++;
  } catch (err) {
    if (controller.signal.aborted) stats.cancelled++;
    else stats.errors.push(`request ${i}: ${err.stack || err}`);
  }
}

const t0 = Date.now();
await Promise.all(Array.from({ length: CLIENTS }, async () => {
  while (issued < TOTAL && stats.errors.length === 0) await one(issued++);
}));
clearInterval(sampler);
const secs = (Date.now() - t0) / 1000;
const alive = server.proc.exitCode === null;
const m = alive ? await metrics(url) : {};
const { code } = await stopServer(server);
const growth = (rssMax - rssWarm) / 1024;
console.log(`${TOTAL} requests from ${CLIENTS} clients in ${secs.toFixed(1)} s: ${stats.done} completed (${stats.streamed} streamed, ` +
  `${stats.plain} plain), ${stats.cancelled} cancelled by the client, ${stats.tokens} tokens in checked responses; ` +
  `server: ${m['ingot_requests_finished_total{reason="cancelled"}']} cancelled, ${m["ingot_generated_tokens_total"]} tokens generated; ` +
  `VmRSS ${(samples[0] / 1024).toFixed(1)} MiB at start, ${(rssWarm / 1024).toFixed(1)} MiB after ${TOTAL / 10} requests, ` +
  `max ${(rssMax / 1024).toFixed(1)} MiB after (growth ${growth.toFixed(1)} MiB, bound ${RSS_BOUND_MB} MiB; ${samples.length} samples); ` +
  `at 1/4, 1/2, 3/4 and the end: ${[...quartiles, samples[samples.length - 1]].map((k) => (k / 1024).toFixed(1)).join(", ")} MiB`);
try {
  check(stats.errors.length === 0, "errors:\n" + stats.errors.slice(0, 5).join("\n"));
  check(alive, "the server died: " + server.proc.stderrText());
  check(stats.done + stats.cancelled === TOTAL, "every request completed or cancelled");
  check(stats.cancelled > 0 && stats.done > TOTAL / 2, "a mix of completed and cancelled requests");
  check(m["ingot_active_slots"] === 0 && m["ingot_queue_length"] === 0, "no slot or queue entry left");
  // SOAK_RSS_MB=0 (the sanitizer build: ASan's allocator keeps freed memory) leaves RSS to
  // LeakSanitizer, which makes the server's exit status non-zero on a leak.
  if (RSS_BOUND_MB > 0) check(growth <= RSS_BOUND_MB, `VmRSS grew by ${growth.toFixed(1)} MiB after warm-up (bound ${RSS_BOUND_MB})`);
  else console.log("VmRSS not bounded (SOAK_RSS_MB=0)");
  check(code === 0, "exit status after SIGTERM: " + code);
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
console.log("soak test passed");
