/*! Bulletin live-blog client.
 *
 *   <div data-bulletin-blog="SLUG"></div>
 *   <script src="https://HOST/static/bulletin.js" async></script>
 * fills the div with the blog (HOST/blogs/SLUG/embed) and keeps it live. Optional attributes:
 * data-bulletin-mode="card" (the newest 5 headlines: HOST/blogs/SLUG/card), data-bulletin-url
 * (the server, for the module), data-bulletin-max-entries (entries kept; default: as many as
 * the server's page). Bulletin's own page is enhanced in place.
 *
 *   const live = Bulletin.connect({ url, blog, container, since, onEvent, onState, maxEntries,
 *     transports: ["websocket", "sse"], WebSocket, EventSource, fetch });  // last three: tests
 *   live.close();   live.state: a Bulletin.STATE, "disconnected" | "connecting" | "connected"
 *   live.seq: the newest seq applied (null until the server's hello); resume with since: seq
 *   live.addEventListener("state", e => e.detail) // {oldState, newState, code, reason, transport}
 *   live.addEventListener("connecting", e => e.detail) // {code, reason, delay}: next try, in ms
 *   live.addEventListener("event", e => e.detail)  // each change-log event, once, in seq order
 * code, reason: the server's close code and reason, 1006 for a lost connection, or 0 and ours
 * ("no heartbeat", "missed events"). "disconnected" is for good: after close() (1000) or a
 * refusal (Bulletin.CODES, 4500-4999).
 * As an ES module: import { Bulletin } from "https://HOST/static/bulletin.mjs".
 */
