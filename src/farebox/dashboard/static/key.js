// One key's statistics (seed 003): cost, tokens, requests and error rate for the range, its budget, and the two
// cost-by-model charts scoped to the key.
import { modelCharts } from "./model_charts.js";
import { el, fillSummary, get, pageParams, percent, ready, status, usd } from "./dashboard.js";

async function main() {
  const keyId = document.getElementById("summary").dataset.key;
  const params = pageParams();
  const range = { from: params.from, to: params.to };
  const [key, stats] = await Promise.all([
    get(`/api/admin/virtual-keys/${keyId}`),
    get(`/api/analytics/keys/${keyId}`, range),
  ]);
  document.querySelector("h1").textContent = `Key ${key.name}`;
  document.title = `Key ${key.name} · farebox`;
  fillSummary(stats.summary);
  document.getElementById("budget").replaceChildren(
    el("dt", {}, "Spend cap"), el("dd", {}, key.spend_cap === null ? "none" : usd(key.spend_cap)),
    el("dt", {}, `Spent (${key.cap_period})`), el("dd", { id: "budget-spend", dataset: { exact: key.spend } }, usd(key.spend)),
    el("dt", {}, "Used"), el("dd", { id: "budget-used" }, percent(key.percent_used)),
    el("dt", {}, "Status"), el("dd", {}, key.status),
  );
  const form = document.getElementById("filters");
  form.elements.from.value = stats.from;
  form.elements.to.value = stats.to;
  form.elements.account_id.disabled = true;
  await modelCharts("key", { ...range, account_id: key.account_id, key: keyId });
  ready();
}

main().catch((error) => {
  status(`Could not load the key: ${error.message}`);
  ready("error");
});
