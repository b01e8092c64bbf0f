/* The newsroom composer: sign in, write (rich text through the vendored Squire editor), save
 * drafts, submit for review or publish, review others' submissions, and follow the blog live
 * over the newsroom stream. It calls the same public JSON API as any newsroom tool.
 *
 * Signed in, the session cookie goes with every request by itself; writes add the session's
 * CSRF token. With a token (for tools and tests) it goes as `Authorization`, kept in this
 * tab's sessionStorage. Unsent text stays in localStorage until the server confirms it. */
import Squire from "/static/vendor/squire-2.4.8/squire.mjs";

const API = "/api/v1";
const KEYS = {
  token: "bulletin.token",
  blog: "bulletin.newsroom.blog",
  // Per person: a desk computer is shared, and one reporter's byline is not the next one's.
  byline: (who) => "bulletin.newsroom.byline." + who,
  hold: "bulletin.newsroom.hold_seconds",
  // Per person and blog: one reporter's unsent text is never the next one's to send.
  unsent: (who, slug) => "bulletin.newsroom.unsent." + who + "." + slug,
};
const EDITOR_ROLES = new Set(["editor", "owner"]);
const RANK = { contributor: 1, editor: 2, owner: 3 };
const STATES = { draft: "Draft", submitted: "Submitted", returned: "Returned", published: "Published",
  scheduled: "Scheduled" };

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const form = $('[data-form="entry"]');
const blogSelect = $("[data-blogs]");

const state = {
  auth: null, // {kind: "session", csrf} or {kind: "token", token}
  me: null,
  blogs: [], // [{slug, title, role}]
  blog: null, // the chosen one, as /blogs/{slug} answers it, with .role
  settings: { contributors_may_publish: false },
  entries: new Map(), // id -> entry, every state the caller may see
  notes: new Map(), // id -> [feedback, kind] shown with that entry
  gone: new Set(), // ids deleted or discarded while lists were being read
  filter: "all",
  editing: null, // {entry, etag} of the entry being edited
  photo: null, // {media_id, url, ...} of an uploaded photo, or {url} of a photo by URL
  idempotencyKey: null,
  conflict: null,
  stream: null,
  receipts: new Map(), // entry id -> the newest delivery receipt of an event about it
  readersTimer: null,
  editors: new Map(), // entry id -> {user_id, name, since, expires_at}: who holds its flag
  flag: null, // {entryId} of the flag this page holds
  flagAt: 0, // when this page last took or renewed it
  lostFlag: null, // id of the entry whose flag someone took over from this page
  holds: new Map(), // entry id -> {entry, node} of this page's publishes in their undo window
  holdTimer: null,
};

// --- talking to the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error, headers) {
    super(error.message || "HTTP " + status);
    this.status = status;
    this.code = error.code || (status === 0 ? "offline" : "http_" + status);
    this.fields = error.fields || null;
    this.current = error.current || null;
    this.editor = error.editor || null;
    this.retryAfter = headers ? headers.get("Retry-After") : null;
    this.statusText = error.statusText || "";
  }
}

function authHeaders(method) {
  const headers = {};
  if (!state.auth) return headers;
  if (state.auth.kind === "token") headers.Authorization = "Bearer " + state.auth.token;
  else if (method !== "GET") headers["X-CSRF-Token"] = state.auth.csrf;
  return headers;
}

/** One API call; answers {data, etag}, or throws ApiError (status 0: no connection). */
async function call(method, path, { body, headers } = {}) {
  const all = Object.assign({ Accept: "application/json" }, authHeaders(method), headers);
  if (body !== undefined) all["Content-Type"] = "application/json";
  let response;
  try {
    // The desk always revalidates, to see its own writes at once.
    response = await fetch(API + path, {
      method, headers: all, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { code: "offline" });
  }
  const etag = response.headers.get("ETag");
  if (response.status === 204) return { data: null, etag };
  // A proxy in front may answer with a page of its own (an HTML 502, say), not our JSON.
  const data = await response.json().catch(() => null);
  if (!response.ok || !data) {
    const error = (data && data.error) || { statusText: response.statusText };
    throw new ApiError(response.status, error, response.headers);
  }
  return { data, etag };
}

const blogPath = (suffix = "") => "/blogs/" + encodeURIComponent(state.blog.slug) + suffix;
const entryTag = (entry) => '"entry-' + entry.id + "-v" + entry.version + '"';

// --- plain words for what went wrong --------------------------------------------------

const FIELD_NAMES = {
  headline: "the headline", body: "the text", authors: "the byline", media: "the photo",
  review_note: "the note", published_at: "the time", login: "the login", password: "the password",
  publish_at: "the time to publish", correction: "the correction note", pinned: "Pinned",
};

function fieldName(path) {
  const [first, , last] = path.split(".");
  if (first === "media" && last === "alt") return "the photo's description";
  if (first === "media" && last === "caption") return "the photo's caption";
  if (first === "media" && last === "credit") return "the photo's credit";
  if (first === "authors" && last === "role") return "the byline's role";
  return FIELD_NAMES[first] || "a field";
}

/** What went wrong, in a sentence a reporter can act on. */
function explain(error) {
  const kept = state.unsentKept ? "; your text is kept" : "";
  switch (error.code) {
    case "offline":
      return "no connection to the server — check the network and try again" + kept + ".";
    case "session_ended":
      return "your session ended — sign in again" + kept + ".";
    case "unauthorised":
      return state.auth && state.auth.kind === "token"
        ? "this token is unknown or revoked — sign in again" + kept + "."
        : "your session ended — sign in again" + kept + ".";
    case "csrf_failed":
      return "this page's sign-in is out of date — sign in again" + kept + ".";
    case "forbidden":
      return "you may not do that here. " + error.message;
    case "sign_in_failed":
      return "that login and password do not match. Check both and try again.";
    case "rate_limited":
      return "too many attempts — wait " + (error.retryAfter ? error.retryAfter + " seconds" : "a while")
        + " and try again.";
    case "alt_text_required":
      return "this blog needs a description of the photo for screen readers (alt text) first.";
    case "invalid_transition":
      return "the entry has moved on since (someone reviewed or changed it); the list shows where it is now.";
    case "not_found":
      return "that is no longer there (it may have been deleted).";
    case "conflict":
      return /pin/i.test(error.message) ? "only a published entry can be pinned."
        : "the server refused it as it stands: " + error.message;
    case "payload_too_large":
      return "that is too large for this server.";
    case "not_an_image":
      return "that file is not a photo Bulletin can read (JPEG, PNG, WebP, HEIC or GIF).";
    case "too_many_pixels":
      return "that photo has too many pixels; send a smaller one.";
    case "corrupt_image":
      return "that photo file is damaged or incomplete; try it again.";
    case "too_many_frames":
      return "that animation has too many frames.";
    case "media_storage_unavailable":
    case "database_unavailable":
    case "unavailable":
    case "server_busy":
    case "catching_up":
      return "the server is busy — try again in a moment" + kept + ".";
    case "invalid_input": {
      const fields = error.fields || {};
      const problems = Object.entries(fields);
      if (problems.some(([, text]) => /needs a headline/.test(text))) {
        return "write a headline or some text, or add a photo, first.";
      }
      if (problems.some(([name, text]) => name.startsWith("headline") && /at most/.test(text))) {
        return "the headline is too long (300 characters at most).";
      }
      if (problems.some(([name]) => name === "review_note")) return "write a note for the writer.";
      const when = problems.find(([name]) => name === "publish_at");
      if (when && /later than now/.test(when[1])) return "that time has passed — choose a later one.";
      if (when && /within a year/.test(when[1])) return "that is more than a year ahead — choose an earlier time.";
      if (problems.some(([name]) => name === "correction")) return "write the correction note readers will see.";
      const names = [...new Set(problems.map(([name]) => fieldName(name)))];
      return names.length ? "check " + names.join(" and ") + "." : "something in the form is not right.";
    }
    default:
      if (error.status >= 500 || error.code.startsWith("http_")) {
        return "the server answered " + error.status + (error.statusText ? " " + error.statusText : "")
          + "; try again in a moment" + kept + ".";
      }
      return "the server refused it: " + error.message;
  }
}

function say(where, text, kind = "info") {
  const node = typeof where === "string" ? $('[data-feedback="' + where + '"]') : where;
  if (!node) return;
  node.textContent = text;
  node.dataset.kind = kind;
}

function refusedAbout(id, verb, error) {
  sayAbout(id, verb + ": " + explain(error), "error");
  if (["session_ended", "unauthorised", "csrf_failed"].includes(error.code)) endSession();
}

function refused(where, verb, error) {
  const text = explain(error);
  say(where, verb + ": " + text, "error");
  if (["session_ended", "unauthorised", "csrf_failed"].includes(error.code)) endSession();
}

// --- the editor -----------------------------------------------------------------------

const ALLOWED = new Set(["P", "BR", "A", "EM", "STRONG", "I", "B", "UL", "OL", "LI", "BLOCKQUOTE", "CITE",
  "H2", "H3", "H4"]);
const DROPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "HEAD", "TITLE", "META", "LINK", "OBJECT", "IFRAME",
  "SVG", "MATH", "NOSCRIPT", "XML", "O:P", "DROPPED-STYLE"]);
