// A video's page: its player with a subtitle menu, its subtitles (AI-generated, AI-translated,
// uploaded) to edit, download or delete, and the forms that ask for more: AI subtitles, a
// translation, a file.
import { ApiError, api, query } from "./api.js";
import { clock, confirmAction, download, fill, h, progressBar, refill, refreshing, toast } from "./dom.js";
import { parseSubtitles, toSrt } from "./cues.js";
import { languageName, languageOptions } from "./languages.js";
import { createPlayer } from "./player.js";
import { statusCell } from "./videos.js";

const MAX_SUBTITLE_BYTES = 5 * 1000 * 1000;
/** The statuses of an AI task that has not ended (it can still be cancelled). */
export const UNFINISHED = new Set(["RECEIVED", "PENDING", "STARTED", "RETRY"]);

/** Where a subtitle came from, as its name says ("English (AI-generated)"). */
export function sourceOf(name) {
  if (/\(AI-generated\)$/.test(name)) return "AI-generated";
  if (/\(AI-translated\)$/.test(name)) return "AI-translated";
  return "Uploaded";
}

/** The video an AI task belongs to (the API records it in client_entity_data). */
export function videoOfTask(task) {
  try {
    return JSON.parse(task.task_data.client_entity_data || "{}").video_id ?? null;
  } catch {
    return null;
  }
}

/** "talk.en.vtt" from a name (letters, digits, dots and dashes only). */
function fileName(video, sub, ext) {
  const safe = (s) => s.normalize("NFKD").replace(/[^\w.-]+/g, "_").replace(/^_+|_+$/g, "");
  return `${safe(video.name) || "video"}.${safe(sub.language)}.${sub.id}.${ext}`;
}

/** The tasks of this client among its latest, for one video. */
export async function tasksOfVideo(videoId) {
  const list = await api.get(`/streaming/ai/tasks${query({ limit: 100 })}`);
  return list.results.filter((t) => videoOfTask(t) === videoId);
}