// A page's window.bulletinShare(live) (reader.js) may return a function that asks for live's
// blog from live.seq on a connection the browser's tabs share (which then calls live.receive,
// live.ended, live.open); or nothing, and live connects by itself.
(function (global) {
  "use strict";
  const doc = global.document;
  // Close codes (app/realtime/codes.py; tests/test_client_contract.py keeps them equal): stop for
  // good after 4500-4999, resume from our seq after any other.
  const CODES = { TERMINAL_MIN: 4500, TERMINAL_MAX: 4999, BLOG_NOT_FOUND: 4504, RESET: 4509 };
  const STATE = { DISCONNECTED: "disconnected", CONNECTING: "connecting", CONNECTED: "connected" };
  const SSE_TYPES = ["hello", "heartbeat", "entry.created", "entry.updated", "entry.deleted",
    "entry.pinned", "entry.unpinned", "entry.redacted", "blog.updated", "blog.ended"];
  const script = doc && doc.currentScript;
  const NATIVE_ANCHORING = global.CSS && CSS.supports("overflow-anchor", "auto");
  const scriptOrigin = script && script.src ? new URL(script.src).origin : null;

  /** Full-jitter exponential back-off, in ms. */
  function backoff(step, min, max) {
    return Math.random() * Math.min(max, min * 2 ** Math.min(step, 10));
  }

  function html(markup) {
    const template = doc.createElement("template");
    template.innerHTML = markup; // any space before its first element is no element
    return template.content.firstElementChild;
  }

  function newer(a, b) { // does entry a (an article, a key-event line) sort before entry b?
    const ta = a.dataset.publishedAt, tb = b.dataset.publishedAt;
    return ta !== tb ? ta > tb : Number(a.dataset.entryId) > Number(b.dataset.entryId);
  }

  /** "3 min ago" beside each entry's absolute time, in the page's language. */
  function refreshTimes(root, page) {
    for (const label of root.querySelectorAll("[data-ago]")) {
      const time = label.parentNode.querySelector("time");
      const minutes = time && (Date.parse(time.dateTime) - Date.now()) / 6e4; // ago: negative
      if (time) label.textContent = minutes > -1 ? page.words.now : minutes > -60
        ? page.ago.format(Math.ceil(minutes), "minute")
        : minutes > -1440 ? page.ago.format(Math.ceil(minutes / 60), "hour") : "";
    }
  }

  // Embeds: the server renders a static card and, inert in a <template>, the provider's frame
  // (from an allow-listed origin), inserted only after the reader's click, or at once for a
  // provider the reader chose to always load in this session.
  const ALWAYS = "bulletin.embed.";
  function always(provider, set) { // sessionStorage, or nothing where it is refused
    try { return set ? sessionStorage.setItem(ALWAYS + provider, 1) : sessionStorage.getItem(ALWAYS + provider); } catch (error) { return null; }
  }

  function loadEmbed(card) { // the frame comes inert, in a <template>, rendered by the server
    card.querySelector("[data-embed-gate]").remove();
    card.classList.add("embed--loaded");
    card.prepend(card.querySelector("template").content.cloneNode(true));
  }

  /** Shows the gates under root (hidden without JavaScript), or loads what the reader chose. */
  function prepareEmbeds(root) {
    for (const gate of root.querySelectorAll("[data-embed-gate]")) {
      if (always(gate.parentNode.dataset.embedProvider)) loadEmbed(gate.parentNode);
      else gate.hidden = false;
    }
  }

  function onEmbedClick(event) {
    const card = event.target.closest("[data-embed-load]") &&
      event.target.closest("[data-embed-frame]");
    if (!card) return;
    if (card.querySelector("[data-embed-always]").checked) always(card.dataset.embedProvider, 1);
    loadEmbed(card);
    prepareEmbeds(doc); // the provider's other cards, if it is now always loaded
  }

  /** DOM work: applies events to one rendered blog. The server renders all its markup. */
  class Page {
    constructor(root, options) {
      this.root = root;
      this.container = options.container;
      // The caps come with the page (a page cached from before they did keeps everything).
      this.max = options.maxEntries || Number(root.dataset.bulletinMaxEntries) || Infinity;
      this.maxKeyEvents = Number(root.dataset.bulletinMaxKeyEvents) || Infinity;
      this.isDocument = options.isDocument;
      this.card = root.hasAttribute("data-bulletin-card");
      const find = (name) => root.querySelector("[data-bulletin-" + name + "]");
      this.flow = find("entries");
      this.pinned = find("pinned");
      this.keyList = find("key-events");
      this.button = find("new");
      this.older = find("older");
      this.badge = find("status");
      this.stateLabel = find("state");
      // The page's words, in the blog's language (app/i18n/script_words.py), and its rules.
      this.words = JSON.parse(root.dataset.bulletinWords);
      const lang = root.closest("[lang]").lang;
      this.ago = new Intl.RelativeTimeFormat(lang);
      this.plurals = new Intl.PluralRules(lang);
      this.pending = new Map(); // entry id -> article not yet shown to a scrolled reader
      this.button.addEventListener("click", () => this.reveal(true));
      this.onScroll = () => { if (this.pending.size && this.atTop()) this.reveal(false); };
      global.addEventListener("scroll", this.onScroll, { passive: true });
      this.scope = this.isDocument ? doc : root.parentNode;
      refreshTimes(root, this);
      prepareEmbeds(root);
      this.timer = setInterval(() => refreshTimes(root, this), 60000);
    }

    destroy() {
      clearInterval(this.timer);
      global.removeEventListener("scroll", this.onScroll);
    }

    showState(state, text) {
      this.stateLabel.hidden = false;
      this.stateLabel.dataset.bulletinState = state;
      this.stateLabel.textContent = text;
    }

    /** Shows the reader the connection of `live`, and starts afresh after a reset. */
    follow(live) {
      live.page = this; // close() stops this page's timers too
      const show = (detail) => {
        const state = detail.newState;
        if (detail.code === CODES.RESET) return this.restart();
        this.showState(state, this.words[state === STATE.DISCONNECTED &&
          detail.code >= CODES.TERMINAL_MIN ? "stopped" : state]);
      };
      live.addEventListener("state", (e) => show(e.detail));
      show({ newState: live.state });
    }

    // The log was reset (a restored database): start afresh, but once a minute at most, or a
    // page cached with the old head would reload for ever.
    restart() {
      const key = "bulletin.reset." + this.root.dataset.bulletinBlog;
      let due;
      try {
        due = Date.now() - (Number(sessionStorage.getItem(key)) || 0) > 60000;
        if (due) sessionStorage.setItem(key, Date.now());
      } catch (error) {
        due = false; // no storage to remember the last time in: a reload could loop
      }
      if (!due) return this.showState(STATE.DISCONNECTED, this.words.reload);
      if (this.isDocument) return global.location.reload();
      embed(this.container, 0, true); // bypassing any cached copy
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
      if (type === "entry.redacted") return; // the log was rewritten; the page already shows it
      const id = event.entry.id;
      // A tombstone, also in an earlier event rewritten by a redaction, takes the entry out.
      if (type === "entry.deleted" || event.entry.status === "deleted") {
        this.pending.delete(id);
        this.keep(() => { const el = this.find(id); if (el) el.remove(); });
        this.syncKeyEvent(id);
        // A card keeps its length: the server's card, fetched afresh, has the next line.
        if (this.card) embed(this.container, 0, true);
        return this.showCount();
      }
      // A card shows each entry's line only, newest first.
      if (this.card) return this.syncKeyEvent(id, event.headline_html);
      const existing = this.find(id) || this.pending.get(id);
      if (existing && Number(existing.dataset.version) > event.entry.version) return;
      const article = html(event.html);
      refreshTimes(article, this);
      prepareEmbeds(article);
      if (this.pending.has(id) && !event.entry.pinned) this.pending.set(id, article);
      else if (this.pending.delete(id)) this.keep(() => this.place(article, null));
      else if (existing || event.entry.pinned) this.keep(() => this.place(article, existing));
      else if (this.atTop()) this.keep(() => this.insert(article));
      else if (this.inWindow(article)) this.hold(id, article);
      this.syncKeyEvent(id, event.key_event_html); // the server sends it for key events only
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

    // The entry pinned before has left the pinned place already: its entry.unpinned comes first.
    place(article, existing) {
      if (article.classList.contains("entry--pinned")) {
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
      // "%(num)s new updates" in the form the page's language takes for `count`
      this.button.textContent = this.words.new[this.plurals.select(count)].replace("%(num)s", count);
      // The reader page's title counts them too: reader.js.
    }

    syncKeyEvent(id, markup) { // markup: the entry's line, rendered by the server; none: remove
      if (!this.keyList) return;
      const old = this.keyList.querySelector('li[data-entry-id="' + id + '"]');
      const item = markup && html(markup);
      if (!item) {
        if (old) old.remove();
      } else if (old) {
        // An entry paged out keeps the way to the page that has it.
        if (!this.find(id)) item.querySelector("a").href = old.querySelector("a").href;
        old.replaceWith(item);
      } else {
        const next = [...this.keyList.children].find((li) => newer(item, li));
        this.keyList.insertBefore(item, next || null);
        // As many as the server lists: the newest key events.
        const lines = this.keyList.children;
        while (lines.length > this.maxKeyEvents) lines[lines.length - 1].remove();
      }
      this.keyList.parentNode.hidden = !this.keyList.children.length;
    }

    applyBlog(blog) {
      if (!blog) return;
      this.badge.dataset.bulletinStatus = blog.status;
      this.badge.className = "badge badge--" + blog.status;
      this.badge.textContent = this.words[blog.status];
      for (const title of this.scope.querySelectorAll("[data-bulletin-title]")) {
        title.textContent = blog.title;
      }
      // The reader page's own title and summary: reader.js.
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
      this.choice = 0; // the transport to try next
      this.failures = 0;
      this.attempt = 0;
      this.opened = 0;
      this.state = STATE.DISCONNECTED;
      // The page says how often the server beats; without a page, its default (pinned by a test).
      this.heartbeatMs = (options.heartbeatSeconds || 15) * 1000;
      this.WebSocket = options.WebSocket || global.WebSocket;
      this.EventSource = options.EventSource || global.EventSource;
      this.fetch = options.fetch || ((url, init) => global.fetch(url, init));
      // Back online, or back to the tab: reconnect now rather than after the back-off.
      this.reconnectNow = () => {
        if (this.state !== STATE.CONNECTING) return; // live already, or stopped for good
        this.opened++; // a probe still on its way no longer decides
        this.choice = 0;
        this.reconnect(0, 0, "reconnect now");
      };
      this.onVisible = () => {
        if (doc.hidden) return;
        // After a sleep a socket can look open and be dead: one that missed its heartbeat is.
        const open = this.socket || this.source;
        if (open && Date.now() - this.heard > this.heartbeatMs + 5000) this.drop("no heartbeat");
        else this.reconnectNow();
      };
      global.addEventListener("online", this.reconnectNow);
      doc.addEventListener("visibilitychange", this.onVisible);
      // One connection for the tabs of a browser: the reader page's reader.js offers it.
      this.link = global.bulletinShare && bulletinShare(this);
      this.setState(STATE.CONNECTING, 0, "connect");
      this.open();
    }

    setState(newState, code, reason, transport) {
      const oldState = this.state;
      if (oldState === newState) return;
      this.state = newState;
      const detail = { oldState, newState, code, reason, transport };
      if (this.options.onState) this.options.onState(detail);
      this.emit("state", detail);
    }

    emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    url(kind, query) {
      return this.base + "/api/v1/blogs/" + encodeURIComponent(this.options.blog) + "/" + kind +
        (query === undefined ? (this.seq === null ? "" : "?since=" + this.seq) : query);
    }

    open() {
      this.stop();
      this.received = false;
      this.opened++;
      if (this.link && !this.choice) { // ask for our blog from our seq; silence is a failure
        this.watchdog = setTimeout(() => this.drop("no heartbeat"), this.heartbeatMs * 2 + 5000);
        return this.link();
      }
      if (this.transports[this.choice] === "sse" || !this.WebSocket) return this.openSse();
      const socket = this.socket = new this.WebSocket(this.url("ws").replace(/^http/, "ws"));
      socket.onopen = () => this.alive(false);
      socket.onmessage = (message) => this.receive(message.data);
      socket.onclose = (close) => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.ended(close.code, close.reason);
      };
    }

    openSse() {
      const source = this.source = new this.EventSource(this.url("sse"));
      const handler = (message) => this.receive(message.data);
      for (const type of SSE_TYPES) source.addEventListener(type, handler);
      source.onopen = () => this.alive(true);
      // EventSource would retry on its own; we resume with our own seq and back-off instead.
      source.onerror = () => {
        if (this.source === source) { this.stop(); this.ended(1006, "connection lost"); }
      };
    }

    alive(spoke) { // spoke: the server has sent something, so this transport works here
      this.heard = Date.now();
      if (spoke && !this.received) {
        this.received = true;
        this.attempt = 0;
        this.failures = 0;
      }
      this.setState(STATE.CONNECTED, 0, "", this.source ? "sse" : "websocket");
      clearTimeout(this.watchdog);
      // A stream that stops talking is dead, whatever the socket says (heartbeats included).
      if (this.socket || this.source || this.link) {
        this.watchdog = setTimeout(() => this.drop("no heartbeat"), this.heartbeatMs * 2 + 5000);
      }
    }

    receive(data) {
      let message;
      try { message = JSON.parse(data); } catch (error) { return this.drop("bad message"); }
      this.alive(true);
      const seq = message.seq;
      if (message.type === "hello") { if (this.seq === null) this.seq = seq; return; }
      // A heartbeat ahead of us, or a gap: an event went missing. Resume from our seq.
      if (message.type === "heartbeat") return seq > this.seq ? this.drop("missed events") : 0;
      if (this.seq !== null && seq <= this.seq) return; // have it already
      if (this.seq !== null && seq > this.seq + 1) return this.drop("missed events");
      this.seq = seq;
      if (this.options.onEvent) this.options.onEvent(message);
      this.emit("event", message);
    }

    drop(reason) { // close this stream and resume from our seq
      this.stop();
      this.reconnect(0, 0, reason);
    }

    ended(code, reason) {
      if (this.state === STATE.DISCONNECTED) return;
      if (code >= CODES.TERMINAL_MIN && code <= CODES.TERMINAL_MAX) {
        return this.terminal(code, reason);
      }
      if (this.received) {
        this.choice = 0; // a stream that worked and ended: start again from WebSocket
        return this.reconnect(0, code, reason);
      }
      // It failed before the server spoke. Ask the log over plain HTTP why: the server may
      // be down (wait), may refuse our seq (SSE cannot say so), or WebSocket is blocked.
      this.setState(STATE.CONNECTING, code, reason);
      const opened = this.opened;
      const probe = this.url("events", "?limit=1&since=" + (this.seq || 0));
      this.fetch(probe, { cache: "no-store" }).then((r) => r.status, () => 0).then((status) => {
        if (this.state === STATE.DISCONNECTED || opened !== this.opened) return;
        if (status === 409) return this.terminal(CODES.RESET, "since is ahead of the log");
        if (status === 404) return this.terminal(CODES.BLOG_NOT_FOUND, "no such blog");
        if (status === 200 && ++this.failures >= 2 && this.choice < this.transports.length - 1) {
          this.choice++; // the server answers, WebSocket does not get through: a proxy?
          this.failures = 0;
        }
        this.reconnect(this.attempt++, code, reason);
      });
    }

    terminal(code, reason) { // the server said no: coming back online will not change that
      this.stop();
      this.setState(STATE.DISCONNECTED, code, reason);
    }

    reconnect(step, code, reason) {
      clearTimeout(this.retry);
      this.setState(STATE.CONNECTING, code, reason);
      const delay = step ? backoff(step, 500, 30000) : 50 + backoff(1, 100, 500);
      this.emit("connecting", { code, reason, delay });
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
      this.stop();
      global.removeEventListener("online", this.reconnectNow);
      doc.removeEventListener("visibilitychange", this.onVisible);
      if (this.page) this.page.destroy();
      this.setState(STATE.DISCONNECTED, 1000, "closed");
    }
  }

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
    if (page) page.follow(live);
    return live;
  }

  /** Fill an embed container with the server-rendered blog, then keep it live. */
  function embed(container, step, fresh) {
    const base = (container.dataset.bulletinUrl || scriptOrigin || global.location.origin)
      .replace(/\/$/, "");
    const url = base + "/blogs/" + encodeURIComponent(container.dataset.bulletinBlog) + "/" +
      (container.dataset.bulletinMode || "embed");
    const again = () => setTimeout(() => embed(container, (step || 0) + 1, fresh),
      backoff((step || 0) + 1, 1000, 30000));
    return fetch(url, fresh ? { cache: "reload" } : {}).then((response) => {
      // Text, never markup: a proxy or CDN in front may answer with an error page of its own.
      if (response.status === 404) return response.text().then((text) => {
        const plain = (response.headers.get("Content-Type") || "").startsWith("text/plain");
        container.textContent = plain ? text : "There is no such live blog.";
      });
      if (!response.ok) return again(); // busy or restarting: try again later
      return response.text().then((text) => {
        // The stream of what it replaces (a reset embed, a refilled card) ends here, not
        // before: the old one stays live until the new one takes over from the fragment's seq.
        if (container.bulletin) container.bulletin.close();
        container.innerHTML = text;
        const maxEntries = Number(container.dataset.bulletinMaxEntries) || undefined;
        container.bulletin = connect({ url: base, container, maxEntries });
      });
    }, again);
  }

  function start() {
    const own = doc.querySelector("main [data-bulletin-seq]");
    if (own) {
      if (own.hasAttribute("data-bulletin-archive")) prepareEmbeds(own); // not live: no Page
      else global.bulletinPage = connect({ container: own, isDocument: true });
      return;
    }
    for (const container of doc.querySelectorAll("[data-bulletin-blog]:not([data-bulletin-seq])")) {
      if (container.dataset.bulletinManual === undefined) embed(container);
    }
  }

  global.Bulletin = { connect, embed, backoff, CODES, STATE };
  if (doc) doc.addEventListener("click", onEmbedClick); // the cards' buttons, wherever they are
  if (doc && !global.BULLETIN_MANUAL) {
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start);
    else start();
  }
})(globalThis);
