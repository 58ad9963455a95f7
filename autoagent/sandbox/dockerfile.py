"""Read a task's Dockerfile into the steps the sandbox can replay.

What the sandbox replays: `WORKDIR`, `ENV`, `ARG`, `USER`, `SHELL`, `COPY`/`ADD` of
local files (with `--chown`/`--chmod`) and `RUN`, with Docker's variable expansion
(see `expansion.py`) seeded by the base image's own environment. `ENTRYPOINT` is
kept: Harbor's Docker environment starts the container with it (and `CMD`
replaced by `sleep infinity`), so the sandbox starts it too, and waits for the
`HEALTHCHECK` as `docker compose up --wait` does. `CMD` is kept for the services of
a Compose task, which start with it. Instructions that only describe a container's
metadata (`EXPOSE`, `LABEL`, ...) are ignored.
Anything the sandbox cannot honour (multi-stage builds, `ADD <url>`, `COPY --from`,
`RUN --mount=type=secret`, ...) is an `UnsupportedDockerfile` error that names the
line, raised when the task is loaded.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field

import dockerfile

from autoagent.sandbox.expansion import ExpansionError, expand

IGNORED = {
    "EXPOSE", "LABEL", "MAINTAINER", "VOLUME", "STOPSIGNAL", "ONBUILD",
}  # fmt: skip
COPY_FLAGS = {"chown", "chmod", "link"}
DEFAULT_SHELL = ("/bin/sh", "-c")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class UnsupportedDockerfile(ValueError):
    """The Dockerfile uses something the sandbox cannot replay."""


@dataclass(frozen=True)
class Instruction:
    """One instruction as Docker's own parser (the `dockerfile` package) splits it."""

    keyword: str
    words: tuple[str, ...]  # quotes and `$` left for expansion, except in JSON form
    line: int  # 1-based line where the instruction starts
    flags: tuple[str, ...] = ()  # `--name=value`
    json: bool = False
    heredocs: tuple[str, ...] = ()  # bodies, `<<-` tabs already stripped
    text: str = ""  # the instruction's first line, for messages

    @property
    def arguments(self) -> str:
        return self.text.partition(" ")[2].strip()


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]  # ready to execute: shell form is already wrapped in SHELL
    env: dict[str, str]
    workdir: str
    user: str | None
    line: int
    text: str


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]  # relative to the build context
    destination: str  # absolute path inside the sandbox; a trailing / means a directory
    chown: str | None
    chmod: str | None
    workdir: str
    line: int
    text: str
    content: str | None = None  # a heredoc `COPY <<EOF /path`


@dataclass(frozen=True)
class Healthcheck:
    """A Dockerfile `HEALTHCHECK`, with Docker's defaults."""

    command: str  # for `sh -c`
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    start_interval: float = 5.0
    retries: int = 3


@dataclass
class Image:
    """The state a Dockerfile leaves behind, and the build steps that produce it."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None  # started at sandbox start, as Docker does
    cmd: tuple[str, ...] | None = None  # the entrypoint's arguments (a Compose service's)
    healthcheck: Healthcheck | None = None  # waited for at start (`docker compose up --wait`)
    steps: list[Run | Copy] = field(default_factory=list)


def parse(text: str) -> list[Instruction]:
    """Docker's own parse of a Dockerfile: continuations joined, comments dropped."""
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as error:
        raise UnsupportedDockerfile(f"line {_failing_line(text)}: {error}") from None
    return [_instruction(command) for command in commands]


def _instruction(command: dockerfile.Command) -> Instruction:
    first_line = command.original.splitlines()[0] if command.original else command.cmd
    heredocs = []
    for heredoc in command.heredocs:
        body = heredoc.content
        if re.search(rf"<<-[\"']?{re.escape(heredoc.name)}\b", first_line):
            body = "".join(line.lstrip("\t") for line in body.splitlines(keepends=True))
        heredocs.append(body)
    return Instruction(
        keyword=command.cmd.upper(),
        words=command.value,
        line=command.start_line,
        flags=command.flags,
        json=command.json,
        heredocs=tuple(heredocs),
        text=first_line.strip(),
    )