const BLOCKS = new Set(["DIV", "SECTION", "ARTICLE", "HEADER", "FOOTER", "TABLE", "TR", "H1", "H5", "H6",
  "PRE", "ADDRESS", "FIGURE", "ASIDE", "MAIN"]);

/** Keep only the sanitiser's allow-list (app/sanitising.py): text stays, markup it would drop
 * goes, so what the reporter sees is what readers get — also for paste from a word processor. */
function cleanFragment(source) {
  const out = document.createDocumentFragment();
  for (const node of Array.from(source.childNodes)) {
    if (node.nodeType === Node.TEXT_NODE) { out.append(node.textContent); continue; }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = node.tagName.toUpperCase();
    if (DROPPED.has(tag)) continue;
    // Word and Docs mark bold and italic with styles, not tags.
    const style = node.getAttribute("data-style") || "";
    const bold = tag === "SPAN" && /font-weight:\s*(bold|[6-9]00)/i.test(style);
    const italic = tag === "SPAN" && /font-style:\s*italic/i.test(style);
    const inner = cleanFragment(node);
    const href = tag === "A" ? (node.getAttribute("href") || "").trim() : "";
    if (tag === "A" && !/^(https?:|mailto:)/i.test(href)) {
      out.append(inner); // a link to nowhere safe is just its text
    } else if (ALLOWED.has(tag)) {
      const copy = document.createElement(tag === "STRONG" ? "b" : tag === "EM" ? "i" : tag.toLowerCase());
      if (tag === "A") copy.setAttribute("href", href);
      copy.append(inner);
      out.append(copy);
    } else if (bold || italic) {
      let wrapped = inner;
      for (const [on, name] of [[bold, "b"], [italic, "i"]]) {
        if (!on) continue;
        const element = document.createElement(name);
        element.append(wrapped);
        wrapped = element;
      }
      out.append(wrapped);
    } else if (BLOCKS.has(tag)) {
      const paragraph = document.createElement("p");
      paragraph.append(inner);
      out.append(paragraph);
    } else {
      out.append(inner);
    }
  }
  return out;
}

function fragmentOf(html) {
  // Parsed documents inherit the page's CSP, which reports every style attribute and element
  // a word processor pastes: rename them first (read as data above, dropped in any case).
  const inert = html.replace(/(<[^>]*?\s)style(\s*=)/gi, "$1data-style$2")
    .replace(/<(\/?)style\b/gi, "<$1dropped-style");
  const parsed = new DOMParser().parseFromString(inert, "text/html");
  return document.importNode(cleanFragment(parsed.body), true);
}

const editor = new Squire($("[data-editor]"), {
  blockTag: "P",
  sanitizeToDOMFragment: (html) => fragmentOf(html),
});

/** The editor's content as the HTML an entry carries: empty blocks and stray breaks gone. */
function editorHtml() {
  const holder = document.createElement("div");
  holder.append(fragmentOf(editor.getHTML()));
  // The editor keeps typed spaces beside formatting as no-break spaces; readers' text wraps.
  const walker = document.createTreeWalker(holder, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    node.data = node.data.replace(/(?<![\s\u00a0])\u00a0(?![\s\u00a0])/g, " ");
  }
  for (const br of $$("br", holder)) {
    if (!br.nextSibling && br.parentNode !== holder) br.remove(); // Squire's placeholder
  }
  for (const block of $$("p, li, h2, h3, h4", holder)) {
    if (!block.textContent.trim() && !block.querySelector("br")) block.remove();
  }
  for (const list of $$("ul, ol, blockquote", holder)) if (!list.textContent.trim()) list.remove();
  return holder.textContent.trim() ? holder.innerHTML : "";
}

function setEditorHtml(html) {
  editor.setHTML(html || "");
}

const FORMATS = {
  bold: { has: () => editor.hasFormat("B") || editor.hasFormat("STRONG"),
    run: (on) => (on ? editor.removeBold() : editor.bold()) },
  italic: { has: () => editor.hasFormat("I") || editor.hasFormat("EM"),
    run: (on) => (on ? editor.removeItalic() : editor.italic()) },
  bullets: { has: () => editor.hasFormat("UL"),
    run: (on) => (on ? editor.removeList() : editor.makeUnorderedList()) },
  numbers: { has: () => editor.hasFormat("OL"),
    run: (on) => (on ? editor.removeList() : editor.makeOrderedList()) },
  quote: { has: () => editor.hasFormat("BLOCKQUOTE"),
    run: (on) => (on ? editor.removeQuote() : editor.increaseQuoteLevel()) },
  link: { has: () => editor.hasFormat("A"), run: () => openLinkForm() },
};

function showFormats() {
  for (const button of $$("[data-format]")) {
    button.setAttribute("aria-pressed", String(FORMATS[button.dataset.format].has()));
  }
}

for (const button of $$("[data-format]")) {
  button.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
  button.addEventListener("click", () => {
    const format = FORMATS[button.dataset.format];
    format.run(format.has());
    showFormats();
    keepUnsent();
  });
}
editor.addEventListener("pathChange", showFormats);
editor.addEventListener("input", () => { keepUnsent(); typing(); });

const linkForm = $("[data-link-form]");
function openLinkForm() {
  linkForm.hidden = false;
  say("link", "");
  $("#link-url").value = "";
  $("#link-url").focus();
}
/** The address as typed ("www.example.org/x" means https://), or null for one no link may
 * have (javascript:, data:, …): the sanitiser would drop it anyway. */
function linkAddress(typed) {
  if (/^(https?:\/\/|mailto:)/i.test(typed)) return typed;
  if (/^[^\s:/]+\.[^\s:]+$/.test(typed)) return "https://" + typed;
  return null;
}
function applyLink() {
  const typed = $("#link-url").value.trim();
  if (!typed) { linkForm.hidden = true; editor.focus(); return; }
  const url = linkAddress(typed);
  if (!url) {
    say("link", "Not linked: a link address starts with https:// (or mailto:).", "error");
    $("#link-url").focus();
    return;
  }
  linkForm.hidden = true;
  editor.focus();
  editor.makeLink(url);
  keepUnsent();
}
$("[data-link-apply]").addEventListener("click", applyLink);
$("#link-url").addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); applyLink(); }
  if (event.key === "Escape") { linkForm.hidden = true; editor.focus(); }
});
$("[data-link-remove]").addEventListener("click", () => {
  linkForm.hidden = true;
  editor.focus();
  editor.removeLink();
  keepUnsent();
});

// --- unsent text: kept in localStorage until the server confirms ----------------------

function composed() {
  return {
    headline: form.headline.value,
    body: editorHtml(),
    photo: state.photo,
    photo_alt: form.photo_alt.value,
    photo_caption: form.photo_caption.value,
    photo_credit: form.photo_credit.value,
    key_event: form.key_event.checked,
    tags: form.tags.value,
    pinned: form.pinned.checked,
    editing: state.editing,
    idempotencyKey: state.idempotencyKey,
  };
}

function isBlank(text) {
  return !text.headline.trim() && !text.body && !text.photo;
}

/** Where this person's unsent text for this blog is kept. */
function unsentKey() {
  return KEYS.unsent(personKey(), state.blog.slug);
}

function keepUnsent() {
  if (!state.blog || !personKey()) return;
  const text = composed();
  const key = unsentKey();
  if (isBlank(text) && !state.editing) localStorage.removeItem(key);
  else localStorage.setItem(key, JSON.stringify(text));
  state.unsentKept = !isBlank(text);
}

function forgetUnsent() {
  if (state.blog && personKey()) localStorage.removeItem(unsentKey());
  state.unsentKept = false;
}

function restoreUnsent() {
  const saved = state.blog && personKey() && localStorage.getItem(unsentKey());
  let text = null;
  try { text = saved ? JSON.parse(saved) : null; } catch (error) { text = null; }
  fillComposer(text || {});
  state.editing = text && text.editing ? text.editing : null;
  state.idempotencyKey = text ? text.idempotencyKey || null : null;
  showMode();
  state.unsentKept = Boolean(text && !isBlank(text));
  if (state.unsentKept) say("entry", "Your unsent text is back.", "info");
}

for (const field of ["headline", "photo_alt", "photo_caption", "photo_credit", "key_event", "tags", "pinned"]) {
  form[field].addEventListener("input", () => { keepUnsent(); typing(); });
}

/** Who is at the desk, for what is kept per person (byline, unsent text): the signed-in
 * user, or the token used without one. */
function personKey() {
  const me = state.me;
  if (!me) return null;
  return me.user ? "user-" + me.user.id : me.token ? "token-" + me.token.id : null;
}

for (const field of ["byline", "byline_role"]) {
  form[field].addEventListener("input", () => {
    const who = personKey();
    if (!who) return;
    localStorage.setItem(KEYS.byline(who), JSON.stringify({ name: form.byline.value, role: form.byline_role.value }));
  });
}

/** The byline as this person last left it; by default their name, and no role. */
function showByline() {
  const who = personKey();
  const saved = who ? JSON.parse(localStorage.getItem(KEYS.byline(who)) || "null") : null;
  const me = state.me;
  form.byline.value = saved && saved.name ? saved.name : me && me.user ? me.user.name : "";
  form.byline_role.value = saved && saved.name ? saved.role || "" : "";
}

