/* scalinglab study report: hover tooltips and legend toggling for the inline SVG charts.
   Plain JavaScript, no dependencies. Any error is shown on the page and in the title, so a
   headless browser test can read it back from the DOM. */
(function () {
  "use strict";

  function fail(message) {
    var box = document.getElementById("js-errors");
    if (box) {
      box.hidden = false;
      box.textContent += "JavaScript error: " + message + "\n";
    }
    document.title = "JS error: " + message;
    document.body.setAttribute("data-js", "error");
  }

  window.addEventListener("error", function (event) {
    fail(event.message || String(event.error));
  });

  function tipTarget(node) {
    return node && node.closest ? node.closest("[data-tip]") : null;
  }

  function setupTooltips() {
    var tip = document.getElementById("tooltip");
    var current = null;
    function place(event) {
      var pad = 14;
      var x = event.clientX + pad;
      var y = event.clientY + pad;
      if (x + tip.offsetWidth > window.innerWidth) { x = event.clientX - tip.offsetWidth - pad; }
      if (y + tip.offsetHeight > window.innerHeight) { y = event.clientY - tip.offsetHeight - pad; }
      tip.style.left = Math.max(0, x) + "px";
      tip.style.top = Math.max(0, y) + "px";
    }
    document.addEventListener("mouseover", function (event) {
      var target = tipTarget(event.target);
      if (!target || target === current) { return; }
      if (current) { current.classList.remove("hover"); }
      current = target;
      current.classList.add("hover");
      tip.textContent = target.getAttribute("data-tip");
      tip.hidden = false;
      place(event);
    });
    document.addEventListener("mousemove", function (event) {
      if (current) { place(event); }
    });
    document.addEventListener("mouseout", function (event) {
      if (current && tipTarget(event.target) === current && tipTarget(event.relatedTarget) !== current) {
        current.classList.remove("hover");
        current = null;
        tip.hidden = true;
      }
    });
  }

  function setupLegends() {
    var charts = document.querySelectorAll("section.chart");
    Array.prototype.forEach.call(charts, function (chart) {
      var buttons = chart.querySelectorAll(".legend-item");
      function show(key, visible) {
        var marks = chart.querySelectorAll('[data-s="' + key + '"]');
        Array.prototype.forEach.call(marks, function (mark) {
          if (mark.classList.contains("legend-item")) {
            mark.setAttribute("aria-pressed", visible ? "true" : "false");
          } else if (visible) {
            mark.classList.remove("off");
          } else {
            mark.classList.add("off");
          }
        });
      }
      Array.prototype.forEach.call(buttons, function (button) {
        var key = button.getAttribute("data-s");
        button.addEventListener("click", function () {
          show(key, button.getAttribute("aria-pressed") === "false");
        });
        button.addEventListener("dblclick", function () {
          Array.prototype.forEach.call(buttons, function (other) {
            show(other.getAttribute("data-s"), other === button);
          });
        });
      });
      var all = chart.querySelector(".legend-all");
      if (all) {
        all.addEventListener("click", function () {
          Array.prototype.forEach.call(buttons, function (b) { show(b.getAttribute("data-s"), true); });
        });
      }
    });
  }

  try {
    setupTooltips();
    setupLegends();
    var data = JSON.parse(document.getElementById("report-data").textContent);
    document.body.setAttribute("data-figures", String(data.figures.length));
    if (document.body.getAttribute("data-js") !== "error") {
      document.body.setAttribute("data-js", "ok");
    }
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
  }
}());
