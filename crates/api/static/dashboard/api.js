// What every page of the dashboard shares: the server's settings, the token, and calls to the API.
//
// Filled in by the server (data attributes of <body>): where the Temporal Web UI is, the
// namespace, and AUTH_MODE.
export const TEMPORAL_UI = document.body.dataset.temporalUiUrl;
export const NAMESPACE = document.body.dataset.temporalNamespace;
export const AUTH_MODE = document.body.dataset.authMode;
// The simulated payment provider, when the dashboard may play the customer's bank app.
export const PAYMENT_SIMULATOR = document.body.dataset.paymentSimulator;

// AUTH_MODE=jwt: every call carries the token typed in above. It lives in this variable only
// (not in localStorage, where any script of this origin could read it later).
export let token = null;
export const setToken = (value) => {
  token = value;
};
export const api = (path, options = {}) => {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { ...options, headers });
};