function fillComposer(text) {
  form.headline.value = text.headline || "";
  setEditorHtml(text.body || "");
  form.photo_alt.value = text.photo_alt || "";
  form.photo_caption.value = text.photo_caption || "";
  form.photo_credit.value = text.photo_credit || "";
  form.key_event.checked = Boolean(text.key_event);
  form.tags.value = text.tags || "";
  form.pinned.checked = Boolean(text.pinned);
  showPhoto(text.photo || null);
}

/** The tags field as the API takes them; the server normalises and checks each. */
function tagsFromForm() {
  return form.tags.value.split(",").map((tag) => tag.trim()).filter(Boolean);
}

function sameTags(sent, stored) { // compared as the server stores them: lower-case, hyphens
  const storedForm = (tag) => tag.toLowerCase().replace(/ /g, "-");
  return JSON.stringify([...new Set(sent.map(storedForm))]) === JSON.stringify(stored);
}

// --- composing: the buttons' meaning depends on the role and the entry ---------------

function role() { return state.blog ? state.blog.role : null; }
function isEditor() { return EDITOR_ROLES.has(role()); }
function mayPublish() { return isEditor() || state.settings.contributors_may_publish; }

/** What the primary button does now: [label, status to send, verb for feedback]. */
function primaryAction() {
  const entry = state.editing && state.editing.entry;
  if (entry && entry.status === "published") return ["Save changes", null, "Not saved"];
  if (mayPublish()) return [entry && entry.status === "submitted" ? "Approve and publish" : "Publish", "published", "Not published"];
  return ["Submit for review", "submitted", "Not submitted"];
}

function showMode() {
  const entry = state.editing && state.editing.entry;
  const [label] = primaryAction();
  $("[data-primary]").textContent = label;
  $("[data-shortcut-action]").textContent = label === "Submit for review" ? "submits" : label === "Save changes" ? "saves" : "publishes";
  $("[data-save-draft]").hidden = Boolean(entry && entry.status === "published");
  $("[data-save-draft]").textContent = entry ? "Save" : "Save draft";
  $("[data-cancel]").hidden = !entry;
  $("[data-entry-title]").textContent = entry
    ? "Editing: " + (entry.headline || "entry " + entry.id) + " (" + STATES[entry.status].toLowerCase() + ")"
    : "New entry";
  const note = $("[data-review-note]");
  note.hidden = !(entry && entry.review_note);
  note.textContent = entry && entry.review_note ? "The editor's note: " + entry.review_note : "";
  for (const node of $$("[data-editors-only]")) node.hidden = !isEditor();
  for (const node of $$("[data-owners-only]")) node.hidden = role() !== "owner";
  $("[data-posting-to]").textContent = state.blog ? state.blog.title : "";
  const published = Boolean(entry && entry.status === "published");
  $("[data-change-kind]").hidden = !published;
  const publishes = !published && mayPublish();
  $("[data-schedule-open]").hidden = !publishes;
  $("[data-hold-setting]").hidden = !publishes;
  if (!publishes) $("[data-schedule]").hidden = true;
  showPresence();
}

function byline() {
  const name = form.byline.value.trim();
  if (!name) return [];
  const author = { name };
  if (form.byline_role.value.trim()) author.role = form.byline_role.value.trim();
  return [author];
}

function mediaFromForm() {
  if (!state.photo) return [];
  const item = { kind: "image", alt: form.photo_alt.value.trim(), caption: form.photo_caption.value.trim(),
    credit: form.photo_credit.value.trim() };
  if (state.photo.media_id) item.media_id = state.photo.media_id;
  else item.url = state.photo.url;
  return [item];
}

function mediaAsSent(entry) {
  return entry.media.map((item) => {
    const sent = { kind: item.kind, caption: item.caption, credit: item.credit, alt: item.alt };
    if (item.media_id) sent.media_id = item.media_id; else sent.url = item.url;
    return sent;
  });
}

/** Only what the reporter changed, so media and authors the form cannot show survive. */
function changes(entry) {
  const patch = {};
  const headline = form.headline.value.trim() || null;
  if (headline !== entry.headline) patch.headline = headline;
  const body = editorHtml();
  if (normalise(body) !== normalise(entry.body)) patch.body = body;
  if (form.key_event.checked !== entry.key_event) patch.key_event = form.key_event.checked;
  if (!sameTags(tagsFromForm(), entry.tags || [])) patch.tags = tagsFromForm();
  if (isEditor() && form.pinned.checked !== entry.pinned) patch.pinned = form.pinned.checked;
  const media = mediaAsSent(entry);
  const index = media.findIndex((item) => item.kind === "image");
  const [photo] = mediaFromForm();
  const before = index < 0 ? null : media[index];
  if (JSON.stringify(photo || null) !== JSON.stringify(before)) {
    if (index < 0) { if (photo) media.unshift(photo); } else if (photo) media[index] = photo;
    else media.splice(index, 1);
    patch.media = media;
  }
  const authors = byline();
  const was = entry.authors.map((a) => ({ name: a.name, role: a.role || undefined }));
  if (JSON.stringify(authors) !== JSON.stringify(was.slice(0, 1)) && authors.length) {
    const urls = new Map(entry.authors.map((a) => [a.name, a.url]));
    patch.authors = authors.map((a) => (urls.get(a.name) ? Object.assign(a, { url: urls.get(a.name) }) : a))
      .concat(entry.authors.slice(1));
  }
  return patch;
}

function normalise(html) {
  const holder = document.createElement("div");
  holder.append(fragmentOf(html || ""));
  return holder.innerHTML.replace(/\s+/g, " ").trim();
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2);
}

let sending = false;

/** Send what is composed: a new entry, or the edit of one; `status` moves it through review.
 * A publish waits `holdSeconds()` (the undo window), or until `publishAt` when scheduled. */
async function send(status, verb, done, { publishAt } = {}) {
  if (sending || !state.blog) return;
  sending = true;
  keepUnsent();
  const where = publishAt ? "schedule" : "entry";
  const button = publishAt ? $("[data-schedule-send]")
    : status === "draft" ? $("[data-save-draft]") : $("[data-primary]");
  button.disabled = true;
  say(where, "Sending…", "info");
  try {
    const when = publishAt ? { publish_at: publishAt } : status === "published" ? holding() : {};
    if (state.editing) await sendEdit(status, done, { when });
    else await sendNew(status, done, when);
    if (publishAt) say("schedule", "");
  } catch (error) {
    if (error.code === "precondition_failed") showConflict(error.current, status);
    else refused(where, verb, error);
  } finally {
    sending = false;
    button.disabled = false;
  }
}

/** What a publish from the composer waits: the undo window, unless pinned (a pin is of
 * what is out) or set to 0. */
function holding() {
  const seconds = holdSeconds();
  return seconds && !form.pinned.checked ? { hold_seconds: seconds } : {};
}

/** The answer to a write (`when`: its hold or schedule): a publish that waits says until when. */
function sent(data, done, when) {
  remember(data);
  resetComposer({ saved: true });
  if (data.status !== "scheduled") say("entry", done[data.status] || "Saved.", "ok");
  else if (when.hold_seconds) {
    held(data);
    say("entry", "Held: it goes out when the countdown ends, unless you undo it.", "ok");
  } else say("entry", (when.publish_at ? "Scheduled" : "Saved; it goes out") + " at " + blogTime(data.publish_at) + ".", "ok");
}

async function sendNew(status, done, when = {}) {
  const entry = {
    headline: form.headline.value.trim() || null,
    body: editorHtml(),
    authors: byline(),
    media: mediaFromForm(),
    key_event: form.key_event.checked,
    tags: tagsFromForm(),
    pinned: isEditor() && status === "published" && form.pinned.checked,
    status,
    ...when,
  };
  state.idempotencyKey = state.idempotencyKey || newKey();
  keepUnsent();
  const { data } = await call("POST", blogPath("/entries"), {
    body: entry, headers: { "Idempotency-Key": state.idempotencyKey },
  });
  sent(data, done, when);
}

async function sendEdit(status, done, { force, when = {} } = {}) {
  const { entry, etag } = state.editing;
  const patch = changes(entry);
  if (status && status !== entry.status) patch.status = status;
  // Going out from a private state: held or scheduled as asked.
  if (patch.status === "published" || (status === "published" && entry.status === "scheduled")) {
    Object.assign(patch, when, { status: "published" });
  }
  if (entry.status === "published") {
    const kind = form.change_kind.value;
    if (kind === "correction") {
      const note = form.correction.value.trim();
      if (!note) {
        say("entry", "Not saved: write the correction note readers will see, or choose another kind of change.", "error");
        form.correction.focus();
        return;
      }
      patch.correction = note;
    } else if (kind === "minor" && Object.keys(patch).length) patch.minor = true;
  }
  if (!Object.keys(patch).length) {
    say("entry", "Nothing changed.", "info");
    return;
  }
  const { data } = await call("PATCH", blogPath("/entries/" + entry.id), {
    body: patch, headers: { "If-Match": force || etag },
  });
  sent(data, done, patch);
}

const DONE_NEW = { published: "Published.", submitted: "Submitted for review.", draft: "Draft saved." };
const DONE_EDIT = { published: "Saved; readers see it now.", submitted: "Submitted for review.",
  draft: "Draft saved.", returned: "Saved." };

