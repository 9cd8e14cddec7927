// /dashboard/usage (seed 000): a card per key, daily spend stacked by model, the range and filters, and a bar
// segment's requests. Every figure is an answer of the API for the range the form shows.
import { apiUrl, count, decimal, el, get, nano, pageParams, PALETTE, percent, pickAccount, ready, status, usd, viewer } from "./dashboard.js";

const PAGE_SIZE = 50;
const form = document.getElementById("filters");
let keyNames = new Map();
let chart = null;

function filters(account) {
  const params = pageParams();
  return {
    account_id: viewer.kind === "master" ? account : null,
    from: params.from || null,
    to: params.to || null,
    provider: params.provider || null,
    key: params.key || null,
  };
}

function fillOptions(select, values, chosen) {
  for (const [value, label] of values) select.append(el("option", { value }, label));
  select.value = chosen || "";
}

function keyCard(key) {
  const used = key.percent_used === null ? null : Math.min(100, Number(key.percent_used));
  const meter = used === null
    ? el("p", { className: "nocap" }, "No spend cap")
    : el("meter", { min: 0, max: 100, value: used, low: 75, high: 90, optimum: 0, title: percent(key.percent_used) });
  const card = el(
    "li",
    { className: `card ${key.status}`, id: `key-${key.id}` },
    el("h3", {}, key.name),
    el("p", { className: "prefix" }, el("code", {}, key.key_prefix), ` · ${key.status}`),
    el(
      "dl",
      {},
      el("dt", {}, "Spend cap"),
      el("dd", { className: "cap", dataset: { exact: key.spend_cap ?? "" } }, key.spend_cap === null ? "none" : usd(key.spend_cap)),
      el("dt", {}, `Spent this ${key.cap_period.replace("ly", "")}`),
      el("dd", { className: "spend", title: `$${key.spend}` }, usd(key.spend)),
      el("dt", {}, "Used"),
      el("dd", { className: "used" }, percent(key.percent_used)),
    ),
    meter,
  );
  card.querySelector(".spend").dataset.exact = key.spend;
  return card;
}

function renderCards(keys) {
  const list = document.getElementById("key-cards");
  list.replaceChildren(...(keys.length ? keys.map(keyCard) : [el("li", { className: "empty" }, "No virtual keys yet.")]));
  list.setAttribute("aria-busy", "false");
}

function renderTable(series) {
  const table = document.getElementById("daily-table");
  const head = el("tr", {}, el("th", { scope: "col" }, "Day"), ...series.series.map((line) => el("th", { scope: "col", className: "num" }, line.model)));
  const rows = series.buckets.map((day, index) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, day),
      ...series.series.map((line) => {
        const cost = line.cost[index];
        if (nano(cost) === 0n) return el("td", { className: "num" }, "–");
        const open = el("button", { type: "button", className: "link", title: `$${cost}` }, usd(cost));
        open.addEventListener("click", () => showRequests(day, line.model));
        return el("td", { className: "num", dataset: { exact: cost } }, open);
      }),
    ),
  );
  table.replaceChildren(table.querySelector("caption"), el("thead", {}, head), el("tbody", {}, ...rows));
}

