// Integration test of `ingot serve` (issue 18): a stories260K bundle served on a free loopback
// port, driven by the official OpenAI client (npm package `openai`) and by curl.
//
//   node serve_test.mjs INGOTC INGOT MODELS_DIR WORK_DIR
//
// Checks: chat and completion, plain and streamed, each greedy text equal to `ingot run --temp 0`
// on the same prompt (for chat: the ChatML rendering of the messages); stop strings; usage
// counts; prompt caching (cached_tokens, and the output still equal to a fresh run); bad
// requests (400: bad JSON, n = 2, a bad value, an over-long prompt), 401 without the API key,
// 404, 413 over --max-body; a client that disconnects mid-stream (its slot freed: /metrics shows
// no active slot, and the next request is served); 8 concurrent streams; SIGTERM ends the server.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { check, compileBundle, eq, metrics, modelsDir, openaiClient, sleep, startServer, stopServer } from "./common.mjs";

const [ingotc, ingot, modelsArg, work] = process.argv.slice(2);
const models = modelsDir(modelsArg);
fs.mkdirSync(work, { recursive: true });
const OpenAI = openaiClient(work);
const curlOk = spawnSync("curl", ["--version"]).status === 0;
if (!curlOk) {
  console.log(process.env.CI === "true" ? "FAIL (CI=true): curl not found" : "SKIP: curl not found");
  process.exit(process.env.CI === "true" ? 1 : 77);
}
const bundle = compileBundle(ingotc, models, work);
const KEY = "test-key-123";
const MAX_BODY = 200000;