function primary() {
  const [, status, verb] = primaryAction();
  send(status, verb, state.editing ? DONE_EDIT : DONE_NEW);
}

form.addEventListener("submit", (event) => { event.preventDefault(); primary(); });
$("[data-save-draft]").addEventListener("click", () => {
  const entry = state.editing && state.editing.entry;
  // Saving a returned entry takes it back to draft, to work on it.
  const status = entry ? (entry.status === "returned" ? "draft" : null) : "draft";
  send(status, "Not saved", state.editing ? DONE_EDIT : DONE_NEW);
});
// Both work everywhere; the hint names the one on this keyboard.
if (/^Mac/.test(navigator.platform)) $("[data-shortcut-key]").textContent = "Cmd";
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form.contains(event.target)) {
    event.preventDefault();
    primary();
  }
});

/** An empty composer; the flag of the entry it held goes (a save has released it already). */
function resetComposer({ saved } = {}) {
  if (saved) state.flag = null;
  else releaseFlag();
  state.editing = null;
  state.lostFlag = null;
  state.idempotencyKey = null;
  fillComposer({});
  // An entry edited had its own byline; the next one is this person's again.
  showByline();
  resetChangeKind();
  forgetUnsent();
  linkForm.hidden = true;
  $("[data-photo-panel]").open = false;
  say("photo", "");
  showMode();
}

$("[data-cancel]").addEventListener("click", () => {
  resetComposer();
  say("entry", "Stopped editing; nothing was sent.", "info");
});

/** While an entry is on its way into the composer, nothing can be typed there: it would be
 * overwritten when the entry arrives. */
function composerLoading(loading) {
  form.inert = loading;
  form.setAttribute("aria-busy", String(loading));
  if (loading) say("entry", "Opening the entry…", "info");
}

async function startEditing(entry) {
  if (state.unsentKept && !confirm("Put aside the text you have not sent, to edit this entry?")) return;
  let fresh = entry;
  let etag = entryTag(entry);
  composerLoading(true);
  try {
    const answer = await call("GET", blogPath("/entries/" + entry.id));
    fresh = answer.data;
    etag = answer.etag || entryTag(fresh);
    remember(fresh);
  } catch (error) {
    say("entry", "");
    refusedAbout(entry.id, "Cannot edit", error);
    return;
  } finally {
    composerLoading(false);
  }
  openInComposer(fresh, etag);
}

/** Put an entry, as just read, in the composer to edit, and show that this editor is on it. */
function openInComposer(fresh, etag) {
  if (state.editing && state.editing.entry.id !== fresh.id) releaseFlag();
  state.editing = { entry: fresh, etag };
  state.lostFlag = null;
  state.idempotencyKey = null;
  resetChangeKind();
  const photo = fresh.media.find((item) => item.kind === "image");
  fillComposer({
    headline: fresh.headline || "", body: fresh.body, key_event: fresh.key_event, pinned: fresh.pinned,
    tags: (fresh.tags || []).join(", "),
    photo: photo ? (photo.media_id ? { media_id: photo.media_id, url: photo.url } : { url: photo.url }) : null,
    photo_alt: photo ? photo.alt : "", photo_caption: photo ? photo.caption : "",
    photo_credit: photo ? photo.credit : "",
  });
  if (fresh.authors.length) {
    form.byline.value = fresh.authors[0].name;
    form.byline_role.value = fresh.authors[0].role || "";
  }
  hideConflict();
  showMode();
  keepUnsent();
  say("entry", "");
  form.headline.focus();
  form.scrollIntoView({ block: "start" });
  takeFlag();
}

// --- who is editing: the entry's flag, taken while this editor works on it -------------

const RENEW_SECONDS = 10;
const myUserId = () => (state.me && state.me.user ? state.me.user.id : null);
const flagPath = (id) => blogPath("/entries/" + id + "/editing");

/** Take the flag of the entry in the composer (or renew it); with `takeOver`, knowingly
 * from whoever holds it. Only users have flags: a token of no user goes without. */
async function takeFlag({ takeOver = false } = {}) {
  const entry = state.editing && state.editing.entry;
  if (!entry || !myUserId() || !state.blog) return;
  state.flagAt = Date.now();
  try {
    const { data } = await call("PUT", flagPath(entry.id), { body: takeOver ? { take_over: true } : undefined });
    if (!state.editing || state.editing.entry.id !== entry.id) return; // left meanwhile
    state.flag = { entryId: entry.id };
    state.lostFlag = null;
    showEditor(entry.id, data.editor);
    if (takeOver) say("entry", "You are editing it now; " + data.editor.name + "'s name is gone from it.", "ok");
  } catch (error) {
    if (error.code === "being_edited" && error.editor) showEditor(entry.id, error.editor);
    else if (takeOver) refused("entry", "Not taken over", error);
  }
}

/** Typing renews the flag about every ten seconds, not at each key. */
function typing() {
  if (state.editing && Date.now() - state.flagAt >= RENEW_SECONDS * 1000) takeFlag();
}

/** Give up the flag this page holds; `leaving`: the page is going away, so the request
 * must outlive it. */
function releaseFlag({ leaving = false } = {}) {
  const held = state.flag;
  state.flag = null;
  state.flagAt = 0;
  if (!held || !state.blog || !state.auth) return;
  if (leaving) {
    fetch(API + flagPath(held.entryId), {
      method: "DELETE", keepalive: true, credentials: "same-origin", headers: authHeaders("DELETE"),
    }).catch(() => null);
  } else call("DELETE", flagPath(held.entryId)).catch(() => null);
}

/** A flag taken (editor) or gone (null), from a note or an answer. */
function showEditor(entryId, editor) {
  if (editor) state.editors.set(entryId, editor);
  else state.editors.delete(entryId);
  if (state.flag && state.flag.entryId === entryId && editor && editor.user_id !== myUserId()) {
    state.flag = null; // taken over: renewing now would take it back unasked
    state.lostFlag = entryId;
  }
  showPresence();
  render();
}

/** Someone else on the entry in the list, by name; null for nobody (or this user). */
function otherEditor(entryId) {
  const editor = state.editors.get(entryId);
  return editor && editor.user_id !== myUserId() ? editor : null;
}

function showPresence() {
  const entry = state.editing && state.editing.entry;
  const editor = entry ? otherEditor(entry.id) : null;
  $("[data-presence]").hidden = !editor;
  if (!editor) return;
  $("[data-presence-text]").textContent = state.lostFlag === entry.id
    ? editor.name + " took over editing this entry. Save only if you mean to, or take it back."
    : editor.name + " is editing this entry (since " + clock(editor.since) + ").";
}

$("[data-take-over]").addEventListener("click", () => {
  const editor = state.editing && otherEditor(state.editing.entry.id);
  if (editor && !confirm("Take this entry over from " + editor.name + "? They are told that you are editing it now.")) return;
  takeFlag({ takeOver: true });
});

async function loadEditors() {
  const slug = state.blog.slug;
  const { data } = await call("GET", blogPath("/editing"));
  if (!state.blog || state.blog.slug !== slug) return;
  state.editors = new Map(data.items.map((item) => [item.entry_id, item.editor]));
  showPresence();
  render();
}

// Leaving the page leaves the entry: others see at once that nobody is on it.
window.addEventListener("pagehide", () => releaseFlag({ leaving: true }));

// --- what readers are told of a change to a published entry ----------------------------

function resetChangeKind() {
  form.change_kind.value = "update";
  form.correction.value = "";
  $("[data-correction-field]").hidden = true;
}

for (const choice of $$('[name="change_kind"]')) {
  choice.addEventListener("change", () => {
    const correcting = form.change_kind.value === "correction";
    $("[data-correction-field]").hidden = !correcting;
    if (correcting) form.correction.focus();
  });
}

// --- the undo window: a publish from here waits a few seconds --------------------------

const HOLD_DEFAULT = 10;
const holdInput = $("[data-hold-seconds]");

function holdSeconds() {
  const seconds = Number(holdInput.value);
  return Number.isInteger(seconds) && seconds >= 0 && seconds <= 60 ? seconds : HOLD_DEFAULT;
}

holdInput.value = String(localStorage.getItem(KEYS.hold) ?? HOLD_DEFAULT);
holdInput.addEventListener("input", () => localStorage.setItem(KEYS.hold, String(holdSeconds())));
holdInput.addEventListener("change", () => { holdInput.value = String(holdSeconds()); });

function held(entry) {
  const node = document.createElement("li");
  node.className = "hold-item";
  node.dataset.entryId = entry.id;
  const text = document.createElement("p");
  text.dataset.countdown = "";
  node.append(text, button("Undo", () => undo(entry.id), "primary"));
  state.holds.set(entry.id, { entry, node });
  $("[data-holds-list]").append(node);
  showHolds();
  node.querySelector("button").focus();
}

/** The countdown, updated in place (a button replaced under the pointer loses its click). */
function showHolds() {
  for (const { entry, node } of state.holds.values()) {
    const left = Math.ceil((Date.parse(entry.publish_at) - Date.now()) / 1000);
    $("[data-countdown]", node).textContent = (left > 0 ? "Goes out in " + left + " s: " : "Going out now: ")
      + excerpt(entry);
  }
  $("[data-holds]").hidden = state.holds.size === 0;
  if (state.holds.size && !state.holdTimer) state.holdTimer = setInterval(showHolds, 250);
  if (!state.holds.size && state.holdTimer) { clearInterval(state.holdTimer); state.holdTimer = null; }
}

