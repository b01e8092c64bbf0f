"""compose.yaml, checked without a container engine: valid by the Compose Specification,
and running Bulletin the way the README says production runs it.

compose-spec.json is the Compose Specification's JSON schema, copied unchanged from
compose-spec/compose-spec (schema/compose-spec.json, commit a08f8d51; Apache License 2.0).
"""

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from app.config import Settings
from tests.support.dockerfiles import PINNED_IMAGE, ROOT, read_stages

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
# What an operator sets (in the environment or .env) before `docker compose up`.
OPERATOR = {
    "POSTGRES_PASSWORD": "Kq3vX9pL2mWz7RtY",
    "BULLETIN_PUBLIC_BASE_URL": "https://live.example.org",
    "BULLETIN_SECRET_KEY": "f8Jk2LqP9zXv4RmT7wYc3NbH6sDg1AeU5oIr",
}
REQUIRED = set(OPERATOR)
# Compose's interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error},
# ${NAME?error}, ${NAME:+alternative}, ${NAME+alternative} and $NAME.
INTERPOLATION = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?)([-?+])([^}]*))?\}|(\w+))")


class MissingVariable(Exception):
    pass


def interpolate(value: object, env: dict[str, str]) -> object:
    """The file as Compose sees it once it has read `env`; MissingVariable for a required
    variable that is unset."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name, colon, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        is_set = name in env and (not colon or env[name] != "")
        if operator == "-":
            return env[name] if is_set else argument
        if operator == "?":
            if not is_set:
                raise MissingVariable(f"{name}: {argument}")
            return env[name]
        if operator == "+":
            return argument if is_set else ""
        return env.get(name, "")

    return INTERPOLATION.sub(substitute, value)


def composed(env: dict[str, str] = OPERATOR) -> dict:
    result = interpolate(COMPOSE, env)
    assert isinstance(result, dict)
    return result


def bulletin_environment(env: dict[str, str] = OPERATOR) -> dict[str, str]:
    return composed(env)["services"]["bulletin"]["environment"]


def readme_docker_section() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Docker\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    assert match is not None, "the README has no Docker section"
    return match[1]


def test_the_compose_file_is_valid_by_the_compose_specification() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(COMPOSE)
    jsonschema.Draft7Validator(SCHEMA).validate(composed())


def test_bulletin_runs_with_two_workers_on_postgresql_and_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = composed()["services"]
    bulletin = services["bulletin"]
    command = bulletin["command"]
    for name, value in bulletin["environment"].items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert int(command[command.index("--workers") + 1]) >= 2
    database = urlsplit(settings.database_url)
    postgres = services["postgres"]["environment"]
    assert database.scheme == "postgresql+asyncpg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert database.path == f"/{postgres['POSTGRES_DB']}"
    assert settings.broker_url == settings.rate_limit_storage_url
    assert urlsplit(settings.broker_url).scheme == "redis"
    assert urlsplit(settings.broker_url).hostname == "redis"
    assert settings.public_base_url == OPERATOR["BULLETIN_PUBLIC_BASE_URL"]
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == OPERATOR["BULLETIN_SECRET_KEY"]
    assert settings.admin_token is None  # optional: unset, not an empty token
    assert settings.migrate_on_start


def test_an_admin_token_and_trusted_proxies_are_taken_from_the_operator() -> None:
    environment = bulletin_environment(
        {
            **OPERATOR,
            "BULLETIN_ADMIN_TOKEN": "bltn_operator-chosen-token-0123456789",
            "BULLETIN_FORWARDED_ALLOW_IPS": "10.0.0.0/8",
        }
    )

    assert environment["BULLETIN_ADMIN_TOKEN"] == "bltn_operator-chosen-token-0123456789"
    assert environment["BULLETIN_FORWARDED_ALLOW_IPS"] == "10.0.0.0/8"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_compose_refuses_to_start_without_a_required_setting(name: str) -> None:
    unset = {key: value for key, value in OPERATOR.items() if key != name}

    with pytest.raises(MissingVariable, match=name):
        composed(unset)
    with pytest.raises(MissingVariable, match=name):
        composed({**unset, name: ""})


def test_every_setting_the_readme_docker_section_names_is_set_for_bulletin() -> None:
    named = set(re.findall(r"\bBULLETIN_[A-Z0-9_]+\b", readme_docker_section()))

    assert {
        "BULLETIN_PUBLIC_BASE_URL",
        "BULLETIN_ADMIN_TOKEN",
        "BULLETIN_SECRET_KEY",
        "BULLETIN_FORWARDED_ALLOW_IPS",
    } <= named
    assert named <= set(COMPOSE["services"]["bulletin"]["environment"])


def test_every_image_is_pinned_by_full_version_and_digest() -> None:
    for name, service in COMPOSE["services"].items():
        if "build" in service:
            continue
        assert PINNED_IMAGE.match(service["image"]), name


def test_every_service_has_a_healthcheck_and_bulletin_waits_for_the_others_healthy() -> None:
    services = COMPOSE["services"]
    bulletin = services["bulletin"]
    others = {name: service for name, service in services.items() if name != "bulletin"}

    # Bulletin's is the image's own HEALTHCHECK, on the port its command serves.
    assert bulletin["build"] == "."
    assert "healthcheck" not in bulletin
    image = read_stages()[-1]
    command = bulletin["command"]
    port = command[command.index("--port") + 1]
    assert f"127.0.0.1:{port}/healthz" in " ".join(image.healthcheck)
    assert bulletin["ports"] == ["127.0.0.1:${HTTP_PORT:-8000}:" + port]
    for name, service in others.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
        assert not service["healthcheck"].get("disable"), name
    assert bulletin["depends_on"] == {name: {"condition": "service_healthy"} for name in others}


def test_only_bulletin_is_published_and_only_on_the_hosts_loopback() -> None:
    services = COMPOSE["services"]

    assert [name for name, service in services.items() if "ports" in service] == ["bulletin"]
    assert all(port.startswith("127.0.0.1:") for port in services["bulletin"]["ports"])


def test_bulletin_runs_with_a_read_only_root_filesystem_and_no_capabilities() -> None:
    bulletin = COMPOSE["services"]["bulletin"]

    assert bulletin["read_only"] is True
    assert bulletin["tmpfs"] == ["/tmp"]
    assert bulletin["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in bulletin["security_opt"]
