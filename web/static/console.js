/* The operator console: keeps the figures of the live blogs current and turns the kill switch.
 *
 * The server renders the table; this polls GET /api/v1/console every few seconds with the
 * ETag of the figures shown (a 304 when nothing changed) and writes the new figures into
 * their cells. When blogs go live or end, the page is loaded again (the rows are the
 * server's). "Stop streams" posts to /api/v1/blogs/{slug}/streams-stop, "Resume streams"
 * deletes it, with the session's CSRF token.
 */
const page = document.body;
const table = document.querySelector("[data-blogs]");
const status = document.querySelector("[data-status]");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const every = Number(page.dataset.pollSeconds) * 1000;
let etag = page.dataset.etag;

function say(text, isError = false) {
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function rows() {
  return [...table.querySelectorAll("tr[data-blog]")];
}

function showSwitch(row, stopped) {
  const button = row.querySelector("[data-kill-switch]");
  row.classList.toggle("stopped", stopped);
  button.setAttribute("aria-pressed", String(stopped));
  button.textContent = stopped ? "Resume streams" : "Stop streams";
}

function show(blogs) {
  const shown = new Map(rows().map((row) => [row.dataset.blog, row]));
  if (blogs.length !== shown.size || blogs.some((blog) => !shown.has(blog.slug))) {
    location.reload();
    return;
  }
  for (const blog of blogs) {
    const row = shown.get(blog.slug);
    const cell = (field) => row.querySelector(`[data-field="${field}"]`);
    cell("readers_now").textContent = blog.readers_now;
    cell("published").textContent = `${blog.entries_last_5_minutes} / ${blog.entries_last_60_minutes}`;
    cell("lag_events").textContent = blog.lag_events;
    cell("webhooks").textContent = blog.webhooks
      ? `${blog.webhook_backlog_events} / ${blog.webhook_failures}`
      : "none";
    showSwitch(row, blog.streams_stopped);
  }
  // Most read first; rows move only when the order changed (moving one drops its focus).
  const order = blogs.map((blog) => blog.slug);
  if (rows().some((row, index) => row.dataset.blog !== order[index])) {
    for (const slug of order) table.append(shown.get(slug));
  }
}

async function poll() {
  try {
    const response = await fetch("/api/v1/console", {
      headers: { Accept: "application/json", "If-None-Match": etag },
      cache: "no-store",
      credentials: "same-origin",
    });
    if (response.status === 401 || response.status === 403) {
      say("Not updated: your session ended. Sign in again at the newsroom.", true);
      return; // polling again cannot help
    }
    if (response.ok) {
      etag = response.headers.get("ETag");
      show((await response.json()).blogs);
    }
    if (response.ok || response.status === 304) {
      say(`Updated at ${new Date().toLocaleTimeString()}.`);
    } else {
      say(`Not updated: the server answered ${response.status}. Trying again.`, true);
    }
  } catch {
    say("Not updated: the server cannot be reached. Trying again.", true);
  }
  setTimeout(poll, every);
}

table.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-kill-switch]");
  if (!button) return;
  const row = button.closest("tr");
  const slug = row.dataset.blog;
  const stop = button.getAttribute("aria-pressed") !== "true";
  const question = `Stop every stream of ${slug}? Its readers are disconnected and kept out, and its page is served from cache, until you resume.`;
  if (stop && !confirm(question)) return;
  button.disabled = true;
  try {
    const response = await fetch(`/api/v1/blogs/${encodeURIComponent(slug)}/streams-stop`, {
      method: stop ? "POST" : "DELETE",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      showSwitch(row, answer.streams_stopped);
      say(answer.streams_stopped ? `Streams of ${slug} stopped.` : `Streams of ${slug} resumed.`);
    } else {
      say(`Not changed: ${answer.error ? answer.error.message : `the server answered ${response.status}`}`, true);
    }
  } catch {
    say("Not changed: the server cannot be reached.", true);
  } finally {
    button.disabled = false;
  }
});

setTimeout(poll, every);