// `ingot run --temp 0` on a prompt: {ids, text, prompt_ids, stop_reason}.
function reference(prompt, n, extra = ["--temp", "0"]) {
  const r = spawnSync(ingot, ["run", bundle, ...extra, "-p", prompt, "-n", String(n), "--json", "--threads", "1"], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error("ingot run failed: " + r.stderr);
  return JSON.parse(r.stdout);
}
// The server's fallback chat template (ChatML), rendered.
function chatml(messages) {
  return messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") + "<|im_start|>assistant\n";
}
function curl(args) {
  const r = spawnSync("curl", ["-s", "-o", "-", "-w", "\n%{http_code}", ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}
function expectError(res, status, what) {
  eq(res.status, status, what + ": HTTP status");
  const j = JSON.parse(res.body);
  check(j.error && typeof j.error.message === "string" && j.error.message.length > 0, what + ": an OpenAI-shaped error body: " + res.body);
  check("type" in j.error && "param" in j.error && "code" in j.error, what + ": error has type, param, code: " + res.body);
  return j.error;
}

// Two kernel threads: SIGTERM must reach the server's signal thread, not a kernel thread.
const server = await startServer(ingot, bundle, ["--parallel", "4", "--threads", "2", "--api-key", KEY, "--max-body", String(MAX_BODY)]);
const url = server.url;
const client = new OpenAI({ baseURL: url + "/v1", apiKey: KEY, maxRetries: 0, timeout: 60000 });
const auth = ["-H", "Authorization: Bearer " + KEY, "-H", "Content-Type: application/json"];
let passed = 0;
async function test(name, fn) {
  const t0 = Date.now();
  await fn();
  passed++;
  console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
}

try {
  await test("GET /health, /v1/models", async () => {
    const h = curl([url + "/health"]);
    eq(h.status, 200, "/health without a key");
    eq(JSON.parse(h.body).status, "ok", "/health body");
    const list = await client.models.list();
    check(list.data.length === 1 && typeof list.data[0].id === "string", "one model listed");
  });

  await test("a second server on the same port is refused", async () => {
    const port = new URL(url).port;
    const r = spawnSync(ingot, ["serve", bundle, "--port", port], { encoding: "utf8", timeout: 30000 });
    eq(r.status, 1, "exit status; stderr: " + r.stderr);
    check(r.stderr.includes("cannot listen on 127.0.0.1:" + port), "message: " + r.stderr);
  });

  await test("completion equals ingot run --temp 0", async () => {
    const prompt = "Once upon a time";
    const ref = reference(prompt, 40);
    const r = await client.completions.create({ model: "m", prompt, max_tokens: 40, temperature: 0 });
    eq(r.choices[0].text, ref.text, "completion text");
    eq(r.object, "text_completion", "object");
    eq(r.usage.prompt_tokens, ref.prompt_ids.length, "usage.prompt_tokens");
    eq(r.usage.completion_tokens, ref.ids.length, "usage.completion_tokens");
    eq(r.usage.total_tokens, ref.prompt_ids.length + ref.ids.length, "usage.total_tokens");
    eq(r.choices[0].finish_reason, ref.stop_reason === "eos" ? "stop" : "length", "finish_reason");
  });

  await test("streamed completion equals ingot run --temp 0", async () => {
    const prompt = "The little dog";
    const ref = reference(prompt, 50);
    const stream = await client.completions.create({ model: "m", prompt, max_tokens: 50, temperature: 0, stream: true });
    let text = "", finish = null, chunks = 0;
    for await (const c of stream) {
      text += c.choices[0].text;
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
      chunks++;
    }
    eq(text, ref.text, "streamed text");
    eq(finish, ref.stop_reason === "eos" ? "stop" : "length", "finish_reason");
    check(chunks >= 2, "several chunks");
  });

  const messages = [
    { role: "system", content: "You tell short stories." },
    { role: "user", content: "Tell me about a cat." },
  ];
  let chatRef;
  await test("chat completion equals ingot run --temp 0 on the rendered messages", async () => {
    chatRef = reference(chatml(messages), 30);
    const r = await client.chat.completions.create({ model: "m", messages, max_tokens: 30, temperature: 0 });
    eq(r.choices[0].message.role, "assistant", "role");
    eq(r.choices[0].message.content, chatRef.text, "chat content");
    eq(r.usage.prompt_tokens, chatRef.prompt_ids.length, "usage.prompt_tokens");
    eq(r.usage.completion_tokens, chatRef.ids.length, "usage.completion_tokens");
  });

  await test("streamed chat equals ingot run --temp 0, with include_usage", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "", usage = null, role = null;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      if (c.choices.length) {
        if (c.choices[0].delta.role) role = c.choices[0].delta.role;
        text += c.choices[0].delta.content ?? "";
      }
    }
    eq(role, "assistant", "the first delta's role");
    eq(text, chatRef.text, "streamed chat content");
    check(usage && usage.completion_tokens === chatRef.ids.length, "usage chunk: " + JSON.stringify(usage));
    // The same messages again: the slot's cache holds the whole prompt but its last token.
    check(usage.prompt_tokens_details.cached_tokens === usage.prompt_tokens - 1, "cached_tokens of a repeated prompt: " + JSON.stringify(usage));
  });

  await test("multi-turn chat reuses the history (cached_tokens) and equals one run over it", async () => {
    const turn1 = [{ role: "user", content: "Where does the bird live?" }];
    const r1 = await client.chat.completions.create({ model: "m", messages: turn1, max_tokens: 20, temperature: 0 });
    const turn2 = [...turn1, { role: "assistant", content: r1.choices[0].message.content }, { role: "user", content: "And the fish?" }];
    const ref = reference(chatml(turn2), 20);
    const r2 = await client.chat.completions.create({ model: "m", messages: turn2, max_tokens: 20, temperature: 0 });
    eq(r2.choices[0].message.content, ref.text, "turn 2 content");
    check(r2.usage.prompt_tokens_details.cached_tokens >= r1.usage.prompt_tokens, `turn 2 reused turn 1's prompt: ${JSON.stringify(r2.usage)} after ${JSON.stringify(r1.usage)}`);
  });

  await test("stop strings (plain and streamed) end the text before the first match", async () => {
    const prompt = "Once upon a time";
    const full = reference(prompt, 60).text;
    const stop = " She";
    const at = full.indexOf(stop);
    check(at > 0, "the reference text contains the stop string: " + full);
    const r = await client.completions.create({ model: "m", prompt, max_tokens: 60, temperature: 0, stop: [stop, "zzzz"] });
    eq(r.choices[0].text, full.slice(0, at), "text before the stop string");
    eq(r.choices[0].finish_reason, "stop", "finish_reason of a stop string");
    const stream = await client.completions.create({ model: "m", prompt, max_tokens: 60, temperature: 0, stop, stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0].text;
    eq(text, full.slice(0, at), "streamed text before the stop string");
  });

  await test("bad requests: 400 (bad JSON, n = 2, bad value, missing messages), 404, 401, 413", async () => {
    let e = expectError(curl([...auth, "-d", "{not json", url + "/v1/completions"]), 400, "bad JSON");
    eq(e.code, "invalid_json", "bad JSON code");
    for (const [body, param] of [
      [{ model: "m", messages: [{ role: "user", content: "hi" }], n: 2 }, "n"],
      [{ model: "m", messages: [{ role: "user", content: "hi" }], temperature: -1 }, "temperature"],
      [{ model: "m", messages: [{ role: "user", content: "hi" }], stop: 5 }, "stop"],
      [{ model: "m" }, "messages"],
    ]) {
      try {
        await client.chat.completions.create(body);
        throw new Error("accepted a bad request: " + JSON.stringify(body));
      } catch (err) {
        eq(err.status, 400, "status for " + JSON.stringify(body));
        eq(err.param, param, "param for " + JSON.stringify(body));
      }
    }
    expectError(curl([...auth, url + "/v1/nothing"]), 404, "unknown endpoint");
    e = expectError(curl(["-H", "Content-Type: application/json", "-d", '{"prompt":"x"}', url + "/v1/completions"]), 401, "no API key");
    eq(e.code, "invalid_api_key", "401 code");
    expectError(curl(["-H", "Authorization: Bearer wrong", "-d", '{"prompt":"x"}', url + "/v1/completions"]), 401, "a wrong API key");
    const big = path.join(work, "big.json");
    fs.writeFileSync(big, JSON.stringify({ model: "m", prompt: "a ".repeat(MAX_BODY) }));
    expectError(curl([...auth, "--data-binary", "@" + big, url + "/v1/completions"]), 413, "a body over --max-body");
  });

  await test("a prompt longer than the context: 400 context_length_exceeded", async () => {
    try {
      await client.completions.create({ model: "m", prompt: "Once upon a time there was a cat. ".repeat(300), max_tokens: 4 });
      throw new Error("accepted an over-long prompt");
    } catch (err) {
      eq(err.status, 400, "status");
      eq(err.code, "context_length_exceeded", "code");
      check(/longer than the context/.test(err.message), "message: " + err.message);
    }
  });

  await test("a client that disconnects mid-stream frees its slot", async () => {
    const before = await metrics(url);
    const controller = new AbortController();
    const stream = await client.completions.create(
      { model: "m", prompt: "Once upon a time", max_tokens: 2000, temperature: 0, stream: true, ignore_eos: true },
      { signal: controller.signal });
    let got = 0;
    try {
      for await (const c of stream) {
        got += c.choices[0].text.length;
        if (got > 0) controller.abort();
      }
    } catch (err) {
      check(err.name === "AbortError" || /abort/i.test(String(err)), "the stream ended by the abort: " + err);
    }
    let m;
    for (let i = 0; i < 100; i++) {
      m = await metrics(url);
      if (m["ingot_active_slots"] === 0 && m['ingot_requests_finished_total{reason="cancelled"}'] > before['ingot_requests_finished_total{reason="cancelled"}']) break;
      await sleep(50);
    }
    eq(m["ingot_active_slots"], 0, "no active slot after the disconnect");
    check(m['ingot_requests_finished_total{reason="cancelled"}'] === before['ingot_requests_finished_total{reason="cancelled"}'] + 1, "the request was cancelled, not run to its end");
    check(m["ingot_generated_tokens_total"] - before["ingot_generated_tokens_total"] < 2000, "the generation stopped early");
    const ref = reference("The little dog", 20);
    const r = await client.completions.create({ model: "m", prompt: "The little dog", max_tokens: 20, temperature: 0 });
    eq(r.choices[0].text, ref.text, "the next request is served");
  });

  await test("8 concurrent streams on 4 slots each equal ingot run --temp 0", async () => {
    const prompts = ["Once upon a time", "The little dog", "Tom and Sue", "A big red ball", "One day, a bird", "The sun was", "Lily had a toy", "In the park"];
    const refs = prompts.map((p, i) => reference(p, 24 + 4 * i));
    const before = await metrics(url);
    const results = await Promise.all(prompts.map(async (prompt, i) => {
      const stream = await client.completions.create({ model: "m", prompt, max_tokens: 24 + 4 * i, temperature: 0, stream: true, stream_options: { include_usage: true } });
      let text = "", usage = null;
      for await (const c of stream) {
        if (c.usage) usage = c.usage;
        if (c.choices.length) text += c.choices[0].text;
      }
      return { text, usage };
    }));
    results.forEach((r, i) => {
      eq(r.text, refs[i].text, `stream ${i} ("${prompts[i]}")`);
      eq(r.usage.completion_tokens, refs[i].ids.length, `stream ${i} completion tokens`);
    });
    // Decoded together: far fewer steps (batched calls) than tokens generated.
    const m = await metrics(url);
    const steps = m["ingot_steps_total"] - before["ingot_steps_total"];
    const generated = m["ingot_generated_tokens_total"] - before["ingot_generated_tokens_total"];
    check(steps < generated / 2, `${steps} steps for ${generated} generated tokens: the streams were not batched`);
  });

  await test("a prompt longer than max_batch, spread over steps beside decoding streams, equals ingot run", async () => {
    // stories260K's bundle runs at most 512 tokens per call: this prompt takes several steps.
    const long = "Once upon a time there was a cat who liked to play with a ball. ".repeat(60);
    const short = ["The little dog", "Tom and Sue", "A big red ball"];
    const refLong = reference(long, 16);
    check(refLong.prompt_ids.length > 1000, "the long prompt has " + refLong.prompt_ids.length + " tokens");
    const refs = short.map((p) => reference(p, 40));
    const [rl, ...rs] = await Promise.all([
      client.completions.create({ model: "m", prompt: long, max_tokens: 16, temperature: 0 }),
      ...short.map((prompt) => client.completions.create({ model: "m", prompt, max_tokens: 40, temperature: 0 })),
    ]);
    eq(rl.choices[0].text, refLong.text, "the long prompt's continuation");
    rs.forEach((r, i) => eq(r.choices[0].text, refs[i].text, `short stream ${i}`));
  });

  await test("sampled streams with a seed equal ingot run with the same seed and parameters", async () => {
    const cases = [["Once upon a time", 11], ["The little dog", 22], ["Tom and Sue", 33], ["In the park", 44]];
    const refs = cases.map(([p, seed]) => reference(p, 40, ["--temp", "0.9", "--seed", String(seed), "--top-k", "40", "--top-p", "0.95", "--min-p", "0.05"]));
    const rs = await Promise.all(cases.map(([prompt, seed]) =>
      client.completions.create({ model: "m", prompt, max_tokens: 40, temperature: 0.9, seed, top_p: 0.95, top_k: 40, min_p: 0.05 })));
    rs.forEach((r, i) => eq(r.choices[0].text, refs[i].text, `sampled stream ${i}`));
    check(new Set(rs.map((r) => r.choices[0].text)).size === cases.length, "different seeds and prompts, different texts");
  });

  await test("presence and frequency penalties change a greedy stream", async () => {
    const prompt = "Once upon a time";
    const plain = await client.completions.create({ model: "m", prompt, max_tokens: 60, temperature: 0 });
    const fp = await client.completions.create({ model: "m", prompt, max_tokens: 60, temperature: 0, frequency_penalty: 2 });
    const pp = await client.completions.create({ model: "m", prompt, max_tokens: 60, temperature: 0, presence_penalty: 2 });
    check(fp.choices[0].text !== plain.choices[0].text, "frequency_penalty changed nothing");
    check(pp.choices[0].text !== plain.choices[0].text, "presence_penalty changed nothing");
    const refPp = reference(prompt, 60, ["--temp", "0", "--presence-penalty", "2"]);
    eq(pp.choices[0].text, refPp.text, "presence_penalty as ingot run --presence-penalty");
  });

  await test("/metrics: Prometheus text with requests, tokens, TTFT, inter-token, queue", async () => {
    const m = await metrics(url);
    for (const k of ["ingot_prompt_tokens_total", "ingot_generated_tokens_total", "ingot_time_to_first_token_seconds_count",
      "ingot_inter_token_seconds_count", "ingot_generation_tokens_per_second", "ingot_queue_length", "ingot_active_slots"])
      check(k in m, "metric " + k);
    check(m['ingot_requests_total{endpoint="/v1/completions",status="200"}'] >= 5, "completions counted");
    check(m['ingot_requests_total{endpoint="/v1/chat/completions",status="400"}'] >= 4, "bad chat requests counted");
    check(m["ingot_time_to_first_token_seconds_count"] >= 10, "TTFT observed per request");
  });
} catch (err) {
  console.error(err.stack || String(err));
  console.error("server stderr:\n" + server.proc.stderrText());
  await stopServer(server);
  process.exit(1);
}

const { code } = await stopServer(server);
eq(code, 0, "exit status after SIGTERM");
check(/stopped/.test(server.proc.stderrText()), "the server said it stopped");

// A full queue: one slot, room for one waiting request; the third at once gets 503. SIGTERM
// while streams run ends them (an error event, then [DONE]) and the server exits 0.
{
  const small = await startServer(ingot, bundle, ["--parallel", "1", "--queue", "1", "--threads", "1"]);
  const body = JSON.stringify({ model: "m", prompt: "Once upon a time", max_tokens: 2000, temperature: 0, ignore_eos: true, stream: true });
  const open = async () => {
    const res = await fetch(small.url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    return res;
  };
  const a = await open(), b = await open(), c = await open();
  eq([a.status, b.status, c.status], [200, 200, 503], "statuses of three requests for one slot and a queue of one");
  const err = (await c.json()).error;
  eq(err.code, "queue_full", "503 code");
  check(/queue is full/.test(err.message), "503 message: " + err.message);
  const texts = [a.text(), b.text()];
  const stopped = await stopServer(small);
  eq(stopped.code, 0, "exit status after SIGTERM with streams running");
  for (const t of await Promise.all(texts)) check(t.trimEnd().endsWith("data: [DONE]"), "a stream ended by the shutdown ends with [DONE]: " + t.slice(-200));
  console.log(`ok ${++passed} - 503 when the queue is full; SIGTERM ends running streams`);
}
// Speculation in the server: --lookup and --draft (the bundle drafting for itself), 4 concurrent
// greedy streams each equal to `ingot run --temp 0`, and /metrics counting the drafts.
for (const spec of [["--lookup", "3"], ["--draft", bundle, "--draft-max", "4"]]) {
  const sv = await startServer(ingot, bundle, ["--parallel", "4", "--threads", "2", ...spec]);
  try {
    const c = new OpenAI({ baseURL: sv.url + "/v1", apiKey: "none", maxRetries: 0, timeout: 60000 });
    const prompts = ["Once upon a time", "The little dog", "Lily and Tom went to the park. Lily and Tom", "One day"];
    const refs = prompts.map((p) => reference(p, 48));
    const got = await Promise.all(prompts.map((prompt) => c.completions.create({ model: "m", prompt, max_tokens: 48, temperature: 0 })));
    for (let i = 0; i < prompts.length; i++) eq(got[i].choices[0].text, refs[i].text, `${spec[0]}: completion ${i}`);
    const m = await metrics(sv.url);
    check(m.ingot_draft_tokens_total > 0, `${spec[0]}: drafts verified: ${m.ingot_draft_tokens_total}`);
    check(m.ingot_draft_accepted_tokens_total > 0, `${spec[0]}: drafts accepted: ${m.ingot_draft_accepted_tokens_total}`);
  } finally {
    await stopServer(sv);
  }
  console.log(`ok ${++passed} - ${spec[0]}: 4 concurrent greedy streams equal ingot run --temp 0`);
}
const both = spawnSync(ingot, ["serve", bundle, "--lookup", "2", "--draft", bundle], { encoding: "utf8", timeout: 30000 });
eq(both.status, 2, "--lookup with --draft: usage error; stderr: " + both.stderr);
console.log(`ok ${++passed} - --lookup with --draft is refused`);
console.log(`all ${passed} serve tests passed`);
