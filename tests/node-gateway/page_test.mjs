// page_test.mjs - the gateway's chat page (GET /) in a real browser: Debian's chromium, headless,
// driven by npm's puppeteer-core.
//   node page_test.mjs CHROMIUM URL KEY MODEL PROMPT MAX_TOKENS EXPECTED_TEXT LABEL SCREENSHOT
// Loads the page (the key stored as the page stores it), picks MODEL in the adaptation list,
// sends PROMPT, and checks that the answer arrives in more than one piece (streamed), ends as
// PROMPT + EXPECTED_TEXT (what the gateway answers without streaming: gateway_page.py asks it),
// and that the line under it names the label pass 1 chose (LABEL) and both passes' times.
// Saves a screenshot to SCREENSHOT. Prints "N passed, M failed"; exit 1 on failure.
import puppeteer from "puppeteer-core";

const [chromium, url, key, model, prompt, maxTokens, want, label, shot] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else { failed++; console.error("check failed: " + what); }
  return ok;
}

const args = ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--window-size=960,640"];
// chromium's sandbox refuses to run as root
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args,
                                         defaultViewport: { width: 960, height: 640 },
                                         timeout: 60000 });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
  await page.evaluateOnNewDocument((k) => localStorage.setItem("t2key", k), key);
  const r = await page.goto(url, { waitUntil: "load", timeout: 30000 });
  check(r && r.status() === 200, `GET / answered ${r && r.status()}`);
  // the adaptation list comes from /v1/models
  await page.waitForFunction((m) => [...document.querySelectorAll("#model option")]
    .some((o) => o.value === m), { timeout: 20000 }, model);
  await page.select("#model", model);
  await page.$eval("#max", (el, n) => { el.value = n; }, maxTokens);
  // count the answer's updates: a streamed answer grows in several steps
  await page.evaluate(() => {
    window.t2Updates = [];
    new MutationObserver(() => {
      const a = document.querySelector(".msg.assistant");
      if (a && a.firstChild) window.t2Updates.push(a.firstChild.textContent);
    }).observe(document.getElementById("log"), { childList: true, subtree: true,
                                                  characterData: true });
  });
  await page.type("#text", prompt);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".msg.assistant .meta", { timeout: 60000 });
  const got = await page.$eval(".msg.assistant", (el) => el.firstChild.textContent);
  const meta = await page.$eval(".msg.assistant .meta", (el) => el.textContent);
  const updates = await page.evaluate(() => [...new Set(window.t2Updates)]);
  check(got === prompt + want,
        `the page shows ${JSON.stringify(got)}, not ${JSON.stringify(prompt + want)}`);
  check(updates.length >= 2,
        `the answer arrived in ${updates.length} distinct steps (streamed: >= 2)`);
  check(meta.includes("label " + label), `the line under the answer names label ${label}: ${meta}`);
  check(/pass 1 [0-9.]+ ms · pass 2 [0-9.]+ ms/.test(meta), `both passes' times: ${meta}`);
  check(/mixture [^?]/.test(meta), `the mixture: ${meta}`);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await page.screenshot({ path: shot });
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
