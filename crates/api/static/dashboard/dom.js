// Small DOM helpers of both pages: text nodes, table cells, breakable names, elements by id.

export const text = (value) => document.createTextNode(value ?? "");
export const cell = (row, value, className) => {
  const td = row.insertCell();
  if (value instanceof Node) td.appendChild(value); else td.appendChild(text(value));
  if (className) td.className = className;
  return td;
};
// A snake_case name that may break after its underscores when its column is narrow.
export const breakable = (value) => {
  const span = document.createElement("span");
  (value ?? "").split("_").forEach((part, i) => {
    if (i) span.append("_", document.createElement("wbr"));
    span.append(part);
  });
  return span;
};
export const byId = (id) => document.getElementById(id);
