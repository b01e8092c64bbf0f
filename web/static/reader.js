/*
 * Bulletin's reader page, beyond the live core in bulletin.js (which partners' embeds load
 * alone): share buttons, key-event links that scroll, permalinks that show their entry and
 * old `#entry-ID` anchors that find theirs. No dependencies; loaded with `defer`.
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

  function start() {
    const root = document.querySelector("main [data-bulletin-seq]");
    if (!root) return;
    wireLinks(root);
    showLinkedEntry(root.closest("main"), root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
