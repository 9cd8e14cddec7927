// The Analytics page (seed 003): the account's models ranked, and over time, on the shared range.
import { modelCharts } from "./model_charts.js";
import { decimal, downloadCsv, nano, pageParams, pickAccount, ready, status, usd, viewer } from "./dashboard.js";

async function main() {
  const account = await pickAccount();
  if (!account) {
    status("There is no account yet.");
    return;
  }
  const params = pageParams();
  const wanted = { account_id: viewer.kind === "master" ? account : null, from: params.from, to: params.to };
  const ranking = await modelCharts("models", wanted);
  const form = document.getElementById("filters");
  form.elements.from.value = ranking.from;
  form.elements.to.value = ranking.to;
  form.elements.account_id.value = wanted.account_id || "";
  form.elements.account_id.disabled = !wanted.account_id;
  const total = decimal(ranking.data.reduce((sum, row) => sum + nano(row.cost), 0n));
  const shown = document.getElementById("range-total");
  shown.textContent = `${usd(total)} from ${ranking.from} to ${ranking.to} (${ranking.tz})`;
  shown.dataset.exact = total;
  const header = ["model", "cost_usd", "requests", "tokens", "input_tokens", "output_tokens", "errors", "error_rate"];
  document.getElementById("export").addEventListener("click", () =>
    downloadCsv(`models-${ranking.from}-${ranking.to}.csv`, [
      header,
      ...ranking.data.map((row) => [row.model, row.cost, row.requests, row.tokens, row.input_tokens, row.output_tokens, row.errors, row.error_rate]),
    ]));
  ready();
}

main().catch((error) => {
  status(`Could not load the analytics: ${error.message}`);
  ready("error");
});
