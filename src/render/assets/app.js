// crs-cds app page (issue 13). Served at /app/static/app.js; loaded with `defer`.
//
// Makes the course chart interactive: hovering, focusing (Tab) or tapping a grade point or a
// not-assessable band shows its grade, evidence and time in the details panel; Escape or the
// Close button hides it; the arrow keys move between the points of one syndrome. The text
// comes from the marks' data- attributes and is set with textContent only (never as HTML).
// Without this script the marks' <title> tooltips and the episodes table still work. The page
// draws the chart twice (wide and narrow, CSS shows one): the handlers are bound to both.
(function () {
  "use strict";

  var charts = Array.prototype.slice.call(document.querySelectorAll(".course-chart"));
  var panel = document.getElementById("point-details");
  if (charts.length === 0 || !panel) {
    return;
  }
  var title = document.getElementById("details-title");
  var time = document.getElementById("details-time");
  var evidence = document.getElementById("details-evidence");
  var close = document.getElementById("details-close");
  var active = null;
  var quiet = false;

  function markOf(target, chart) {
    while (target && target !== chart) {
      if (target.classList &&
          (target.classList.contains("grade-point") || target.classList.contains("gap-band"))) {
        return target;
      }
      target = target.parentNode;
    }
    return null;
  }

  function syndromeName(mark) {
    return mark.getAttribute("data-syndrome") === "icans" ? "ICANS" : "CRS";
  }

  function show(mark) {
    if (active && active !== mark) {
      active.classList.remove("active");
    }
    active = mark;
    mark.classList.add("active");
    var name = syndromeName(mark);
    var grade = mark.getAttribute("data-grade") || "";
    var na = mark.classList.contains("gap-band");
    title.textContent = na ? name + " not assessable" : name + " grade " + grade;
    time.textContent = (mark.getAttribute("data-time") || "") +
      " · day " + (mark.getAttribute("data-day") || "?");
    while (evidence.firstChild) {
      evidence.removeChild(evidence.firstChild);
    }
    var lines = (mark.getAttribute("data-evidence") || "").split("\n").filter(function (l) {
      return l.length > 0;
    });
    if (lines.length === 0) {
      lines = ["no findings recorded for this grade"];
    }
    lines.forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      evidence.appendChild(li);
    });
    panel.setAttribute("data-syndrome", mark.getAttribute("data-syndrome") || "");
    panel.setAttribute("data-state", na ? "na" : "graded");
    panel.hidden = false;
  }

  function hide() {
    if (active) {
      active.classList.remove("active");
    }
    active = null;
    panel.hidden = true;
  }

  // The points of the same syndrome as `mark` in its own chart, in document (time) order.
  function siblings(mark, chart) {
    var selector = ".grade-point[data-syndrome=\"" + mark.getAttribute("data-syndrome") + "\"]";
    return Array.prototype.slice.call(chart.querySelectorAll(selector));
  }

  // The handlers of one chart.
  function bind(chart) {
    chart.addEventListener("mouseover", function (e) {
      var mark = markOf(e.target, chart);
      if (mark) {
        show(mark);
      }
    });
    chart.addEventListener("focusin", function (e) {
      var mark = markOf(e.target, chart);
      if (mark && !quiet) {
        show(mark);
      }
    });
    chart.addEventListener("click", function (e) {
      var mark = markOf(e.target, chart);
      if (mark) {
        show(mark);
        mark.focus();
      }
    });
    chart.addEventListener("keydown", function (e) {
      var mark = markOf(e.target, chart);
      if (!mark) {
        return;
      }
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        show(mark);
        return;
      }
      if (!mark.classList.contains("grade-point")) {
        return;
      }
      var list = siblings(mark, chart);
      var i = list.indexOf(mark);
      var next = null;
      if (e.key === "ArrowRight") {
        next = list[Math.min(i + 1, list.length - 1)];
      } else if (e.key === "ArrowLeft") {
        next = list[Math.max(i - 1, 0)];
      } else if (e.key === "Home") {
        next = list[0];
      } else if (e.key === "End") {
        next = list[list.length - 1];
      }
      if (next) {
        e.preventDefault();
        next.focus();
      }
    });
  }
  charts.forEach(bind);

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !panel.hidden) {
      hide();
    }
  });
  close.addEventListener("click", function () {
    var mark = active;
    hide();
    if (mark) {
      quiet = true;
      mark.focus({ preventScroll: true });
      quiet = false;
    }
  });
  document.documentElement.setAttribute("data-app", "ready");
})();
