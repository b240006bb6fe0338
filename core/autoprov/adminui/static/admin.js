// Optional: narrows long tables as one types. Everything works without it.
"use strict";
document.querySelectorAll("[data-filter-table]").forEach(function (input) {
  var table = document.getElementById(input.dataset.filterTable);
  if (!table) return;
  input.closest(".js-only").hidden = false;
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
    });
  });
});

// A form that may take a while (a large CSV): say so while the server works.
document.querySelectorAll("form[data-busy]").forEach(function (form) {
  form.addEventListener("submit", function () {
    var note = form.querySelector(".busy");
    if (!note) return;
    note.querySelector("span").textContent = form.dataset.busy;
    note.hidden = false;
  });
});

// A CSV import running in the background: poll its status URL and show the rows checked and the errors as
// they are found; reload when it has finished (the page then shows the result). Without this script the
// page refreshes itself (a <noscript> meta refresh), and it has a "Check again" link.
(function () {
  var job = document.getElementById("import-job");
  if (!job || job.dataset.running !== "1") return;
  var after = Number(job.dataset.lastError) || 0;
  var shown = Number(job.dataset.shown) || 0;
  var maxShown = Number(job.dataset.maxShown) || 1000;
  var list = document.getElementById("import-errors");
  var fmt = function (n) { return Number(n).toLocaleString("en"); };
  function show(s) {
    var bar = document.getElementById("import-progress");
    if (s.rows_total !== null) bar.max = Math.max(s.rows_total, 1);
    bar.value = Math.min(s.rows_checked, s.rows_total || 0);
    document.getElementById("import-count").textContent = fmt(s.rows_checked) + " of " +
      (s.rows_total === null ? "…" : fmt(s.rows_total)) + " rows checked";
    document.getElementById("import-errors-count").textContent = fmt(s.error_count) + " error(s) so far";
    s.errors.forEach(function (e) {
      after = Math.max(after, e.id);
      if (!list || shown >= maxShown) return;
      var item = document.createElement("li");
      item.textContent = (e.line === null ? "" : "line " + e.line + ": ") + e.message;  // text, never HTML
      list.appendChild(item);
      shown += 1;
      var none = document.getElementById("import-no-errors");
      if (none) none.hidden = true;
    });
  }
  function poll() {
    fetch(job.dataset.statusUrl + "?after=" + after, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (!r.ok || type.indexOf("application/json") !== 0) throw new Error("status " + r.status);
        return r.json();
      })
      .then(function (s) {
        show(s);
        if (s.running) window.setTimeout(poll, s.errors.length ? 200 : 700);
        else window.location.reload();
      })
      .catch(function () { window.setTimeout(function () { window.location.reload(); }, 3000); });
  }
  window.setTimeout(poll, 300);
})();
