// The console's player: the video's HLS through hls.js (vendored; native HLS where the browser has
// it) and a subtitle menu. Subtitles are shown from the API's own text, not from the HLS subtitle
// renditions, so an edit is visible the moment it is made (and the HLS copy, which viewers get, is
// republished by the server on save).
import { h } from "./dom.js";

/* global Hls */

export function createPlayer({ hlsUrl, poster, title }) {
  const video = h("video", {
    controls: true, playsinline: true, preload: "metadata", poster: poster || null,
    "aria-label": `Player: ${title}`,
  });
  const menu = h("select", { "aria-label": "Subtitles" }, h("option", { value: "" }, "Subtitles off"));
  const cueLine = h("div", { class: "vh", "aria-live": "polite", "data-testid": "active-cue" });
  const el = h("div", { class: "player" }, video, h("div", { class: "player-bar" }, h("label", {}, menu)), cueLine);
  const tracks = new Map(); // key -> TextTrack
  let hls = null;
  let selected = "";

  if (window.Hls && Hls.isSupported()) {
    // The API's subtitles are the track source; hls.js is asked for audio and video only.
    hls = new Hls({ enableWebVTT: false, enableIMSC1: false, enableCEA708Captions: false, renderTextTracksNatively: false });
    hls.loadSource(hlsUrl);
    hls.attachMedia(video);
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) el.dataset.error = data.details;
    });
  } else {
    video.src = hlsUrl;
  }

  function show(key) {
    selected = key;
    for (const [k, track] of tracks) track.mode = k === key ? "showing" : "disabled";
    menu.value = key;
    render();
  }

  function render() {
    const track = tracks.get(selected);
    const active = track && track.activeCues ? Array.from(track.activeCues).map((c) => c.text) : [];
    cueLine.textContent = active.join("\n");
  }

  /** Add or replace the track `key` with `cues` ({start, end, text}); `label` names it in the menu. */
  function setTrack(key, label, language, cues) {
    let track = tracks.get(key);
    if (!track) {
      track = video.addTextTrack("subtitles", label, language);
      track.addEventListener("cuechange", render);
      tracks.set(key, track);
      menu.append(h("option", { value: key }, label));
    }
    track.mode = "hidden"; // a disabled track has no cue list to change
    for (const cue of Array.from(track.cues || [])) track.removeCue(cue);
    for (const cue of cues) {
      if (isFinite(cue.start) && isFinite(cue.end) && cue.end > cue.start) {
        track.addCue(new VTTCue(cue.start, cue.end, cue.text));
      }
    }
    track.mode = key === selected ? "showing" : "disabled";
    render();
  }

  /** Remove tracks whose key is not in `keep` (text tracks cannot be deleted: they are emptied). */
  function keepOnly(keep) {
    for (const [key, track] of tracks) {
      if (keep.has(key)) continue;
      track.mode = "hidden";
      for (const cue of Array.from(track.cues || [])) track.removeCue(cue);
      track.mode = "disabled";
      tracks.delete(key);
      const option = Array.from(menu.options).find((o) => o.value === key);
      if (option) option.remove();
      if (selected === key) show("");
    }
  }

  menu.addEventListener("change", () => show(menu.value));

  return {
    el,
    video,
    setTrack,
    keepOnly,
    show,
    get selected() { return selected; },
    seek(seconds) {
      video.currentTime = Math.max(0, seconds + 0.001);
      render();
    },
    destroy() {
      if (hls) hls.destroy();
      video.removeAttribute("src");
      video.load();
    },
  };
}
