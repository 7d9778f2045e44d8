// Building the page: every text users or the API wrote goes in as a text node or an attribute value,
// never as HTML, so nothing needs escaping and nothing can run.

/** An element: h("a", {href: "#/x", class: "btn"}, "text", child, ...). Attributes that are
 * functions are listeners (onclick); null/false attributes are left out; true ones are empty. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** What names a focusable element among its look-alikes: its label, else its tag and text. */
function identity(el) {
  return `${el.tagName}|${el.getAttribute("aria-label") || ""}|${el.getAttribute("href") || ""}|${el.textContent}`;
}

/** `fill` for content that refreshes by itself: skipped when nothing changed, and the keyboard focus
 * stays on the same control (found again by its label) when the content is rebuilt. */
export function refill(el, ...children) {
  const next = document.createElement(el.tagName);
  append(next, children);
  if (next.innerHTML === el.innerHTML) return el; // comparing serialised markup: nothing is parsed
  const focused = el.contains(document.activeElement) ? identity(document.activeElement) : null;
  el.replaceChildren(...next.childNodes);
  if (focused) {
    const again = Array.from(el.querySelectorAll("a, button, input, select, textarea")).find((c) => identity(c) === focused);
    if (again) again.focus();
  }
  return el;
}

let toastTimer = 0;
/** A short message in the polite live region (errors stay until the next message). */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.dataset.kind = kind;
  el.classList.add("show");
  clearTimeout(toastTimer);
  if (kind !== "error") toastTimer = setTimeout(() => el.classList.remove("show"), 5000);
}

/** Ask before something that cannot be undone; resolves true when confirmed. The dialog is modal,
 * keeps the keyboard inside it, and Escape cancels. */
export function confirmAction(text, okLabel = "Delete") {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-text").textContent = text;
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = (event) => { if (event) event.preventDefault(); done(false); };
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
    cancel.focus();
  });
}

/** "1:02:03" or "2:03" for seconds. */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/** "12.3 MB" */
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

/** A date-time in the user's locale, or "–". */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? "–" : d.toLocaleString();
}

/** Keep a view fresh: `fn` runs at `now()`, then again `ms` after each run ends, until `stop()`.
 * A run overtaken by a newer one (a `now()` after a change) does not reschedule: one chain ticks. */
export function refreshing(fn, ms = 2000) {
  let timer = 0;
  let latest = 0;
  let stopped = false;
  async function now() {
    clearTimeout(timer);
    if (stopped) return;
    const run = ++latest;
    try {
      await fn();
    } finally {
      if (!stopped && run === latest) timer = setTimeout(now, ms);
    }
  }
  return { now, stop() { stopped = true; clearTimeout(timer); }, get stopped() { return stopped; } };
}

/** Run fn once `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Save text as a file (a download the browser names `filename`). */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A labelled progress bar (role=progressbar with aria values); returns [element, set(percent)]. */
export function progressBar(label) {
  const bar = h("span", { class: "fill" });
  const el = h("span", {
    class: "progress", role: "progressbar", "aria-label": label,
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0,
  }, bar);
  const set = (percent) => {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    el.setAttribute("aria-valuenow", p);
    bar.style.width = `${p}%`;
  };
  return [el, set];
}
