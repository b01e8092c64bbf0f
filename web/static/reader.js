/*
 * Bulletin's reader page, beyond the live core in bulletin.js (which partners' embeds load
 * alone): share buttons, key-event links that scroll, permalinks that show their entry, old
 * `#entry-ID` anchors that find theirs, what is new since this browser's last visit, the
 * page's title and summary kept live, a filtered or oldest-first view kept live, and "N
 * reading now". No dependencies; loaded with `defer`, after bulletin.js.
 */
(function () {
  "use strict";

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
      setTimeout(() => { button.textContent = "Share"; }, 2000);
    };
    if (window.navigator.share) {
      return window.navigator.share({ title, url }).catch(() => {}); // dismissed: nothing to say
    }
    if (window.navigator.clipboard && window.isSecureContext) {
      return window.navigator.clipboard.writeText(url)
        .then(() => said("Link copied"), () => { window.location.href = url; });
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
    return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
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
    note.textContent = (found.more ? "More than " : "") + count +
      (count === 1 ? " update" : " updates") + " since " + clock(seen.at) +
      (keys ? ", " + keys + (keys === 1 ? " key event" : " key events") : "") + ". ";
    const oldest = found.entries[0];
    const jump = document.createElement("a");
    jump.textContent = "Jump to the first you missed";
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
      toggle.textContent = open ? "Show fewer" : "Show all " + count;
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
      region.textContent = said ? "New update: " + said : "New update";
    });
  }

  /** The page's own title and summary follow the blog's changes (the embed has neither). */
  function followBlog(live) {
    live.addEventListener("event", (e) => {
      const blog = e.detail.details;
      if (!blog || !e.detail.type.startsWith("blog.")) return;
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

  /* "N reading now", rounded, for a blog whose newsroom shows it: one shared, cached read
   * (app/pages.py) now and every half minute while the page is open. */
  const READING_EVERY_MS = 30000;

  function showReaders(root) {
    const label = root.querySelector("[data-bulletin-reading]");
    if (!label) return;
    const read = () => fetch(label.dataset.bulletinReading)
      .then((response) => (response.ok ? response.json() : null))
      .then((counted) => {
        const count = counted && counted.reading_now;
        label.hidden = !count;
        if (count) label.textContent = count.toLocaleString("en") + " reading now";
      }, () => {});
    read();
    setInterval(read, READING_EVERY_MS);
  }

  function start() {
    const root = document.querySelector("main [data-bulletin-seq]");
    if (!root) return;
    wireLinks(root);
    foldKeyEvents(root);
    showLinkedEntry(root.closest("main"), root);
    showReaders(root);
    const live = window.bulletinPage;
    if (live) {
      followBlog(live);
      keepView(root, live);
    }
    if (!root.hasAttribute("data-bulletin-archive")) {
      catchUp(root);
      announceUpdates(root);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
