// Videos: the list (status and progress refresh by themselves), search, delete, and adding a video
// by URL or by dropping files in.
import { api, call, query } from "./api.js";
import { bytes, clock, confirmAction, debounce, fill, h, progressBar, refill, refreshing, toast, when } from "./dom.js";
import { languageOptions } from "./languages.js";
import { allUploads, cancelUpload, onUploadChange, pauseUpload, resumeUpload, uploadFile } from "./upload.js";

const PER_PAGE = 20;
const STATUS_TEXT = { empty: "Waiting for its file", pending: "Processing", viewable: "Viewable", ready: "Ready", error: "Error" };

/** A video's progress in percent: its renditions' mean while processing. */
export function videoProgress(video) {
  if (video.status === "ready") return 100;
  const parts = video.converted_videos || [];
  if (!parts.length) return 0;
  return parts.reduce((sum, r) => sum + (r.progress || 0), 0) / parts.length;
}

export function statusCell(video) {
  const [bar, set] = progressBar(`Progress of ${video.name}`);
  set(videoProgress(video));
  const text = STATUS_TEXT[video.status] || video.status;
  return h("div", { class: "status" },
    h("span", { class: `badge s-${video.status}`, "data-testid": "video-status" }, text),
    video.status === "pending" || video.status === "viewable" ? bar : null,
    video.error ? h("span", { class: "error-text" }, video.error) : null);
}

function aiSelect(id) {
  return h("select", { id, name: "ai" },
    h("option", { value: "" }, "No AI subtitles"),
    h("option", { value: "auto" }, "AI subtitles, language detected"),
    languageOptions().map(([code, name]) => h("option", { value: code }, `AI subtitles in ${name}`)));
}

function nameFromUrl(url) {
  try {
    const last = decodeURIComponent(new URL(url).pathname.split("/").filter(Boolean).pop() || "");
    return (last.replace(/\.[^.]+$/, "") || new URL(url).hostname).slice(0, 255);
  } catch {
    return "Video";
  }
}

