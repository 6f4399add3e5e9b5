// Inbound error console: the little the pages need beyond HTML. Loaded as a file (the
// Content-Security-Policy allows no inline script). Everything works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.documentElement.classList.add("js");
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      });
    });
  });
});

// The fix editor: each named operation's button adds its template to the operations. A
// list in the textarea gets the template appended (one operation per line); text that is
// not a JSON list is left alone and the template goes in at the cursor.
document.addEventListener("DOMContentLoaded", function () {
  function listed(ops) {
    return ops.length ? "[\n  " + ops.map(function (op) { return JSON.stringify(op); }).join(",\n  ") + "\n]" : "[]";
  }
  document.querySelectorAll("button[data-fix-op]").forEach(function (button) {
    button.addEventListener("click", function () {
      var area = document.getElementById(button.getAttribute("data-fix-target"));
      if (!area) { return; }
      var template = JSON.parse(button.getAttribute("data-fix-op"));
      var text = area.value.trim();
      var ops = null;
      try { ops = text ? JSON.parse(text) : []; } catch (ignored) { ops = null; }
      if (Array.isArray(ops)) {
        ops.push(template);
        area.value = listed(ops);
      } else {
        var at = area.selectionStart || 0;
        area.setRangeText(JSON.stringify(template), at, area.selectionEnd || at, "end");
      }
      area.focus();
    });
  });
});