def _failing_line(text: str) -> int:
    """The parser's errors carry no line: the first prefix of the file that fails has it."""
    lines = text.splitlines()
    for count in range(1, len(lines) + 1):
        try:
            dockerfile.parse_string("\n".join(lines[:count]) + "\n")
        except dockerfile.GoParseError:
            return count
    return len(lines)


def _flags(instruction: Instruction, variables: dict[str, str]) -> dict[str, str]:
    pairs = (flag.removeprefix("--").partition("=") for flag in instruction.flags)
    return {name: expand(value, variables) for name, _, value in pairs}


def build_plan(
    text: str,
    build_args: dict[str, str] | None = None,
    base_env: dict[str, str] | None = None,
    base: Image | None = None,
) -> Image:
    """Evaluate a Dockerfile into an `Image`: final env/workdir/user plus build steps.

    `base_env` is the `FROM` image's own environment (its `PATH` above all): the
    Dockerfile's `ENV PATH=/x:$PATH` extends it, as `docker build` does. `base`, when
    given, is all the image sets (ENV, WORKDIR, USER, ENTRYPOINT) and wins over it.
    """
    seed = base or Image(env=dict(base_env or {}))
    image = Image(env=dict(seed.env), workdir=seed.workdir, user=seed.user,
                  entrypoint=seed.entrypoint, cmd=seed.cmd)  # fmt: skip
    build_args = build_args or {}
    global_args: dict[str, str] = {}  # ARGs before FROM: seen by FROM, and by a bare ARG after it
    args: dict[str, str] = {}
    shell = DEFAULT_SHELL
    seen_from = False
    for instruction in parse(text):
        keyword, arguments, line = instruction.keyword, instruction.arguments, instruction.line
        variables = {**args, **image.env} if seen_from else dict(global_args)
        where = f"line {line} ({keyword} {arguments[:60]})"
        try:
            if keyword == "FROM":
                if seen_from:
                    raise UnsupportedDockerfile(
                        f"{where}: multi-stage builds are not supported by the sandbox"
                    )
                seen_from = True
                image.base = expand(instruction.words[0], variables) if instruction.words else ""
            elif keyword == "ARG":
                scope = args if seen_from else global_args
                for word in instruction.words:
                    name, equals, default = word.partition("=")
                    if name in build_args:
                        scope[name] = build_args[name]
                    elif equals:
                        scope[name] = expand(default, variables)
                    else:
                        scope[name] = global_args.get(name, "") if seen_from else ""
            elif keyword == "ENV":
                # Each value sees the variables from before the line, as in Docker.
                names, values = instruction.words[::2], instruction.words[1::2]
                pairs = zip(names, values, strict=True)
                image.env.update({name: expand(value, variables) for name, value in pairs})
            elif keyword == "WORKDIR":
                path = expand(" ".join(instruction.words), variables)
                image.workdir = posixpath.normpath(posixpath.join(image.workdir, path))
            elif keyword == "USER":
                image.user = _user(expand(" ".join(instruction.words), variables), where)
            elif keyword == "SHELL":
                if not instruction.json or not instruction.words:
                    raise UnsupportedDockerfile(f"{where}: SHELL needs a JSON array")
                shell = instruction.words
            elif keyword == "ENTRYPOINT":
                words = instruction.words
                image.entrypoint = words if instruction.json else (*shell, " ".join(words))
                if not any(words):
                    image.entrypoint = None  # `ENTRYPOINT []` clears it
                image.cmd = None  # as Docker: a new ENTRYPOINT drops the CMD it inherited
            elif keyword == "CMD":
                words = instruction.words
                image.cmd = words if instruction.json else (*shell, " ".join(words))
            elif keyword == "HEALTHCHECK":
                image.healthcheck = _healthcheck(instruction, where)
            elif keyword == "RUN":
                image.steps.append(_run(instruction, shell, image, args, where))
            elif keyword in ("COPY", "ADD"):
                image.steps.append(_copy(instruction, image, variables, where))
            elif keyword not in IGNORED:
                raise UnsupportedDockerfile(f"{where}: unknown instruction {keyword}")
        except ExpansionError as error:
            raise UnsupportedDockerfile(f"{where}: {error}") from None
    return image


