// Seed 003's two charts, for an account or one key: Cost by Model (horizontal bars) and Cost by Model Over Time
// (stacked areas), each with Cost / Requests / Tokens tabs; the second with a Canonical / Mappings toggle.
import { PALETTE, count, el, get, rate, usd } from "./dashboard.js";

const MEASURES = { cost: "Cost (USD)", requests: "Requests", tokens: "Tokens" };

function selectTab(tablist, measure) {
  for (const tab of tablist.querySelectorAll("[role=tab]")) {
    const chosen = tab.dataset.measure === measure;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
  }
}

/** Tabs a person can click or walk with the arrow keys; `onChange(measure)` on every change. */
function tabs(prefix, onChange) {
  const tablist = document.querySelector(`[data-chart="${prefix}"]`);
  const all = [...tablist.querySelectorAll("[role=tab]")];
  selectTab(tablist, "cost");
  for (const tab of all) {
    tab.addEventListener("click", () => {
      selectTab(tablist, tab.dataset.measure);
      onChange(tab.dataset.measure);
    });
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = all[(all.indexOf(tab) + step + all.length) % all.length];
      next.focus();
      next.click();
    });
  }
}

function value(measure, text) {
  return measure === "cost" ? Number(text) : text;
}

function shown(measure, text) {
  return measure === "cost" ? usd(text) : count(text);
}

function rankingTable(table, rows) {
  const head = el("tr", {}, ...["Model", "Cost (USD)", "Requests", "Tokens", "Error rate"].map((name, n) =>
    el("th", { scope: "col", className: n ? "num" : "" }, name)));
  const body = rows.map((row) =>
    el(
      "tr",
      { dataset: { model: row.model } },
      el("th", { scope: "row" }, row.model),
      el("td", { className: "num cost", title: `$${row.cost}`, dataset: { exact: row.cost } }, usd(row.cost)),
      el("td", { className: "num requests" }, count(row.requests)),
      el("td", { className: "num tokens" }, count(row.tokens)),
      el("td", { className: "num" }, rate(row.error_rate)),
    ));
  table.replaceChildren(table.querySelector("caption"), el("thead", {}, head), el("tbody", {}, ...body));
}

/** Draw both charts of `prefix` for the API parameters `params` (range, account, filters). */
export async function modelCharts(prefix, params) {
  const ranking = await get("/api/analytics/models", params);
  const rankingCanvas = document.getElementById(`${prefix}-ranking`);
  rankingCanvas.parentElement.style.height = `${Math.max(8, 2.2 * ranking.data.length + 3)}rem`;
  const rankingChart = new window.Chart(rankingCanvas, {
    type: "bar",
    data: { labels: [], datasets: [{ label: "", data: [], backgroundColor: PALETTE[0] }] },
    options: {
      indexAxis: "y",
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
    },
  });
  function drawRanking(measure) {
    const rows = [...ranking.data].sort((a, b) => Number(b[measure]) - Number(a[measure]));
    rankingChart.data.labels = rows.map((row) => row.model);
    rankingChart.data.datasets[0].label = MEASURES[measure];
    rankingChart.data.datasets[0].data = rows.map((row) => value(measure, row[measure]));
    rankingChart.options.plugins.tooltip = { callbacks: { label: (item) => shown(measure, rows[item.dataIndex][measure]) } };
    rankingChart.update();
    rankingCanvas.dataset.measure = measure;
    rankingCanvas.dataset.models = rows.map((row) => row.model).join(",");
  }
  rankingTable(document.getElementById(`${prefix}-ranking-table`), ranking.data);
  drawRanking("cost");
  tabs(`${prefix}-ranking`, drawRanking);

  const timeCanvas = document.getElementById(`${prefix}-time`);
  const state = { measure: "cost", view: "canonical", series: null };
  const timeChart = new window.Chart(timeCanvas, {
    type: "line",
    data: { labels: [], datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      elements: { point: { radius: 0 }, line: { tension: 0.2 } },
      scales: { y: { stacked: true } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  function drawTime() {
    const { series, measure } = state;
    timeChart.data.labels = series.buckets;
    timeChart.data.datasets = series.series.map((line, n) => ({
      label: line.model,
      data: line[measure].map((text) => value(measure, text)),
      exact: line[measure],
      fill: n === 0 ? "origin" : "-1",
      borderColor: PALETTE[n % PALETTE.length],
      backgroundColor: `${PALETTE[n % PALETTE.length]}cc`,
    }));
    timeChart.options.plugins.tooltip = {
      callbacks: { label: (item) => `${item.dataset.label}: ${shown(measure, item.dataset.exact[item.dataIndex])}` },
    };
    timeChart.update();
    timeCanvas.dataset.measure = measure;
    timeCanvas.dataset.view = state.view;
    timeCanvas.dataset.models = series.series.map((line) => line.model).join(",");
  }
  async function loadTime() {
    state.series = await get("/api/analytics/models/over-time", { ...params, grain: "day", view: state.view });
    drawTime();
  }
  await loadTime();
  tabs(`${prefix}-time`, (measure) => {
    state.measure = measure;
    drawTime();
  });
  for (const radio of document.querySelectorAll(`input[name="${prefix}-view"]`)) {
    radio.addEventListener("change", async () => {
      state.view = radio.value;
      await loadTime();
    });
  }
  return ranking;
}