function addByUrl(onAdded) {
  const url = h("input", { id: "add-url", type: "url", required: true, placeholder: "https://example.com/talk.mp4", autocomplete: "off" });
  const name = h("input", { id: "add-name", type: "text", maxlength: 255, placeholder: "From the URL when empty" });
  const ai = aiSelect("add-ai");
  const submit = h("button", { type: "submit" }, "Add video");
  const form = h("form", { class: "card", "aria-labelledby": "add-url-title", novalidate: true },
    h("h2", { id: "add-url-title" }, "Add a video by URL"),
    h("div", { class: "grid" },
      h("label", { for: "add-url" }, "Video URL"), url,
      h("label", { for: "add-name" }, "Name"), name,
      h("label", { for: "add-ai" }, "Subtitles"), ai),
    h("div", { class: "row end" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!url.value.trim() || !url.checkValidity()) {
      toast("Enter the http(s) URL of a video file.", "error");
      url.focus();
      return;
    }
    submit.disabled = true;
    try {
      const body = { name: name.value.trim() || nameFromUrl(url.value.trim()), origin_url: url.value.trim() };
      if (ai.value) body.auto_transcribe_audio_language = ai.value;
      const video = await api.post("/streaming/videos", body);
      toast(`Added “${video.name}”.`);
      form.reset();
      onAdded();
    } catch (err) {
      toast(`Not added: ${err.message}`, "error");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function uploadRow(item) {
  const [bar, set] = progressBar(`Upload of ${item.name}`);
  set(item.size ? (100 * item.sent) / item.size : 0);
  const state = {
    creating: "Starting…", uploading: "Uploading", retrying: "Connection lost, resuming…",
    paused: "Paused", failed: "Stopped", done: "Uploaded", cancelling: "Cancelling…",
  }[item.state] || item.state;
  const buttons = [];
  if (item.state === "uploading" || item.state === "retrying") {
    buttons.push(h("button", { type: "button", onclick: () => pauseUpload(item) }, "Pause"));
  }
  if (item.state === "paused" || (item.state === "failed" && item.tus)) {
    buttons.push(h("button", { type: "button", onclick: () => resumeUpload(item) }, "Resume"));
  }
  if (item.state === "cancelling") {
    // nothing more to ask
  } else if (item.state !== "done") {
    const cancel = async () => {
      if (await confirmAction(`Stop uploading “${item.name}” and delete its video?`, "Stop upload")) cancelUpload(item);
    };
    buttons.push(h("button", { type: "button", class: "danger", onclick: cancel }, "Cancel"));
  } else {
    buttons.push(h("button", { type: "button", onclick: () => cancelUpload(item) }, "Clear"));
  }
  return h("li", { class: "upload", dataset: { state: item.state } },
    h("span", { class: "upload-name" }, item.name),
    bar,
    h("span", { class: "upload-state", "data-testid": "upload-state" },
      `${state} · ${bytes(item.sent)} of ${bytes(item.size)}`, item.error ? ` · ${item.error}` : ""),
    item.videoId ? h("a", { href: `#/videos/${item.videoId}` }, "Open") : null,
    buttons);
}

function uploadPanel() {
  const input = h("input", { id: "upload-files", type: "file", accept: "video/*,audio/*", multiple: true, class: "vh" });
  const ai = aiSelect("upload-ai");
  const list = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const drop = h("div", { class: "drop", "data-testid": "dropzone" },
    h("p", {}, "Drop video files here, or ",
      h("label", { for: "upload-files", class: "linkish" }, "choose files"), "."),
    input);
  const start = (files) => {
    for (const file of files) uploadFile(file, ai.value);
  };
  input.addEventListener("change", () => { start(Array.from(input.files)); input.value = ""; });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    start(Array.from(event.dataTransfer.files));
  });
  const render = () => fill(list, allUploads().map(uploadRow));
  render();
  const stop = onUploadChange(render);
  const card = h("section", { class: "card", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload from this computer"),
    h("div", { class: "grid" }, h("label", { for: "upload-ai" }, "Subtitles"), ai),
    drop, list);
  return [card, stop];
}

export function videosView(main) {
  let page = 1;
  const refresh = refreshing(load);
  const search = h("input", { id: "video-search", type: "search", placeholder: "Name contains…", autocomplete: "off" });
  const tbody = h("tbody");
  const count = h("p", { class: "muted", "aria-live": "polite", "data-testid": "video-count" });
  const prev = h("button", { type: "button", disabled: true }, "Previous");
  const next = h("button", { type: "button", disabled: true }, "Next");
  const [uploads, stopUploads] = uploadPanel();

  async function load() {
    try {
      const q = query({ page, per_page: PER_PAGE, search: search.value.trim() });
      const { body, headers } = await call("GET", `/streaming/videos${q}`);
      if (refresh.stopped) return;
      const total = Number(headers.get("X-Total-Count") || body.length);
      refill(tbody, body.length ? body.map(row) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, search.value ? "No video matches." : "No videos yet: add one above.")));
      count.textContent = `${total} video${total === 1 ? "" : "s"}`;
      prev.disabled = page <= 1;
      next.disabled = page * PER_PAGE >= total;
      document.body.dataset.state = "ready";
    } catch (err) {
      if (refresh.stopped) return;
      count.textContent = `Could not load the videos: ${err.message}`;
    }
  }

  function row(video) {
    const remove = async () => {
      if (!(await confirmAction(`Delete “${video.name}” with its files and subtitles? This cannot be undone.`))) return;
      try {
        await api.del(`/streaming/videos/${video.id}`);
        toast(`Deleted “${video.name}”.`);
        refresh.now();
      } catch (err) {
        toast(`Not deleted: ${err.message}`, "error");
      }
    };
    return h("tr", { dataset: { videoId: video.id } },
      h("td", {}, h("a", { href: `#/videos/${video.id}` }, video.name)),
      h("td", {}, statusCell(video)),
      h("td", {}, clock(video.duration ? video.duration / 1000 : null)),
      h("td", {}, when(video.created_at)),
      h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Delete ${video.name}`, onclick: remove }, "Delete")));
  }

  search.addEventListener("input", debounce(() => { page = 1; refresh.now(); }, 300));
  prev.addEventListener("click", () => { page -= 1; refresh.now(); });
  next.addEventListener("click", () => { page += 1; refresh.now(); });
  fill(main,
    h("h1", {}, "Videos"),
    h("div", { class: "two" }, addByUrl(refresh.now), uploads),
    h("section", { "aria-labelledby": "list-title" },
      h("div", { class: "row" }, h("h2", { id: "list-title" }, "All videos"), h("span", { class: "spacer" }),
        h("label", { for: "video-search" }, "Search"), search),
      count,
      h("div", { class: "table-wrap" },
        h("table", { class: "videos-table" },
          h("thead", {}, h("tr", {}, ["Name", "Status", "Duration", "Added", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
          tbody)),
      h("div", { class: "row end" }, prev, next)));
  refresh.now();
  return () => { refresh.stop(); stopUploads(); };
}
