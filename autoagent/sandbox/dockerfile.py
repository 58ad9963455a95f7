"""Read a task's Dockerfile into the steps the sandbox can replay.

What the sandbox replays: `WORKDIR`, `ENV`, `ARG`, `USER`, `SHELL`, `COPY`/`ADD` of
local files (with `--chown`/`--chmod`) and `RUN`, with Docker's variable expansion
(see `expansion.py`) seeded by the base image's own environment. `ENTRYPOINT` is
kept: Harbor's Docker environment starts the container with it (and `CMD`
replaced by `sleep infinity`), so the sandbox starts it too. Instructions that only
describe a container's metadata (`CMD`, `EXPOSE`, `LABEL`, ...) are ignored.
Anything the sandbox cannot honour (multi-stage builds, `ADD <url>`, `COPY --from`,
`RUN --mount=type=secret`, ...) is an `UnsupportedDockerfile` error that names the
line, raised when the task is loaded.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from autoagent.sandbox.expansion import ExpansionError, expand, expand_words, split_words

IGNORED = {
    "CMD", "EXPOSE", "LABEL", "MAINTAINER", "VOLUME", "HEALTHCHECK",
    "STOPSIGNAL", "ONBUILD",
}  # fmt: skip
COPY_FLAGS = {"chown", "chmod", "link"}
DEFAULT_SHELL = ("/bin/sh", "-c")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


class UnsupportedDockerfile(ValueError):
    """The Dockerfile uses something the sandbox cannot replay."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int  # 1-based line where the instruction starts
    heredocs: tuple[str, ...] = ()


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


@dataclass
class Image:
    """The state a Dockerfile leaves behind, and the build steps that produce it."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None  # started at sandbox start, as Docker does
    steps: list[Run | Copy] = field(default_factory=list)


def parse(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: continuations joined, comments dropped."""
    lines = text.splitlines()
    instructions: list[Instruction] = []
    index = 0
    while index < len(lines):
        start = index
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        logical = stripped
        while logical.endswith("\\"):
            logical = logical[:-1].rstrip()
            while index < len(lines) and (
                not lines[index].strip() or lines[index].strip().startswith("#")
            ):
                index += 1  # comments and blank lines inside a continuation vanish
            if index >= len(lines):
                break
            logical += " " + lines[index].strip()
            index += 1
        keyword, _, arguments = logical.partition(" ")
        heredocs = []
        for match in _HEREDOC.finditer(arguments):
            strip_tabs, marker = match.group(1) == "-", match.group(3)
            body = []
            while index < len(lines) and lines[index].strip() != marker:
                body.append(lines[index].lstrip("\t") if strip_tabs else lines[index])
                index += 1
            if index >= len(lines):
                raise UnsupportedDockerfile(
                    f"line {start + 1}: heredoc <<{marker} is never closed"
                )
            index += 1
            heredocs.append("\n".join(body) + "\n")
        instructions.append(
            Instruction(keyword.upper(), arguments.strip(), start + 1, tuple(heredocs))
        )
    return instructions


def _words(arguments: str) -> list[str]:
    words = _json_words(arguments)
    return words if words is not None else shlex.split(arguments)


def _flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def _pairs(arguments: str, where: str, *, values_required: bool) -> list[tuple[str, str | None]]:
    """`KEY=VALUE ...` words (quotes kept for expansion); `KEY` alone has no value."""
    pairs: list[tuple[str, str | None]] = []
    for word in split_words(arguments):
        key, equals, value = word.partition("=")
        if not key or (values_required and not equals):
            raise UnsupportedDockerfile(f"{where}: expected KEY=VALUE, got {word!r}")
        pairs.append((key, value if equals else None))
    return pairs


