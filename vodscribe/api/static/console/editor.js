// The subtitle editor: cues with their times and text, a click seeks the player there; edit, split,
// merge, insert, delete; reading-rule warnings; undo until saved; save as a PATCH of the subtitle.
// The player shows the cues being edited as they are now, saved or not. "Translate this subtitle
// to…" translates the saved text, corrections included, into a new AI-translated subtitle.
import { api } from "./api.js";
import { confirmAction, fill, h, toast } from "./dom.js";
import { RULES, formatTime, mergeCues, parseSubtitles, parseTime, problems, shown, splitCue, toVtt } from "./cues.js";
import { languageName, languageOptions } from "./languages.js";
import { createPlayer } from "./player.js";

const HISTORY = 200;

export function editorView(main, videoId, subtitleId) {
  let alive = true;
  let player = null;
  let doc = null; // {header, blocks, cues}
  let savedVtt = "";
  let savedMeta = { name: "", language: "" };
  const history = []; // snapshots of the cues before each change
  let typing = null; // the cue whose text is being typed (one undo step per burst)
  const invalid = new Set(); // time inputs holding text that is not a time
  let saving = false;

  const title = h("h1", {}, "Subtitle editor");
  const nameInput = h("input", { id: "ed-name", type: "text", maxlength: 255, required: true });
  const langSelect = h("select", { id: "ed-language" }, languageOptions().map(([c, n]) => h("option", { value: c }, n)));
  const summary = h("p", { class: "summary", "aria-live": "polite", "data-testid": "editor-summary" });
  const list = h("ol", { class: "cues", "aria-label": "Cues" });
  const undoButton = h("button", { type: "button", disabled: true, onclick: undo }, "Undo");
  const revertButton = h("button", { type: "button", disabled: true, onclick: revert }, "Discard changes");
  const saveButton = h("button", { type: "button", class: "primary", disabled: true, onclick: save }, "Save");
  const playerSlot = h("div", { class: "player-slot" });
  const back = h("a", { href: `#/videos/${videoId}` }, "Back to the video");
  const translateLang = h("select", { id: "ed-translate-language", disabled: true }, h("option", { value: "" }, "Loading…"));
  const translateButton = h("button", { type: "submit", disabled: true }, "Translate");
  const translateNote = h("p", { class: "muted", "data-testid": "editor-translate-note" });
  const translate = h("form", { class: "card", "aria-labelledby": "ed-translate-title" },
    h("h2", { id: "ed-translate-title" }, "Translate this subtitle to…"),
    h("div", { class: "grid" }, h("label", { for: "ed-translate-language" }, "Language"), translateLang),
    translateNote,
    h("div", { class: "row end" }, translateButton));
  translate.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!translateLang.value || !doc) return;
    if (dirty()) { toast("Save the changes first: the saved text is what is translated.", "error"); return; }
    const what = `Translation into ${languageName(translateLang.value)}`;
    try {
      const answer = await api.post(`/streaming/videos/${videoId}/subtitles`,
        { source_subtitle_id: Number(subtitleId), auto_translate_subtitles_language: translateLang.value });
      toast(`${what}: started. It appears beside this subtitle when done.`);
      document.body.dataset.translating = answer.ai_task_ids.join(",");
    } catch (err) {
      toast(`${what}: ${err.message}`, "error");
    }
  });

  async function loadTargets() {
    try {
      // Whisper translates speech, not text: only the text backends can translate a subtitle.
      const info = await api.get("/streaming/ai/info?type=translation_languages");
      const codes = new Set(info.backends.filter((b) => b.name !== "whisper").flatMap((b) => b.targets));
      const targets = Array.from(codes).filter((c) => c !== savedMeta.language);
      fill(translateLang, targets.length
        ? languageOptions(targets).map(([code, name]) => h("option", { value: code }, name))
        : h("option", { value: "" }, "No text translation on this server"));
      translateLang.disabled = translateButton.disabled = !targets.length;
      translateNote.textContent = info.missing || "";
    } catch (err) {
      translateNote.textContent = `Languages unavailable: ${err.message}`;
    }
  }

  function snapshot() { return doc.cues.map((c) => ({ ...c })); }
  function remember() {
    history.push(snapshot());
    if (history.length > HISTORY) history.shift();
  }
  function dirty() {
    return toVtt(doc) !== savedVtt || nameInput.value.trim() !== savedMeta.name || langSelect.value !== savedMeta.language;
  }

  function refresh({ list: redraw = false } = {}) {
    if (!alive) return;
    if (redraw) drawList();
    let warnings = 0, errors = 0;
    doc.cues.forEach((_, i) => {
      const found = problems(doc.cues, i);
      if (found.some((p) => p.level === "error")) errors += 1;
      else if (found.length) warnings += 1;
      const li = list.children[i];
      if (li) showProblems(li, found);
    });
    const changed = dirty();
    summary.textContent = `${doc.cues.length} cues · ${warnings} break reading rules · ${errors + invalid.size} with errors`
      + (changed ? " · unsaved changes" : " · saved");
    document.body.dataset.dirty = changed ? "1" : "";
    undoButton.disabled = !history.length;
    revertButton.disabled = !changed;
    saveButton.disabled = !changed || saving;
    if (player) player.setTrack("editing", "Editing", langSelect.value, doc.cues);
  }

  function showProblems(li, found) {
    const box = li.querySelector(".problems");
    li.classList.toggle("has-error", found.some((p) => p.level === "error"));
    li.classList.toggle("has-warning", found.some((p) => p.level === "warning"));
    fill(box, found.map((p) => h("li", { class: p.level, dataset: { rule: p.rule } }, p.message)));
  }

  function drawList() {
    typing = null;
    invalid.clear();
    fill(list, doc.cues.map(cueItem));
  }

  function cueItem(cue, i) {
    const n = i + 1;
    const start = h("input", { type: "text", class: "time", value: formatTime(cue.start), "aria-label": `Start of cue ${n}`, inputmode: "decimal", spellcheck: "false" });
    const end = h("input", { type: "text", class: "time", value: formatTime(cue.end), "aria-label": `End of cue ${n}`, inputmode: "decimal", spellcheck: "false" });
    const text = h("textarea", { rows: Math.max(2, cue.text.split("\n").length), "aria-label": `Text of cue ${n}`, spellcheck: "true" });
    text.value = cue.text;
    const onTime = (input, field) => () => {
      const value = parseTime(input.value);
      if (isNaN(value)) {
        invalid.add(input);
        input.setAttribute("aria-invalid", "true");
      } else {
        invalid.delete(input);
        input.removeAttribute("aria-invalid");
        if (Math.abs(value - doc.cues[i][field]) > 0.0005) {
          remember();
          doc.cues[i][field] = value;
        }
        input.value = formatTime(value);
      }
      typing = null;
      refresh();
    };
    start.addEventListener("change", onTime(start, "start"));
    end.addEventListener("change", onTime(end, "end"));
    text.addEventListener("input", () => {
      if (typing !== i) { remember(); typing = i; }
      doc.cues[i].text = text.value.replace(/\r/g, "");
      refresh();
    });
    text.addEventListener("focus", () => seek(i));
    const act = (label, fn, extra = {}) => h("button", { type: "button", "aria-label": `${label} (cue ${n})`, onclick: fn, ...extra }, label);
    const li = h("li", { class: "cue", dataset: { index: i } },
      h("div", { class: "cue-times" },
        h("button", { type: "button", class: "seek", "aria-label": `Play cue ${n} from ${formatTime(cue.start)}`, onclick: () => seek(i, true) }, `#${n}`),
        start, h("span", { "aria-hidden": "true" }, "→"), end),
      text,
      h("ul", { class: "problems", "aria-label": `Problems of cue ${n}` }),
      h("div", { class: "cue-actions" },
        act("Split", () => split(i, text)),
        act("Merge with next", () => merge(i), { disabled: i === doc.cues.length - 1 }),
        act("Insert after", () => insertAfter(i)),
        act("Delete", () => removeCue(i), { class: "danger" })));
    li.addEventListener("click", (event) => {
      if (!event.target.closest("button, input, textarea")) seek(i);
    });
    return li;
  }

  function seek(i, play = false) {
    if (!player) return;
    player.show("editing");
    player.seek(doc.cues[i].start);
    for (const li of list.children) li.classList.toggle("selected", Number(li.dataset.index) === i);
    if (play) player.video.play().catch(() => {});
  }

  function split(i, textarea) {
    remember();
    const at = textarea.selectionStart > 0 && textarea.selectionStart < textarea.value.length ? textarea.selectionStart : undefined;
    doc.cues.splice(i, 1, ...splitCue(doc.cues[i], at));
    refresh({ list: true });
    focusCue(i + 1);
  }

  function merge(i) {
    if (i >= doc.cues.length - 1) return;
    remember();
    doc.cues.splice(i, 2, mergeCues(doc.cues[i], doc.cues[i + 1]));
    refresh({ list: true });
    focusCue(i);
  }

  function insertAfter(i) {
    remember();
    const cue = doc.cues[i];
    const next = doc.cues[i + 1];
    const start = cue.end;
    const end = next ? Math.max(start + 0.5, Math.min(next.start, start + 2)) : start + 2;
    doc.cues.splice(i + 1, 0, { id: "", start, end, settings: "", text: "" });
    refresh({ list: true });
    focusCue(i + 1);
  }

  function removeCue(i) {
    remember();
    doc.cues.splice(i, 1);
    refresh({ list: true });
    focusCue(Math.min(i, doc.cues.length - 1));
  }

  function focusCue(i) {
    const li = list.children[i];
    if (li) li.querySelector("textarea").focus();
  }

  function undo() {
    if (!history.length) return;
    doc.cues = history.pop();
    refresh({ list: true });
    toast("Undone.");
  }

  function revert() {
    doc = parseSubtitles(savedVtt);
    history.length = 0;
    nameInput.value = savedMeta.name;
    langSelect.value = savedMeta.language;
    refresh({ list: true });
    toast("Changes discarded.");
  }

  async function save() {
    const bad = doc.cues.findIndex((_, i) => problems(doc.cues, i).some((p) => p.level === "error"));
    if (invalid.size || bad >= 0) {
      toast("Fix the cues marked as errors before saving.", "error");
      if (bad >= 0) focusCue(bad);
      else invalid.values().next().value.focus();
      return;
    }
    if (!doc.cues.length) { toast("A subtitle needs at least one cue.", "error"); return; }
    if (!nameInput.value.trim()) { toast("The subtitle needs a name.", "error"); nameInput.focus(); return; }
    saving = true;
    editing(false); // what is typed meanwhile would be lost when the saved copy comes back
    refresh();
    try {
      const body = { vtt: toVtt(doc), name: nameInput.value.trim(), language: langSelect.value };
      const updated = await api.patch(`/streaming/videos/${videoId}/subtitles/${subtitleId}`, body);
      savedMeta = { name: updated.name, language: updated.language };
      doc = parseSubtitles(updated.vtt);
      savedVtt = toVtt(doc);
      history.length = 0;
      title.textContent = updated.name;
      toast("Saved. The player and the video's HLS have the new subtitles.");
      document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
    } catch (err) {
      toast(`Not saved: ${err.message}`, "error");
    } finally {
      saving = false;
      editing(true);
      refresh({ list: true });
    }
  }

  function editing(on) {
    list.inert = !on;
    nameInput.disabled = !on;
    langSelect.disabled = !on;
  }

  // Ctrl+S (Cmd+S) saves; Ctrl+Z outside a text field undoes the last change to the cues.
  function onKey(event) {
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key.toLowerCase() === "s") {
      event.preventDefault();
      const typing = document.activeElement;
      if (typing && typing.matches("input.time")) typing.dispatchEvent(new Event("change")); // commit it first
      if (doc && dirty() && !saving) save();
    } else if (mod && event.key.toLowerCase() === "z" && !event.target.closest("input, textarea")) {
      event.preventDefault();
      undo();
    }
  }
  document.addEventListener("keydown", onKey);

  nameInput.addEventListener("input", () => refresh());
  langSelect.addEventListener("change", () => refresh());

  async function load() {
    try {
      const [video, sub] = await Promise.all([
        api.get(`/streaming/videos/${videoId}`),
        api.get(`/streaming/videos/${videoId}/subtitles/${subtitleId}`),
      ]);
      if (!alive) return;
      savedMeta = { name: sub.name, language: sub.language };
      doc = parseSubtitles(sub.vtt);
      savedVtt = toVtt(doc); // the baseline in this editor's own writing, so "unsaved" means a change
      title.textContent = sub.name;
      document.title = `${sub.name} · ${video.name} · vodscribe console`;
      nameInput.value = sub.name;
      langSelect.value = sub.language;
      if (video.status === "ready" || video.status === "viewable") {
        player = createPlayer({ hlsUrl: video.hls_url, poster: video.screenshot, title: video.name });
        fill(playerSlot, player.el);
        player.show("editing");
        player.video.addEventListener("timeupdate", highlight);
      } else {
        fill(playerSlot, h("p", { class: "muted" }, "The player appears when the video is viewable."));
      }
      refresh({ list: true });
      if (player) player.show("editing");
      await loadTargets();
      document.body.dataset.state = "ready";
    } catch (err) {
      if (!alive) return; // another view is showing (a rejected key went back to signing in)
      fill(main, h("h1", {}, "Subtitle not available"), h("p", {}, err.message), h("p", {}, back));
    }
  }

  function highlight() {
    const t = player.video.currentTime;
    doc.cues.forEach((cue, i) => {
      const li = list.children[i];
      if (li) li.classList.toggle("playing", t >= cue.start && t < cue.end);
    });
  }

  fill(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/videos" }, "Videos"), " › ", back),
    title,
    h("div", { class: "editor" },
      h("div", { class: "editor-side" },
        playerSlot,
        h("div", { class: "grid" },
          h("label", { for: "ed-name" }, "Name"), nameInput,
          h("label", { for: "ed-language" }, "Language"), langSelect),
        h("p", { class: "muted" }, `Reading rules: at most ${RULES.maxLineChars} characters a line, ${RULES.maxLines} lines, `
          + `${RULES.maxCharsPerSecond} characters a second; on screen ${shown(RULES.minSeconds)} s to ${shown(RULES.maxSeconds)} s; no overlaps.`),
        h("p", { class: "muted" }, "Keys: Ctrl+S saves; Ctrl+Z outside a text field undoes."),
        translate),
      h("div", { class: "editor-main" },
        h("div", { class: "row toolbar" }, summary, h("span", { class: "spacer" }), undoButton, revertButton, saveButton),
        list)));
  load();
  return {
    cleanup() {
      alive = false;
      delete document.body.dataset.dirty;
      document.removeEventListener("keydown", onKey);
      if (player) player.destroy();
    },
    async canLeave() {
      if (!doc || !dirty()) return true;
      return confirmAction("Leave the editor and lose the unsaved changes?", "Leave");
    },
  };
}
