// The embed player (vodscribe/api/embed.py renders the page). The same file for every video: the
// per-page data is read from the JSON block #embed-config, so the CSP's script-src stays 'self'.
// ES2015, no dependencies besides window.Hls (hls.js), which it does without where the browser
// plays HLS natively.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("embed-config").textContent);
  var video = document.getElementById("video");
  var menu = document.getElementById("subs");
  var cueBox = document.getElementById("cue");
  var hls = null;
  var picked = false;
  var mediaRecoveries = 0;
  if (cfg.muted) video.muted = true;

  function setState(state) {
    if (document.body.dataset.state.indexOf("error:") !== 0) document.body.dataset.state = state;
  }
  function primary(code) { return String(code || "").toLowerCase().split(/[-_]/)[0]; }

  // Mirror the active cues of the showing text track into #cue (tests, screen readers).
  function cueText(cue) {
    if (typeof cue.getCueAsHTML === "function") return cue.getCueAsHTML().textContent;
    return cue.text || "";
  }
  function mirrorCues() {
    var parts = [];
    for (var i = 0; i < video.textTracks.length; i++) {
      var track = video.textTracks[i];
      if (track.mode !== "showing" || !track.activeCues) continue;
      for (var j = 0; j < track.activeCues.length; j++) parts.push(cueText(track.activeCues[j]));
    }
    var text = parts.join("\n");
    if (cueBox.textContent !== text) cueBox.textContent = text;
  }
  function watchTrack(track) {
    if (track && !track.vodscribeWatched) {
      track.vodscribeWatched = true;
      track.addEventListener("cuechange", mirrorCues);
    }
  }
  for (var t = 0; t < video.textTracks.length; t++) watchTrack(video.textTracks[t]);
  video.textTracks.addEventListener("addtrack", function (e) { watchTrack(e.track); });
  video.textTracks.addEventListener("change", mirrorCues);

  // tracks: [{lang, name}]; the index of the track to start with: sub_lang's, else the one marked
  // default by the server; null leaves it to the playlist (DEFAULT=YES).
  function pickTrack(tracks) {
    var i, s;
    var want = primary(cfg.subLang);
    if (want) for (i = 0; i < tracks.length; i++) if (primary(tracks[i].lang) === want) return i;
    for (s = 0; s < cfg.subtitles.length; s++) {
      if (!cfg.subtitles[s].default) continue;
      for (i = 0; i < tracks.length; i++) {
        if (primary(tracks[i].lang) === primary(cfg.subtitles[s].language)) return i;
      }
    }
    return null;
  }
  function labelFor(track, index) {
    if (track.name) return track.name;
    for (var s = 0; s < cfg.subtitles.length; s++) {
      if (primary(cfg.subtitles[s].language) === primary(track.lang)) return cfg.subtitles[s].label;
    }
    return track.lang || "Subtitles " + (index + 1);
  }
  function fillMenu(tracks, selected) {
    while (menu.options.length > 1) menu.remove(1);
    for (var i = 0; i < tracks.length; i++) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = labelFor(tracks[i], i);
      menu.appendChild(option);
    }
    menu.value = String(selected >= 0 && selected < tracks.length ? selected : -1);
    menu.hidden = tracks.length === 0;
  }

  function autoplay() {
    if (!cfg.autoplay) return;
    var p = video.play();
    if (p && typeof p.catch === "function") p.catch(function () { /* blocked: wait for the user */ });
  }

  video.addEventListener("playing", function () { setState("playing"); });

  function startHlsJs() {
    hls = new Hls({ enableWebVTT: true, renderTextTrackCues: true, subtitleDisplay: true });
    function hlsTracks() {
      return hls.subtitleTracks.map(function (t) { return { lang: t.lang, name: t.name }; });
    }
    hls.on(Hls.Events.MANIFEST_PARSED, function (event, data) {
      // The initial track goes in as hls.js's subtitlePreference, read when the level's subtitle
      // group is set up (after this event): setting hls.subtitleTrack this early does not stick.
      var all = data.subtitleTracks || [];
      var index = pickTrack(all);
      if (index !== null) {
        var option = {};
        if (all[index].lang) option.lang = all[index].lang;
        if (all[index].name) option.name = all[index].name;
        hls.config.subtitlePreference = option;
      }
      setState("ready");
      autoplay();
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function () { fillMenu(hlsTracks(), hls.subtitleTrack); });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, function () { menu.value = String(hls.subtitleTrack); });
    hls.on(Hls.Events.ERROR, function (event, data) {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 1) {
        mediaRecoveries += 1;
        hls.recoverMediaError();
        return;
      }
      setState("error:" + (data.details || data.type || "fatal"));
    });
    menu.addEventListener("change", function () {
      hls.subtitleDisplay = true;
      hls.subtitleTrack = parseInt(menu.value, 10);
    });
    hls.loadSource(cfg.hlsUrl);
    hls.attachMedia(video);
  }

  function startNative() {
    function nativeTracks() {
      var list = [];
      for (var i = 0; i < video.textTracks.length; i++) {
        var track = video.textTracks[i];
        if (track.kind === "subtitles" || track.kind === "captions") list.push(track);
      }
      return list;
    }
    function select(index) {
      var list = nativeTracks();
      for (var i = 0; i < list.length; i++) list[i].mode = i === index ? "showing" : "disabled";
      mirrorCues();
    }
    function refresh() {
      var list = nativeTracks();
      var selected = -1;
      for (var i = 0; i < list.length; i++) if (list[i].mode === "showing") selected = i;
      if (!picked && list.length) {
        picked = true;
        var index = pickTrack(list.map(function (t) { return { lang: t.language, name: t.label }; }));
        if (index !== null) { select(index); selected = index; }
      }
      fillMenu(list.map(function (t) { return { lang: t.language, name: t.label }; }), selected);
    }
    video.textTracks.addEventListener("addtrack", refresh);
    video.addEventListener("loadedmetadata", function () { setState("ready"); refresh(); autoplay(); });
    video.addEventListener("error", function () {
      setState("error:media-" + (video.error ? video.error.code : "unknown"));
    });
    menu.addEventListener("change", function () { select(parseInt(menu.value, 10)); });
    video.src = cfg.hlsUrl;
  }

  try {
    if (window.Hls && Hls.isSupported()) startHlsJs();
    else if (video.canPlayType("application/vnd.apple.mpegurl")) startNative();
    else setState("error:unsupported");
  } catch (err) {
    setState("error:" + (err && err.message ? err.message : "script"));
  }
})();