function renderChart(series) {
  const datasets = series.series.map((line, index) => ({
    label: line.model,
    data: line.cost.map(Number),
    exact: line.cost,
    backgroundColor: PALETTE[index % PALETTE.length],
    stack: "spend",
  }));
  const canvas = document.getElementById("daily-chart");
  if (chart) chart.destroy();
  chart = new window.Chart(canvas, {
    type: "bar",
    data: { labels: series.buckets, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: true },
      scales: { x: { stacked: true }, y: { stacked: true, ticks: { callback: (value) => `$${value}` } } },
      plugins: {
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${usd(item.dataset.exact[item.dataIndex])}` } },
        legend: { position: "bottom" },
      },
      onClick: (_event, elements) => {
        if (!elements.length) return;
        const { datasetIndex, index } = elements[0];
        showRequests(series.buckets[index], datasets[datasetIndex].label);
      },
    },
  });
  canvas.dataset.days = String(series.buckets.length);
  canvas.dataset.models = series.series.map((line) => line.model).join(",");
}

const drill = { base: null, cursors: [] };

async function showRequests(day, model, cursor = null) {
  const section = document.getElementById("requests");
  const params = { ...drill.base, date: day, model, limit: PAGE_SIZE, cursor };
  const page = await get("/api/analytics/requests", params);
  section.hidden = false;
  const title = document.getElementById("requests-title");
  title.textContent = `Requests on ${day} for ${model}`;
  const summary = document.getElementById("requests-summary");
  summary.replaceChildren(
    el("dt", {}, "Requests"), el("dd", { id: "requests-count" }, count(page.summary.requests)),
    el("dt", {}, "Model"), el("dd", {}, model),
    el("dt", {}, "Total cost"), el("dd", { id: "requests-cost", title: `$${page.summary.cost}`, dataset: { exact: page.summary.cost } }, usd(page.summary.cost)),
  );
  const rows = page.data.map((row) =>
    el(
      "tr",
      { dataset: { id: row.id } },
      el("td", {}, new Date(row.timestamp).toLocaleTimeString("en-GB", { timeZone: page.tz, hour12: false })),
      el("td", {}, keyNames.get(row.key_id) || row.key_id || "—"),
      el("td", {}, row.model),
      el("td", { className: "num" }, count(row.input_tokens)),
      el("td", { className: "num" }, count(row.output_tokens)),
      el("td", { className: "num", title: `$${row.cost}`, dataset: { exact: row.cost } }, usd(row.cost)),
      el("td", { className: row.status }, row.status),
      el("td", { className: "num" }, row.latency_ms === null ? "—" : count(row.latency_ms)),
    ),
  );
  section.querySelector("tbody").replaceChildren(...rows);
  if (cursor === null) drill.cursors = [];
  const next = document.getElementById("requests-next");
  const first = document.getElementById("requests-first");
  next.disabled = page.next_cursor === null;
  first.disabled = cursor === null;
  next.onclick = () => showRequests(day, model, page.next_cursor);
  first.onclick = () => showRequests(day, model);
  title.focus();
  status(`${count(page.summary.requests)} requests on ${day} for ${model}.`);
}

async function main() {
  const account = await pickAccount();
  if (!account) {
    status("There is no account yet.");
    return;
  }
  const wanted = filters(account);
  drill.base = wanted;
  const keyParams = { account_id: account, member_id: viewer.role === "member" ? viewer.member : null };
  const [series, choices, keys] = await Promise.all([
    get("/api/analytics/models/over-time", { ...wanted, grain: "day" }),
    get("/api/analytics/filters", { account_id: wanted.account_id, from: wanted.from, to: wanted.to }),
    get("/api/admin/virtual-keys", keyParams),
  ]);
  keyNames = new Map(keys.data.map((key) => [key.id, key.name]));
  form.elements.from.value = series.from;
  form.elements.to.value = series.to;
  form.elements.account_id.value = wanted.account_id || "";
  form.elements.account_id.disabled = !wanted.account_id;
  fillOptions(form.elements.provider, choices.providers.map((name) => [name, name]), wanted.provider);
  fillOptions(form.elements.key, keys.data.map((key) => [key.id, key.name]), wanted.key);
  document.getElementById("export").href = apiUrl("/v1/usage/export", { ...wanted, from: series.from, to: series.to, format: "csv" });
  renderCards(keys.data);
  const total = series.series.reduce((sum, line) => sum + line.cost.reduce((acc, cost) => acc + nano(cost), 0n), 0n);
  const totalText = decimal(total);
  const shown = document.getElementById("range-total");
  shown.textContent = `${usd(totalText)} from ${series.from} to ${series.to} (${series.tz})`;
  shown.dataset.exact = totalText;
  renderChart(series);
  renderTable(series);
  ready();
}

main().catch((error) => {
  status(`Could not load the usage: ${error.message}`);
  ready("error");
});
