// Alerts: what the account's rules and anomaly detectors fired, with their evidence and a link to the key; and
// each webhook endpoint with its delivery log, where a failed delivery can be sent once more.
import { downloadCsv, el, get, pickAccount, ready, send, status, viewer } from "./dashboard.js";

const manages = viewer.kind === "master" || viewer.role === "owner" || viewer.role === "admin";
let account = null;
let firedShown = [];

function when(text) {
  return text ? new Date(text).toLocaleString("en-GB", { hour12: false }) : "—";
}

function evidence(values) {
  const list = el("dl", { className: "evidence" });
  for (const [name, value] of Object.entries(values)) {
    list.append(el("dt", {}, name), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)));
  }
  return el("details", {}, el("summary", {}, "Evidence"), list);
}

function subject(alert) {
  if (alert.scope === "key") return el("a", { href: `/dashboard/keys/${alert.scope_id}` }, "key");
  if (alert.scope === "member") return el("a", { href: `/dashboard/members/${alert.scope_id}` }, "member");
  return alert.scope;
}

async function loadFired() {
  const fired = (await get(`/api/admin/accounts/${account}/alerts/history`, { limit: 50 })).data;
  firedShown = fired;
  const rows = fired.map((alert) =>
    el(
      "tr",
      { className: "fired", dataset: { rule: alert.rule, scope: alert.scope, scopeId: alert.scope_id } },
      el("td", {}, when(alert.fired_at)),
      el("td", {}, alert.rule),
      el("td", {}, subject(alert)),
      el("td", { className: "text" }, alert.text),
      el("td", {}, evidence(alert.evidence)),
    ));
  const none = el("tr", {}, el("td", { colSpan: 5, className: "empty" }, "Nothing has fired yet."));
  document.querySelector("#fired-table tbody").replaceChildren(...(rows.length ? rows : [none]));
}

function deliveryRow(hook, delivery) {
  const action = el("td", {});
  if (delivery.status === "failed" && manages) {
    const retry = el("button", { type: "button", className: "secondary" }, "Retry");
    retry.setAttribute("aria-label", `Retry ${delivery.event_type} ${delivery.id}`);
    retry.addEventListener("click", async () => {
      try {
        await send("POST", `/api/admin/webhooks/${hook.id}/deliveries/${delivery.id}/retry`);
        status(`Delivery ${delivery.id} is due again.`);
      } catch (error) {
        status(`Not retried: ${error.message}`);
      }
      await loadHooks();
    });
    action.append(retry);
  }
  return el(
    "tr",
    { id: `delivery-${delivery.id}`, dataset: { status: delivery.status } },
    el("td", {}, when(delivery.created_at)),
    el("td", {}, delivery.event_type),
    el("td", { className: `delivery-${delivery.status}` }, delivery.status),
    el("td", { className: "num" }, String(delivery.attempts)),
    el("td", {}, delivery.last_status_code === null ? (delivery.last_error || "—") : `HTTP ${delivery.last_status_code}`),
    action,
  );
}

async function loadHooks() {
  const hooks = (await get("/api/admin/webhooks", { account_id: account })).data;
  const sections = await Promise.all(hooks.map(async (hook) => {
    const log = (await get(`/api/admin/webhooks/${hook.id}/deliveries`, { limit: 20 })).data;
    const head = el("tr", {}, ...["Created", "Event", "Status", "Attempts", "Last answer", ""].map((name) => el("th", { scope: "col" }, name)));
    const body = log.length ? log.map((delivery) => deliveryRow(hook, delivery)) : [el("tr", {}, el("td", { colSpan: 6, className: "empty" }, "No deliveries yet."))];
    return el(
      "article",
      { className: "hook", id: `hook-${hook.id}` },
      el("h3", {}, hook.url),
      el("p", { className: "hint" }, `${hook.enabled ? "Enabled" : "Disabled"} · ${hook.events.join(", ") || "every event"}`),
      el("div", { className: "scroll", tabIndex: 0 }, el("table", {}, el("caption", { className: "visually-hidden" }, `Deliveries to ${hook.url}`), el("thead", {}, head), el("tbody", {}, ...body))),
    );
  }));
  document.getElementById("hooks").replaceChildren(...(sections.length ? sections : [el("p", { className: "empty" }, "No webhook endpoints.")]));
}

async function main() {
  account = await pickAccount();
  if (!account) {
    status("There is no account yet.");
    return;
  }
  document.getElementById("export").addEventListener("click", () =>
    downloadCsv("alerts.csv", [
      ["fired_at", "rule", "event_type", "scope", "scope_id", "text", "evidence"],
      ...firedShown.map((a) => [a.fired_at, a.rule, a.event_type, a.scope, a.scope_id, a.text, JSON.stringify(a.evidence)]),
    ]));
  await Promise.all([loadFired(), loadHooks()]);
  ready();
}

main().catch((error) => {
  status(`Could not load the alerts: ${error.message}`);
  ready("error");
});