/** A held entry went out, or back (undone elsewhere, or dropped by the server). */
function settleHold(entry) {
  const hold = state.holds.get(entry.id);
  if (!hold) return;
  state.holds.delete(entry.id);
  hold.node.remove();
  showHolds();
  if (entry.status === "published") say("entry", "Published: " + excerpt(entry) + ".", "ok");
  else say("entry", "Not published: " + excerpt(entry) + " is " + STATES[entry.status].toLowerCase() + " again.", "info");
}

/** Undo a held publish: nothing was sent; the entry comes back to the composer as a draft. */
async function undo(id) {
  const hold = state.holds.get(id);
  if (!hold) return;
  $("button", hold.node).disabled = true;
  try {
    const { data, etag } = await call("POST", blogPath("/entries/" + id + "/cancel-publish"));
    state.holds.delete(id);
    hold.node.remove();
    showHolds();
    remember(data);
    if (data.status !== "draft") {
      say("entry", "Undone: nothing was sent; it is back in the review queue.", "ok");
    } else if (state.unsentKept && !confirm("Undone. Put aside the text you have not sent, to go back to this one?")) {
      say("entry", "Undone: nothing was sent; it is a draft in the list.", "ok");
    } else {
      openInComposer(data, etag || entryTag(data));
      say("entry", "Undone: nothing was sent. It is a draft again, here to change.", "ok");
    }
  } catch (error) {
    $("button", hold.node).disabled = false;
    if (error.code === "already_published" || error.code === "not_scheduled") {
      state.holds.delete(id);
      hold.node.remove();
      showHolds();
      say("entry", error.code === "already_published"
        ? "Too late to undo: it is published. Edit it, or delete it, from the list." : "There was nothing to undo.", "error");
    } else refused("entry", "Not undone", error);
  }
}

// --- scheduled publishes: a time in the blog's zone ------------------------------------

function zoneParts(ms, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  return Object.fromEntries(parts.map((part) => [part.type, Number(part.value)]));
}

/** How far the zone's clock is ahead of UTC at the moment `ms`. */
function zoneOffset(ms, timeZone) {
  const p = zoneParts(ms, timeZone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** The moment a wall-clock time ("2026-12-03T06:00[:05]") names in the zone. */
function zonedMoment(value, timeZone) {
  const [day, time] = value.split("T");
  const [year, month, date] = day.split("-").map(Number);
  const [hour, minute, second = 0] = time.split(":").map(Number);
  const wall = Date.UTC(year, month - 1, date, hour, minute, second);
  const first = wall - zoneOffset(wall, timeZone);
  return new Date(wall - zoneOffset(first, timeZone)); // the offset then, across a clock change
}

function wallClock(ms, timeZone) {
  const p = zoneParts(ms, timeZone);
  const two = (n) => String(n).padStart(2, "0");
  return p.year + "-" + two(p.month) + "-" + two(p.day) + "T" + two(p.hour) + ":" + two(p.minute);
}

const blogZone = () => (state.blog && state.blog.timezone) || "UTC";

function blogTime(iso) {
  return new Intl.DateTimeFormat([], {
    timeZone: blogZone(), weekday: "short", day: "numeric", month: "short",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  }).format(new Date(iso));
}

$("[data-schedule-open]").addEventListener("click", () => {
  const box = $("[data-schedule]");
  box.hidden = false;
  $("[data-schedule-zone]").textContent = "(" + blogZone() + " time, the blog's)";
  const input = $("[data-publish-at]");
  if (!input.value) input.value = wallClock(Date.now() + 60 * 60 * 1000, blogZone());
  say("schedule", "");
  input.focus();
});
$("[data-schedule-close]").addEventListener("click", () => { $("[data-schedule]").hidden = true; });
$("[data-schedule-send]").addEventListener("click", () => {
  const value = $("[data-publish-at]").value;
  if (!value) { say("schedule", "Not scheduled: choose a date and a time.", "error"); return; }
  const [, status, verb] = primaryAction();
  if (status !== "published") return;
  send("published", verb.replace("published", "scheduled"), {},
    { publishAt: zonedMoment(value, blogZone()).toISOString() });
});

function scheduledItem(entry) {
  const item = document.createElement("li");
  item.className = "entry-item";
  item.dataset.entryId = entry.id;
  const when = document.createElement("p");
  when.className = "entry-item__meta";
  const time = document.createElement("time");
  time.dateTime = entry.publish_at;
  time.textContent = blogTime(entry.publish_at);
  when.append("Goes out ", time);
  const title = document.createElement("p");
  title.className = "entry-item__title";
  title.textContent = excerpt(entry);
  const actions = document.createElement("div");
  actions.className = "row entry-item__actions";
  actions.append(button("Cancel", () => cancelSchedule(entry)));
  const feedback = document.createElement("p");
  feedback.className = "feedback";
  feedback.setAttribute("role", "status");
  item.append(when, title, actions, feedback);
  return item;
}

async function cancelSchedule(entry) {
  try {
    const { data } = await call("POST", blogPath("/entries/" + entry.id + "/cancel-publish"));
    remember(data);
    sayAbout(entry.id, "Schedule cancelled: nothing was sent; it is " + STATES[data.status].toLowerCase() + " again.", "ok");
  } catch (error) {
    refusedAbout(entry.id, "Not cancelled", error);
  }
}

// --- a conflict: both versions side by side -------------------------------------------

function showConflict(current, status) {
  const panel = $("[data-conflict]");
  state.conflict = { current, status };
  const theirs = current.entry;
  $("[data-conflict-who]").textContent = "Changed by " + (current.changed_by || "someone") + " at "
    + clock(current.changed_at) + " while you were editing. Nothing of yours was saved yet.";
  $("[data-theirs-headline]").textContent = theirs.headline || "(no headline)";
  $("[data-theirs-body]").replaceChildren(fragmentOf(theirs.body));
  $("[data-yours-headline]").textContent = form.headline.value.trim() || "(no headline)";
  $("[data-yours-body]").replaceChildren(fragmentOf(editorHtml()));
  panel.hidden = false;
  say("entry", "Not saved: someone else changed this entry meanwhile — compare the two versions.", "error");
  say("conflict", "");
  panel.scrollIntoView({ block: "nearest" });
  $('[data-conflict-choice="merge"]').focus();
}

function hideConflict() {
  $("[data-conflict]").hidden = true;
  state.conflict = null;
}

$('[data-conflict-choice="theirs"]').addEventListener("click", () => {
  const theirs = state.conflict.current.entry;
  hideConflict();
  remember(theirs);
  resetComposer();
  say("entry", "Kept their version; yours was put aside.", "info");
});

$('[data-conflict-choice="merge"]').addEventListener("click", () => {
  const { current } = state.conflict;
  // Theirs goes into the editor with the new tag; yours stays visible beside it to copy from.
  state.editing = { entry: current.entry, etag: current.etag };
  remember(current.entry);
  form.headline.value = current.entry.headline || "";
  setEditorHtml(current.entry.body);
  keepUnsent();
  showMode();
  $("[data-conflict] h2").textContent = "Merging: their version is in the editor, yours is here";
  $$("[data-conflict] .conflict__side")[0].hidden = true;
  say("conflict", "Their version is in the editor; copy in what you need from yours, then save.", "info");
  form.headline.focus();
});

$('[data-conflict-choice="overwrite"]').addEventListener("click", async () => {
  const { current, status } = state.conflict;
  if (!confirm("Replace their version with yours? Their changes will be lost (they stay in the revisions).")) return;
  state.editing = { entry: current.entry, etag: current.etag };
  const [, , verb] = primaryAction();
  try {
    await sendEdit(status, DONE_EDIT);
    hideConflict();
  } catch (error) {
    if (error.code === "precondition_failed") showConflict(error.current, status);
    else refused("conflict", verb, error);
  }
});

// --- the photo -------------------------------------------------------------------------

function showPhoto(photo) {
  state.photo = photo;
  const preview = $("[data-photo-preview]");
  preview.hidden = !photo;
  $("[data-photo-image]").src = photo ? photo.preview || photo.url : "";
  $("[data-photo-summary]").textContent = photo ? "(1 attached)" : "";
  if (photo) $("[data-photo-panel]").open = true;
}

function upload(file) {
  if (!state.blog) return;
  const progress = $("[data-photo-progress]");
  const request = new XMLHttpRequest();
  const data = new FormData();
  data.append("file", file);
  request.open("POST", API + blogPath("/media"));
  for (const [name, value] of Object.entries(authHeaders("POST"))) request.setRequestHeader(name, value);
  request.setRequestHeader("Accept", "application/json");
  progress.hidden = false;
  progress.value = 0;
  say("photo", "Uploading " + file.name + "…", "info");
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
  });
  request.addEventListener("load", () => {
    progress.hidden = true;
    let answer = null;
    try { answer = JSON.parse(request.responseText); } catch (error) { answer = null; }
    if (request.status === 201 && answer) {
      const small = (answer.renditions || []).find((r) => r.format === "jpeg" && r.width >= 640)
        || { url: answer.url };
      showPhoto({ media_id: answer.id, url: answer.url, preview: small.url });
      keepUnsent();
      say("photo", "Photo uploaded. Describe it for screen readers below.", "ok");
      form.photo_alt.focus();
    } else {
      const error = new ApiError(request.status, (answer && answer.error) || { statusText: request.statusText },
        { get: (name) => request.getResponseHeader(name) });
      refused("photo", "Not uploaded", error);
    }
  });
  request.addEventListener("error", () => {
    progress.hidden = true;
    refused("photo", "Not uploaded", new ApiError(0, { code: "offline" }));
  });
  request.send(data);
}

