"""Entry bodies and blog summaries keep safe markup only; plain-text fields are escaped on output.

The unit tests run an XSS cheat-sheet through `sanitise_html`; the API tests check
that what a reader's browser finally gets (the stored entry, the change-log event
and its rendered `html`) carries none of it, on both databases.
"""

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from markupsafe import escape

from app.sanitising import sanitise_html
from tests.support.factories import ADMIN, create_blog, publish_entry, read_log

# What an entry body may contain, written out here so a widened allow-list fails a test.
SAFE_TAGS = {
    "p",
    "br",
    "a",
    "em",
    "strong",
    "i",
    "b",
    "ul",
    "ol",
    "li",
    "blockquote",
    "cite",
    "h2",
    "h3",
    "h4",
}
SAFE_SCHEMES = {"", "http", "https", "mailto"}
# Tags that can run script or take over the page whatever their attributes; an <img> is
# only as dangerous as its attributes, and the entry template renders media with one.
SCRIPTING_TAGS = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "form",
    "input",
    "meta",
    "link",
    "base",
    "button",
    "svg",
    "math",
    "template",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "cite", "background", "data", "xlink:href"}


class _Markup(HTMLParser):
    """Collects every start tag with its (unescaped) attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def parse_tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Markup()
    parser.feed(markup)
    parser.close()
    return parser.tags


def _url_scheme(url: str) -> str:
    # Browsers drop ASCII whitespace and control characters before reading a scheme.
    squeezed = "".join(ch for ch in url if ord(ch) > 0x20 and ch != "\x7f")
    return urlsplit(squeezed).scheme.lower()


# The entry template's own Share button (partials/entry.html): the one scripting tag an
# entry's HTML may hold, with exactly this markup; anything else is an attack getting through.
SHARE_BUTTON = re.compile(
    r'<button class="entry__share" type="button" data-bulletin-share="https?://[^"<>]*"'
    r'(?: aria-label="Share: [^"<>]*")? hidden>Share</button>\n</article>$'
)


def rendered_pieces(entry_html: str) -> list[str]:
    """dangerous_pieces of an entry's rendered HTML, less the template's Share button."""
    without, found = SHARE_BUTTON.subn("</article>", entry_html)
    assert found == 1, "the entry's Share button, once, at its end"
    return dangerous_pieces(without)


def dangerous_pieces(markup: str) -> list[str]:
    """Everything in `markup` that could run script or restyle the page, as readable strings."""
    found = []
    lowered = markup.lower()
    for needle in ("<script", "javascript:", "vbscript:"):
        if needle in lowered:
            found.append(f"text {needle!r}")
    for tag, attrs in parse_tags(markup):
        if tag in SCRIPTING_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                found.append(f"<{tag} {name}=>")
            if name in URL_ATTRIBUTES and _url_scheme(value or "") not in SAFE_SCHEMES:
                found.append(f"<{tag} {name}={value!r}>")
    return found


XSS_CHEAT_SHEET = [
    pytest.param("<script>alert(1)</script>", id="script"),
    pytest.param("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>", id="script-src-uppercase"),
    pytest.param("<p>text<script", id="unclosed-script"),
    pytest.param("<scr<script>ipt>alert(1)</script>", id="split-script"),
    pytest.param("<<script>script>alert(1)<</script>/script>", id="doubled-brackets"),
    pytest.param("<img src=x onerror=alert(1)>", id="img-onerror"),
    pytest.param("<IMG SRC=`javascript:alert(1)`>", id="img-backtick-javascript"),
    pytest.param("<svg onload=alert(1)>", id="svg-onload"),
    pytest.param("<svg><script>alert(1)</script></svg>", id="svg-script"),
    pytest.param('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', id="mathml"),
    pytest.param('<a href="javascript:alert(1)">x</a>', id="javascript-url"),
    pytest.param('<A HREF="JaVaScRiPt:alert(1)">x</A>', id="javascript-url-mixed-case"),
    pytest.param('<a href="jav&#x09;ascript:alert(1)">x</a>', id="javascript-entity-tab"),
    pytest.param('<a href="jav\tascript:alert(1)">x</a>', id="javascript-raw-tab"),
    pytest.param('<a href="java&NewLine;script:alert(1)">x</a>', id="javascript-named-newline"),
    pytest.param('<a href="&#x20;&#x09;javascript:alert(1)">x</a>', id="javascript-leading-space"),
    pytest.param(
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
        id="javascript-decimal-entities",
    ),
    pytest.param(
        '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105'
        '&#0000112&#0000116&#0000058alert(1)">x</a>',
        id="javascript-padded-entities-no-semicolons",
    ),
    pytest.param('<a href="javascript&colon;alert(1)">x</a>', id="javascript-named-colon"),
    pytest.param('<a href="java\x00script:alert(1)">x</a>', id="javascript-nul"),
    pytest.param('<a href="vbscript:msgbox(1)">x</a>', id="vbscript-url"),
    pytest.param(
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>', id="data-url"
    ),
    pytest.param('<a href="DaTa:text/html,<script>alert(1)</script>">x</a>', id="data-url-case"),
    pytest.param('<p style="background:url(javascript:alert(1))">hi</p>', id="style-attribute"),
    pytest.param('<div style="width: expression(alert(1));">d</div>', id="css-expression"),
    pytest.param("<style>body { display: none }</style>ok", id="style-element"),
    pytest.param('<iframe src="https://evil.example"></iframe>', id="iframe"),
    pytest.param('<object data="https://evil.example/x.swf"></object>', id="object"),
    pytest.param('<embed src="https://evil.example/x.swf">', id="embed"),
    pytest.param(
        '<form action="https://evil.example"><input name=a onfocus=alert(1) autofocus></form>',
        id="form-input-autofocus",
    ),
    pytest.param('<button formaction="javascript:alert(1)">go</button>', id="button-formaction"),
    pytest.param(
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', id="meta-refresh"
    ),
    pytest.param('<base href="javascript:alert(1)//">', id="base-href"),
    pytest.param("<link rel=import href=https://evil.example>", id="link-import"),
    pytest.param('<p onclick="alert(1)">hi</p>', id="onclick-on-p"),
    pytest.param('<a href="https://ok.example" onmouseover=alert(1)>x</a>', id="handler-on-link"),
    pytest.param("<h2 style=color:red onclick=alert(1)>t</h2>", id="style-and-handler-on-h2"),
    pytest.param('<blockquote cite="javascript:alert(1)">q</blockquote>', id="blockquote-cite"),
    pytest.param("<details open ontoggle=alert(1)>", id="details-ontoggle"),
    pytest.param("<body onload=alert(1)>", id="body-onload"),
    pytest.param('<table background="javascript:alert(1)"><tr><td>c</td></tr></table>', id="td"),
    pytest.param("<!--[if IE]><script>alert(1)</script><![endif]-->after", id="ie-conditional"),
    pytest.param("<!--><script>alert(1)</script>-->", id="broken-comment"),
    pytest.param("<![CDATA[<script>alert(1)</script>]]>", id="cdata"),
    pytest.param(
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
        id="noscript-mutation",
    ),
    pytest.param("<template><script>alert(1)</script></template>", id="template"),
    pytest.param(
        '<a href="https://ok.example" title=\'"onmouseover="alert(1)\'>x</a>',
        id="nested-quotes-attribute-breakout",
    ),
    pytest.param(
        '<a title="&quot;><script>alert(1)</script>" href="https://ok.example">x</a>',
        id="entity-quote-breakout",
    ),
    pytest.param('<a href="//evil.example/x">x</a>', id="protocol-relative"),
]


@pytest.mark.parametrize("payload", XSS_CHEAT_SHEET)
def test_sanitised_html_has_no_script_handler_style_or_unsafe_url(payload: str) -> None:
    assert dangerous_pieces(sanitise_html(payload)) == []


@pytest.mark.parametrize("payload", XSS_CHEAT_SHEET)
def test_sanitised_html_contains_only_allow_listed_tags(payload: str) -> None:
    cleaned = sanitise_html(payload)
    assert {tag for tag, _attrs in parse_tags(cleaned)} <= SAFE_TAGS
    assert "style" not in cleaned.lower()


def test_the_dangerous_pieces_check_catches_each_kind_of_danger() -> None:
    # Guards the guard: the checks above would pass vacuously if this found nothing.
    unsafe = (
        '<script>x</script><p onclick="x" style="x">'
        '<a href="jav&#x09;ascript:x">a</a><a href="data:text/html,x">b</a></p>'
    )
    assert dangerous_pieces(unsafe) == [
        "text '<script'",
        "<script>",
        "<p onclick=>",
        "<p style=>",
        "<a href='jav\\tascript:x'>",
        "<a href='data:text/html,x'>",
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param('<p onclick="alert(1)">hi</p>', "<p>hi</p>", id="handler"),
        pytest.param('<p style="color:red">hi</p>', "<p>hi</p>", id="style"),
        pytest.param(
            "<p>Polls close<script>alert(1)</script> at 8pm</p>",
            "<p>Polls close at 8pm</p>",
            id="script-inside-text",
        ),
        pytest.param(
            '<a href="javascript:alert(1)">results</a>',
            '<a rel="noopener noreferrer">results</a>',
            id="unsafe-href",
        ),
        pytest.param(
            "<!--[if IE]><script>alert(1)</script><![endif]--><p>after</p>",
            "<p>after</p>",
            id="comment",
        ),
        pytest.param(
            "<p>unclosed <em>emphasis", "<p>unclosed <em>emphasis</em></p>", id="unclosed"
        ),
        pytest.param(
            "<ul><li onclick=x>one<li>two</ul>", "<ul><li>one</li><li>two</li></ul>", id="list"
        ),
        pytest.param("<div><span>kept</span></div>", "kept", id="unknown-tags-keep-text"),
        pytest.param("<h1>Title</h1>", "Title", id="h1-is-not-allowed"),
    ],
)
def test_unsafe_parts_are_removed_and_the_safe_text_kept(payload: str, expected: str) -> None:
    assert sanitise_html(payload) == expected


@pytest.mark.parametrize(
    "markup",
    [
        "<p>Polls have closed.</p>",
        "<p><em>Early</em> results: <strong>turnout up</strong>, <i>i</i> and <b>b</b>.</p>",
        "<ul><li>Ohio</li><li>Texas</li></ul>",
        "<ol><li>first</li><li>second</li></ol>",
        "<blockquote><p>We won.</p><cite>The candidate</cite></blockquote>",
        "<h2>Two</h2><h3>Three</h3><h4>Four</h4>",
        "<p>line one<br>line two</p>",
    ],
)
def test_allow_listed_markup_survives_unchanged(markup: str) -> None:
    assert sanitise_html(markup) == markup


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        pytest.param(
            '<a href="https://example.com/results?a=1&amp;b=2">results</a>',
            '<a href="https://example.com/results?a=1&amp;b=2" rel="noopener noreferrer">'
            "results</a>",
            id="https",
        ),
        pytest.param(
            '<a href="http://example.com/">http</a>',
            '<a href="http://example.com/" rel="noopener noreferrer">http</a>',
            id="http",
        ),
        pytest.param(
            '<a href="mailto:desk@example.com" title="Write to us">desk</a>',
            '<a href="mailto:desk@example.com" title="Write to us" rel="noopener noreferrer">'
            "desk</a>",
            id="mailto-with-title",
        ),
        pytest.param(
            '<a href="https://example.com/" rel="opener" target="_blank">x</a>',
            '<a href="https://example.com/" rel="noopener noreferrer">x</a>',
            id="rel-replaced-target-dropped",
        ),
        pytest.param(
            '<a href="//evil.example/x">x</a>',
            '<a href="//evil.example/x" rel="noopener noreferrer">x</a>',
            id="protocol-relative",
        ),
    ],
)
def test_links_keep_safe_urls_and_get_rel_noopener_noreferrer(link: str, expected: str) -> None:
    assert sanitise_html(link) == expected


PLAIN_TEXTS = [
    pytest.param("\"Quoted,\" she said. It's 'fine', isn't it?", id="ascii-quotes"),
    pytest.param("‘Curly’ “quotes” «guillemets» „Anführung“ — en – dash…", id="typographic"),  # noqa: RUF001
    pytest.param("Emoji 🗳️ 👩🏽‍💻 🇺🇸 ✅", id="emoji-with-joiners-and-flags"),
    pytest.param("مرحبا بالعالم \u200fעברית\u200e (RTL)", id="rtl-with-marks"),  # noqa: RUF001
    pytest.param("選挙の夜 開票速報 中文 한국어", id="cjk"),
    pytest.param("non\u2011breaking hyphen, 10\u202f000 voters, word\u2060joiner", id="nb-punct"),
    pytest.param("e\u0301 combining accent, tabs\tand\nnewlines", id="combining-and-whitespace"),
]


@pytest.mark.parametrize("text", PLAIN_TEXTS)
def test_plain_text_survives_byte_for_byte(text: str) -> None:
    assert sanitise_html(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Smith & Jones", "Smith &amp; Jones"),
        ("turnout < 50% > 40%", "turnout &lt; 50% &gt; 40%"),
        ('a "quoted" 5 < 6', 'a "quoted" 5 &lt; 6'),
        # The HTML serialiser writes a no-break space as its entity; it reads the same.
        ("10\u00a0000", "10&nbsp;000"),
    ],
)
def test_html_special_characters_in_text_become_entities_that_read_the_same(
    text: str, expected: str
) -> None:
    cleaned = sanitise_html(text)
    assert cleaned == expected
    assert html.unescape(cleaned) == text


# --- through the API, on both databases --------------------------------------

ENTRY_BODY_ATTACK = "".join(
    [
        "<p onclick=alert(1)>Polls <strong>closed</strong> at 8pm.</p>",
        "<script>alert('body')</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="jav&#x09;ascript:alert(1)">bad</a>',
        '<a href="https://example.com/results">results</a>',
        '<p style="position:fixed">overlay</p>',
        '<iframe src="https://evil.example"></iframe>',
        "<!--[if IE]><script>alert(1)</script><![endif]-->",
        '<svg onload="alert(1)"></svg>',
    ]
)
SURVIVING_BODY_PARTS = [
    "<p>Polls <strong>closed</strong> at 8pm.</p>",
    '<a href="https://example.com/results" rel="noopener noreferrer">results</a>',
    "<p>overlay</p>",
]


def entry_events(events: list[dict], entry_id: int) -> list[dict]:
    return [e for e in events if e.get("entry", {}).get("id") == entry_id]


async def test_entry_body_payloads_never_reach_the_stored_entry_or_the_change_log(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    created = await publish_entry(
        client, headers=publish_headers, headline="Polls closed", body=ENTRY_BODY_ATTACK
    )
    entry_id = created["id"]
    edited = await client.patch(
        f"/api/v1/blogs/vote-night/entries/{entry_id}",
        json={"body": ENTRY_BODY_ATTACK + '<a href="vbscript:msgbox(1)">again</a>'},
        headers=publish_headers,
    )
    assert edited.status_code == 200, edited.text

    stored = (await client.get(f"/api/v1/blogs/vote-night/entries/{entry_id}")).json()
    events = entry_events(await read_log(client, "vote-night"), entry_id)
    assert [e["type"] for e in events] == ["entry.created", "entry.updated"]
    for body in [created["body"], stored["body"]] + [e["entry"]["body"] for e in events]:
        assert dangerous_pieces(body) == []
        assert all(part in body for part in SURVIVING_BODY_PARTS)
    for event in events:
        assert rendered_pieces(event["html"]) == []
        assert all(part in event["html"] for part in SURVIVING_BODY_PARTS)


SUMMARY_ATTACK = (
    "<p>Live <em>coverage</em></p><script>alert('summary')</script>"
    '<a href="JaVaScRiPt:alert(1)" onmouseover="alert(1)">more</a>'
    '<object data="https://evil.example/x.swf"></object>'
)


async def test_blog_summary_payloads_never_reach_the_blog_or_the_change_log(
    client: httpx.AsyncClient,
) -> None:
    created = await create_blog(client, "count", "The count", summary=SUMMARY_ATTACK)
    patched = await client.patch(
        "/api/v1/blogs/count",
        json={"summary": SUMMARY_ATTACK + "<p style=color:red onclick=x>edited</p>"},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text

    [event] = await read_log(client, "count")
    listed = (await client.get("/api/v1/blogs")).json()["items"]
    summaries = [
        created["summary"],
        patched.json()["summary"],
        (await client.get("/api/v1/blogs/count")).json()["summary"],
        listed[0]["summary"],
        event["details"]["summary"],
    ]
    for summary in summaries:
        assert dangerous_pieces(summary) == []
        assert "<p>Live <em>coverage</em></p>" in summary
    assert "<p>edited</p>" in event["details"]["summary"]


PLAIN_TEXT_ATTACK = "<script>alert(\"x\")</script> & 'friends' <b>bold</b>"


async def test_plain_text_fields_come_back_literally_in_json_and_escaped_in_html(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    entry = {
        "headline": "Headline " + PLAIN_TEXT_ATTACK,
        "authors": [{"name": "Name " + PLAIN_TEXT_ATTACK, "role": "Role " + PLAIN_TEXT_ATTACK}],
        "media": [
            {
                "kind": "image",
                "url": "https://example.com/polls.jpg",
                "caption": "Caption " + PLAIN_TEXT_ATTACK,
                "credit": "Credit " + PLAIN_TEXT_ATTACK,
                "alt": 'Alt "><script>alert(1)</script>',
            }
        ],
    }
    created = await publish_entry(client, headers=publish_headers, **entry)
    stored = (await client.get(f"/api/v1/blogs/vote-night/entries/{created['id']}")).json()
    [event] = await read_log(client, "vote-night")

    for public in (created, stored, event["entry"]):
        assert public["headline"] == entry["headline"]
        assert public["authors"] == [{**entry["authors"][0], "url": None}]
        assert public["media"] == entry["media"]
    rendered = event["html"]
    assert rendered_pieces(rendered) == []
    assert "<b>bold</b>" not in rendered
    images = [attrs for tag, attrs in parse_tags(rendered) if tag == "img"]
    assert [dict(attrs)["src"] for attrs in images] == ["https://example.com/polls.jpg"]
    texts = [
        entry["headline"],
        entry["authors"][0]["name"],
        entry["authors"][0]["role"],
        entry["media"][0]["caption"],
        entry["media"][0]["credit"],
        entry["media"][0]["alt"],
    ]
    for text in texts:
        assert str(escape(text)) in rendered
