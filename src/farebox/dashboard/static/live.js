// Live usage (seed 002): requests, tokens and credits today and this month, and the credits remaining, polled
// from /v1/usage every second (the endpoint reads the daily cube: a few milliseconds at ten million events).
import { count, downloadCsv, el, get, pickAccount, ready, status, viewer } from "./dashboard.js";

const EVERY_MS = 1000;
const MODELS_EVERY = 5;
let account = null;
let ticks = 0;
let byModel = [];

function credits(text) {
  const [whole, fraction] = text.split(".");
  return fraction ? `${count(whole)}.${fraction}` : count(whole);
}

function set(id, text) {
  const node = document.getElementById(id);
  if (node.textContent !== text) node.textContent = text;
}

async function refresh() {
  const params = { account_id: viewer.kind === "master" ? account : null };
  const usage = await get("/v1/usage", params);
  const today = usage.daily_breakdown[0] || { requests: 0, tokens: 0, credits: "0" };
  set("today-requests", count(today.requests));
  set("today-tokens", count(today.tokens));
  set("today-credits", credits(today.credits));
  set("month-requests", count(usage.total_requests));
  set("month-tokens", count(usage.total_tokens));
  set("month-credits", credits(usage.total_credits_used));
  set("credits-remaining", usage.credits_remaining === null ? "no prepaid balance" : credits(usage.credits_remaining));
  set("period", `From ${usage.period_start} to ${usage.period_end}; today is ${today.date ?? "without usage yet"}.`);
  if (ticks % MODELS_EVERY === 0) {
    const models = await get("/v1/usage/models", params);
    byModel = models.data;
    document.querySelector("#models-table tbody").replaceChildren(...models.data.map((row) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, row.model),
        el("td", { className: "num" }, count(row.requests)),
        el("td", { className: "num" }, count(row.prompt_tokens)),
        el("td", { className: "num" }, count(row.completion_tokens)),
        el("td", { className: "num" }, credits(row.credits_used)),
      )));
  }
  ticks += 1;
  ready();
}

async function loop() {
  if (!document.hidden) {
    try {
      await refresh();
      status("");
    } catch (error) {
      status(`Not updated: ${error.message}`);
    }
  }
  setTimeout(loop, EVERY_MS);
}

async function main() {
  account = await pickAccount();
  if (!account && viewer.kind === "master") {
    status("There is no account yet.");
    return;
  }
  document.getElementById("export").addEventListener("click", () =>
    downloadCsv("usage-this-month-by-model.csv", [
      ["model", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "credits_used"],
      ...byModel.map((m) => [m.model, m.requests, m.prompt_tokens, m.completion_tokens, m.total_tokens, m.credits_used]),
    ]));
  await loop();
}

main().catch((error) => {
  status(`Could not load the live usage: ${error.message}`);
  ready("error");
});
