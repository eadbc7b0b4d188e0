// The orders page: recent orders (cancel, answer a payment), the order form and the stock.
import { AUTH_MODE, NAMESPACE, PAYMENT_SIMULATOR, TEMPORAL_UI, api, token } from "./api.js";
import { breakable, cell } from "./dom.js";
import { operator } from "./operator.js";

const say = (message, isError) => {
  const box = document.getElementById("message");
  box.textContent = message;
  box.className = isError ? "error" : "";
};
let products = [];
// The statuses an order can still be cancelled in (OrderStatus: completed, failed and
// cancelled are final).
const CANCELLABLE = new Set(["pending", "validating", "payment"]);
// A fresh Idempotency-Key per submission (crypto.randomUUID needs a secure context).
const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);

async function refreshProducts() {
  products = await (await api("/api/products")).json();
  const body = document.querySelector("#products tbody");
  body.replaceChildren();
  for (const p of products) {
    const row = body.insertRow();
    row.dataset.product = p.id;
    cell(row, `${p.name}`, "name");
    cell(row, p.price, "num");
    cell(row, p.available, "num");
    cell(row, p.reserved, "num");
    cell(row, p.sold, "num");
  }
  const select = document.getElementById("product");
  if (select.options.length !== products.length) {
    select.replaceChildren(...products.map((p) => new Option(`${p.name} (${p.price})`, p.id)));
  }
}

async function refreshOrders() {
  if (AUTH_MODE !== "off" && !token) return;
  const response = await api("/api/orders?limit=25");
  const page = await response.json();
  if (!response.ok) throw new Error(page.detail);
  const body = document.querySelector("#orders tbody");
  body.replaceChildren();
  for (const o of page.orders) {
    const row = body.insertRow();
    row.dataset.workflowId = o.workflow_id;
    row.dataset.status = o.status;
    cell(row, new Date(o.created_at).toLocaleTimeString());
    // Operators open the order's page from here (customers have no such page).
    if (operator === true) {
      const details = document.createElement("a");
      details.className = "details";
      details.href = `#operator/${encodeURIComponent(o.order_id)}`;
      details.textContent = o.order_id.slice(0, 8) + "…";
      cell(row, details);
    } else {
      cell(row, o.order_id.slice(0, 8) + "…");
    }
    cell(row, o.customer_id, "wrap");
    cell(row, o.total_amount, "num");
    const badge = document.createElement("span");
    badge.className = `status ${o.status}`;
    badge.textContent = o.error_code ? `${o.status}: ${o.error_code}` : o.status;
    cell(row, badge, "badge");
    cell(row, breakable(o.current_step), "step");
    const link = document.createElement("a");
    link.href = `${TEMPORAL_UI}/namespaces/${NAMESPACE}/workflows/${encodeURIComponent(o.workflow_id)}`;
    link.textContent = "workflow";
    link.className = "workflow";
    link.target = "_blank";
    cell(row, link);
    // Only an order still in flight can be cancelled; a finished one keeps an empty cell.
    const actions = [];
    if (CANCELLABLE.has(o.status)) {
      const cancel = document.createElement("button");
      cancel.className = "secondary cancel";
      cancel.textContent = "cancel";
      cancel.onclick = () => cancelOrder(o.workflow_id);
      actions.push(cancel);
    }
    // A payment awaiting the customer: answer for them, at the simulated provider.
    if (PAYMENT_SIMULATOR && o.current_step === "await_payment" && o.payment_id) {
      for (const [label, succeed] of [["confirm payment", true], ["refuse payment", false]]) {
        const answer = document.createElement("button");
        answer.className = `secondary ${succeed ? "confirm-payment" : "refuse-payment"}`;
        answer.textContent = label;
        answer.onclick = () => answerPayment(o.payment_id, succeed);
        actions.push(answer);
      }
    }
    const actionsCell = row.insertCell();
    actionsCell.className = "actions";
    actionsCell.append(...actions);
  }
}

async function answerPayment(paymentId, succeed) {
  const response = await fetch(`${PAYMENT_SIMULATOR}/v1/payment_intents/${encodeURIComponent(paymentId)}/confirm`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ succeed }),
  }).catch((e) => ({ ok: false, json: async () => ({ error: { message: String(e) } }) }));
  const body = await response.json().catch(() => ({}));
  say(response.ok ? `Payment ${succeed ? "confirmed" : "refused"} at the provider.` : body.error?.message ?? "the provider refused", !response.ok);
  refreshOrders();
}

async function cancelOrder(workflowId) {
  const response = await api(`/api/orders/cancel?workflow_id=${encodeURIComponent(workflowId)}`, { method: "POST" });
  const body = await response.json();
  say(response.ok ? "Cancellation accepted." : body.detail, !response.ok);
  refreshOrders();
}

document.getElementById("order-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const product = products.find((p) => p.id === document.getElementById("product").value);
  // With a token, an empty customer means the token's own (its sub).
  const customer = document.getElementById("customer").value.trim();
  const order = {
    ...(customer ? { customer_id: customer } : {}),
    items: [{ product_id: product.id, name: product.name, quantity: Number(document.getElementById("quantity").value), price: product.price }],
  };
  const response = await api("/api/orders", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
    body: JSON.stringify(order),
  });
  const body = await response.json();
  say(response.ok ? `Order ${body.order_id.slice(0, 8)}… accepted.` : body.detail, !response.ok);
  refreshOrders();
});

export async function refresh() {
  try {
    await Promise.all([refreshOrders(), refreshProducts()]);
  } catch (e) {
    say(`Cannot reach OrderFlow: ${e}`, true);
  }
}
