"""Read a task's Dockerfile into the steps the sandbox can replay.

Base images cannot be pulled here, so `FROM` only names the image whose place the
host's userland takes. What the sandbox does replay: `WORKDIR`, `ENV`, `ARG`,
`USER`, `SHELL`, `COPY`/`ADD` of local files and `RUN`. Instructions that only
describe how a container is launched (`CMD`, `EXPOSE`, ...) are ignored. Anything
the sandbox cannot honour (multi-stage builds, `ADD <url>`, `COPY --from`) is an
`UnsupportedDockerfile` error that names the line.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field

IGNORED = {
    "CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "MAINTAINER", "VOLUME", "HEALTHCHECK",
    "STOPSIGNAL", "ONBUILD",
}  # fmt: skip
DEFAULT_SHELL = ("/bin/sh", "-c")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


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


def substitute(value: str, variables: dict[str, str]) -> str:
    """Docker's `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        current = variables.get(name, "")
        if match.group(2) == "-":
            return current or match.group(4)
        if match.group(2) == "+":
            return match.group(4) if current else ""
        return current

    return _VARIABLE.sub(replace, value)


def _words(arguments: str) -> list[str]:
    if arguments.startswith("["):
        try:
            words = json.loads(arguments)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                return words
    return shlex.split(arguments)


def _flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def _key_values(arguments: str, line: int) -> dict[str, str]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        key, _, value = arguments.partition(" ")
        return {key: " ".join(shlex.split(value))}
    pairs = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise UnsupportedDockerfile(f"line {line}: expected KEY=VALUE, got {word!r}")
        pairs[key] = value
    return pairs


def build_plan(
    text: str, build_args: dict[str, str] | None = None, base: Image | None = None
) -> Image:
    """Evaluate a Dockerfile into an `Image`: final env/workdir/user plus build steps.
    `base` is what the `FROM` image itself sets (its ENV, WORKDIR and USER)."""
    image = Image(env=dict(base.env), workdir=base.workdir, user=base.user) if base else Image()
    args: dict[str, str] = {}
    shell = DEFAULT_SHELL
    seen_from = False
    for instruction in parse(text):
        keyword, arguments, line = instruction.keyword, instruction.arguments, instruction.line
        variables = {**args, **image.env}
        where = f"line {line} ({keyword} {arguments[:60]})"
        if keyword == "FROM":
            if seen_from:
                raise UnsupportedDockerfile(
                    f"{where}: multi-stage builds are not supported by the sandbox"
                )
            seen_from = True
            image.base = substitute(arguments.split()[0], variables) if arguments else ""
        elif keyword == "ARG":
            for word in shlex.split(arguments):
                name, equals, default = word.partition("=")
                provided = (build_args or {}).get(name)
                args[name] = provided if provided is not None else (default if equals else "")
        elif keyword == "ENV":
            for key, value in _key_values(arguments, line).items():
                image.env[key] = substitute(value, {**args, **image.env})
        elif keyword == "WORKDIR":
            path = substitute(arguments.strip().strip("\"'"), variables)
            image.workdir = posixpath.normpath(posixpath.join(image.workdir, path))
        elif keyword == "USER":
            image.user = substitute(arguments.strip(), variables) or None
        elif keyword == "SHELL":
            words = _words(arguments)
            if not arguments.startswith("[") or not words:
                raise UnsupportedDockerfile(f"{where}: SHELL needs a JSON array")
            shell = tuple(words)
        elif keyword == "RUN":
            image.steps.append(_run(instruction, shell, image, args, where))
        elif keyword in ("COPY", "ADD"):
            image.steps.append(_copy(instruction, image, variables, where))
        elif keyword not in IGNORED:
            raise UnsupportedDockerfile(f"{where}: unknown instruction {keyword}")
    return image


def _run(
    instruction: Instruction, shell: tuple[str, ...], image: Image, args: dict[str, str], where: str
) -> Run:
    arguments = instruction.arguments
    while arguments.startswith("--"):  # --mount=..., --network=... only tune the build
        _, _, arguments = arguments.partition(" ")
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
    flags, words = _flags(_words(instruction.arguments))
    if "from" in flags:
        raise UnsupportedDockerfile(f"{where}: COPY --from needs a multi-stage build")
    words = [substitute(word, variables) for word in words]
    content = None
    if instruction.heredocs:
        words = [w for w in words if not _HEREDOC.fullmatch(w)]
        content = instruction.heredocs[0]
    if len(words) < (1 if content is not None else 2):
        raise UnsupportedDockerfile(f"{where}: needs a source and a destination")
    *sources, destination = words
    if any(re.match(r"^[a-z]+://", source) for source in sources):
        raise UnsupportedDockerfile(f"{where}: ADD from a URL is not supported")
    target = posixpath.join(image.workdir, destination)
    if destination.endswith("/"):
        target += "/"
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