def build_plan(
    text: str,
    build_args: dict[str, str] | None = None,
    base_env: dict[str, str] | None = None,
) -> Image:
    """Evaluate a Dockerfile into an `Image`: final env/workdir/user plus build steps.

    `base_env` is the `FROM` image's own environment (its `PATH` above all): the
    Dockerfile's `ENV PATH=/x:$PATH` extends it, as `docker build` does.
    """
    image = Image(env=dict(base_env or {}))
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
                _, words = _flags(expand_words(arguments, variables))
                image.base = words[0] if words else ""
            elif keyword == "ARG":
                scope = args if seen_from else global_args
                for name, default in _pairs(arguments, where, values_required=False):
                    if name in build_args:
                        scope[name] = build_args[name]
                    elif default is not None:
                        scope[name] = expand(default, variables)
                    else:
                        scope[name] = global_args.get(name, "") if seen_from else ""
            elif keyword == "ENV":
                image.env.update(_env_pairs(arguments, variables, where))
            elif keyword == "WORKDIR":
                path = expand(arguments, variables)
                image.workdir = posixpath.normpath(posixpath.join(image.workdir, path))
            elif keyword == "USER":
                image.user = _user(expand(arguments, variables), where)
            elif keyword == "SHELL":
                words = _words(arguments)
                if not arguments.startswith("[") or not words:
                    raise UnsupportedDockerfile(f"{where}: SHELL needs a JSON array")
                shell = tuple(words)
            elif keyword == "ENTRYPOINT":
                words = _json_words(arguments)
                image.entrypoint = tuple(words) if words is not None else (*shell, arguments)
                if image.entrypoint in ((), ("",)):
                    image.entrypoint = None  # `ENTRYPOINT []` clears it
            elif keyword == "RUN":
                image.steps.append(_run(instruction, shell, image, args, where))
            elif keyword in ("COPY", "ADD"):
                image.steps.append(_copy(instruction, image, variables, where))
            elif keyword not in IGNORED:
                raise UnsupportedDockerfile(f"{where}: unknown instruction {keyword}")
        except ExpansionError as error:
            raise UnsupportedDockerfile(f"{where}: {error}") from None
    return image


def _env_pairs(arguments: str, variables: dict[str, str], where: str) -> dict[str, str]:
    """Every value is expanded with the variables from before the line, as Docker does."""
    words = split_words(arguments)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        key, _, value = arguments.partition(" ")
        return {key: expand(value.strip(), variables)}
    return {
        key: expand(value or "", variables)
        for key, value in _pairs(arguments, where, values_required=True)
    }


def _user(spec: str, where: str) -> str | None:
    """`USER name` or `USER name:group` when the group is the user's own."""
    user, _, group = spec.partition(":")
    if group and group != user:
        raise UnsupportedDockerfile(
            f"{where}: a USER with a group other than the user's own is not supported "
            "by the sandbox"
        )
    return user or None


def _json_words(arguments: str) -> list[str] | None:
    if not arguments.startswith("["):
        return None
    try:
        words = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if isinstance(words, list) and all(isinstance(w, str) for w in words):
        return words
    return None


def _run(
    instruction: Instruction, shell: tuple[str, ...], image: Image, args: dict[str, str], where: str
) -> Run:
    arguments = instruction.arguments
    while arguments.startswith("--"):  # --mount=type=cache, --network=... only tune the build
        flag, _, arguments = arguments.partition(" ")
        mount = dict(part.partition("=")[::2] for part in flag.partition("=")[2].split(","))
        if flag.startswith("--mount=") and mount.get("type", "bind") != "cache":
            raise UnsupportedDockerfile(
                f"{where}: RUN --mount=type={mount.get('type', 'bind')} is not supported "
                "by the sandbox (only type=cache is)"
            )
        arguments = arguments.lstrip()
    arguments = arguments.strip()
    if instruction.heredocs:
        script = _HEREDOC.sub("", arguments).strip()
        if script:
            raise UnsupportedDockerfile(f"{where}: RUN with a command and a heredoc")
        argv = (*shell, instruction.heredocs[0])
    elif arguments.startswith("["):
        argv = tuple(_words(arguments))
    else:
        argv = (*shell, arguments)
    return Run(
        argv=argv,
        env={**args, **image.env},
        workdir=image.workdir,
        user=image.user,
        line=instruction.line,
        text=f"RUN {instruction.arguments}",
    )


def _copy(instruction: Instruction, image: Image, variables: dict[str, str], where: str) -> Copy:
    words = _json_words(instruction.arguments)
    if words is None:
        words = expand_words(instruction.arguments, variables)
    else:
        words = [expand(word, variables) for word in words]
    flags, words = _flags(words)
    if "from" in flags:
        raise UnsupportedDockerfile(f"{where}: COPY --from needs a multi-stage build")
    unknown = sorted(set(flags) - COPY_FLAGS)
    if unknown:
        raise UnsupportedDockerfile(
            f"{where}: {instruction.keyword} --{unknown[0]} is not supported by the sandbox"
        )
    content = None
    if instruction.heredocs:
        words = [w for w in words if not _HEREDOC.fullmatch(w)]
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
        text=f"{instruction.keyword} {instruction.arguments}",
        content=content,
    )