for (const picker of [$("[data-photo-file]"), $("[data-photo-camera]")]) {
  picker.addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) upload(file);
    event.target.value = "";
  });
}
const drop = $("[data-drop]");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.dataset.over = "true"; });
drop.addEventListener("dragleave", () => { delete drop.dataset.over; });
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  delete drop.dataset.over;
  const [file] = event.dataTransfer.files;
  if (file) upload(file);
});
// A photo pasted into the text goes up as the entry's photo, not into the text.
$("[data-editor]").addEventListener("paste", (event) => {
  const file = Array.from(event.clipboardData ? event.clipboardData.files : []).find((f) => f.type.startsWith("image/"));
  if (file) { event.preventDefault(); event.stopPropagation(); upload(file); }
}, true);
$("[data-photo-remove]").addEventListener("click", () => {
  showPhoto(null);
  keepUnsent();
  say("photo", "Photo removed from this entry.", "info");
});

// --- the entry list and the review queue ----------------------------------------------

function remember(entry) {
  if (entry.status === "deleted") { forget(entry.id); return; }
  const known = state.entries.get(entry.id);
  if (known && known.version > entry.version) return; // a notice and a list may cross
  state.entries.set(entry.id, entry);
  if (entry.status !== "scheduled") settleHold(entry);
  render();
}

function forget(id) {
  state.gone.add(id);
  state.entries.delete(id);
  state.editors.delete(id);
  render();
}

function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  return today ? time : date.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
}

function excerpt(entry) {
  if (entry.headline) return entry.headline;
  const holder = document.createElement("div");
  holder.append(fragmentOf(entry.body));
  return holder.textContent.trim().slice(0, 80) || (entry.media.length ? "(photo)" : "(empty)");
}

const PIN_ICON = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true" focusable="false">'
  + '<path d="M5 1h6l-1 5 3 3H9l-1 6-1-6H3l3-3z" fill="currentColor"/></svg>';

function badge(text, kind) {
  const node = document.createElement("span");
  node.className = "badge badge--" + kind;
  if (kind === "pinned") node.innerHTML = PIN_ICON;
  node.append(text);
  return node;
}

function button(text, run, kind) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  if (kind) node.className = kind;
  node.addEventListener("click", run);
  return node;
}

/** Feedback about one entry, beside its buttons; kept across re-renders of the list. */
function sayAbout(id, text, kind = "info") {
  state.notes.set(id, [text, kind]);
  for (const node of $$('[data-entry-id="' + id + '"] > .feedback')) say(node, text, kind);
}

/** Editors change any entry; a contributor its own unpublished ones (the only private ones
 * the API shows it). */
function mayChange(entry) {
  return isEditor() || entry.status !== "published";
}

function entryItem(entry, { queue } = {}) {
  const item = document.createElement("li");
  item.className = "entry-item";
  item.dataset.entryId = entry.id;
  item.dataset.status = entry.status;
  const meta = document.createElement("p");
  meta.className = "entry-item__meta";
  const time = document.createElement("time");
  time.dateTime = entry.status === "published" ? entry.published_at : entry.updated_at;
  time.textContent = clock(time.dateTime);
  meta.append(time, " ", entry.authors.map((a) => a.name).join(", ") || "No byline", " ");
  meta.append(badge(STATES[entry.status], entry.status));
  if (entry.key_event) meta.append(badge("Key event", "key"));
  if (entry.pinned) meta.append(badge("Pinned", "pinned"));
  const title = document.createElement("p");
  title.className = "entry-item__title";
  title.textContent = excerpt(entry);
  item.append(meta, title);
  const editor = otherEditor(entry.id);
  if (editor) {
    const line = document.createElement("p");
    line.className = "entry-item__editing";
    line.dataset.editing = "";
    line.textContent = editor.name + " is editing";
    item.append(line);
  }
  if (entry.review_note && entry.status === "returned") {
    const note = document.createElement("p");
    note.className = "review-note";
    note.textContent = "Returned: " + entry.review_note;
    item.append(note);
  }
  const actions = document.createElement("div");
  actions.className = "row entry-item__actions";
  if (queue) {
    actions.append(button("Approve", () => approve(entry), "primary"),
      button("Return with note", () => openReturn(item, entry)));
  }
  if (mayChange(entry)) actions.append(button("Edit", () => startEditing(entry)));
  if (!isEditor() && entry.status === "submitted") {
    actions.append(button("Withdraw", () => withdraw(entry)));
  }
  if (isEditor() && entry.status === "published") {
    actions.append(entry.pinned ? button("Unpin", () => setPinned(entry, false))
      : button("Pin", () => setPinned(entry, true)));
  }
  if (mayChange(entry)) actions.append(button("Delete", () => removeEntry(entry), "danger"));
  const receipt = state.receipts.get(entry.id);
  if (receipt && entry.status === "published") item.append(receiptLine(receipt));
  const feedback = document.createElement("p");
  feedback.className = "feedback";
  feedback.setAttribute("role", "status");
  feedback.setAttribute("aria-live", "polite");
  const note = state.notes.get(entry.id);
  if (note) say(feedback, note[0], note[1]);
  item.append(actions, feedback);
  return item;
}

const FILTERS = {
  all: () => true,
  published: (e) => e.status === "published",
  draft: (e) => e.status === "draft",
  submitted: (e) => e.status === "submitted",
  returned: (e) => e.status === "returned",
  key: (e) => e.key_event,
  pinned: (e) => e.pinned,
};

function newestFirst(a, b) {
  const at = (e) => (e.status === "published" ? e.published_at : e.updated_at);
  return at(b).localeCompare(at(a)) || b.id - a.id;
}

let rendering = false;
function render() {
  if (rendering) return;
  rendering = true;
  queueMicrotask(() => {
    rendering = false;
    const all = Array.from(state.entries.values()).sort(newestFirst);
    // Keep what someone is typing (a note to return with) across a re-render.
    const open = new Set($$("[data-return-form]").map((node) => node.closest("li").dataset.entryId));
    const shown = all.filter(FILTERS[state.filter]);
    const list = $("[data-entries]");
    list.replaceChildren(...shown.filter((e) => !open.has(String(e.id))).map((e) => entryItem(e)));
    $("[data-list-empty]").hidden = shown.length > 0;
    const waitingToGo = all.filter((e) => e.status === "scheduled" && !state.holds.has(e.id))
      .sort((a, b) => a.publish_at.localeCompare(b.publish_at));
    $("[data-scheduled-list]").replaceChildren(...waitingToGo.map(scheduledItem));
    $("[data-scheduled-count]").textContent = String(waitingToGo.length);
    $("[data-scheduled]").hidden = waitingToGo.length === 0;
    const queue = $("[data-queue]");
    queue.hidden = !isEditor();
    if (isEditor()) {
      const waiting = all.filter((e) => e.status === "submitted");
      const queueList = $("[data-queue-list]");
      const kept = $$("li", queueList).filter((li) => open.has(li.dataset.entryId)
        && state.entries.get(Number(li.dataset.entryId))?.status === "submitted");
      queueList.replaceChildren(...waiting.map((e) => kept.find((li) => li.dataset.entryId === String(e.id))
        || entryItem(e, { queue: true })));
      $("[data-queue-count]").textContent = String(waiting.length);
      $("[data-queue-empty]").hidden = waiting.length > 0;
    }
  });
}

for (const filter of $$("[data-filter]")) {
  filter.addEventListener("click", () => {
    state.filter = filter.dataset.filter;
    for (const other of $$("[data-filter]")) other.setAttribute("aria-pressed", String(other === filter));
    render();
  });
}

async function approve(entry) {
  sayAbout(entry.id, "Publishing…");
  try {
    const hold = holdSeconds();
    const { data } = await call("PATCH", blogPath("/entries/" + entry.id), {
      body: hold ? { status: "published", hold_seconds: hold } : { status: "published" },
      headers: { "If-Match": entryTag(entry) },
    });
    remember(data);
    if (data.status === "scheduled") {
      held(data);
      sayAbout(entry.id, "");
      say("entry", "Approved: it goes out when the countdown ends, unless you undo it.", "ok");
    } else say("entry", "Approved and published: " + excerpt(data) + ".", "ok");
  } catch (error) {
    if (error.code === "precondition_failed") {
      remember(error.current.entry);
      sayAbout(entry.id, "Not published: the writer changed it meanwhile — read it again, then approve.", "error");
    } else refusedAbout(entry.id, "Not published", error);
  }
}