export function videoView(main, videoId) {
  const refresh = refreshing(load);
  let video = null;
  let player = null;
  let subtitles = [];
  let tasks = [];
  let translationTargets = null;
  const shownVtt = new Map();

  const title = h("h1", {}, "Video");
  const crumb = h("span", { "aria-current": "page" });
  const status = h("div", { "data-testid": "video-state" });
  const links = h("p", { class: "row" });
  const playerSlot = h("div", { class: "player-slot" }, h("p", { class: "muted" }, "The player appears when the video is viewable."));
  const subsBody = h("tbody");
  const taskList = h("ul", { class: "tasks", "aria-label": "AI tasks of this video" });

  async function load() {
    try {
      const [v, subs, t] = await Promise.all([
        api.get(`/streaming/videos/${videoId}`),
        api.get(`/streaming/videos/${videoId}/subtitles`),
        tasksOfVideo(videoId),
      ]);
      if (refresh.stopped) return;
      video = v;
      subtitles = subs;
      tasks = t;
      render();
      document.body.dataset.state = "ready";
    } catch (err) {
      if (refresh.stopped) return;
      if (err instanceof ApiError && err.status === 404) {
        fill(main, h("h1", {}, "No such video"), h("p", {}, h("a", { href: "#/videos" }, "Back to the videos")));
        refresh.stop();
        return;
      }
      toast(`Could not load the video: ${err.message}`, "error");
    }
  }

  function render() {
    title.textContent = video.name;
    crumb.textContent = video.name;
    document.title = `${video.name} · vodscribe console`;
    refill(status, statusCell(video));
    refill(links,
      video.iframe_url ? h("a", { href: video.iframe_url, target: "_blank", rel: "noopener noreferrer" }, "Embed page") : null,
      video.duration ? h("span", { class: "muted" }, `Duration ${clock(video.duration / 1000)}`) : null);
    if (!player && (video.status === "ready" || video.status === "viewable")) {
      player = createPlayer({ hlsUrl: video.hls_url, poster: video.screenshot, title: video.name });
      fill(playerSlot, player.el);
    }
    if (player) {
      for (const sub of subtitles) {
        const key = `sub-${sub.id}`;
        if (shownVtt.get(key) !== sub.vtt) {
          player.setTrack(key, sub.name, sub.language, parseSubtitles(sub.vtt).cues);
          shownVtt.set(key, sub.vtt);
        }
      }
      const keep = new Set(subtitles.map((s) => `sub-${s.id}`));
      player.keepOnly(keep);
      for (const key of Array.from(shownVtt.keys())) if (!keep.has(key)) shownVtt.delete(key);
    }
    refill(subsBody, subtitles.length ? subtitles.map(subtitleRow) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No subtitles yet.")));
    const running = tasks.filter((t) => UNFINISHED.has(t.status));
    refill(taskList, running.map(taskRow));
  }

  function taskRow(task) {
    const [bar, set] = progressBar(`Progress of AI task ${task.task_id}`);
    set(task.progress || 0);
    const target = task.task_data.subtitles_language;
    const what = target ? `Translating into ${languageName(target)}` : "Generating subtitles";
    return h("li", { dataset: { taskId: task.task_id } }, h("span", {}, `${what} (${task.status.toLowerCase()})`), bar,
      h("a", { href: "#/tasks" }, "AI tasks"));
  }

  /** Download a subtitle as it is now (a row is kept while it looks the same, not its text). */
  function saveAs(id, format) {
    const sub = subtitles.find((s) => s.id === id);
    if (!sub) return;
    if (format === "vtt") download(fileName(video, sub, "vtt"), sub.vtt, "text/vtt");
    else download(fileName(video, sub, "srt"), toSrt(parseSubtitles(sub.vtt).cues), "application/x-subrip");
  }

  function subtitleRow(sub) {
    const cues = parseSubtitles(sub.vtt).cues;
    const remove = async () => {
      if (!(await confirmAction(`Delete the subtitle “${sub.name}”?`))) return;
      try {
        await api.del(`/streaming/videos/${videoId}/subtitles/${sub.id}`);
        toast(`Deleted “${sub.name}”.`);
        refresh.now();
      } catch (err) {
        toast(`Not deleted: ${err.message}`, "error");
      }
    };
    return h("tr", { dataset: { subtitleId: sub.id } },
      h("td", {}, sub.name),
      h("td", {}, languageName(sub.language)),
      h("td", {}, sourceOf(sub.name)),
      h("td", {}, String(cues.length)),
      h("td", { class: "actions" },
        h("a", { class: "button", href: `#/videos/${videoId}/subtitles/${sub.id}`, "aria-label": `Edit ${sub.name}` }, "Edit"),
        h("button", { type: "button", "aria-label": `Download ${sub.name} as WebVTT`, onclick: () => saveAs(sub.id, "vtt") }, "VTT"),
        h("button", { type: "button", "aria-label": `Download ${sub.name} as SRT`, onclick: () => saveAs(sub.id, "srt") }, "SRT"),
        h("button", { type: "button", class: "danger", "aria-label": `Delete ${sub.name}`, onclick: remove }, "Delete")));
  }

  async function requestAi(body, what) {
    try {
      const answer = await api.post(`/streaming/videos/${videoId}/subtitles`, body);
      toast(answer.status === "processing" ? `${what}: started.` : `${what}: starts when the video is transcoded.`);
      refresh.now();
    } catch (err) {
      toast(`${what}: ${err.message}`, "error");
    }
  }

  const generateLang = h("select", { id: "generate-language" },
    h("option", { value: "auto" }, "Detect automatically"),
    languageOptions().map(([code, name]) => h("option", { value: code }, name)));
  const generate = h("form", { class: "card", "aria-labelledby": "generate-title" },
    h("h2", { id: "generate-title" }, "Generate AI subtitles"),
    h("div", { class: "grid" }, h("label", { for: "generate-language" }, "Spoken language"), generateLang),
    h("div", { class: "row end" }, h("button", { type: "submit" }, "Generate AI subtitles")));
  generate.addEventListener("submit", (event) => {
    event.preventDefault();
    requestAi({ auto_transcribe_audio_language: generateLang.value }, "AI subtitles");
  });

  const translateLang = h("select", { id: "translate-language", disabled: true }, h("option", { value: "" }, "Loading…"));
  const translateNote = h("p", { class: "muted", "data-testid": "translate-note" });
  const translate = h("form", { class: "card", "aria-labelledby": "translate-title" },
    h("h2", { id: "translate-title" }, "Translate"),
    h("div", { class: "grid" }, h("label", { for: "translate-language" }, "Translate to…"), translateLang),
    translateNote,
    h("div", { class: "row end" }, h("button", { type: "submit" }, "Translate")));
  translate.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!translateLang.value) return;
    // The speech is recognised once per video and language hint: asking with the hint of the
    // transcription that made the subtitles reuses it, so only the translation runs.
    const made = tasks.find((t) => t.status === "SUCCESS" && !t.task_data.subtitles_language);
    const audio = (made && made.task_data.audio_language) || "auto";
    requestAi({ auto_transcribe_audio_language: audio, auto_translate_subtitles_language: translateLang.value },
      `Translation into ${languageName(translateLang.value)}`);
  });

  async function loadTargets() {
    try {
      const info = await api.get("/streaming/ai/info?type=translation_languages");
      const codes = new Set(info.backends.flatMap((b) => b.targets));
      translationTargets = Array.from(codes);
      fill(translateLang, translationTargets.length
        ? languageOptions(translationTargets).map(([code, name]) => h("option", { value: code }, name))
        : h("option", { value: "" }, "No translation on this server"));
      translateLang.disabled = !translationTargets.length;
      translateNote.textContent = info.missing || "";
    } catch (err) {
      translateNote.textContent = `Languages unavailable: ${err.message}`;
    }
  }

  const file = h("input", { id: "sub-file", type: "file", accept: ".vtt,.srt,text/vtt" });
  const subName = h("input", { id: "sub-name", type: "text", maxlength: 255, placeholder: "From the file name when empty" });
  const subLang = h("select", { id: "sub-language" }, languageOptions().map(([code, name]) => h("option", { value: code }, name)));
  subLang.value = "eng";
  const uploadSub = h("form", { class: "card", "aria-labelledby": "subfile-title" },
    h("h2", { id: "subfile-title" }, "Add a subtitle file"),
    h("div", { class: "grid" },
      h("label", { for: "sub-file" }, "WebVTT or SRT file"), file,
      h("label", { for: "sub-name" }, "Name"), subName,
      h("label", { for: "sub-language" }, "Language"), subLang),
    h("div", { class: "row end" }, h("button", { type: "submit" }, "Add subtitle")));
  uploadSub.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) { toast("Choose a .vtt or .srt file.", "error"); file.focus(); return; }
    if (chosen.size > MAX_SUBTITLE_BYTES) { toast("Subtitle files can be at most 5 MB.", "error"); return; }
    try {
      const text = await chosen.text();
      const name = subName.value.trim() || chosen.name.replace(/\.[^.]+$/, "").slice(0, 255) || "Subtitles";
      await api.post(`/streaming/videos/${videoId}/subtitles`, { name, language: subLang.value, vtt: text });
      toast(`Added “${name}”.`);
      uploadSub.reset();
      subLang.value = "eng";
      refresh.now();
    } catch (err) {
      toast(`Not added: ${err.message}`, "error");
    }
  });

  fill(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/videos" }, "Videos"), " › ", crumb),
    title, status, links,
    h("div", { class: "video-layout" },
      playerSlot,
      h("section", { "aria-labelledby": "subs-title" },
        h("h2", { id: "subs-title" }, "Subtitles"),
        h("div", { class: "table-wrap" }, h("table", { class: "subs-table" },
          h("thead", {}, h("tr", {}, ["Name", "Language", "Source", "Cues", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
          subsBody)),
        taskList)),
    h("div", { class: "three" }, generate, translate, uploadSub));
  loadTargets();
  refresh.now();
  return () => { refresh.stop(); if (player) player.destroy(); };
}
