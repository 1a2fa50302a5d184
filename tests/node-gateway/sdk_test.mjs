// sdk_test.mjs - the official OpenAI SDK (npm `openai`) against t2-gateway.
//   node sdk_test.mjs BASE_URL KEY MODEL PROMPT MAX_TOKENS EXPECTED_TEXT
// EXPECTED_TEXT: what `t2 run` generates greedily with the model's mixture (gateway_sdk.py
// computes it). Prints one line per failed check and "N passed, M failed"; exit 1 on failure.
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from "openai";

const [base, key, model, prompt, maxTokens, want] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 60000 });
let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else { failed++; console.error("check failed: " + what); }
}
async function expectError(what, fn, cls, test) {
  try {
    const r = await fn();
    check(false, `${what}: no error but ${JSON.stringify(r).slice(0, 200)}`);
  } catch (e) {
    check(e instanceof cls && test(e), `${what}: ${e.constructor.name} ${e.status} ${e.message}`);
  }
}

// a completion, greedy: the same text as t2 run
const r = await client.completions.create({ model, prompt, max_tokens: +maxTokens, temperature: 0 });
check(r.choices[0].text === want, `completion ${JSON.stringify(r.choices[0].text)} is not t2 run's ${JSON.stringify(want)}`);
check(r.usage.completion_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
      `usage ${JSON.stringify(r.usage)}`);
check(r.t2 && typeof r.t2.pass2_ms === "number" && Array.isArray(r.t2.mixture), `t2 extension ${JSON.stringify(r.t2)}`);

// streaming: the chunks reassemble to the same text; the last chunk has usage and t2
const stream = await client.completions.create({ model, prompt, max_tokens: +maxTokens, temperature: 0,
                                                 stream: true, stream_options: { include_usage: true } });
let text = "", last = null, n = 0, finish = null;
for await (const ch of stream) {
  n++;
  if (ch.choices.length) {
    text += ch.choices[0].text;
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  last = ch;
}
check(n > 2 && text === want, `stream: ${n} chunks, text ${JSON.stringify(text)}`);
check(finish === r.choices[0].finish_reason, `stream finish_reason ${finish}`);
check(last && last.usage && last.usage.completion_tokens === r.usage.completion_tokens && last.t2,
      `last chunk ${JSON.stringify(last)}`);

// models.list()
const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
check(ids.includes("t2-base") && ids.includes("t2-base:mix/rand1=1") && !ids.some((i) => i.includes("factors")), `models.list(): ${ids}`);

// typed errors
const bad = new OpenAI({ baseURL: base, apiKey: "sk-wrong-0000000000000000", maxRetries: 0 });
await expectError("wrong key", () => bad.models.list(), AuthenticationError,
                  (e) => e.status === 401 && e.code === "invalid_api_key");
await expectError("temperature 7", () => client.completions.create({ model, prompt, temperature: 7 }),
                  BadRequestError, (e) => e.status === 400 && e.param === "temperature");
await expectError("unknown model", () => client.completions.create({ model: "gpt-4o", prompt }),
                  NotFoundError, (e) => e.status === 404 && e.code === "model_not_found");

// chat completions: an answer once the workers render chat templates, until then a clear 400
const messages = [{ role: "user", content: "Tell me a story." }];
try {
  const c = await client.chat.completions.create({ model, messages, max_tokens: 8 });
  check(c.choices[0].message.role === "assistant" && c.t2, `chat ${JSON.stringify(c)}`);
  console.log("note: chat completions answered (the workers render chat templates)");
} catch (e) {
  check(e instanceof BadRequestError && e.code === "chat_template_unsupported",
        `chat: ${e.constructor.name} ${e.status} ${e.message}`);
}
try {
  const s = await client.chat.completions.create({ model, messages, max_tokens: 8, stream: true });
  let t = "";
  for await (const ch of s) if (ch.choices.length && ch.choices[0].delta.content) t += ch.choices[0].delta.content;
  check(t.length > 0, "streamed chat: no text");
} catch (e) {
  check(e instanceof BadRequestError && e.code === "chat_template_unsupported",
        `streamed chat: ${e.constructor.name} ${e.status} ${e.message}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
