"""The Dockerfile and .dockerignore read the way a builder reads them, for tests that check
the image's contract on a machine with no container engine.

The Dockerfile is parsed by the `dockerfile` package (BuildKit's own parser), the
.dockerignore matched by the Docker SDK's implementation of its rules.
"""

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import dockerfile
from docker.utils.build import PatternMatcher

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# name:VERSION...@sha256:DIGEST, the version with at least major and minor (postgres:17.11,
# python:3.11.16-slim-bookworm): the digest pins the bytes, the tag says what they are.
PINNED_IMAGE = re.compile(r"^[\w./-]+:\d+(?:\.\d+)+[\w.-]*@sha256:[0-9a-f]{64}$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclasses.dataclass
class Stage:
    """What one build stage states by the end of its instructions (inherited from the
    stage it is built on, if any)."""

    base: str
    name: str | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    volumes: list[str] = dataclasses.field(default_factory=list)
    exposed: list[str] = dataclasses.field(default_factory=list)
    entrypoint: list[str] = dataclasses.field(default_factory=list)
    cmd: list[str] = dataclasses.field(default_factory=list)
    healthcheck: list[str] = dataclasses.field(default_factory=list)
    instructions: list[dockerfile.Command] = dataclasses.field(default_factory=list)


def read_stages(path: Path = DOCKERFILE, base_env: Mapping[str, str] | None = None) -> list[Stage]:
    """Every stage of the Dockerfile in order; the last is the image. `base_env` stands
    for the environment the base image brings (ENV values may refer to it, as `$PATH`)."""
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            image, *alias = command.value
            parent = next((stage for stage in stages if stage.name == image), None)
            stage = (
                dataclasses.replace(parent, base=image, instructions=[], name=None)
                if parent is not None
                else Stage(base=image, env=dict(base_env or {}))
            )
            stage.env = dict(stage.env)
            stage.name = alias[1] if len(alias) == 2 and alias[0].upper() == "AS" else None
            stages.append(stage)
            continue
        stage = stages[-1]
        stage.instructions.append(command)
        if command.cmd == "ENV":
            pairs = command.value
            for name, value in zip(pairs[::2], pairs[1::2], strict=True):
                stage.env[name] = _expand(value, stage.env)
        elif command.cmd == "WORKDIR":
            stage.workdir = command.value[0]
        elif command.cmd == "USER":
            stage.user = command.value[0]
        elif command.cmd == "VOLUME":
            stage.volumes = [*stage.volumes, *command.value]
        elif command.cmd == "EXPOSE":
            stage.exposed = [*stage.exposed, *command.value]
        elif command.cmd in ("ENTRYPOINT", "CMD"):
            if not command.json:
                raise ValueError(f"{command.cmd} in shell form: {command.original}")
            setattr(stage, command.cmd.lower(), list(command.value))
        elif command.cmd == "HEALTHCHECK":
            kind, *test = command.value
            if kind != "CMD" or not command.json:
                raise ValueError(f"HEALTHCHECK is not CMD in exec form: {command.original}")
            stage.healthcheck = test
    return stages


def _expand(value: str, env: Mapping[str, str]) -> str:
    """ENV's substitution of `$NAME` and `${NAME}` (unknown names are left as written)."""
    return _VARIABLE.sub(lambda match: env.get(match[1] or match[2], match[0]), value)


def external_images(stages: list[Stage]) -> list[str]:
    """The images that FROM pulls from a registry (not the file's own stages)."""
    names = {stage.name for stage in stages}
    return [stage.base for stage in stages if stage.base not in names]


def build_context(root: Path = ROOT) -> set[str]:
    """The paths (files and directories, relative to `root`) that `COPY . .` copies: the
    tree less what .dockerignore excludes, and less the two files the builder reads for
    itself (the SDK keeps .dockerignore in, as the engine needs it)."""
    lines = (root / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return set(PatternMatcher(patterns).walk(str(root))) - {"Dockerfile", ".dockerignore"}
