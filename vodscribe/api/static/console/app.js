// The console: sign in with an API key, then the views, one per address after the "#":
// #/videos, #/videos/ID, #/videos/ID/subtitles/SID, #/tasks.
import { ApiError, call, session, whenUnauthorized } from "./api.js";
import { fill, h, toast } from "./dom.js";
import { editorView } from "./editor.js";
import { tasksView } from "./tasks.js";
import { videoView } from "./video.js";
import { videosView } from "./videos.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("signout");
let current = null; // {cleanup(), canLeave()} of the view shown
let shownHash = "";

function signInView() {
  const key = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error-text", role: "alert", "data-testid": "signin-error" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Use an API key of this server (", h("code", {}, "vodscribe keys create NAME"),
      " makes one). It is kept in this tab only, until you sign out or close it."),
    h("label", { for: "api-key" }, "API key"), key, error, h("div", { class: "row end" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = key.value.trim();
    if (!value) { error.textContent = "Enter an API key."; key.focus(); return; }
    button.disabled = true;
    try {
      await call("GET", "/streaming/videos?per_page=1", undefined, { key: value });
      session.signIn(value);
      key.value = "";
      const target = !location.hash.startsWith("#/") || location.hash === "#/signin" ? "#/videos" : location.hash;
      go(target);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401
        ? "This key is not valid on this server." : `Cannot sign in: ${err.message}`;
      key.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, form);
  key.focus();
  document.body.dataset.state = "signin";
}

async function signOut() {
  if (current && !(await current.canLeave())) return;
  session.signOut();
  show(null);
  go("#/signin");
  toast("Signed out.");
}

/** Show the view of `hash` (hashchange does it when the address changes). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function show(view) {
  if (current) current.cleanup();
  current = view ? (typeof view === "function" ? { cleanup: view, canLeave: async () => true } : view) : null;
}

async function route() {
  const hash = location.hash || "#/videos";
  if (current && hash !== shownHash && !(await current.canLeave())) {
    history.replaceState(null, "", shownHash); // stay: the view has unsaved work
    return;
  }
  shownHash = hash;
  const signedIn = Boolean(session.key);
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  document.body.dataset.state = "loading";
  if (!signedIn) {
    show(null);
    signInView();
    return;
  }
  const parts = hash.replace(/^#\/?/, "").split("/");
  const id = (s) => (/^\d{1,10}$/.test(s || "") ? Number(s) : null);
  let view = "videos";
  if (parts[0] === "tasks") {
    view = "tasks";
    show(tasksView(main));
  } else if (parts[0] === "videos" && id(parts[1]) && parts[2] === "subtitles" && id(parts[3])) {
    view = "editor";
    show(editorView(main, id(parts[1]), id(parts[3])));
  } else if (parts[0] === "videos" && id(parts[1])) {
    view = "video";
    show(videoView(main, id(parts[1])));
  } else {
    document.title = "Videos · vodscribe console";
    show(videosView(main));
  }
  if (view === "tasks") document.title = "AI tasks · vodscribe console";
  document.body.dataset.view = view;
  for (const link of nav.querySelectorAll("a")) {
    const here = link.dataset.nav === (view === "tasks" ? "tasks" : "videos");
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  main.focus({ preventScroll: true });
}

whenUnauthorized(() => {
  session.signOut();
  toast("The API key is no longer valid: sign in again.", "error");
  show(null);
  route();
});
signOutButton.addEventListener("click", signOut);
window.addEventListener("hashchange", route);
window.addEventListener("beforeunload", (event) => {
  if (document.body.dataset.dirty) event.preventDefault();
});
route();
