// Subtitles as cues: WebVTT (and SRT) in and out, and the reading rules an editor warns about.
// Pure functions only (no DOM but the config read), so the page and the tests use the same code.
import { config } from "./config.js";

/** The reading rules the server builds cues to (vodscribe.speech.cues.READING_RULES), from the
 * page's config: {maxLineChars, maxLines, maxCharsPerSecond, minSeconds, maxSeconds}. */
export const RULES = Object.freeze({ ...config.readingRules });

/** Seconds as the rules are shown: "0.83", "7". */
export const shown = (value) => String(Math.round(value * 100) / 100);

const TIME = /^(?:(\d+):)?([0-5]?\d):([0-5]\d)[.,](\d{1,3})$/;

/** Seconds from "01:02:03.456", "02:03.456" (or with a comma, as SRT writes it); NaN if not a time. */
export function parseTime(text) {
  const m = TIME.exec(String(text).trim());
  if (!m) return NaN;
  const [, hh, mm, ss, frac] = m;
  return (Number(hh || 0) * 3600) + Number(mm) * 60 + Number(ss) + Number(frac.padEnd(3, "0")) / 1000;
}

/** "HH:MM:SS.mmm" (sep "," for SRT). */
export function formatTime(seconds, sep = ".") {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const hh = Math.floor(ms / 3600000), mm = Math.floor((ms % 3600000) / 60000);
  const ss = Math.floor((ms % 60000) / 1000), rest = ms % 1000;
  const two = (n) => String(n).padStart(2, "0");
  return `${two(hh)}:${two(mm)}:${two(ss)}${sep}${String(rest).padStart(3, "0")}`;
}

const ARROW = /^(\S+)\s+-->\s+(\S+)(.*)$/;

/** A subtitle document: {header, blocks (NOTE/STYLE/REGION kept as written), cues: [{id, start, end,
 * settings, text}]}. Reads WebVTT, or SRT when the text does not start with "WEBVTT". */
export function parseSubtitles(source) {
  const text = String(source).replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const vtt = /^WEBVTT(?=$|[ \t\n])/.test(text);
  const chunks = text.split(/\n{2,}/);
  let header = "WEBVTT";
  if (vtt) header = chunks.shift().trimEnd();
  const blocks = [];
  const cues = [];
  for (const chunk of chunks) {
    const lines = chunk.replace(/^\n+/, "").split("\n");
    if (!lines[0]) continue;
    let i = lines.findIndex((line) => line.includes("-->"));
    if (i < 0 || i > 1) {
      if (vtt && cues.length === 0) blocks.push(lines.join("\n"));
      continue;
    }
    const m = ARROW.exec(lines[i].trim());
    if (!m) continue;
    const start = parseTime(m[1]);
    const end = parseTime(m[2]);
    if (isNaN(start) || isNaN(end)) continue;
    const id = i === 1 && vtt ? lines[0] : "";
    cues.push({ id, start, end, settings: vtt ? m[3].trim() : "", text: lines.slice(i + 1).join("\n").replace(/\s+$/, "") });
  }
  return { header, blocks, cues };
}

/** WebVTT text of a document (cue times to the millisecond). */
export function toVtt(doc) {
  const parts = [doc.header || "WEBVTT", ...(doc.blocks || [])];
  for (const cue of doc.cues) {
    const timing = `${formatTime(cue.start)} --> ${formatTime(cue.end)}${cue.settings ? " " + cue.settings : ""}`;
    parts.push([cue.id, timing, cue.text].filter((line) => line !== "").join("\n"));
  }
  return parts.join("\n\n") + "\n";
}

/** SubRip text of cues: numbered, comma milliseconds, tags other than b/i/u dropped. */
export function toSrt(cues) {
  return cues.map((cue, i) => {
    const text = cue.text.replace(/<(?!\/?[biu]>)[^>]*>/g, "");
    return `${i + 1}\n${formatTime(cue.start, ",")} --> ${formatTime(cue.end, ",")}\n${text}`;
  }).join("\n\n") + "\n";
}

/** The text a viewer reads (tags and entities shown as characters). */
export function plain(text) {
  return text.replace(/<[^>]*>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&nbsp;/g, " ");
}

