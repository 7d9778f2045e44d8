// Language names for the codes the API speaks (ISO 639-2/B), from the page's config block.
import { config } from "./config.js";

const names = new Map(config.languages.map((l) => [l.code, l.name]));

/** "German" for "ger" (the code itself when unknown). */
export function languageName(code) { return names.get(code) || code; }

/** [[code, name], ...] by name: every language Whisper recognises. */
export function languageOptions(codes) {
  const list = codes ? codes.map((c) => [c, languageName(c)]) : Array.from(names);
  return list.sort((a, b) => a[1].localeCompare(b[1]));
}

export const version = config.version;
