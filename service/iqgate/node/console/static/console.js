// iqgate console: live worklist rows, keyboard navigation, overlay controls, box drawing.
"use strict";

function worklist(table) {
  const body = table.querySelector("tbody");
  let selected = -1;
  const rows = () => Array.from(body.querySelectorAll("tr"));
  const select = (index) => {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("select, input")) return;
    if (event.key === "j" || event.key === "ArrowDown") select(selected + 1);
    else if (event.key === "k" || event.key === "ArrowUp") select(selected - 1);
    else if (event.key === "Enter" && selected >= 0) window.location = rows()[selected].dataset.href;
  });
  const source = table.dataset.live;
  if (!source) return;
  const events = new EventSource(source);
  events.addEventListener("image", (event) => {
    const data = JSON.parse(event.data);
    if (body.querySelector(`tr[data-id="${data.id}"]`)) return;
    const holder = document.createElement("tbody");
    holder.innerHTML = data.html.trim();
    const row = holder.firstElementChild;
    row.classList.add("new");
    body.prepend(row);
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
    if (selected >= 0) selected += 1;
  });
  window.addEventListener("beforeunload", () => events.close());
}

function imageView(view) {
  const overlay = document.getElementById("overlay");
  const toggle = document.getElementById("overlay-toggle");
  const opacity = document.getElementById("opacity");
  const show = () => {
    if (!overlay) return;
    overlay.style.display = toggle.checked ? "block" : "none";
    overlay.style.opacity = String(opacity.value / 100);
  };
  if (overlay) {
    toggle.addEventListener("change", show);
    opacity.addEventListener("input", show);
    show();
  }
  const svg = document.getElementById("marks");
  const field = document.getElementById("boxes");
  const boxes = [];
  let start = null;
  let drawing = null;
  const point = (event) => {
    const p = svg.createSVGPoint();
    p.x = event.clientX;
    p.y = event.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  };
  const place = (rect, a, b) => {
    rect.setAttribute("x", Math.min(a.x, b.x));
    rect.setAttribute("y", Math.min(a.y, b.y));
    rect.setAttribute("width", Math.abs(a.x - b.x));
    rect.setAttribute("height", Math.abs(a.y - b.y));
  };
  svg.addEventListener("mousedown", (event) => {
    event.preventDefault();
    start = point(event);
    drawing = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    drawing.setAttribute("class", "box drawn");
    svg.appendChild(drawing);
    place(drawing, start, start);
  });
  svg.addEventListener("mousemove", (event) => {
    if (drawing) place(drawing, start, point(event));
  });
  window.addEventListener("mouseup", (event) => {
    if (!drawing) return;
    const end = point(event);
    if (Math.abs(end.x - start.x) >= 2 && Math.abs(end.y - start.y) >= 2) {
      boxes.push([start.x, start.y, end.x, end.y].map(Math.round));
      field.value = JSON.stringify(boxes);
    } else {
      drawing.remove();
    }
    drawing = null;
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input")) return;
    if (event.key === "n" && view.dataset.newer) window.location = view.dataset.newer;
    else if (event.key === "p" && view.dataset.older) window.location = view.dataset.older;
    else if (event.key === "o" && toggle) { toggle.checked = !toggle.checked; show(); }
    else if (event.key === "Escape") window.location = "/";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("worklist");
  if (table) worklist(table);
  const view = document.querySelector(".image-view");
  if (view) imageView(view);
});