/** What is wrong with cue `i` of `cues`: [{level: "error"|"warning", rule, message}]. Errors stop a
 * save (the server would refuse them); warnings break reading rules only. */
export function problems(cues, i, rules = RULES) {
  const cue = cues[i];
  const out = [];
  const add = (level, rule, message) => out.push({ level, rule, message });
  if (!isFinite(cue.start) || !isFinite(cue.end)) {
    add("error", "time", "A time is not in the form 00:00:00.000.");
    return out;
  }
  if (cue.end <= cue.start) add("error", "order", "The cue ends before it starts.");
  if (!plain(cue.text).trim()) add("error", "empty", "The cue has no text.");
  if (/\n\s*\n|-->/.test(cue.text)) add("error", "blank", "The text has a blank line or \"-->\".");
  const lines = plain(cue.text).split("\n");
  const longest = Math.max(...lines.map((l) => l.length));
  if (longest > rules.maxLineChars) add("warning", "line", `A line has ${longest} characters (at most ${rules.maxLineChars}).`);
  if (lines.length > rules.maxLines) add("warning", "lines", `${lines.length} lines (at most ${rules.maxLines}).`);
  const seconds = cue.end - cue.start;
  if (seconds > 0) {
    const chars = lines.join("").length;
    const cps = chars / seconds;
    if (cps > rules.maxCharsPerSecond) {
      add("warning", "cps", `${cps.toFixed(1)} characters per second (at most ${rules.maxCharsPerSecond}).`);
    }
    if (seconds < rules.minSeconds) add("warning", "short", `On screen ${seconds.toFixed(2)} s (at least ${shown(rules.minSeconds)} s).`);
    if (seconds > rules.maxSeconds) add("warning", "long", `On screen ${seconds.toFixed(2)} s (at most ${shown(rules.maxSeconds)} s).`);
  }
  const next = cues[i + 1];
  if (next && isFinite(next.start) && next.start < cue.end) add("warning", "overlap", "Overlaps the next cue.");
  const prev = cues[i - 1];
  if (prev && isFinite(prev.end) && cue.start < prev.end) add("warning", "overlap", "Overlaps the previous cue.");
  return out;
}

/** `text` as a viewer reads it best: on one line when it fits, else on two lines broken at the space
 * nearest the middle (lines longer than the rule are left for the warnings to show). */
export function wrap(text, rules = RULES) {
  const flat = text.split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
  if (plain(flat).length <= rules.maxLineChars) return flat;
  const middle = flat.length / 2;
  let best = -1;
  for (let i = 0; i < flat.length; i += 1) {
    if (flat[i] === " " && (best < 0 || Math.abs(i - middle) < Math.abs(best - middle))) best = i;
  }
  return best < 0 ? flat : `${flat.slice(0, best)}\n${flat.slice(best + 1)}`;
}

/** Two cues from one, split at character `at` of its text (default: the word break nearest the
 * middle); the time is shared in proportion to the text on each side. */
export function splitCue(cue, at) {
  const text = cue.text;
  if (at === undefined || at <= 0 || at >= text.length) {
    const middle = text.length / 2;
    let best = -1;
    for (let i = 0; i < text.length; i += 1) {
      if (/\s/.test(text[i]) && (best < 0 || Math.abs(i - middle) < Math.abs(best - middle))) best = i;
    }
    at = best > 0 ? best : Math.floor(text.length / 2);
  }
  const first = wrap(text.slice(0, at));
  const second = wrap(text.slice(at));
  const share = (first.length + second.length) ? first.length / (first.length + second.length) : 0.5;
  const middleTime = Math.round((cue.start + (cue.end - cue.start) * share) * 1000) / 1000;
  return [
    { ...cue, end: middleTime, text: first },
    { ...cue, id: "", start: middleTime, text: second },
  ];
}

/** One cue from two neighbours: the first's start, the second's end, their texts wrapped anew. */
export function mergeCues(a, b) {
  const text = wrap(`${a.text}\n${b.text}`);
  return { ...a, end: Math.max(a.end, b.end), text };
}
