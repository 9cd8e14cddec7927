// One member's usage (seed 003): summary cards, most used model, provider and app, cost by model, top providers
// and top apps for the range.
import { count, el, fillSummary, get, pageParams, rate, ready, status, usd, viewer } from "./dashboard.js";
import { fillRange } from "./members.js";

function table(id, first, rows) {
  const node = document.getElementById(id);
  const head = el("tr", {}, ...[first, "Cost", "Requests", "Tokens", "Error rate"].map((name, n) =>
    el("th", { scope: "col", className: n ? "num" : "" }, name)));
  const body = rows.map((row) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, row.model ?? row.provider ?? row.app),
      el("td", { className: "num", title: `$${row.cost}`, dataset: { exact: row.cost } }, usd(row.cost)),
      el("td", { className: "num" }, count(row.requests)),
      el("td", { className: "num" }, count(row.tokens)),
      el("td", { className: "num" }, rate(row.error_rate)),
    ));
  const none = el("tr", {}, el("td", { colSpan: 5, className: "empty" }, "None in this range."));
  node.replaceChildren(el("thead", {}, head), el("tbody", {}, ...(body.length ? body : [none])));
}

async function main() {
  const memberId = document.getElementById("summary").dataset.member;
  const params = pageParams();
  const account = params.account_id || viewer.account;
  const answer = await get(`/api/analytics/members/${memberId}`, { account_id: account, from: params.from, to: params.to });
  document.querySelector("h1").textContent = answer.member.name;
  document.title = `${answer.member.name} · farebox`;
  fillRange(answer, viewer.kind === "master" ? account : null);
  document.getElementById("back").search = viewer.kind === "master" ? `?account_id=${account}` : "";
  fillSummary(answer.summary);
  const most = answer.most_used;
  document.getElementById("most-used").replaceChildren(
    el("dt", {}, "Model"), el("dd", {}, most.model ?? "—"),
    el("dt", {}, "Provider"), el("dd", {}, most.provider ?? "—"),
    el("dt", {}, "App"), el("dd", {}, most.app ?? "—"),
  );
  table("models-table", "Model", answer.models);
  table("providers-table", "Provider", answer.providers);
  table("apps-table", "App", answer.apps);
  ready();
}

main().catch((error) => {
  status(`Could not load the member: ${error.message}`);
  ready("error");
});
