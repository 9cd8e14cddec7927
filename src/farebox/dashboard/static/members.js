// Member analytics (seed 003): each member's spend over the range, most spent first. Enterprise accounts only;
// other plans see an upgrade card, and roles other than owner and admin an access notice (the API's answer).
import { ApiError, count, downloadCsv, el, get, pageParams, pickAccount, rate, ready, status, usd, viewer } from "./dashboard.js";

export function fillRange(answer, account) {
  const form = document.getElementById("filters");
  form.elements.from.value = answer.from;
  form.elements.to.value = answer.to;
  form.elements.account_id.value = account || "";
  form.elements.account_id.disabled = !account;
}

async function main() {
  const account = await pickAccount();
  if (!account) {
    status("There is no account yet.");
    return;
  }
  const params = pageParams();
  const wanted = { account_id: account, from: params.from, to: params.to };
  let answer;
  try {
    answer = await get("/api/analytics/members", wanted);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    document.getElementById(error.message.includes("enterprise") ? "upgrade" : "denied").hidden = false;
    document.getElementById("filters").hidden = true;
    ready();
    return;
  }
  fillRange(answer, viewer.kind === "master" ? account : null);
  const query = new URLSearchParams(Object.entries({ ...wanted, account_id: viewer.kind === "master" ? account : "" }).filter(([, v]) => v)).toString();
  const rows = answer.data.map((member) =>
    el(
      "tr",
      { id: `member-${member.member_id}` },
      el("th", { scope: "row" }, el("a", { href: `/dashboard/members/${member.member_id}?${query}` }, member.name)),
      el("td", {}, member.role),
      el("td", { className: "num cost", title: `$${member.cost}`, dataset: { exact: member.cost } }, usd(member.cost)),
      el("td", { className: "num" }, count(member.tokens)),
      el("td", { className: "num" }, count(member.requests)),
      el("td", { className: "num" }, rate(member.error_rate)),
      el("td", { className: "num" }, count(member.key_count)),
    ));
  document.querySelector("#members-table tbody").replaceChildren(...rows);
  document.getElementById("members").hidden = false;
  const header = ["member_id", "name", "email", "role", "cost_usd", "tokens", "requests", "error_rate", "key_count"];
  document.getElementById("export").addEventListener("click", () =>
    downloadCsv(`members-${answer.from}-${answer.to}.csv`, [
      header,
      ...answer.data.map((m) => [m.member_id, m.name, m.email, m.role, m.cost, m.tokens, m.requests, m.error_rate, m.key_count]),
    ]));
  ready();
}

if (document.body.dataset.page === "members") {
  main().catch((error) => {
    status(`Could not load the members: ${error.message}`);
    ready("error");
  });
}