function openReturn(item, entry) {
  if ($("[data-return-form]", item)) return;
  const box = document.createElement("div");
  box.dataset.returnForm = "";
  box.className = "return-form";
  const id = "return-note-" + entry.id;
  box.innerHTML = '<label for="' + id + '">Note to the writer</label><textarea rows="2" id="' + id + '"></textarea>';
  const note = $("textarea", box);
  box.append(button("Send back", async () => {
    const text = note.value.trim();
    if (!text) { sayAbout(entry.id, "Not returned: write a note for the writer first.", "error"); note.focus(); return; }
    try {
      const { data } = await call("PATCH", blogPath("/entries/" + entry.id), {
        body: { status: "returned", review_note: text }, headers: { "If-Match": entryTag(entry) },
      });
      box.remove();
      remember(data);
      say("entry", "Returned to the writer with your note.", "ok");
    } catch (error) {
      if (error.code === "precondition_failed") {
        sayAbout(entry.id, "Not returned: the writer changed it meanwhile — read it again.", "error");
        box.remove();
        remember(error.current.entry);
      } else refusedAbout(entry.id, "Not returned", error);
    }
  }, "primary"), button("Cancel", () => { box.remove(); render(); }, "quiet"));
  $(".entry-item__actions", item).after(box);
  note.focus();
}

/** A writer takes a submission back out of the queue, to work on it as a draft. */
async function withdraw(entry) {
  try {
    const { data } = await call("PATCH", blogPath("/entries/" + entry.id), {
      body: { status: "draft" }, headers: { "If-Match": entryTag(entry) },
    });
    remember(data);
    sayAbout(entry.id, "Withdrawn: it is a draft again, out of the review queue.", "ok");
  } catch (error) {
    if (error.code === "precondition_failed") {
      remember(error.current.entry);
      sayAbout(entry.id, "Not withdrawn: it changed meanwhile; this is it now.", "error");
    } else refusedAbout(entry.id, "Not withdrawn", error);
  }
}

async function setPinned(entry, pinned) {
  if (!pinned && !confirm("Unpin this entry? It goes back to its place in time.")) return;
  try {
    const { data } = await call("PATCH", blogPath("/entries/" + entry.id), {
      body: { pinned }, headers: { "If-Match": entryTag(entry) },
    });
    remember(data);
    sayAbout(entry.id, pinned ? "Pinned on top." : "Unpinned.", "ok");
  } catch (error) {
    if (error.code === "precondition_failed") {
      remember(error.current.entry);
      sayAbout(entry.id, "Not changed: someone changed it meanwhile; this is it now — try again.", "error");
    } else refusedAbout(entry.id, pinned ? "Not pinned" : "Not unpinned", error);
  }
}

async function removeEntry(entry) {
  const what = entry.status === "published" ? "Delete this entry from the live page? Readers see it go."
    : "Delete this " + STATES[entry.status].toLowerCase() + " entry?";
  if (!confirm(what)) return;
  try {
    await call("DELETE", blogPath("/entries/" + entry.id), { headers: { "If-Match": entryTag(entry) } });
    forget(entry.id);
    if (state.editing && state.editing.entry.id === entry.id) resetComposer();
    say("entry", "Deleted: " + excerpt(entry) + ".", "ok");
  } catch (error) {
    if (error.code === "precondition_failed") {
      remember(error.current.entry);
      sayAbout(entry.id, "Not deleted: someone changed it meanwhile; this is it now — delete again if you still mean it.", "error");
    } else refusedAbout(entry.id, "Not deleted", error);
  }
}

// --- coverage -------------------------------------------------------------------------

function showCoverage() {
  if (!state.blog) return;
  const ended = state.blog.status === "ended";
  $("[data-coverage-state]").textContent = ended ? "Coverage has ended: readers see it as over."
    : "Coverage is live.";
  $("[data-coverage]").textContent = ended ? "Reopen coverage" : "End coverage";
}

$("[data-coverage]").addEventListener("click", async () => {
  const ending = state.blog.status !== "ended";
  if (!confirm(ending ? "End coverage of " + state.blog.title + "? Readers see it as over."
    : "Reopen coverage of " + state.blog.title + "?")) return;
  try {
    const { data } = await call("PATCH", blogPath(), { body: { status: ending ? "ended" : "live" } });
    Object.assign(state.blog, data);
    showCoverage();
    say("coverage", ending ? "Coverage ended." : "Coverage reopened.", "ok");
  } catch (error) {
    refused("coverage", ending ? "Not ended" : "Not reopened", error);
  }
});

// --- the reader page's settings (an owner's) ------------------------------------------

const readersCountSwitch = $("[data-show-readers-count]");

function showReaderSettings() {
  if (state.blog) readersCountSwitch.checked = Boolean(state.blog.show_readers_count);
}

readersCountSwitch.addEventListener("change", async () => {
  const on = readersCountSwitch.checked;
  readersCountSwitch.disabled = true;
  try {
    const { data } = await call("PATCH", blogPath(), { body: { show_readers_count: on } });
    Object.assign(state.blog, data);
    say("reader-settings", on ? "Readers now see how many read with them."
      : "Readers no longer see how many read with them.", "ok");
  } catch (error) {
    refused("reader-settings", "Not changed", error);
  }
  readersCountSwitch.disabled = false;
  showReaderSettings();
});

// --- the reader page's language --------------------------------------------------------

function showLanguage() {
  if (state.blog) $("[data-blog-language]").value = state.blog.language || "en";
}

$('[data-form="language"]').addEventListener("submit", async (event) => {
  event.preventDefault();
  const language = $("[data-blog-language]").value.trim();
  try {
    const { data } = await call("PATCH", blogPath(), { body: { language } });
    Object.assign(state.blog, data);
    showLanguage();
    say("language", "The reader page is now in " + data.language + ".", "ok");
  } catch (error) {
    refused("language", "Not changed", error);
  }
});

// --- readers now and delivery receipts ------------------------------------------------

const READERS_SECONDS = 5;
const RECEIPT_VERBS = { "entry.created": "Published", "entry.updated": "Change applied" };
const number = (n) => n.toLocaleString();

function receiptLine(receipt) {
  const line = document.createElement("p");
  line.className = "entry-item__receipt";
  line.dataset.receipt = "";
  const verb = RECEIPT_VERBS[receipt.type] || "Sent";
  line.textContent = verb + " on " + number(receipt.delivered) + " of " + number(receipt.open)
    + " open pages";
  return line;
}

/** How many read the blog now (every server process), and each recent event's receipt;
 * asked every few seconds while the page is visible. */
async function showReaders() {
  clearTimeout(state.readersTimer);
  state.readersTimer = null;
  if (!state.blog || !state.auth) return;
  const slug = state.blog.slug;
  try {
    const { data } = await call("GET", blogPath("/readers"));
    if (!state.blog || state.blog.slug !== slug) return;
    const shown = $("[data-readers]");
    shown.textContent = number(data.now) + " reading now (peak " + number(data.peak_today) + " today)";
    shown.hidden = false;
    const receipts = new Map(data.recent_events.filter((e) => e.entry_id).map((e) => [e.entry_id, e]));
    if (JSON.stringify([...receipts]) !== JSON.stringify([...state.receipts])) {
      state.receipts = receipts;
      render();
    }
  } catch (error) {
    if (["session_ended", "unauthorised", "csrf_failed"].includes(error.code)) return;
  }
  if (document.visibilityState === "visible") {
    state.readersTimer = setTimeout(showReaders, READERS_SECONDS * 1000);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !state.readersTimer) showReaders();
});

// --- the newsroom stream ---------------------------------------------------------------

/** Full jitter on a capped exponent (as the reader client does). */
function backoff(step, min, max) {
  return Math.random() * Math.min(max, min * 2 ** Math.min(step, 8));
}

class NewsroomStream {
  constructor(slug) {
    this.slug = slug;
    this.controller = null;
    this.step = 0;
    this.closed = false;
    this.lastSeq = null;
    this.timer = null;
    this.reconnectNow = () => { if (!this.controller && !this.closed) { clearTimeout(this.timer); this.open(); } };
    window.addEventListener("online", this.reconnectNow);
    this.open();
  }

  show(text, live) {
    const node = $("[data-live]");
    node.textContent = text;
    node.dataset.live = live;
  }

