// The dashboard's entry: the token (AUTH_MODE), the timers, and the route between the two pages.
//
// The OrderFlow dashboard: ES modules, no build step. No inline script: the page's
// Content-Security-Policy allows scripts from this origin only.
import { AUTH_MODE, TEMPORAL_UI, setToken, token } from "./api.js";
import { refresh } from "./orders.js";
import { METRICS_EVERY_MS, forgetOperator, refreshOrder, route, sampleMetrics } from "./operator.js";

document.getElementById("temporal-link").href = TEMPORAL_UI;

if (AUTH_MODE === "off") {
  document.getElementById("open-banner").hidden = false;
} else {
  document.getElementById("customer").value = "";
  document.getElementById("customer").required = false;
  document.getElementById("customer").placeholder = "the token's own";
  document.getElementById("token-form").hidden = false;
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(document.getElementById("token").value.trim() || null);
    document.getElementById("who").textContent = token ? "token set" : "";
    // Another token may be another person: forget what the last one was allowed to see.
    forgetOperator();
    refresh();
    sampleMetrics();
  });
}

// The orders page, or the operator's (#operator, #operator/<order id>): see operator.js.
window.addEventListener("hashchange", route);

refresh();
setInterval(refresh, 1000);
sampleMetrics();
setInterval(sampleMetrics, METRICS_EVERY_MS);
setInterval(refreshOrder, 2000);
route();
