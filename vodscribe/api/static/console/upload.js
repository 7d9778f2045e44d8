// Uploads from this computer: Gcore's direct-upload flow on the public API (create the video, ask
// for its upload parameters, send the file to the TUS server) with tus-js-client (vendored). A cut
// network is retried, and each retry resumes from the offset the server has safely stored.
import { api } from "./api.js";

/* global tus */

/** Waits between retries; tus-js-client asks the server for its offset before each new try. */
export const RETRY_DELAYS = [0, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000];
const CHUNK_BYTES = 32 * 1024 * 1024;

const uploads = [];
const listeners = new Set();

/** The uploads of this tab (each: {id, name, size, sent, state, error, videoId}). */
export function allUploads() { return uploads; }

/** Call fn whenever an upload changes; returns the function that stops that. */
export function onUploadChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(item) { for (const fn of listeners) fn(item); }

/** The video's name from its file name ("talk.final.mp4" -> "talk.final"). */
function nameOf(file) {
  const base = file.name.replace(/\.[^.]+$/, "") || file.name || "Upload";
  return base.slice(0, 255);
}

/** Start uploading `file` as a new video (with `ai` as its auto_transcribe_audio_language, if any). */
export async function uploadFile(file, ai) {
  const item = { name: nameOf(file), size: file.size, sent: 0, state: "creating", error: "", videoId: null, retries: 0, cancelled: false };
  uploads.unshift(item);
  changed(item);
  try {
    const body = { name: item.name };
    if (ai) body.auto_transcribe_audio_language = ai;
    const video = await api.post("/streaming/videos", body);
    item.videoId = video.id;
    if (item.cancelled) return forget(item);
    const params = await api.get(`/streaming/videos/${video.id}/upload`);
    if (item.cancelled) return forget(item);
    const host = params.servers[0].hostname;
    item.tus = new tus.Upload(file, {
      endpoint: `${location.protocol}//${host}/upload/`,
      metadata: {
        filename: file.name,
        filetype: file.type || "application/octet-stream",
        token: params.token,
        video_id: String(video.id),
        client_id: String(params.video.client_id),
      },
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      storeFingerprintForResuming: false, // upload URLs are capabilities: not kept past this tab
      removeFingerprintOnSuccess: true,
      onProgress(sent) {
        if (item.cancelled) return;
        item.sent = sent;
        item.state = "uploading";
        changed(item);
      },
      onShouldRetry(err, attempt, options) {
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        const retry = status === 0 || status >= 500 || status === 409 || status === 423;
        if (retry && attempt < options.retryDelays.length) {
          item.retries += 1;
          item.state = "retrying";
          changed(item);
        }
        return retry;
      },
      onSuccess() { item.sent = item.size; item.state = "done"; changed(item); },
      onError(err) {
        if (item.cancelled) return;
        item.state = "failed";
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        const body = err.originalResponse ? err.originalResponse.getBody() : "";
        item.error = status ? readError(body) || `The upload server answered ${status}.` : "The network is down; resume when it is back.";
        changed(item);
      },
    });
    item.state = "uploading";
    changed(item);
    item.tus.start();
  } catch (err) {
    item.state = "failed";
    item.error = err.message;
    changed(item);
  }
  return item;
}

function readError(body) {
  try { return JSON.parse(body).error; } catch { return body ? String(body).slice(0, 200) : ""; }
}

/** Go on with a failed or paused upload: the server's offset is asked for first. */
export function resumeUpload(item) {
  if (!item.tus) return;
  item.state = "uploading";
  item.error = "";
  changed(item);
  item.tus.start();
}

export function pauseUpload(item) {
  if (!item.tus || item.state === "done") return;
  item.tus.abort(false);
  item.state = "paused";
  changed(item);
}

/** Stop an upload and delete what it made: the server's partial file and the video waiting for it.
 * A finished upload is only taken off the list (its video stays). */
export async function cancelUpload(item) {
  if (item.cancelled) return;
  item.cancelled = true;
  if (item.state === "done") {
    drop(item);
    return;
  }
  item.state = "cancelling";
  changed(item);
  if (item.tus) {
    try { await item.tus.abort(true); } catch { /* already gone */ }
  }
  // Before its video exists, uploadFile sees `cancelled` once it does, and deletes it then.
  if (item.videoId) await forget(item);
}

/** Delete the video an upload was for, and take the upload off the list. */
async function forget(item) {
  try { await api.del(`/streaming/videos/${item.videoId}`); } catch { /* already gone */ }
  drop(item);
  return item;
}

function drop(item) {
  const at = uploads.indexOf(item);
  if (at >= 0) uploads.splice(at, 1);
  changed(item);
}