def _healthcheck(instruction: Instruction, where: str) -> Healthcheck | None:
    kind, *command = instruction.words or ("NONE",)
    if kind.upper() == "NONE":
        return None
    if kind.upper() != "CMD" or not command:
        raise UnsupportedDockerfile(f"{where}: HEALTHCHECK needs CMD or NONE")
    options = {}
    for name, value in _flags(instruction, {}).items():
        field_name = name.replace("-", "_")
        if field_name not in ("interval", "timeout", "start_period", "start_interval", "retries"):
            raise UnsupportedDockerfile(f"{where}: unknown HEALTHCHECK option --{name}")
        options[field_name] = int(value) if name == "retries" else duration(value, where)
    script = shlex.join(command) if instruction.json else command[0]
    return Healthcheck(script, **options)


def duration(text: str, where: str) -> float:
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise UnsupportedDockerfile(f"{where}: {text!r} is not a duration such as 30s or 1m30s")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def _user(spec: str, where: str) -> str | None:
    """`USER name` or `USER name:group` when the group is the user's own."""
    user, _, group = spec.partition(":")
    if group and group != user:
        raise UnsupportedDockerfile(
            f"{where}: a USER with a group other than the user's own is not supported "
            "by the sandbox"
        )
    return user or None


def _run(
    instruction: Instruction, shell: tuple[str, ...], image: Image, args: dict[str, str], where: str
) -> Run:
    for name, value in _flags(instruction, {}).items():  # --network, --mount=type=cache: tuning
        kind = dict(part.partition("=")[::2] for part in value.split(",")).get("type", "bind")
        if name == "mount" and kind != "cache":
            raise UnsupportedDockerfile(
                f"{where}: RUN --mount=type={kind} is not supported by the sandbox "
                "(only type=cache is)"
            )
    words = instruction.words
    if instruction.heredocs:
        if any(not word.startswith("<<") for word in " ".join(words).split()):
            raise UnsupportedDockerfile(f"{where}: RUN with a command and a heredoc")
        argv = (*shell, instruction.heredocs[0])
    elif instruction.json:
        argv = words
    else:
        argv = (*shell, " ".join(words))
    return Run(
        argv=argv,
        env={**args, **image.env},
        workdir=image.workdir,
        user=image.user,
        line=instruction.line,
        text=instruction.text,
    )


def _copy(instruction: Instruction, image: Image, variables: dict[str, str], where: str) -> Copy:
    flags = _flags(instruction, variables)
    if "from" in flags:
        raise UnsupportedDockerfile(f"{where}: COPY --from needs a multi-stage build")
    unknown = sorted(set(flags) - COPY_FLAGS)
    if unknown:
        raise UnsupportedDockerfile(
            f"{where}: {instruction.keyword} --{unknown[0]} is not supported by the sandbox"
        )
    words = [expand(word, variables) for word in instruction.words]
    content = None
    if instruction.heredocs:
        words = [word for word in words if not word.startswith("<<")]
        content = instruction.heredocs[0]
    if len(words) < (1 if content is not None else 2):
        raise UnsupportedDockerfile(f"{where}: needs a source and a destination")
    *sources, destination = words
    if any(re.match(r"^[a-z]+://", source) for source in sources):
        raise UnsupportedDockerfile(f"{where}: ADD from a URL is not supported")
    target = posixpath.join(image.workdir, destination)  # keeps a trailing "/"
    return Copy(
        sources=tuple(sources),
        destination=target,
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        workdir=image.workdir,
        line=instruction.line,
        text=instruction.text,
        content=content,
    )
