// AI tasks: status and progress (refreshed by themselves), cancel, and why a task failed, in words.
import { api, query } from "./api.js";
import { confirmAction, fill, h, progressBar, refill, refreshing, toast, when } from "./dom.js";
import { languageName } from "./languages.js";
import { UNFINISHED, videoOfTask } from "./video.js";

const LIMIT = 20;
const STATUS_TEXT = {
  RECEIVED: "Queued", PENDING: "Queued", STARTED: "Running", RETRY: "Retrying",
  SUCCESS: "Done", FAILURE: "Failed", REVOKED: "Cancelled",
};
const errors = new Map(); // task id -> its error (a failed task's error never changes)

function describe(task) {
  const data = task.task_data || {};
  const parts = [data.subtitles_language ? `Subtitles in ${languageName(data.subtitles_language)}` : "Transcription"];
  if (data.audio_language) parts.push(`spoken ${languageName(data.audio_language)}`);
  return parts.join(", ");
}

export function tasksView(main) {
  let page = 1;
  const refresh = refreshing(load);
  const statusFilter = h("select", { id: "task-status" },
    h("option", { value: "" }, "All"),
    Object.entries({ STARTED: "Running", PENDING: "Queued", SUCCESS: "Done", FAILURE: "Failed", REVOKED: "Cancelled" })
      .map(([value, label]) => h("option", { value }, label)));
  const tbody = h("tbody");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", disabled: true }, "Previous");
  const next = h("button", { type: "button", disabled: true }, "Next");

  async function load() {
    try {
      const list = await api.get(`/streaming/ai/tasks${query({ page, limit: LIMIT, status: statusFilter.value })}`);
      if (refresh.stopped) return;
      await Promise.all(list.results.filter((t) => t.status === "FAILURE" && !errors.has(t.task_id)).map(async (t) => {
        const full = await api.get(`/streaming/ai/tasks/${t.task_id}`);
        errors.set(t.task_id, (full.result && full.result.error) || "The task failed without a message.");
      }));
      if (refresh.stopped) return;
      refill(tbody, list.results.length ? list.results.map(row) : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No AI tasks.")));
      count.textContent = `${list.count} task${list.count === 1 ? "" : "s"}`;
      prev.disabled = page <= 1;
      next.disabled = !list.next;
      document.body.dataset.state = "ready";
    } catch (err) {
      if (refresh.stopped) return;
      count.textContent = `Could not load the tasks: ${err.message}`;
    }
  }

  function row(task) {
    const [bar, set] = progressBar(`Progress of task ${task.task_id}`);
    set(task.progress || 0);
    const videoId = videoOfTask(task);
    const cancel = async () => {
      if (!(await confirmAction(`Cancel the task ${task.task_id}?`, "Cancel task"))) return;
      try {
        await api.post(`/streaming/ai/tasks/${task.task_id}/cancel`);
        toast("Cancelled.");
      } catch (err) {
        toast(`Not cancelled: ${err.message}`, "error");
      }
      refresh.now();
    };
    return h("tr", { dataset: { taskId: task.task_id, status: task.status } },
      h("td", {}, h("code", { title: task.task_id }, task.task_id.slice(0, 8)), h("br"), describe(task)),
      h("td", {}, videoId ? h("a", { href: `#/videos/${videoId}` }, `Video ${videoId}`) : h("span", { class: "muted" }, "URL")),
      h("td", {}, h("span", { class: `badge t-${task.status.toLowerCase()}` }, STATUS_TEXT[task.status] || task.status),
        task.status === "FAILURE" ? h("p", { class: "error-text", "data-testid": "task-error" }, errors.get(task.task_id)) : null),
      h("td", {}, bar, ` ${task.progress || 0}%`),
      h("td", {}, when(task.processing_time && task.processing_time.started_at)),
      h("td", {}, UNFINISHED.has(task.status)
        ? h("button", { type: "button", class: "danger", "aria-label": `Cancel task ${task.task_id}`, onclick: cancel }, "Cancel")
        : null));
  }

  statusFilter.addEventListener("change", () => { page = 1; refresh.now(); });
  prev.addEventListener("click", () => { page -= 1; refresh.now(); });
  next.addEventListener("click", () => { page += 1; refresh.now(); });
  fill(main,
    h("h1", {}, "AI tasks"),
    h("div", { class: "row" }, h("label", { for: "task-status" }, "Status"), statusFilter, h("span", { class: "spacer" }), count),
    h("div", { class: "table-wrap" }, h("table", { class: "tasks-table" },
      h("thead", {}, h("tr", {}, ["Task", "Video", "Status", "Progress", "Started", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      tbody)),
    h("div", { class: "row end" }, prev, next));
  refresh.now();
  return () => refresh.stop();
}
