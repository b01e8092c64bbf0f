"""deploy/grafana-dashboard.json: a Grafana dashboard an operator imports as it is. Its
panels are laid out on Grafana's 24-column grid and query the Prometheus data source the
importer picks; every query is PromQL that promtool accepts, every metric name a query
uses is one a real /metrics exposes after traffic, and every query answers with series from
a real Prometheus (Debian's) scraping a served Bulletin."""

import asyncio
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from app.config import Settings
from tests.support.clients import next_message
from tests.support.dockerfiles import ROOT
from tests.support.factories import ADMIN_TOKEN, create_blog, publish_entry
from tests.support.metrics import (
    promtool,
    readers,
    register_webhook,
    running_receiver,
    scrape_after_traffic,
    with_webhooks,
)
from tests.support.prometheus import PrometheusProcess
from tests.support.servers import live_server
from tests.support.waiting import eventually

DASHBOARD = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
PANEL_TYPES = {"row", "timeseries", "stat"}
METRIC_NAME = re.compile(r"\bbulletin_[a-z0-9_]+\b")
# Grafana's own variables, as it would fill them in for a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}
WAIT_SECONDS = 20


def panels() -> list[dict]:
    return [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]


def panel(title: str) -> dict:
    (found,) = [panel for panel in panels() if panel["title"] == title]
    return found


def queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def as_prometheus_sees_it(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_it_is_a_dashboard_grafana_imports() -> None:
    assert DASHBOARD["title"] == "Bulletin"
    assert re.fullmatch(r"[a-z0-9-]{1,40}", DASHBOARD["uid"])
    assert isinstance(DASHBOARD["schemaVersion"], int) and DASHBOARD["schemaVersion"] >= 36
    assert "id" not in DASHBOARD  # an id is the importing Grafana's to give
    variables = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["title"]


def test_the_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("x", "y", "w", "h")), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_asks_the_chosen_prometheus_and_says_what_it_shows() -> None:
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert METRIC_NAME.search(target["expr"]), target["expr"]


def test_every_query_is_promql_that_promtool_accepts(tmp_path: Path) -> None:
    checker = promtool()
    # Each query as a recording rule: `promtool check rules` parses every expression.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": as_prometheus_sees_it(expr)}
                    for n, expr in enumerate(queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [checker, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("stack", ["postgresql-redis"], indirect=True)
async def test_every_metric_the_dashboard_uses_is_exposed_after_traffic(
    stack_settings: Settings,
) -> None:
    exposition = await scrape_after_traffic(stack_settings)
    exposed = {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }
    used = {name for expr in queries() for name in METRIC_NAME.findall(expr)}
    assert used - exposed == set()
    # And the dashboard shows every family an operator is told to alert on (README).
    for family in (
        "bulletin_blog_readers",
        "bulletin_events_published_total",
        "bulletin_delivery_latency_seconds_bucket",
        "bulletin_reader_lag_events_bucket",
        "bulletin_webhook_backlog_events",
        "bulletin_webhook_consecutive_failures",
        "bulletin_rate_limit_refusals_total",
        "bulletin_broker_reconnects_total",
        "bulletin_db_pool_checked_out",
        "bulletin_db_pool_size",
    ):
        assert family in used, family


@pytest.mark.parametrize("stack", ["postgresql-redis"], indirect=True)
async def test_every_query_answers_with_series_from_a_real_prometheus_scraping_bulletin(
    stack_settings: Settings, tmp_path: Path
) -> None:
    receiver = running_receiver({1: 500})
    try:
        async with live_server(with_webhooks(stack_settings)) as server:
            client = server.client
            await create_blog(client, "vote-night")
            await register_webhook(client, "vote-night", receiver)
            with PrometheusProcess(
                tmp_path / "prometheus", [f"127.0.0.1:{server.port}"], token=ADMIN_TOKEN
            ) as prom:
                async with (
                    readers(server.ws, "/api/v1/blogs/vote-night/ws", 2) as sockets,
                    httpx.AsyncClient(timeout=10) as asking,
                ):
                    await publish_entry(client, "vote-night", headline="Polls close")
                    for ws in sockets:
                        assert (await next_message(ws))["seq"] == 1
                    async with readers(server.ws, "/api/v1/blogs/vote-night/ws?since=0", 1):
                        await asyncio.to_thread(receiver.wait_for_accepted, 1)
                        for expr in queries():
                            # Rates need two scrapes after a series first appears.
                            await eventually(
                                lambda e=expr: prom.query(asking, as_prometheus_sees_it(e)),
                                WAIT_SECONDS,
                                f"series for {expr}",
                            )
                        (readers_per_blog,) = panel("Readers per blog")["targets"]
                        by_blog = await prom.query(
                            asking, as_prometheus_sees_it(readers_per_blog["expr"])
                        )
    finally:
        receiver.stop()
    # The readers-per-blog panel shows the blog with its three readers.
    assert {s["metric"]["blog"]: float(s["value"][1]) for s in by_blog}["vote-night"] == 3
