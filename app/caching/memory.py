"""This process's bounded memory of blog versions and of the answers it gave per URL.

app/caching.py fills it and `CachedReads` (app/caching/middleware.py) answers from it.
"""

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime

from app.caching.validators import BlogVersion, Representation, Validators
from app.models import Blog
from app.realtime.channel import Position


@dataclass(slots=True)
class Answer:
    """What this process last answered for one URL, and at which seq of the blog."""

    seq: int
    validators: Validators
    representation: Representation | None
    # Where the hub stood on the blog when this was answered: the answer is current while
    # the hub stands there. A following begun later (the blog recreated or restored) differs.
    position: Position | None = None
    # Whether the URL's route answers HEAD too (FastAPI adds no HEAD to a GET route).
    answers_head: bool = False
    _encoded: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)

    def encoded(self, kind: str, now: datetime) -> list[tuple[bytes, bytes]]:
        """ASGI headers for a 304 or a 200, built once (a 200's Last-Modified once it is due)."""
        key = kind if kind == "304" or not self.validators.dated(now) else "200+date"
        headers = self._encoded.get(key)
        if headers is None:
            names = self.validators.headers(now=now, not_modified=kind == "304")
            if kind == "200" and self.representation is not None:
                body = self.representation
                names |= {"Content-Type": body.media_type, "Content-Length": str(len(body.body))}
            headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in names.items()]
            self._encoded[key] = headers
        return headers


AnswerKey = tuple[str, str]


class AnswerSegment:
    """Answers in least-recently-used order, bounded in answers, in kept bodies and in the
    bytes of those bodies (a few large feeds must not pin a process's memory)."""

    def __init__(self, max_answers: int, max_bodies: int, max_body_bytes: int) -> None:
        self.max_answers = max_answers
        self.max_bodies = max_bodies
        self.max_body_bytes = max_body_bytes
        self.answers: OrderedDict[AnswerKey, Answer] = OrderedDict()
        self.bodies = 0
        self.body_bytes = 0

    def get(self, key: AnswerKey) -> Answer | None:
        """The answer, now the most recently used."""
        answer = self.answers.get(key)
        if answer is not None:
            self.answers.move_to_end(key)
        return answer

    def pop(self, key: AnswerKey) -> Answer | None:
        answer = self.answers.pop(key, None)
        if answer is not None and answer.representation is not None:
            self.bodies -= 1
            self.body_bytes -= len(answer.representation.body)
        return answer

    def put(self, key: AnswerKey, answer: Answer) -> None:
        self.pop(key)
        if answer.representation is not None and (
            len(answer.representation.body) > self.max_body_bytes
        ):
            answer = replace(answer, representation=None)  # too big to keep: validators only
        self.answers[key] = answer
        if answer.representation is not None:
            self.bodies += 1
            self.body_bytes += len(answer.representation.body)
        while self.bodies > self.max_bodies or self.body_bytes > self.max_body_bytes:
            self.pop(next(k for k, kept in self.answers.items() if kept.representation))
        while len(self.answers) > self.max_answers:
            self.pop(next(iter(self.answers)))


class ReadCache:
    """This process's memory of blog versions and of its answers, bounded.

    A URL's first answer waits in a small segment of its own and joins the popular
    answers only when the URL is asked for again, so a stream of one-off URLs (made-up
    query strings) displaces only other one-off URLs, never the feeds and pages that
    readers keep asking for. Both segments drop their least recently used answer first.
    """

    def __init__(
        self,
        max_blogs: int = 10_000,
        max_answers: int = 4096,
        max_bodies: int = 128,
        max_body_bytes: int = 64 * 1024 * 1024,
        max_new_answers: int = 512,
        max_new_bodies: int = 16,
        max_new_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_blogs = max_blogs
        self._versions: OrderedDict[str, BlogVersion] = OrderedDict()
        self._popular = AnswerSegment(max_answers, max_bodies, max_body_bytes)
        self._new = AnswerSegment(max_new_answers, max_new_bodies, max_new_body_bytes)

    def version(self, blog: Blog) -> BlogVersion | None:
        """The blog's version at its head, if this process has seen it."""
        version = self._versions.get(blog.slug)
        return version if version is not None and version.names(blog) else None

    def remember_version(self, slug: str, version: BlogVersion) -> None:
        self._versions[slug] = version
        self._versions.move_to_end(slug)
        while len(self._versions) > self.max_blogs:
            self._versions.popitem(last=False)

    def answer(self, slug: str, url: str) -> Answer | None:
        """The answer last given for this URL; asking again makes it a popular one."""
        key = (slug, url)
        answer = self._popular.get(key)
        if answer is None:
            answer = self._new.pop(key)
            if answer is not None:
                self._popular.put(key, answer)
        return answer

    def forget(self, slug: str) -> None:
        """Drop every answer and version kept for a blog (its log was rewritten)."""
        self._versions.pop(slug, None)
        for segment in (self._popular, self._new):
            for key in [key for key in segment.answers if key[0] == slug]:
                segment.pop(key)

    def remember_answer(self, slug: str, url: str, answer: Answer) -> None:
        key = (slug, url)
        if key in self._popular.answers:
            self._popular.put(key, answer)  # a popular URL stays popular across changes
        else:
            self._new.put(key, answer)
