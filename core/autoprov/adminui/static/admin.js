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
