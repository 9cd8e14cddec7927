// The keys page: every key of the account with its cap and spend, and what the viewer's role may do with them:
// create (the secret shown once), rotate, change the cap, revoke — each confirmed, each through the admin API, so
// the proxy sees it at once.
import { downloadCsv, el, get, percent, pickAccount, ready, send, status, usd, viewer } from "./dashboard.js";

const manages = viewer.kind === "master" || viewer.role === "owner" || viewer.role === "admin";
let account = null;
let shown = [];

function confirm({ title, text, action, field = null }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-button").textContent = action;
  document.getElementById("confirm-error").textContent = "";
  const wrapper = document.getElementById("confirm-field");
  const input = document.getElementById("confirm-input");
  wrapper.hidden = field === null;
  input.required = field !== null;
  if (field) {
    document.getElementById("confirm-label").textContent = field.label;
    input.value = field.value;
  }
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? input.value : null), { once: true });
  });
}

function showSecret(secret, title) {
  const dialog = document.getElementById("secret-dialog");
  document.getElementById("secret-title").textContent = title;
  document.getElementById("secret").value = secret;
  document.getElementById("copy-status").textContent = "";
  dialog.showModal();
}

async function act(label, work) {
  try {
    await work();
    status(label);
  } catch (error) {
    status(`Not done: ${error.message}`);
  }
  await load();
}

function actions(key) {
  const cell = el("td", { className: "actions" });
  cell.append(el("a", { href: `/dashboard/keys/${key.id}` }, "View statistics"));
  if (key.status === "revoked") return cell;
  const own = viewer.role === "member" && key.member_id === viewer.member;
  if (manages || own) {
    const rotate = el("button", { type: "button", className: "secondary" }, "Rotate");
    rotate.setAttribute("aria-label", `Rotate ${key.name}`);
    rotate.addEventListener("click", async () => {
      const ok = await confirm({ title: `Rotate ${key.name}?`, text: "The current secret stops working now; a new one is shown once.", action: "Rotate" });
      if (ok === null) return;
      await act(`${key.name} rotated.`, async () => showSecret((await send("POST", `/api/admin/virtual-keys/${key.id}/rotate`)).key, `The new secret of ${key.name}`));
    });
    cell.append(rotate);
  }
  if (manages) {
    const cap = el("button", { type: "button", className: "secondary" }, "Change cap");
    cap.setAttribute("aria-label", `Change cap of ${key.name}`);
    cap.addEventListener("click", async () => {
      const value = await confirm({
        title: `Spend cap of ${key.name}`,
        text: `Spent this period: ${usd(key.spend)}. The proxy applies a new cap to the next request.`,
        action: "Save cap",
        field: { label: "New cap (USD)", value: key.spend_cap ?? "" },
      });
      if (value === null) return;
      await act(`The cap of ${key.name} is now $${value}.`, () => send("PATCH", `/api/admin/virtual-keys/${key.id}`, { spend_cap: value }));
    });
    const revoke = el("button", { type: "button", className: "danger" }, "Revoke");
    revoke.setAttribute("aria-label", `Revoke ${key.name}`);
    revoke.addEventListener("click", async () => {
      const ok = await confirm({ title: `Revoke ${key.name}?`, text: "Requests with this key are refused from now on. This cannot be undone.", action: "Revoke" });
      if (ok === null) return;
      await act(`${key.name} revoked.`, () => send("POST", `/api/admin/virtual-keys/${key.id}/revoke`));
    });
    cell.append(cap, revoke);
  }
  return cell;
}

function row(key) {
  return el(
    "tr",
    { id: `key-${key.id}`, dataset: { status: key.status } },
    el("th", { scope: "row" }, key.name),
    el("td", {}, el("code", {}, key.key_prefix)),
    el("td", { className: `status-${key.status}` }, key.status),
    el("td", { className: "num cap", dataset: { exact: key.spend_cap ?? "" } }, key.spend_cap === null ? "none" : usd(key.spend_cap)),
    el("td", { className: "num spend", title: `$${key.spend}`, dataset: { exact: key.spend } }, usd(key.spend)),
    el("td", { className: "num used" }, percent(key.percent_used)),
    actions(key),
  );
}

async function load() {
  const params = { account_id: account, member_id: viewer.role === "member" ? viewer.member : null };
  const keys = (await get("/api/admin/virtual-keys", params)).data;
  document.querySelector("#keys-table tbody").replaceChildren(...keys.map(row));
  shown = keys;
  ready();
}

async function main() {
  account = await pickAccount();
  if (!account) {
    status("There is no account yet.");
    return;
  }
  document.getElementById("copy-secret").addEventListener("click", async () => {
    const secret = document.getElementById("secret");
    secret.select();
    await navigator.clipboard.writeText(secret.value);
    document.getElementById("copy-status").textContent = "Copied.";
  });
  if (manages) {
    const section = document.getElementById("create");
    section.hidden = false;
    const form = document.getElementById("create-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      const body = { account_id: account, name: data.name, cap_period: data.cap_period };
      if (data.spend_cap) body.spend_cap = data.spend_cap;
      await act(`${data.name} created.`, async () => {
        const created = await send("POST", "/api/admin/virtual-keys", body);
        form.reset();
        showSecret(created.key, `Your new key ${created.name}`);
      });
    });
  }
  document.getElementById("export").addEventListener("click", () =>
    downloadCsv("keys.csv", [
      ["id", "name", "key_prefix", "status", "member_id", "spend_cap_usd", "cap_period", "spend_usd", "percent_used"],
      ...shown.map((k) => [k.id, k.name, k.key_prefix, k.status, k.member_id, k.spend_cap, k.cap_period, k.spend, k.percent_used]),
    ]));
  await load();
}

main().catch((error) => {
  status(`Could not load the keys: ${error.message}`);
  ready("error");
});
