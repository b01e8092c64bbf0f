/* The newsroom composer. It uses the same public JSON API as any newsroom tool; the token
 * stays in this tab's sessionStorage and goes only to this server. */
(function () {
  "use strict";
  const API = "/api/v1";
  const TOKEN_KEY = "bulletin.token";
  const $ = (selector) => document.querySelector(selector);
  const forms = {
    token: $('[data-form="token"]'),
    blog: $('[data-form="blog"]'),
    entry: $('[data-form="entry"]'),
  };
  const blogSelect = $("[data-blogs]");
  const list = $("[data-entries]");
  const notice = $("[data-notice]");
  let idempotencyKey = null; // one per entry being composed: a retried publish never doubles
  let editing = null; // the entry as it was when its edit began

  function say(text, kind) {
    notice.textContent = text;
    notice.dataset.kind = kind || "info";
  }

  async function call(method, path, body, extraHeaders) {
    const headers = Object.assign({ Accept: "application/json" }, extraHeaders);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // Reads are cacheable for readers; the desk always revalidates, to see its own writes.
    const response = await fetch(API + path, {
      method, headers, cache: "no-cache",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    // A proxy in front may answer with a page of its own (an HTML 502, say), not our JSON.
    const data = await response.json().catch(() => null);
    if (!response.ok || !data) {
      const error = (data && data.error) || {};
      const fields = error.fields ? " (" + Object.entries(error.fields)
        .map(([name, problem]) => name + ": " + problem).join("; ") + ")" : "";
      throw new Error((error.message || "The server answered " + response.status + " " +
        response.statusText + "; try again in a moment.") + fields);
    }
    return data;
  }

  function escapeText(text) {
    const node = document.createElement("p");
    node.textContent = text;
    return node.innerHTML;
  }

  /** Plain text becomes paragraphs; anything with markup is sent as it is (the server cleans it). */
  function bodyHtml(text) {
    if (/<[a-z][^>]*>/i.test(text)) return text;
    return text.split(/\n\s*\n/).map((part) => part.trim()).filter(Boolean)
      .map((part) => "<p>" + escapeText(part).replace(/\n/g, "<br>") + "</p>").join("");
  }

  function authors(text) {
    return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [name, ...role] = line.split(",");
      const author = { name: name.trim() };
      if (role.join(",").trim()) author.role = role.join(",").trim();
      return author;
    });
  }

  function slug() { return blogSelect.value; }

  async function loadBlogs(selected) {
    const blogs = await call("GET", "/blogs?limit=100");
    blogSelect.replaceChildren(...blogs.items.map((blog) => {
      const option = document.createElement("option");
      option.value = blog.slug;
      option.textContent = blog.title + (blog.status === "ended" ? " (ended)" : "");
      return option;
    }));
    if (selected) blogSelect.value = selected;
    await showBlog();
  }

  async function showBlog() {
    if (!slug()) return;
    const pageUrl = "/blogs/" + encodeURIComponent(slug());
    $("[data-open-page]").href = pageUrl;
    const preview = $("[data-preview]");
    if (preview.getAttribute("src") !== pageUrl) preview.src = pageUrl;
    await loadEntries();
  }

  async function loadEntries() {
    const page = await call("GET", "/blogs/" + encodeURIComponent(slug()) + "/entries?limit=50");
    list.replaceChildren(...page.items.map((entry) => {
      const item = document.createElement("li");
      item.dataset.entryId = entry.id;
      const label = entry.headline || entry.body.replace(/<[^>]+>/g, " ").trim().slice(0, 60);
      item.append((entry.pinned ? "📌 " : "") + label);
      for (const [action, run] of [["Edit", () => edit(entry)], ["Delete", () => remove(entry)]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = action;
        button.addEventListener("click", run);
        item.append(button);
      }
      return item;
    }));
  }

  function authorLines(list) {
    return list.map((a) => a.name + (a.role ? ", " + a.role : "")).join("\n");
  }

  function edit(entry) {
    editing = entry;
    const form = forms.entry;
    form.headline.value = entry.headline || "";
    form.body.value = entry.body;
    const photo = entry.media.find((item) => item.kind === "image") || {};
    form.photo_url.value = photo.url || "";
    form.photo_caption.value = photo.caption || "";
    form.photo_credit.value = photo.credit || "";
    form.photo_alt.value = photo.alt || "";
    form.authors.value = authorLines(entry.authors);
    form.key_event.checked = entry.key_event;
    form.pinned.checked = entry.pinned;
    $("[data-entry-title]").textContent = "Edit entry " + entry.id;
    $("[data-submit]").textContent = "Save changes";
    $("[data-cancel]").hidden = false;
    form.headline.focus();
  }

  function resetEntryForm() {
    editing = null;
    forms.entry.reset();
    idempotencyKey = null;
    $("[data-entry-title]").textContent = "New entry";
    $("[data-submit]").textContent = "Publish";
    $("[data-cancel]").hidden = true;
  }

  async function remove(entry) {
    if (!confirm("Delete this entry from the live page?")) return;
    try {
      await call("DELETE", "/blogs/" + encodeURIComponent(slug()) + "/entries/" + entry.id);
      say("Entry " + entry.id + " deleted.");
      await loadEntries();
    } catch (error) { say(error.message, "error"); }
  }

  forms.token.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, forms.token.token.value.trim());
    forms.token.token.value = "";
    say("Token saved for this tab.");
  });

  blogSelect.addEventListener("change", () => showBlog().catch((e) => say(e.message, "error")));

  forms.blog.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = forms.blog;
    try {
      const blog = await call("POST", "/blogs", {
        slug: form.slug.value.trim(), title: form.title.value.trim(),
        timezone: form.timezone.value.trim() || "UTC",
      });
      say("Blog “" + blog.title + "” created.");
      await loadBlogs(blog.slug);
    } catch (error) { say(error.message, "error"); }
  });

  for (const button of document.querySelectorAll("[data-wrap]")) {
    button.addEventListener("click", () => {
      const area = forms.entry.body;
      const tag = button.dataset.wrap;
      const [start, end] = [area.selectionStart, area.selectionEnd];
      const chosen = area.value.slice(start, end);
      const open = tag === "a" ? '<a href="' + (prompt("Link address", "https://") || "") + '">'
        : "<" + tag + ">";
      area.setRangeText(open + chosen + "</" + tag + ">", start, end, "end");
      area.focus();
    });
  }

  $("[data-cancel]").addEventListener("click", resetEntryForm);

  function photoFrom(form) {
    if (!form.photo_url.value.trim()) return null;
    return { kind: "image", url: form.photo_url.value.trim(), caption: form.photo_caption.value.trim(),
      credit: form.photo_credit.value.trim(), alt: form.photo_alt.value.trim() };
  }

  /** Only what the reporter changed: media and author links the form cannot show survive. */
  function changes(form, entry) {
    const patch = {};
    const headline = form.headline.value.trim() || null;
    if (headline !== entry.headline) patch.headline = headline;
    if (form.body.value !== entry.body) patch.body = bodyHtml(form.body.value);
    if (form.key_event.checked !== entry.key_event) patch.key_event = form.key_event.checked;
    if (form.pinned.checked !== entry.pinned) patch.pinned = form.pinned.checked;
    const index = entry.media.findIndex((item) => item.kind === "image");
    const before = index < 0 ? null : entry.media[index];
    const photo = photoFrom(form);
    if (JSON.stringify(photo) !== JSON.stringify(before && { kind: "image", url: before.url,
      caption: before.caption, credit: before.credit, alt: before.alt })) {
      const media = entry.media.slice();
      if (index < 0) { if (photo) media.unshift(photo); } else if (photo) media[index] = photo;
      else media.splice(index, 1);
      patch.media = media;
    }
    if (form.authors.value !== authorLines(entry.authors)) {
      const urls = new Map(entry.authors.map((a) => [a.name, a.url]));
      patch.authors = authors(form.authors.value).map((a) =>
        urls.get(a.name) ? Object.assign(a, { url: urls.get(a.name) }) : a);
    }
    return patch;
  }

  forms.entry.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = forms.entry;
    const path = "/blogs/" + encodeURIComponent(slug()) + "/entries";
    try {
      if (editing) {
        const patch = changes(form, editing);
        if (Object.keys(patch).length) await call("PATCH", path + "/" + editing.id, patch);
        say(Object.keys(patch).length ? "Entry " + editing.id + " updated." : "Nothing changed.");
      } else {
        const photo = photoFrom(form);
        const entry = {
          headline: form.headline.value.trim() || null,
          body: bodyHtml(form.body.value),
          authors: authors(form.authors.value),
          media: photo ? [photo] : [],
          key_event: form.key_event.checked,
          pinned: form.pinned.checked,
        };
        idempotencyKey = idempotencyKey || (crypto.randomUUID ? crypto.randomUUID()
          : Date.now().toString(36) + Math.random().toString(36).slice(2));
        const created = await call("POST", path, entry, { "Idempotency-Key": idempotencyKey });
        say("Entry " + created.id + " published.");
      }
      resetEntryForm();
      await loadEntries();
    } catch (error) { say(error.message, "error"); }
  });

  if (sessionStorage.getItem(TOKEN_KEY)) say("Using the token saved in this tab.");
  loadBlogs(new URLSearchParams(location.search).get("blog")).catch((e) => say(e.message, "error"));
})();
