"""A fictional demo blog: a storm reaching an invented coastal city, told in a dozen updates."""

from datetime import timedelta

from sqlalchemy import select

from app.config import DEFAULT_PUBLIC_BASE_URL
from app.db import Database
from app.models import Blog, utc_now
from app.publishing import Publisher
from app.rendering import Renderer
from app.schemas import Author, BlogCreate, EntryCreate, Media

DEMO_SLUG = "storm-ilsa-live"

MARA = Author(name="Mara Okonkwo", role="Weather correspondent")
TEO = Author(name="Teo Lindqvist", role="in Port Calder")
JUNE = Author(name="June Ferreira", role="Live editor")


def _entries(static: str) -> list[tuple[int, EntryCreate]]:
    """(minutes ago, entry), oldest first."""
    return [
        (
            310,
            EntryCreate(
                headline="Welcome to our live coverage",
                body="<p>Storm Ilsa is expected to reach the coast of Port Calder this evening. "
                "We will bring you every update here as it happens.</p>",
                authors=[JUNE],
            ),
        ),
        (
            290,
            EntryCreate(
                body="<p>The city's weather office has raised its warning to <strong>red</strong> "
                "for the harbour district, with gusts of up to 140 km/h forecast after dark.</p>",
                authors=[MARA],
                key_event=True,
            ),
        ),
        (
            260,
            EntryCreate(
                headline="Ferries cancelled",
                body="<p>All crossings to the outer islands are cancelled until tomorrow "
                "morning. The operator says tickets will be refunded automatically.</p>",
                authors=[TEO],
            ),
        ),
        (
            235,
            EntryCreate(
                body="<blockquote><p>“We have sandbags at every door on the quay. Now we wait.”"
                "</p></blockquote><p>— Ines Marlow, who runs a café on the harbour front.</p>",
                authors=[TEO],
            ),
        ),
        (
            210,
            EntryCreate(
                headline="The harbour this afternoon",
                body="<p>Fishing boats were moved to the inner basin before the tide turned.</p>",
                media=[
                    Media(
                        kind="image",
                        url=f"{static}/demo/harbour.svg",
                        caption="Boats tied up three deep in the inner basin.",
                        credit="Illustration: Bulletin demo",
                        alt="Small boats moored side by side in a sheltered harbour basin",
                    )
                ],
                authors=[TEO],
            ),
        ),
        (
            180,
            EntryCreate(
                body="<p>Schools in the coastal wards will close at noon tomorrow. "
                "Parents can find the list on the council's website.</p>",
                authors=[JUNE],
            ),
        ),
        (
            150,
            EntryCreate(
                headline="What the forecasters say",
                body="<ul><li>Strongest winds between 9pm and 2am</li>"
                "<li>Storm surge of up to 1.2 m at high tide</li>"
                "<li>Heavy rain inland, up to 60 mm</li></ul>",
                authors=[MARA],
            ),
        ),
        (
            120,
            EntryCreate(
                headline="Evacuation advised for the lower quay",
                body="<p>Residents of the lower quay are advised to stay with friends or family "
                "on higher ground tonight. A rest centre has opened at the Northgate sports "
                "hall.</p>",
                authors=[JUNE, TEO],
                key_event=True,
            ),
        ),
        (
            90,
            EntryCreate(
                body="<p>Power has been cut as a precaution to the seafront streets, the grid "
                "operator says, to protect substations from flooding.</p>",
                authors=[MARA],
            ),
        ),
        (
            60,
            EntryCreate(
                headline="First gusts reach the coast",
                body="<p>The lighthouse station recorded a gust of 96 km/h a few minutes ago.</p>",
                media=[
                    Media(
                        kind="image",
                        url=f"{static}/demo/lighthouse.svg",
                        caption="The Calder Point lighthouse as the rain arrived.",
                        credit="Illustration: Bulletin demo",
                        alt="A lighthouse on a rocky point under dark clouds",
                    )
                ],
                authors=[TEO],
                key_event=True,
            ),
        ),
        (
            30,
            EntryCreate(
                body="<blockquote><p>“Please do not go down to the seafront to watch the waves. "
                "It is not safe.”</p></blockquote><p>— the city's fire chief, in a short "
                "video message.</p>",
                authors=[JUNE],
            ),
        ),
        (
            5,
            EntryCreate(
                headline="Key information for tonight",
                body="<p>Rest centre: Northgate sports hall. Emergency line: 112. Road closures: "
                "Quay Road and Harbour Street. This post stays at the top and is updated "
                "through the night.</p>",
                authors=[JUNE],
                pinned=True,
            ),
        ),
    ]


async def load_demo(
    database: Database, *, only_if_empty: bool, base_url: str = DEFAULT_PUBLIC_BASE_URL
) -> str | None:
    """Create the demo blog; returns its slug, or None when skipped.

    Its photos are stored as paths on this server, so they show on any port and host;
    `base_url` only makes the live updates' HTML, as `bulletin serve` would there."""
    async with database.read_session() as session:
        if only_if_empty and await session.scalar(select(Blog.id).limit(1)) is not None:
            return None
    publisher = Publisher(database, Renderer(base_url))
    now = utc_now()
    await publisher.create_blog(
        BlogCreate(
            slug=DEMO_SLUG,
            title="Storm Ilsa reaches Port Calder: live updates",
            summary="<p>A fictional storm meets an invented city: Bulletin's demo blog.</p>",
            timezone="Europe/Lisbon",
            coverage_start=now - timedelta(minutes=320),
            topics=["Weather", "Port Calder", "Storms"],
        )
    )
    for minutes_ago, entry in _entries("/static"):
        dated = entry.model_copy(update={"published_at": now - timedelta(minutes=minutes_ago)})
        await publisher.create_entry(DEMO_SLUG, dated)
    return DEMO_SLUG
