// Accessibility checks run in the page by test_admin_a11y_browser.py; returns a list of problems (strings).
// Labels and names, unique ids, no positive tabindex, a visible focus ring, focus order that follows the
// layout, and text contrast (WCAG 2 AA: 4.5:1, 3:1 for large text) against the composited background.
var problems = [];
function describe(el) { return el.outerHTML.slice(0, 140).replace(/\s+/g, " "); }
function visible(el) {
  var folded = el.closest("details:not([open])");  // a closed <details> shows its summary only
  if (folded && !(el.tagName === "SUMMARY" && el.parentElement === folded)) return false;
  return el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
}

document.querySelectorAll("input, select, textarea").forEach(function (el) {
  if (["hidden", "submit", "button", "reset"].indexOf(el.type) >= 0) return;
  var label = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
  if (!(label || el.closest("label") || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")))
    problems.push("form field without a label: " + describe(el));
  var described = el.getAttribute("aria-describedby");
  if (described) described.split(/\s+/).forEach(function (id) {
    if (!document.getElementById(id)) problems.push("aria-describedby names no element: " + describe(el));
  });
});
var ids = {};
document.querySelectorAll("[id]").forEach(function (el) {
  if (ids[el.id]) problems.push("duplicate id " + JSON.stringify(el.id));
  ids[el.id] = true;
});
document.querySelectorAll("label[for]").forEach(function (label) {
  if (!document.getElementById(label.htmlFor)) problems.push("label for a missing field: " + describe(label));
});
document.querySelectorAll("a[href], button, summary").forEach(function (el) {
  var name = el.textContent.trim() || el.getAttribute("aria-label") || el.getAttribute("title");
  if (!name) problems.push("link or button without a name: " + describe(el));
});
document.querySelectorAll("table").forEach(function (table) {
  if (visible(table) && !table.querySelector("th")) problems.push("table without headers: " + describe(table));
});
document.querySelectorAll("[tabindex]").forEach(function (el) {
  if (el.tabIndex > 0) problems.push("positive tabindex: " + describe(el));
});
if (document.querySelectorAll("h1").length !== 1) problems.push(document.querySelectorAll("h1").length + " h1");
var level = 0;
document.querySelectorAll("h1, h2, h3, h4, h5, h6").forEach(function (h) {
  var next = Number(h.tagName[1]);
  if (next > level + 1) problems.push("heading h" + next + " after h" + level + ": " + describe(h));
  level = next;
});
if (!document.documentElement.lang) problems.push("no lang");

// Focus: every control in the order Tab reaches it (the DOM's: no positive tabindex) must show a ring, and
// never jump back to an earlier row of the layout.
var focusables = Array.prototype.filter.call(
  document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]"),
  function (el) { return !el.disabled && el.type !== "hidden" && el.tabIndex >= 0 && visible(el); });
var previous = null;
focusables.forEach(function (el) {
  if (el.classList.contains("skip")) return;  // off-screen until focused, then first
  var rect = el.getBoundingClientRect();
  if (previous && rect.bottom <= previous.rect.top + 1)
    problems.push("focus goes back up the page: " + describe(previous.el) + " -> " + describe(el));
  previous = {el: el, rect: rect};
});
var first = focusables[0];
if (!first || !first.classList.contains("skip")) problems.push("the first stop of Tab is not 'Skip to content'");

function rgba(text) {
  var m = /rgba?\(([^)]+)\)/.exec(text);
  if (!m) return null;
  var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function background(el) {
  var layers = [];
  for (var e = el; e; e = e.parentElement) {
    var c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  var out = [255, 255, 255];
  for (var i = layers.length - 1; i >= 0; i--) {
    var c = layers[i];
    out = [0, 1, 2].map(function (k) { return c[k] * c[3] + out[k] * (1 - c[3]); });
  }
  return out;
}
function luminance(c) {
  var a = c.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
}
function opacity(el) {
  var o = 1;
  for (var e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
  return o;
}
// For the test's Tab walk: the contrast of the focused control's ring with what surrounds it (WCAG 1.4.11: 3:1).
window.autoprovRingContrast = function (el) {
  var style = getComputedStyle(el);
  var ring = rgba(style.outlineColor);
  var around = background(el.parentElement || el);
  var shown = [0, 1, 2].map(function (k) { return ring[k] * ring[3] + around[k] * (1 - ring[3]); });
  var l1 = luminance(shown), l2 = luminance(around);
  return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
};
var checked = 0;
document.querySelectorAll("body *").forEach(function (el) {
  var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  var isField = el.matches("input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=file]), textarea, select");
  if (!(own || isField) || !visible(el) || el.closest("[disabled], .skip")) return;
  var style = getComputedStyle(el);
  var bg = background(el);
  var fg = rgba(style.color);
  var alpha = fg[3] * opacity(el);
  var shown = [0, 1, 2].map(function (k) { return fg[k] * alpha + bg[k] * (1 - alpha); });
  var l1 = luminance(shown), l2 = luminance(bg);
  var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  var size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  var needed = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
  checked += 1;
  if (ratio < needed) problems.push("contrast " + ratio.toFixed(2) + " < " + needed + ": " + describe(el));
});
if (!checked) problems.push("no text checked");
return problems;