  async open() {
    this.controller = new AbortController();
    const headers = Object.assign({ Accept: "text/event-stream" }, authHeaders("GET"));
    if (this.lastSeq !== null) headers["Last-Event-ID"] = String(this.lastSeq);
    this.show(this.step ? "Reconnecting…" : "Connecting…", "connecting");
    try {
      const response = await fetch(API + "/blogs/" + encodeURIComponent(this.slug) + "/newsroom/sse", {
        headers, cache: "no-store", credentials: "same-origin", signal: this.controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const error = new ApiError(response.status, (body && body.error) || {}, response.headers);
        if (response.status === 401 || response.status === 403) {
          this.stop();
          this.show("Offline", "off");
          refused("entry", "Not live", error);
          return;
        }
        if (error.code === "since_ahead_of_head" || error.code === "invalid_since") this.lastSeq = null;
        throw error;
      }
      await this.read(response.body.getReader());
    } catch (error) {
      if (this.closed) return;
    }
    this.controller = null;
    if (this.closed) return;
    this.show("Reconnecting…", "connecting");
    this.timer = setTimeout(() => this.open(), backoff(this.step++, 500, 15000));
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: "message", data: "", id: null };
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon === 0) continue;
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") message.data += (message.data ? "\n" : "") + value;
          else if (field === "event") message.event = value;
          else if (field === "id") message.id = value;
        }
        if (message.data) this.deliver(message);
      }
    }
  }

  deliver(message) {
    let data;
    try { data = JSON.parse(message.data); } catch (error) { return; }
    if (message.id) this.lastSeq = Number(message.id);
    switch (message.event) {
      case "newsroom.hello":
        this.step = 0;
        this.show("Live", "on");
        loadEntries().catch((error) => refused("entry", "Not up to date", error));
        loadEditors().catch(() => null); // presence is a help, not the record
        break;
      case "entry.editing":
        showEditor(data.entry_id, data.editor);
        break;
      case "newsroom.ended":
        this.stop();
        this.show("Offline", "off");
        say("entry", "Not live: your session ended — sign in again" + (state.unsentKept ? "; your text is kept" : "") + ".", "error");
        endSession();
        break;
      case "entry.deleted":
      case "entry.discarded":
        if (data.entry) forget(data.entry.id);
        break;
      case "blog.updated":
      case "blog.ended":
        if (data.details && state.blog) { Object.assign(state.blog, data.details); showCoverage(); }
        break;
      default:
        if (data.entry && data.entry.id) {
          remember(data.entry);
          // The server changed it itself (a scheduled publish it dropped): say why.
          if (data.reason) sayAbout(data.entry.id, data.reason, "error");
        }
    }
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.reconnectNow);
    if (this.controller) this.controller.abort();
  }
}

async function loadEntries() {
  const slug = state.blog.slug;
  const lists = ["published", "draft", "submitted", "returned", "scheduled"].map((status) =>
    call("GET", blogPath("/entries?limit=100&status=" + status)).then((answer) => answer.data.items));
  const results = await Promise.all(lists);
  if (!state.blog || state.blog.slug !== slug) return;
  const seen = new Set();
  for (const items of results) {
    for (const entry of items) {
      seen.add(entry.id);
      if (!state.gone.has(entry.id)) remember(entry);
    }
  }
  // What is in no list any more went while the stream was away.
  for (const id of Array.from(state.entries.keys())) if (!seen.has(id)) state.entries.delete(id);
  render();
}

// --- blogs ----------------------------------------------------------------------------

async function chooseBlog(slug) {
  if (state.stream) state.stream.stop();
  const known = state.blogs.find((blog) => blog.slug === slug) || state.blogs[0];
  if (!known) return;
  localStorage.setItem(KEYS.blog, known.slug);
  blogSelect.value = known.slug;
  state.entries = new Map();
  state.notes = new Map();
  state.gone = new Set();
  state.receipts = new Map();
  releaseFlag();
  state.editors = new Map();
  // Another blog's countdowns are not this one's (they still go out; its list has them).
  for (const hold of state.holds.values()) hold.node.remove();
  state.holds.clear();
  showHolds();
  $("[data-readers]").hidden = true;
  hideConflict();
  try {
    const [{ data: blog }, settings] = await Promise.all([
      call("GET", "/blogs/" + encodeURIComponent(known.slug)),
      call("GET", "/blogs/" + encodeURIComponent(known.slug) + "/settings").catch(() => null),
    ]);
    state.blog = Object.assign(blog, { role: known.role });
    state.settings = settings ? settings.data : { contributors_may_publish: false };
  } catch (error) {
    refused("entry", "Cannot open " + known.title, error);
    return;
  }
  $("[data-open-page]").href = "/blogs/" + encodeURIComponent(known.slug);
  showPreview();
  restoreUnsent();
  showCoverage();
  showReaderSettings();
  showLanguage();
  render();
  state.stream = new NewsroomStream(known.slug);
  showReaders();
}

/** The reader page beside the desk, loaded only while its panel is open. */
function showPreview() {
  const frame = $("[data-preview]");
  const url = state.blog && $("[data-preview-panel]").open ? "/blogs/" + encodeURIComponent(state.blog.slug) : null;
  if (url && frame.getAttribute("src") !== url) frame.src = url;
}
$("[data-preview-panel]").addEventListener("toggle", showPreview);

blogSelect.addEventListener("change", () => {
  keepUnsent();
  chooseBlog(blogSelect.value);
});

async function myBlogs(me) {
  const mine = new Map(me.blogs.map((blog) => [blog.slug, blog]));
  if (me.every_blog_role) {
    const { data } = await call("GET", "/blogs?limit=100");
    for (const blog of data.items) {
      const own = mine.get(blog.slug);
      const roleHere = own && RANK[own.role] > RANK[me.every_blog_role] ? own.role : me.every_blog_role;
      mine.set(blog.slug, { slug: blog.slug, title: blog.title, role: roleHere });
    }
  }
  return Array.from(mine.values()).sort((a, b) => a.title.localeCompare(b.title));
}

// --- signing in and out ---------------------------------------------------------------

async function signedIn(me) {
  state.me = me;
  state.blogs = await myBlogs(me);
  document.body.dataset.state = "signed-in";
  $("[data-sign-in]").hidden = true;
  const name = me.user ? me.user.name : "token " + (me.token ? me.token.name : "");
  $("[data-user-name]").textContent = name;
  showByline();
  blogSelect.replaceChildren(...state.blogs.map((blog) => {
    const option = document.createElement("option");
    option.value = blog.slug;
    option.textContent = blog.title + " (" + blog.role + ")";
    return option;
  }));
  if (!state.blogs.length) {
    say("entry", "You are not a member of any blog yet: ask an editor or owner to add you.", "error");
    return;
  }
  const wanted = new URLSearchParams(location.search).get("blog") || localStorage.getItem(KEYS.blog);
  await chooseBlog(state.blogs.some((blog) => blog.slug === wanted) ? wanted : state.blogs[0].slug);
}

/** The session (or token) stopped working: sign in again, keeping the composer as it is. */
function endSession() {
  keepUnsent();
  if (state.stream) { state.stream.stop(); state.stream = null; }
  if (state.auth && state.auth.kind === "token") sessionStorage.removeItem(KEYS.token);
  state.auth = null;
  $("[data-sign-in]").hidden = false;
  document.body.dataset.state = state.me ? "session-ended" : "signed-out";
  if (state.me && state.me.user) {
    $("#login").value = state.me.user.login;
    $("#password").focus({ preventScroll: false });
  }
}

$('[data-form="sign-in"]').addEventListener("submit", async (event) => {
  event.preventDefault();
  const signIn = event.target;
  if (!signIn.login.value.trim() || !signIn.password.value) {
    say("sign-in", "Not signed in: enter your login and your password.", "error");
    return;
  }
  say("sign-in", "Signing in…");
  try {
    const { data } = await call("POST", "/session", {
      body: { login: signIn.login.value.trim(), password: signIn.password.value },
    });
    signIn.password.value = "";
    state.auth = { kind: "session", csrf: data.csrf_token };
    say("sign-in", "");
    await afterSignIn(data);
  } catch (error) {
    refused("sign-in", "Not signed in", error);
  }
});

$('[data-form="token"]').addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = event.target.token.value.trim();
  state.auth = { kind: "token", token };
  try {
    const { data } = await call("GET", "/me");
    sessionStorage.setItem(KEYS.token, token);
    event.target.token.value = "";
    say("token", "");
    await afterSignIn(data);
  } catch (error) {
    state.auth = null;
    say("token", "Not used: " + (error.code === "unauthorised" ? "this token is unknown or revoked."
      : explain(error)), "error");
  }
});

/** Signed in (again): a returning user keeps the page as it is, with the stream reopened. */
async function afterSignIn(me) {
  const again = state.me && state.blog && state.me.user && me.user && state.me.user.id === me.user.id;
  if (again) {
    state.me = me;
    document.body.dataset.state = "signed-in";
    $("[data-sign-in]").hidden = true;
    say("entry", "Signed in again" + (state.unsentKept ? "; your text is still here." : "."), "ok");
    state.stream = new NewsroomStream(state.blog.slug);
    return;
  }
  await signedIn(me);
}

$("[data-sign-out]").addEventListener("click", async () => {
  keepUnsent();
  if (state.auth && state.auth.kind === "session") await call("DELETE", "/session").catch(() => null);
  sessionStorage.removeItem(KEYS.token);
  location.reload();
});

async function start() {
  const token = sessionStorage.getItem(KEYS.token);
  try {
    if (token) {
      state.auth = { kind: "token", token };
      const { data } = await call("GET", "/me");
      await signedIn(data);
      return;
    }
    const { data } = await call("GET", "/session");
    state.auth = { kind: "session", csrf: data.csrf_token };
    await signedIn(data);
  } catch (error) {
    if (state.auth && state.auth.kind === "token" && error.code === "unauthorised") {
      sessionStorage.removeItem(KEYS.token);
    }
    state.auth = null;
    document.body.dataset.state = "signed-out";
    $("[data-sign-in]").hidden = false;
    if (error.code === "session_ended") say("sign-in", "Your session ended — sign in again.", "info");
    else if (error.code === "offline") say("sign-in", "No connection to the server — try again in a moment.", "error");
    $("#login").focus();
  }
}

window.addEventListener("beforeunload", () => keepUnsent());
start();
