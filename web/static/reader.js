/*
 * Bulletin's reader page, beyond the live core in bulletin.js (which partners' embeds load
 * alone): share buttons, key-event links that scroll, permalinks that show their entry, old
 * `#entry-ID` anchors that find theirs, what is new since this browser's last visit, the
 * page's title and summary kept live, a filtered or oldest-first view kept live, and "N
 * reading now", a day divider where a new local day starts, and one connection for all the
 * tabs of a browser. No dependencies; loaded with `defer`, before bulletin.js (which finds
 * `bulletinShare` when it connects). Its words come with the page, in the blog's language
 * (`data-bulletin-words`, app/i18n/script_words.py).
 */
(function () {
  "use strict";

  let words = {};
  let plurals = null;

  /* One connection per browser. The tab that holds the lock "bulletin SERVER" keeps one
   * WebSocket to SERVER/api/v1/streams/ws for the blogs of every tab, and passes what it hears
   * to the others on the BroadcastChannel of the same name; each tab applies it by seq, as
   * from a stream of its own (bulletin.js's Live: its back-off, probes, gap checks). A tab asks
   * for its blog from its own seq when it starts, after a gap, after the stream closed, and
   * when a new holder opens it (the last one's tab closed): so nothing is lost, and what comes
   * twice is dropped by seq. The holder opens the stream when a tab asks and it has none, so
   * the tabs' own back-off (and "back online") paces the reconnects. It unsubscribes a blog
   * when the last tab that follows it leaves. Where Web Locks or BroadcastChannel are missing,
   * in a sandboxed frame, or for a connection made with a WebSocket of the caller's, each tab
   * connects by itself; so does a tab whose blog the shared stream cannot take (over its
   * limit of blogs). On the channel: {want, since, id} a tab follows a blog from since; {leave,
   * id}; {ask} the holder asks every tab for its blog; {blog, data} a message of the stream;
   * {blog, error: [code, reason]} the stream refused the blog; {closed: [code, reason]} the
   * stream closed. */
  const links = {};
  // A blog the shared stream refuses with 4500 (app/realtime/codes.py INVALID_REQUEST): over
  // its limit of blogs, as its seq is always well-formed.
  const OVER_LIMIT = 4500;
  const ASKS_GATHERED_MS = 20;

  function openLink(base) {
    const name = "bulletin " + base;
    const channel = new BroadcastChannel(name);
    const lives = new Set();
    const followers = new Map(); // blog -> ids of the tabs' connections following it (holder)
    let holding = false;
    let socket = null;
    const send = (message) => {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    const connect = () => {
      const opening = socket = new WebSocket(base.replace(/^http/, "ws") + "/api/v1/streams/ws");
      opening.onopen = () => post({ ask: true });
      opening.onmessage = (message) => {
        // Read once here: the tabs route by what is read, and only their own blog's parse.
        const { blog, seq, type, code, reason } = JSON.parse(message.data);
        if (type === "error") {
          heads.delete(blog); // not followed now: the next ask subscribes
          post({ blog, error: [code, reason] });
        } else {
          heads.set(blog, seq);
          post({ blog, data: message.data });
        }
      };
      opening.onclose = (close) => {
        if (socket !== opening) return;
        socket = null;
        followers.clear(); // the next stream starts with no blogs
        asked.clear();
        heads.clear();
        post({ closed: [close.code, close.reason] });
      };
    };
    // The tabs' asks for a blog, gathered for a moment and sent as one subscribe from the
    // lowest seq: after a handover every tab asks at once, and the stream has a budget of
    // messages (app/realtime/multiplex.py); what a tab has already it drops by seq.
    const asked = new Map(); // blog -> the lowest seq asked for (null: the head)
    // blog -> the newest seq the stream has sent of it: a tab asking from there or later
    // misses nothing (it hears the channel from before it asked), and needs no replay.
    const heads = new Map();
    const lowest = (a, b) => (a === null ? b : b === null ? a : Math.min(a, b));
    const subscribe = () => {
      for (const [blog, since] of asked) send({ subscribe: blog, since });
      asked.clear();
    };
    const hold = (message) => {
      if (message.want) {
        if (!socket) return connect(); // on open it asks every tab again
        const since = message.since;
        if (!followers.has(message.want)) followers.set(message.want, new Set());
        else if (since !== null && since >= heads.get(message.want)) {
          followers.get(message.want).add(message.id);
          const head = heads.get(message.want);
          const hello = JSON.stringify({ type: "hello", blog: message.want, seq: head });
          return post({ blog: message.want, data: hello });
        }
        followers.get(message.want).add(message.id);
        if (!asked.size) setTimeout(subscribe, ASKS_GATHERED_MS);
        asked.set(message.want, asked.has(message.want) ? lowest(asked.get(message.want), since)
          : since);
      } else if (message.leave) {
        const ids = followers.get(message.leave);
        if (!ids || !ids.delete(message.id) || ids.size) return;
        followers.delete(message.leave);
        asked.delete(message.leave);
        heads.delete(message.leave);
        send({ unsubscribe: message.leave });
      }
    };
    const take = (message) => {
      if (holding) hold(message);
      for (const live of lives) {
        if (live.choice || !live.link) continue; // on a stream of its own (SSE through a proxy)
        if (message.ask) live.open();
        else if (message.closed) live.ended(...message.closed);
        else if (message.blog !== live.options.blog) continue;
        else if (message.error && message.error[0] === OVER_LIMIT) {
          live.link = null; // the shared stream is full: this one goes its own way
          live.open();
        } else if (message.error) live.ended(...message.error);
        else if (message.data) live.receive(message.data);
      }
    };
    // A channel never hears its own messages: this tab takes what it posts itself.
    const post = (message) => {
      channel.postMessage(message);
      take(message);
    };
    channel.onmessage = (e) => take(e.data);
    const link = { lives, post, refused: false };
    // Held until this tab closes; then the next tab waiting for it takes the connection.
    navigator.locks.request(name, () => new Promise(() => {
      holding = true;
      connect();
    })).catch(() => {
      link.refused = true; // refused here after all: each connection of this tab goes its own way
      for (const live of lives) {
        live.link = null;
        live.open();
      }
    });
    return link;
  }

  /** bulletin.js asks for each connection it makes: a function that asks for the blog from
   * the connection's seq, or nothing where it connects by itself. */
  window.bulletinShare = (live) => {
    // A sandboxed frame (the newsroom's preview) has an opaque origin, and no locks to share.
    if (!(navigator.locks && window.BroadcastChannel) || window.origin === "null" ||
      live.options.WebSocket || live.transports[0] !== "websocket") return null;
    const link = links[live.base] || (links[live.base] = openLink(live.base));
    if (link.refused) return null;
    const blog = live.options.blog;
    const id = Math.random().toString(36).slice(2);
    const leave = () => link.post({ leave: blog, id });
    link.lives.add(live);
    live.addEventListener("state", (e) => {
      if (e.detail.newState === "disconnected" && link.lives.delete(live)) leave();
    });
    // Leaving the page, or into the back-forward cache: back from there, ask again.
    window.addEventListener("pagehide", leave);
    window.addEventListener("pageshow", (e) => {
      if (e.persisted && link.lives.has(live)) live.open();
    });
    return () => link.post({ want: blog, since: live.seq, id });
  };

  /** A message with a count, in the form the page's language takes for it. */
  function withCount(key, count) {
    // Digits as the server writes them (Babel's CLDR data: Latin digits in Arabic too).
    const number = count.toLocaleString(document.documentElement.lang, { numberingSystem: "latn" });
    return words[key][plurals.select(count)].replace("%(num)s", number);
  }

  function findEntry(root, id) {
    return root.querySelector("article[data-entry-id=\"" + id + "\"]");
  }

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  /** Share buttons and key-event links of one rendered blog, delegated from its root so the
   * entries that arrive live work too. Share opens the system's share sheet where the browser
   * has one, copies the permalink otherwise; a key event already on the page is scrolled to
   * rather than loaded. */
  function wireLinks(root) {
    root.setAttribute("data-bulletin-scripted", ""); // bulletin.css shows the share buttons
    root.addEventListener("click", (e) => {
      const share = e.target.closest("[data-bulletin-share]");
      if (share) return shareEntry(share);
      const link = e.target.closest("[data-bulletin-key-events] a");
      const line = link && link.closest("[data-entry-id]");
      const article = line && findEntry(root, line.dataset.entryId);
      if (!article) return; // not on this page: its permalink loads the page that holds it
      e.preventDefault();
      article.scrollIntoView({ block: "start", behavior: reducedMotion() ? "auto" : "smooth" });
      window.history.replaceState(null, "", "#" + article.id);
    });
  }

  function shareEntry(button) {
    const url = button.dataset.bulletinShare;
    const article = button.closest("article");
    const headline = article && article.querySelector(".entry__headline");
    const title = headline ? headline.textContent : document.title;
    const said = (text) => {
      button.textContent = text;
      setTimeout(() => { button.textContent = words.share; }, 2000);
    };
    if (window.navigator.share) {
      return window.navigator.share({ title, url }).catch(() => {}); // dismissed: nothing to say
    }
    if (window.navigator.clipboard && window.isSecureContext) {
      return window.navigator.clipboard.writeText(url)
        .then(() => said(words.copied), () => { window.location.href = url; });
    }
    window.location.href = url; // its address bar holds the link to copy
  }

  /** A permalink page shows the entry it names; an old `#entry-ID` link to an entry that is
   * no longer on this page goes to that entry's permalink, which finds its page. */
  function showLinkedEntry(main, root) {
    const focus = main.dataset.bulletinFocus;
    const anchored = /^#entry-(\d+)$/.exec(window.location.hash);
    if (focus) {
      const article = findEntry(root, focus);
      if (article) {
        article.classList.add("entry--linked");
        article.scrollIntoView({ block: "start" });
      }
    } else if (anchored && !document.getElementById("entry-" + anchored[1])) {
      window.location.replace("/blogs/" + encodeURIComponent(root.dataset.bulletinBlog) +
        "/entries/" + anchored[1]);
    }
  }

  /* Catch-up since the last visit. This browser remembers, per blog, the newest seq it showed
   * and when, in localStorage only: the server keeps nothing about the reader. Back on the
   * page, the public log since then (one cached read, the same any resuming page makes) says
   * exactly which entries are new, because it has no gaps: they are marked, counted and the
   * oldest of them is a link away. */
  const SEEN_KEY = "bulletin.seen.";
  const LOG_PAGE = 1000;

  function remembered(slug) {
    try {
      const seen = JSON.parse(localStorage.getItem(SEEN_KEY + slug));
      return seen && Number.isInteger(seen.seq) ? seen : null;
    } catch (error) {
      return null; // no storage, or not ours: no catch-up
    }
  }

  function remember(slug, seq) {
    try {
      localStorage.setItem(SEEN_KEY + slug, JSON.stringify({ seq, at: Date.now() }));
    } catch (error) { /* private mode or full: the next visit shows no catch-up */ }
  }

  /** The entries first published after `since` and still public, from the log, oldest first. */
  function newEntries(slug, since, head) {
    const url = "/api/v1/blogs/" + encodeURIComponent(slug) + "/events?limit=" + LOG_PAGE +
      "&since=" + since;
    return fetch(url).then((response) => (response.ok ? response.json() : null)).then((log) => {
      if (!log) return null;
      const entries = new Map(); // id -> its newest payload, in order of first publication
      for (const event of log.items) {
        if (event.seq > head || !event.entry) continue;
        const id = event.entry.id;
        if (event.type === "entry.created") entries.set(id, event.entry);
        else if (event.type === "entry.deleted") entries.delete(id);
        else if (entries.has(id)) entries.set(id, event.entry);
      }
      return { entries: Array.from(entries.values()), more: log.next_since < head };
    });
  }

  function clock(at) {
    return new Date(at).toLocaleTimeString(document.documentElement.lang,
      { hour: "2-digit", minute: "2-digit" });
  }

  function showCatchUp(root, seen, found) {
    const count = found.entries.length;
    if (!count) return;
    const keys = found.entries.filter((entry) => entry.key_event).length;
    for (const entry of found.entries) {
      const article = findEntry(root, entry.id);
      if (article) article.classList.add("entry--unseen");
    }
    const note = document.createElement("p");
    note.className = "catch-up";
    note.setAttribute("data-bulletin-catch-up", "");
    note.textContent = withCount(found.more ? "more" : "since", count)
      .replace("%(time)s", clock(seen.at)) + (keys ? withCount("keys", keys) : "") + ". ";
    const oldest = found.entries[0];
    const jump = document.createElement("a");
    jump.textContent = words.jump;
    jump.href = findEntry(root, oldest.id) ? "#entry-" + oldest.id
      : "/blogs/" + encodeURIComponent(root.dataset.bulletinBlog) + "/entries/" + oldest.id;
    note.appendChild(jump);
    const flow = root.querySelector("[data-bulletin-entries]");
    flow.parentNode.insertBefore(note, flow);
  }

  function catchUp(root) {
    const slug = root.dataset.bulletinBlog;
    const head = Number(root.dataset.bulletinSeq);
    const seen = remembered(slug);
    remember(slug, head);
    const live = window.bulletinPage;
    if (live) {
      live.addEventListener("event", (e) => remember(slug, e.detail.seq));
    }
    // A first visit, nothing new, or a log that went back (a restored database): nothing to say.
    if (!seen || seen.seq >= head) return;
    newEntries(slug, seen.seq, head).then((found) => {
      if (found) showCatchUp(root, seen, found);
    }, () => {});
  }

  /* Key events fold to the newest few behind "Show all N" (the page says how many; without
   * this script noscript.css shows them all). New ones arriving live keep the count right. */
  function foldKeyEvents(root) {
    const nav = root.querySelector(".key-events[data-folded]");
    const list = root.querySelector("[data-bulletin-key-events]");
    const toggle = root.querySelector("[data-bulletin-key-toggle]");
    if (!nav || !list || !toggle) return;
    const label = () => {
      const count = list.children.length;
      const open = nav.hasAttribute("data-expanded");
      toggle.hidden = count <= Number(nav.dataset.folded);
      toggle.textContent = open ? words.fewer : withCount("all", count);
      toggle.setAttribute("aria-expanded", String(open));
    };
    toggle.addEventListener("click", () => {
      nav.toggleAttribute("data-expanded");
      label();
    });
    new MutationObserver(label).observe(list, { childList: true });
    label();
  }

  /* Each new entry, as it arrives: screen readers hear "New update: {headline}" (or the start of
   * its text, or its photo's caption) from the page's polite live region, not the whole entry,
   * and focus stays where the reader left it. The entry is marked as new (bulletin.css fades the mark in and out,
   * unless the reader asked for reduced motion). Edits and deletions are not announced. */
  const SPOKEN_TEXT = 80;

  function spoken(entry) {
    if (entry.headline) return entry.headline;
    const body = document.createElement("template"); // inert: its images do not load
    body.innerHTML = entry.body || "";
    const text = body.content.textContent.replace(/\s+/g, " ").trim();
    const media = (entry.media || [])[0];
    if (!text && media) return media.caption || media.alt || "";
    if (text.length <= SPOKEN_TEXT) return text;
    return text.slice(0, text.lastIndexOf(" ", SPOKEN_TEXT) + 1 || SPOKEN_TEXT).trim() + "…";
  }

  function announceUpdates(root) {
    const region = root.querySelector("[data-bulletin-announce]");
    const live = window.bulletinPage;
    if (!region || !live) return;
    live.addEventListener("event", (e) => {
      const event = e.detail;
      if (event.type !== "entry.created" || !event.entry || event.entry.status === "deleted") return;
      const article = findEntry(root, event.entry.id); // none while the reader is scrolled down
      if (article) article.classList.add("entry--new");
      const said = spoken(event.entry);
      region.textContent = said ? words.announce.replace("%(headline)s", said) : words.announced;
    });
  }

  /** The page's own title and summary follow the blog's changes (the embed has neither); a
   * new language is a new page: every word and time on it changes, so it is loaded again. */
  function followBlog(live) {
    live.addEventListener("event", (e) => {
      const blog = e.detail.details;
      if (!blog || !e.detail.type.startsWith("blog.")) return;
      if (blog.language && blog.language !== document.documentElement.lang) {
        return window.location.reload();
      }
      live.page.baseTitle = blog.title;
      const summary = document.querySelector("[data-bulletin-summary]");
      if (summary) summary.innerHTML = blog.summary; // sanitised by the server
      live.page.showCount();
    });
  }

  /* A view of the page (app/pages.py PageView) stays what it is while events arrive. Under a
   * tag (`?tag=`), only that tag's entries come in, and an entry edited out of the tag leaves
   * as if deleted. Oldest first (`?order=oldest`), a new entry joins the end of the last page;
   * on an earlier page it is counted in "N new updates", which leads to the newest ones. */
  function keepView(root, live) {
    const page = live.page;
    const tag = root.dataset.bulletinTag;
    const apply = page.apply.bind(page);
    if (tag) {
      page.apply = (event) => {
        const entry = event.entry;
        const gone = event.type === "entry.deleted" || !entry || entry.status === "deleted";
        if (gone || (entry.tags || []).includes(tag)) return apply(event);
        if (findEntry(root, entry.id) || page.pending.has(entry.id)) {
          return apply({ type: "entry.deleted", seq: event.seq, entry: { id: entry.id } });
        }
        page.syncKeyEvent(entry.id); // its key-events line goes too, if it had one
      };
    }
    if (root.dataset.bulletinOrder !== "oldest") return;
    const flow = root.querySelector("[data-bulletin-entries]");
    const later = root.querySelector("[data-bulletin-older]");
    page.atTop = () => true; // adding at the end moves nothing the reader is looking at
    page.insert = (article) => {
      if (!later.hidden) return page.hold(Number(article.dataset.entryId), article);
      const empty = root.querySelector("[data-bulletin-empty]");
      if (empty) empty.remove();
      flow.append(article);
    };
    page.reveal = (asked) => { // the newest are at the top of the newest-first page
      if (asked) window.location.href = tag ? "?tag=" + encodeURIComponent(tag) : "?";
    };
  }

  /* The filter bar's counts follow the entries: after a new, edited or deleted entry the page
   * asks for the blog's counts again (app/pages.py: one cached answer shared by every reader)
   * and shows them as the server would render the bar, a tag new to it included. An answer
   * counted before the change it was asked for (a cache not yet told) is asked again. */
  const COUNTED = new Set(["entry.created", "entry.updated", "entry.deleted"]);
  const STALE_RETRY_MS = 1000;
  const STALE_TRIES = 10;

  function keepTagCounts(root, live) {
    const bar = document.querySelector("[data-bulletin-tags]");
    if (!bar) return; // a blog without tags yet: its bar comes with a reload
    const url = "/blogs/" + encodeURIComponent(root.dataset.bulletinBlog) + "/tags";
    let wanted = 0; // the newest seq the counts must include
    let asking = false;
    const ask = (tries) => {
      asking = true;
      fetch(url, { cache: "no-cache" })
        .then((response) => (response.ok ? response.json() : null))
        .then((counts) => {
          const fresh = counts && counts.seq >= wanted;
          if (fresh) showTagCounts(bar, counts, root.dataset.bulletinTag);
          if (fresh || !counts || tries >= STALE_TRIES) asking = false;
          else setTimeout(() => ask(tries + 1), STALE_RETRY_MS);
        }, () => { asking = false; }); // offline: the next change asks again
    };
    live.addEventListener("event", (e) => {
      if (!COUNTED.has(e.detail.type)) return;
      wanted = e.detail.seq;
      if (!asking) ask(1);
    });
  }

  /** The bar as app/pages.py renders it: "All", then the counted tags, most used first. */
  function showTagCounts(bar, counts, current) {
    const items = new Map(); // tag (null: "All") -> its item in the bar
    for (const item of bar.children) {
      items.set(new URL(item.querySelector("a").href).searchParams.get("tag"), item);
    }
    const all = items.get(null);
    const shown = [all];
    const count = (item, number) => { item.querySelector(".view__count").textContent = number; };
    count(all, counts.total);
    for (const counted of counts.tags) {
      let item = items.get(counted.tag);
      if (!item) { // a copy of "All", the server's markup, made this tag's
        item = all.cloneNode(true);
        const link = item.querySelector("a");
        const href = new URL(link.href);
        href.searchParams.set("tag", counted.tag);
        link.href = href.href;
        link.firstChild.textContent = counted.tag + " ";
        link.removeAttribute("aria-current");
        if (counted.tag === current) link.setAttribute("aria-current", "page");
      }
      count(item, counted.count);
      shown.push(item);
    }
    bar.replaceChildren(...shown);
  }

  /* "N reading now", rounded, for a blog whose newsroom shows it: one shared, cached read
   * (app/pages.py) now and every half minute while the page is open. The newsroom's switch
   * reaches open pages with the blog's next event: the count appears or goes. */
  const READING_EVERY_MS = 30000;

  function showReaders(root, live) {
    let label = root.querySelector("[data-bulletin-reading]");
    let timer = null;
    const read = () => fetch(label.dataset.bulletinReading)
      .then((response) => (response.ok ? response.json() : null))
      .then((counted) => {
        const count = timer !== null && counted && counted.reading_now;
        label.hidden = !count;
        if (count) label.textContent = withCount("reading", count);
      }, () => {});
    const follow = (shown) => {
      if (shown === (timer !== null)) return;
      clearInterval(timer);
      timer = null;
      if (!shown) {
        label.hidden = true;
        return;
      }
      if (!label) { // as partials/live.html renders it for a blog that shows it
        label = document.createElement("span");
        label.className = "reading-now";
        label.hidden = true;
        label.dataset.bulletinReading = "/blogs/" + encodeURIComponent(root.dataset.bulletinBlog) +
          "/reading-now";
        root.querySelector(".live__bar").append(label);
      }
      timer = setInterval(read, READING_EVERY_MS);
      read();
    };
    follow(Boolean(label));
    if (!live) return;
    live.addEventListener("event", (e) => {
      const blog = e.detail.details;
      if (blog && e.detail.type.startsWith("blog.")) follow(Boolean(blog.show_readers_count));
    });
  }

  /* Times say the hour only: the day shows in a divider before the first entry of each local
   * day (the server renders one, hidden, in every entry). Entries arriving live, revealed or
   * removed move the boundaries, so they are found again after each change of the list. */
  function keepDayDividers(root) {
    const flow = root.querySelector("[data-bulletin-entries]");
    const mark = () => {
      let previous = null;
      for (const article of flow.querySelectorAll("article[data-day]")) {
        const divider = article.querySelector("[data-bulletin-day]");
        if (divider) divider.hidden = article.dataset.day === previous;
        previous = article.dataset.day;
      }
    };
    new MutationObserver(mark).observe(flow, { childList: true });
    mark();
  }

  /** "(3) " before the page's title while three new updates wait for a scrolled reader. */
  function countInTitle(page) {
    const show = page.showCount.bind(page);
    page.baseTitle = document.title;
    page.showCount = () => {
      show();
      const count = page.pending.size;
      document.title = (count ? "(" + count + ") " : "") + page.baseTitle;
    };
  }

  function start() {
    const root = document.querySelector("main [data-bulletin-seq]");
    if (!root) return;
    words = JSON.parse(root.dataset.bulletinWords);
    plurals = new Intl.PluralRules(document.documentElement.lang);
    wireLinks(root);
    keepDayDividers(root);
    foldKeyEvents(root);
    showLinkedEntry(root.closest("main"), root);
    const live = window.bulletinPage;
    showReaders(root, live);
    if (live) {
      countInTitle(live.page);
      followBlog(live);
      keepView(root, live);
      keepTagCounts(root, live);
    }
    if (!root.hasAttribute("data-bulletin-archive")) {
      catchUp(root);
      announceUpdates(root);
    }
  }

  // Deferred before bulletin.js: the page's connection exists once the document is parsed.
  if (document.readyState === "complete") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
