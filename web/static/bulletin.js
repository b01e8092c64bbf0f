/*! Bulletin live-blog client. No dependencies, no build step.
 *
 *   <div data-bulletin-blog="SLUG"></div>
 *   <script src="https://HOST/static/bulletin.js" async></script>
 * fills the div with the blog (from HOST/blogs/SLUG/embed) and keeps it live; optional
 * attributes: data-bulletin-url (the server, when the script is loaded as a module),
 * data-bulletin-max-entries (entries kept in the page, 200 by default). On Bulletin's own
 * reader page the server-rendered blog is enhanced in place.
 *
 *   const live = Bulletin.connect({ url, blog, container, since, onEvent, onState,
 *                                   transports: ["websocket", "sse"], maxEntries: 200 });
 *   live.close();          live.state: "disconnected" | "connecting" | "connected"
 *   live.addEventListener("state", e => e.detail)   // {oldState, newState}
 *   live.addEventListener("event", e => e.detail)   // each change-log event, once, in seq order
 * As an ES module: import { Bulletin } from "https://HOST/static/bulletin.mjs".
 */
(function (global) {
  "use strict";
  const doc = global.document;
  // Close codes (app/realtime/codes.py): resume after these; stop after 4500-4999.
  const CODES = { RESUME_MIN: 4000, TERMINAL_MIN: 4500, RESET: 4509, NOT_FOUND: 4504 };
  const SSE_TYPES = ["hello", "heartbeat", "entry.created", "entry.updated", "entry.deleted",
    "entry.pinned", "entry.unpinned", "blog.updated", "blog.ended"];
  const script = doc && doc.currentScript;
  const NATIVE_ANCHORING = global.CSS && CSS.supports("overflow-anchor", "auto");
  const scriptOrigin = script && script.src ? new URL(script.src).origin : null;

  /** Full-jitter exponential back-off, in ms. */
  function backoff(step, min, max) {
    return Math.random() * Math.min(max, min * 2 ** Math.min(step, 10));
  }

  function html(markup) {
    const template = doc.createElement("template");
    template.innerHTML = markup.trim();
    return template.content.firstElementChild;
  }

  function newer(a, b) { // does article a sort before (is newer than) article b?
    const ta = a.dataset.publishedAt, tb = b.dataset.publishedAt;
    return ta !== tb ? ta > tb : Number(a.dataset.entryId) > Number(b.dataset.entryId);
  }

  function ago(iso, now) {
    const minutes = Math.floor((now - Date.parse(iso)) / 60000);
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min ago";
    return minutes < 1440 ? Math.floor(minutes / 60) + " h ago" : "";
  }

  /** "3 min ago" beside each entry's absolute time. */
  function refreshTimes(root) {
    const now = Date.now();
    for (const label of root.querySelectorAll("[data-ago]")) {
      const time = label.parentNode.querySelector("time");
      if (time) label.textContent = ago(time.getAttribute("datetime"), now);
    }
  }

  /** DOM work: applies events to one rendered blog. The server renders every entry. */
  class Page {
    constructor(root, options) {
      this.root = root;
      this.max = options.maxEntries || 200;
      this.isDocument = options.isDocument;
      const find = (name) => root.querySelector("[data-bulletin-" + name + "]");
      this.flow = find("entries");
      this.pinned = find("pinned");
      this.keyList = find("key-events");
      this.button = find("new");
      this.older = find("older");
      this.badge = find("status");
      this.stateLabel = find("state");
      this.pending = new Map(); // entry id -> article not yet shown to a scrolled reader
      this.baseTitle = doc.title;
      this.button.addEventListener("click", () => this.reveal(true));
      this.onScroll = () => { if (this.pending.size && this.atTop()) this.reveal(false); };
      global.addEventListener("scroll", this.onScroll, { passive: true });
      this.scope = this.isDocument ? doc : root.parentNode;
      refreshTimes(root);
      this.timer = setInterval(() => refreshTimes(root), 60000);
    }

    destroy() {
      clearInterval(this.timer);
      global.removeEventListener("scroll", this.onScroll);
    }

    setState(state, text) {
      this.stateLabel.hidden = false;
      this.stateLabel.dataset.bulletinState = state;
      this.stateLabel.textContent = text;
    }

    atTop() { // is the top of the list in view? Only then may new entries push it down
      return this.flow.getBoundingClientRect().top > -40;
    }

    find(id) {
      return this.root.querySelector('article[data-entry-id="' + id + '"]');
    }

    apply(event) {
      const type = event.type;
      if (type === "blog.updated" || type === "blog.ended") return this.applyBlog(event.details);
      const id = event.entry.id;
      if (type === "entry.deleted") {
        this.pending.delete(id);
        this.keep(() => { const el = this.find(id); if (el) el.remove(); });
        this.syncKeyEvent(id, null);
        return this.showCount();
      }
      const existing = this.find(id) || this.pending.get(id);
      if (existing && Number(existing.dataset.version) > event.entry.version) return;
      const article = html(event.html);
      refreshTimes(article);
      if (this.pending.has(id) && !event.entry.pinned) this.pending.set(id, article);
      else if (this.pending.delete(id)) this.keep(() => this.place(article, null));
      else if (existing || event.entry.pinned) this.keep(() => this.place(article, existing));
      else if (this.atTop()) this.keep(() => this.insert(article));
      else if (this.inWindow(article)) this.hold(id, article);
      this.syncKeyEvent(id, event.entry.key_event ? article : null);
      this.showCount();
    }

    // Keep what the reader is looking at in place while content above it changes.
    keep(change) {
      // Browsers with scroll anchoring keep the reader's place themselves; a second
      // correction here would move them by as much again.
      if (NATIVE_ANCHORING || this.atTop()) return change();
      const anchor = [...this.root.querySelectorAll("article")]
        .find((el) => el.getBoundingClientRect().bottom > 0);
      const before = anchor && anchor.getBoundingClientRect().top;
      change();
      if (anchor && anchor.isConnected) {
        const moved = anchor.getBoundingClientRect().top - before;
        if (moved) global.scrollBy(0, moved);
      }
    }

    place(article, existing) {
      if (article.classList.contains("entry--pinned")) {
        const current = this.pinned.querySelector("article");
        if (current && current !== existing) {
          current.remove();
          current.classList.remove("entry--pinned");
          const flag = current.querySelector(".entry__flag--pinned");
          if (flag) flag.remove();
          this.insert(current);
        }
        if (existing) existing.remove();
        this.pinned.append(article);
      } else if (existing && existing.parentNode === this.flow) {
        existing.replaceWith(article);
      } else {
        if (existing) existing.remove();
        this.insert(article);
      }
    }

    inWindow(article) { // would it be on this page, or beyond its oldest entry?
      const last = this.flow.querySelector("article:last-of-type");
      return !last || this.older.hidden || newer(article, last);
    }

    insert(article) {
      if (!this.inWindow(article)) return;
      const empty = this.root.querySelector("[data-bulletin-empty]");
      if (empty) empty.remove();
      const next = [...this.flow.children].find((el) => el.dataset.entryId && newer(article, el));
      this.flow.insertBefore(article, next || null);
      const articles = this.flow.querySelectorAll("article");
      // A page open all day keeps a bounded number of entries; older ones stay a link away.
      if (articles.length <= this.max) return;
      const older = (article) => { // the page that starts with the entry after `article`
        const url = new URL(this.older.href, global.location.href);
        url.searchParams.set("before", article.dataset.cursor);
        return url;
      };
      for (let i = articles.length - 1; i >= this.max; i--) {
        articles[i].remove();
        const link = this.keyList && this.keyList.querySelector(
          'li[data-entry-id="' + articles[i].dataset.entryId + '"] a');
        if (link) link.href = older(articles[i - 1]).href + "#entry-" + articles[i].dataset.entryId;
      }
      this.older.href = older(articles[this.max - 1]).href;
      this.older.hidden = false;
    }

    hold(id, article) { // for a reader who scrolled down: counted, shown on request
      this.pending.set(id, article);
      // Past the page's cap the oldest held ones would be trimmed on reveal anyway.
      if (this.pending.size > this.max) this.pending.delete(this.pending.keys().next().value);
    }

    reveal(scroll) {
      const articles = [...this.pending.values()];
      this.pending.clear();
      for (const article of articles) this.insert(article);
      this.showCount();
      if (scroll) this.root.scrollIntoView({ block: "start" });
    }

    showCount() {
      const count = this.pending.size;
      this.button.hidden = !count;
      this.button.textContent = count === 1 ? "1 new update" : count + " new updates";
      if (this.isDocument) doc.title = (count ? "(" + count + ") " : "") + this.baseTitle;
    }

    syncKeyEvent(id, article) {
      if (!this.keyList) return;
      const old = this.keyList.querySelector('li[data-entry-id="' + id + '"]');
      if (!article) {
        if (old) old.remove();
      } else {
        // The link is made of the server-rendered entry's own time and headline.
        const item = doc.createElement("li");
        const link = item.appendChild(doc.createElement("a"));
        const headline = article.querySelector(".entry__headline, .entry__body");
        item.dataset.entryId = id;
        item.dataset.publishedAt = article.dataset.publishedAt;
        const away = old && !this.find(id) && old.querySelector("a");
        link.href = away ? away.href : "#entry-" + id; // keep the way to an entry paged out
        link.append(article.querySelector("time").cloneNode(true), " ",
          (headline ? headline.textContent : "").trim().slice(0, 80));
        if (old) old.replaceWith(item);
        else {
          const next = [...this.keyList.children]
            .find((li) => li.dataset.publishedAt < item.dataset.publishedAt);
          this.keyList.insertBefore(item, next || null);
          // As many as the server lists: the newest key events.
          while (this.keyList.children.length > 30) this.keyList.lastElementChild.remove();
        }
      }
      this.keyList.parentNode.hidden = !this.keyList.children.length;
    }

    applyBlog(blog) {
      if (!blog) return;
      this.badge.dataset.bulletinStatus = blog.status;
      this.badge.className = "badge badge--" + blog.status;
      this.badge.textContent = blog.status === "live" ? "Live" : "Coverage ended";
      for (const title of this.scope.querySelectorAll("[data-bulletin-title]")) {
        title.textContent = blog.title;
      }
      if (this.isDocument) {
        this.baseTitle = blog.title;
        const summary = doc.querySelector("[data-bulletin-summary]");
        if (summary) summary.innerHTML = blog.summary; // sanitised by the server
        this.showCount();
      }
    }
  }

  /** Protocol work: one stream, resumed by seq, WebSocket first and SSE as the fallback. */
  class Live extends EventTarget {
    constructor(options) {
      super();
      this.options = options;
      this.base = (options.url || scriptOrigin || global.location.origin).replace(/\/$/, "");
      this.seq = options.since === undefined || options.since === null ? null : options.since;
      this.transports = options.transports || ["websocket", "sse"];
      this.transport = 0;
      this.failures = 0;
      this.attempt = 0;
      this.opened = 0;
      this.state = "disconnected";
      this.heartbeatMs = (options.heartbeatSeconds || 15) * 1000;
      this.WebSocket = options.WebSocket || global.WebSocket;
      this.EventSource = options.EventSource || global.EventSource;
      // Back online, or back to the tab: reconnect now rather than after the back-off.
      this.now = () => {
        if (this.state === "connected" || this.closed || this.stopped) return;
        this.opened++; // a probe still on its way no longer decides
        this.transport = 0;
        this.reconnect(0);
      };
      this.onVisible = () => {
        if (doc.hidden) return;
        // After a sleep a socket can look open and be dead: one that missed its heartbeat is.
        const open = this.socket || this.source;
        if (open && Date.now() - this.heard > this.heartbeatMs + 5000) this.drop();
        else this.now();
      };
      global.addEventListener("online", this.now);
      doc.addEventListener("visibilitychange", this.onVisible);
      this.open();
    }

    setState(newState) {
      const oldState = this.state;
      if (oldState === newState) return;
      this.state = newState;
      if (this.options.onState) this.options.onState({ oldState, newState });
      this.dispatchEvent(new CustomEvent("state", { detail: { oldState, newState } }));
    }

    path(kind) {
      const since = this.seq === null ? "" : "?since=" + this.seq;
      return this.base + "/api/v1/blogs/" + encodeURIComponent(this.options.blog) + "/" + kind + since;
    }

    open() {
      this.stop();
      this.setState("connecting");
      this.received = false;
      this.opened++;
      const kind = this.transports[this.transport];
      if (kind === "sse" || !this.WebSocket) return this.openSse();
      const socket = this.socket = new this.WebSocket(this.path("ws").replace(/^http/, "ws"));
      socket.onopen = () => this.alive(false);
      socket.onmessage = (message) => this.receive(message.data);
      socket.onclose = (close) => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.ended(close.code);
      };
    }

    openSse() {
      const source = this.source = new this.EventSource(this.path("sse"));
      const handler = (message) => this.receive(message.data);
      for (const type of SSE_TYPES) source.addEventListener(type, handler);
      source.onopen = () => this.alive(true);
      // EventSource would retry on its own; we resume with our own seq and back-off instead.
      source.onerror = () => { if (this.source === source) { this.stop(); this.ended(1006); } };
    }

    alive(heard) { // heard: the server has spoken, so this transport works here
      this.heard = Date.now();
      if (heard && !this.received) {
        this.received = true;
        this.attempt = 0;
        this.failures = 0;
      }
      this.setState("connected");
      clearTimeout(this.watchdog);
      // A stream that stops talking is dead, whatever the socket says (heartbeats included).
      if (this.socket || this.source) {
        this.watchdog = setTimeout(() => this.drop(), this.heartbeatMs * 2 + 5000);
      }
    }

    receive(data) {
      let message;
      try { message = JSON.parse(data); } catch (error) { return this.drop(); }
      this.alive(true);
      const seq = message.seq;
      if (message.type === "hello") { if (this.seq === null) this.seq = seq; return; }
      if (message.type === "heartbeat") return seq > this.seq ? this.drop() : undefined;
      if (this.seq !== null && seq <= this.seq) return; // have it already
      if (this.seq !== null && seq > this.seq + 1) return this.drop(); // a gap: resume
      this.seq = seq;
      if (this.options.onEvent) this.options.onEvent(message);
      this.dispatchEvent(new CustomEvent("event", { detail: message }));
    }

    drop() { // close this stream and resume from our seq
      this.stop();
      this.reconnect(0);
    }

    ended(code) {
      if (this.closed) return;
      if (code === CODES.RESET || code === CODES.NOT_FOUND ||
          (code >= CODES.TERMINAL_MIN && code < 5000)) return this.terminal(code);
      if (this.received) {
        this.transport = 0; // a stream that worked and ended: start again from WebSocket
        return this.reconnect(0);
      }
      // It failed before the server spoke. Ask the log over plain HTTP why: the server may
      // be down (wait), may refuse our seq (SSE cannot say so), or WebSocket is blocked.
      this.setState("connecting");
      const opened = this.opened;
      const url = this.base + "/api/v1/blogs/" + encodeURIComponent(this.options.blog) +
        "/events?limit=1&since=" + (this.seq || 0);
      fetch(url, { cache: "no-store" }).then((r) => r.status, () => 0).then((status) => {
        if (this.closed || opened !== this.opened) return;
        if (status === 409) return this.terminal(CODES.RESET);
        if (status === 404) return this.terminal(CODES.NOT_FOUND);
        if (status === 200 && ++this.failures >= 2 &&
            this.transport < this.transports.length - 1) {
          this.transport++; // the server answers, WebSocket does not get through: a proxy?
          this.failures = 0;
        }
        this.reconnect(this.attempt++);
      });
    }

    terminal(code) {
      this.stopped = true; // the server said no: coming back online will not change that
      this.setState("disconnected");
      this.dispatchEvent(new CustomEvent("terminal", { detail: { code } }));
    }

    reconnect(step) {
      clearTimeout(this.retry);
      this.setState("connecting");
      const delay = step ? backoff(step, 500, 30000) : 50 + backoff(1, 100, 500);
      this.retryAt = Date.now() + delay;
      this.retry = setTimeout(() => this.open(), delay);
    }

    stop() {
      clearTimeout(this.watchdog);
      clearTimeout(this.retry);
      const socket = this.socket, source = this.source;
      this.socket = this.source = null;
      if (socket) { socket.onclose = socket.onmessage = null; socket.close(); }
      if (source) source.close();
    }

    close() {
      this.closed = true;
      this.stop();
      global.removeEventListener("online", this.now);
      doc.removeEventListener("visibilitychange", this.onVisible);
      if (this.page) this.page.destroy();
      this.setState("disconnected");
    }
  }

  const LABELS = { connecting: "Reconnecting…", connected: "Live", disconnected: "Offline" };

  function connect(options) {
    const root = options.container &&
      (options.container.matches("[data-bulletin-seq]") ? options.container
        : options.container.querySelector("[data-bulletin-seq]"));
    const page = root && new Page(root, options);
    const settings = Object.assign({}, options);
    if (root) {
      settings.blog = settings.blog || root.dataset.bulletinBlog;
      if (settings.since === undefined) settings.since = Number(root.dataset.bulletinSeq);
      settings.heartbeatSeconds = settings.heartbeatSeconds || Number(root.dataset.bulletinHeartbeat);
      settings.onEvent = (event) => { page.apply(event); if (options.onEvent) options.onEvent(event); };
    }
    const live = new Live(settings);
    live.page = page;
    if (page) {
      const show = () => page.setState(live.state, LABELS[live.state]);
      live.addEventListener("state", show);
      show();
      live.addEventListener("terminal", (e) => {
        if (e.detail.code !== CODES.RESET) {
          page.setState("disconnected", "Updates stopped; reload the page");
        } else if (options.isDocument) {
          // The log was reset (a restored database): start afresh, but only once a minute,
          // or a page cached with the old head would reload for ever.
          const key = "bulletin.reset." + settings.blog;
          const last = Number(sessionStorage.getItem(key)) || 0;
          if (Date.now() - last < 60000) return page.setState("disconnected", "Reload the page");
          sessionStorage.setItem(key, String(Date.now()));
          global.location.reload();
        } else if (Date.now() - (options.container.bulletinReset || 0) > 60000) {
          // As for the page: start afresh once a minute at most, bypassing any cached copy.
          options.container.bulletinReset = Date.now();
          live.close();
          embed(options.container, 0, true);
        } else {
          page.setState("disconnected", "Reload the page");
        }
      });
    }
    return live;
  }

  /** Fill an embed container with the server-rendered blog, then keep it live. */
  function embed(container, step, fresh) {
    const base = (container.dataset.bulletinUrl || scriptOrigin || global.location.origin)
      .replace(/\/$/, "");
    const url = base + "/blogs/" + encodeURIComponent(container.dataset.bulletinBlog) + "/embed";
    const again = () => setTimeout(() => embed(container, (step || 0) + 1, fresh),
      backoff((step || 0) + 1, 1000, 30000));
    return fetch(url, fresh ? { cache: "reload" } : {}).then((response) => {
      if (response.status === 404) return response.text().then((t) => { container.innerHTML = t; });
      if (!response.ok) return again(); // busy or restarting: try again later
      return response.text().then((text) => {
        container.innerHTML = text;
        const maxEntries = Number(container.dataset.bulletinMaxEntries) || undefined;
        container.bulletin = connect({ url: base, container, maxEntries });
      });
    }, again);
  }

  function start() {
    const own = doc.querySelector("main [data-bulletin-seq]");
    if (own) {
      if (!own.hasAttribute("data-bulletin-archive")) {
        global.bulletinPage = connect({ container: own, isDocument: true });
      }
      return;
    }
    for (const container of doc.querySelectorAll("[data-bulletin-blog]:not([data-bulletin-seq])")) {
      if (container.dataset.bulletinManual === undefined) embed(container);
    }
  }

  global.Bulletin = { connect, embed, backoff, CODES };
  if (doc && !global.BULLETIN_MANUAL) {
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start);
    else start();
  }
})(globalThis);
