// Shared by every dashboard page: the API with the session's credential, exact money, the account picker.
// Each page script is a module importing what it needs from here; nothing runs inline (the page's CSP).

const body = document.body;
export const viewer = {
  kind: body.dataset.kind,
  account: body.dataset.account || null,
  role: body.dataset.role || null,
  member: body.dataset.member || null,
  csrf: body.dataset.csrf,
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function apiUrl(path, params) {
  return `${path}${query(params)}`;
}

async function answer(response) {
  if (response.status === 401) {
    window.location.assign(`/dashboard/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, "Your session has ended: sign in again.");
  }
  const text = await response.text();  // 202 and 204 answers have no body
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data?.error?.message || `HTTP ${response.status}`);
  return data;
}

/** GET a JSON answer of farebox's API as the signed-in user. */
export async function get(path, params) {
  const response = await fetch(apiUrl(path, params), {
    credentials: "same-origin",
    headers: { accept: "application/json" },
  });
  return answer(response);
}

/** POST, PATCH or DELETE with the session's CSRF token. */
export async function send(method, path, payload) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { accept: "application/json", "content-type": "application/json", "x-csrf-token": viewer.csrf },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  return answer(response);
}

const NANO = 1_000_000_000n;

/** An exact decimal string of the API ("12.3456789", "-0.5") as a BigInt of nano-units. */
export function nano(text) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const value = BigInt(whole || "0") * NANO + BigInt((fraction + "000000000").slice(0, 9));
  return negative ? -value : value;
}

/** A BigInt of nano-units as an exact decimal string, as the API writes money ("12.5", "-0.000001"). */
export function decimal(value) {
  const magnitude = value < 0n ? -value : value;
  const fraction = (magnitude % NANO).toString().padStart(9, "0").replace(/0+$/, "");
  return `${value < 0n ? "-" : ""}${magnitude / NANO}${fraction ? `.${fraction}` : ""}`;
}

function grouped(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function rounded(value, places) {
  const unit = 10n ** BigInt(9 - places);
  const magnitude = value < 0n ? -value : value;
  const cents = (magnitude + unit / 2n) / unit;
  const scale = 10n ** BigInt(places);
  const whole = grouped((cents / scale).toString());
  const fraction = (cents % scale).toString().padStart(places, "0");
  return { zero: cents === 0n, text: `${value < 0n ? "-" : ""}$${whole}.${fraction}` };
}

/** USD for people: to the cent, or to four places when a non-zero amount is below a cent. Exact (BigInt). */
export function usd(text) {
  const value = nano(text);
  const cents = rounded(value, 2);
  if (!cents.zero || value === 0n) return cents.text;
  const fine = rounded(value, 4);
  return fine.zero ? "< $0.0001" : fine.text;
}

export function count(value) {
  return Number(value).toLocaleString("en-US");
}

/** An error rate of the API (a fraction, "0.0123") as a percentage to two places. */
export function rate(text) {
  return `${(Number(text) * 100).toFixed(2)}%`;
}

/** The summary cards (`summary_cards` in the templates): cost, tokens, requests and error rate of a range. */
export function fillSummary(summary) {
  const cost = document.getElementById("stat-cost");
  cost.textContent = usd(summary.cost);
  cost.dataset.exact = summary.cost;
  document.getElementById("stat-tokens").textContent = count(summary.tokens);
  document.getElementById("stat-requests").textContent = count(summary.requests);
  document.getElementById("stat-errors").textContent = rate(summary.error_rate);
}

export function percent(text) {
  return text === null || text === undefined ? "no cap" : `${text}%`;
}

/** The page has drawn its figures: `data-ready` for tests, and a User Timing mark (`farebox:ready`) for
 * `bench/dashboard.py`, which times how long a page takes to become usable. */
export function ready(state = "true") {
  if (state === "true" && !document.body.dataset.ready) performance.mark("farebox:ready");
  document.body.dataset.ready = state;
}

export function status(message) {
  document.getElementById("status").textContent = message;
}

/** A new element: `el("td", {className: "num", dataset: {exact: "12.5"}}, "$12.50")`. */
export function el(tag, props, ...children) {
  const { dataset, ...rest } = props || {};
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset || {});
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

/** The page's own query parameters, as the filters form sent them. */
export function pageParams() {
  return Object.fromEntries(new URLSearchParams(location.search).entries());
}

/**
 * The account the page shows: a member's own; for the operator the one in the URL or, failing that, the first
 * account, with a picker in the header that reloads the page on another.
 */
export async function pickAccount() {
  if (viewer.kind !== "master") return viewer.account;
  const picker = document.getElementById("account");
  const accounts = (await get("/api/admin/accounts")).data;
  const wanted = pageParams().account_id;
  const chosen = accounts.find((account) => account.id === wanted) || accounts[0];
  picker.replaceChildren(...accounts.map((account) => el("option", { value: account.id }, account.name)));
  if (!chosen) return null;
  picker.value = chosen.id;
  picker.addEventListener("change", () => {
    const params = new URLSearchParams({ account_id: picker.value });
    location.assign(`${location.pathname}?${params}`);
  });
  return chosen.id;
}

/** Colours for series, distinct for the usual colour blindnesses (Okabe–Ito, then Paul Tol's muted). */
export const PALETTE = [
  "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
  "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
];

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Offer `rows` (the first one the header) as a CSV file download: what the view shows, exact as the API said it. */
export function downloadCsv(filename, rows) {
  const text = rows.map((row) => row.map(csvField).join(",")).join("\n") + "\n";
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(link.href);
}
