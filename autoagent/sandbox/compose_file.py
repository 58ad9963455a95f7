"""A task's Docker Compose file, read into the services the sandbox can run.

Harbor's Docker environment runs `docker compose up` on its own base file (the `main`
service: built from the task's Dockerfile, started with `sleep infinity`) merged with
the task's `environment/docker-compose.yaml`, which may add services (a database, an
MCP server) and extend `main` (variables, volumes, dependencies). `load` reads that
file with Compose's own interpolation (`${VAR}`, `${VAR:-default}`, `$$`, ...): the
variables are Harbor's (`CONTEXT_DIR`, `MAIN_IMAGE_NAME`) and the file's `.env`, never
the host's environment, which holds the user's keys. What only describes a container
to Docker (ports published on the host, restart policies, labels) is ignored; what the
sandbox cannot honour (privileges, devices, host paths, other network modes) is
refused, naming the file, the service and the key, when the task loads.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from harbor.constants import MAIN_SERVICE_NAME

from autoagent.sandbox.dockerfile import Healthcheck, UnsupportedDockerfile, duration

FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
MAIN = MAIN_SERVICE_NAME  # Harbor's name for the container the agent works in
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
SUPPORTED = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "working_dir",
    "user", "depends_on", "healthcheck", "volumes", "hostname", "extra_hosts", "cpus",
    "mem_limit",
}  # fmt: skip
# Keys whose effect the sandbox already has, or that only matter to Docker's host: every
# port of a service is reachable at its name, all services share one network.
IGNORED = {
    "container_name", "labels", "logging", "restart", "pull_policy", "platform", "init",
    "tty", "stdin_open", "expose", "ports", "networks", "stop_signal", "stop_grace_period",
}  # fmt: skip
MAIN_KEYS = {"environment", "env_file", "volumes", "depends_on", "extra_hosts", "build"} | IGNORED
TOP_LEVEL = {"services", "volumes", "networks", "version", "name"}
_VARIABLE = re.compile(r"\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\})")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])(.*))?", re.DOTALL)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", re.IGNORECASE)


class ComposeError(ValueError):
    """The Compose file asks for what the sandbox cannot do; the message says where."""


@dataclass(frozen=True)
class Volume:
    target: str
    source: str | None = None  # a named volume, or a path of the task's for a bind
    bind: bool = False
    read_only: bool = False


@dataclass
class Service:
    name: str
    context: Path | None = None  # `build`: the directory its Dockerfile is in
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    command: tuple[str, ...] | None = None  # replaces the image's CMD
    entrypoint: tuple[str, ...] | None = None  # replaces the image's ENTRYPOINT
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    healthcheck: Healthcheck | None = None
    healthcheck_disabled: bool = False
    volumes: tuple[Volume, ...] = ()
    hostname: str | None = None
    extra_hosts: tuple[str, ...] = ()
    cpus: float | None = None
    memory_mb: int | None = None


@dataclass
class Project:
    path: Path
    main: Service  # what the file adds to Harbor's `main`
    services: list[Service]  # the others, each after the services it depends on

    @property
    def names(self) -> list[str]:
        return [MAIN, *(service.name for service in self.services)]


def find(environment_dir: Path) -> Path | None:
    return next((environment_dir / n for n in FILES if (environment_dir / n).exists()), None)


def load(environment_dir: Path, variables: dict[str, str] | None = None) -> Project | None:
    """The task's Compose project, or None when it has no Compose file."""
    path = find(environment_dir)
    if path is None:
        return None
    where = str(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ComposeError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services") or {}, dict):
        raise ComposeError(f"{where}: expected a mapping with `services`")
    known = {**_dot_env(environment_dir), "CONTEXT_DIR": str(environment_dir),
             "MAIN_IMAGE_NAME": environment_dir.parent.name, **(variables or {})}  # fmt: skip
    document = _interpolate(document, known, where)
    for key in document:
        if key not in TOP_LEVEL and not str(key).startswith("x-"):
            raise ComposeError(f"{where}: the top-level `{key}` is not supported by the sandbox")
    volumes = set(document.get("volumes") or {})
    for name, spec in (document.get("volumes") or {}).items():
        if spec and set(spec) - {"name"}:
            raise ComposeError(f"{where}: volume `{name}`: only plain named volumes are supported")
    main, others = None, {}
    for name, spec in (document.get("services") or {}).items():
        service = _service(str(name), spec or {}, environment_dir, f"{where}: service `{name}`", volumes)
        if name == MAIN:
            main = service
        else:
            others[str(name)] = service
    main = main or Service(MAIN)
    for service in [main, *others.values()]:
        for needed in service.depends_on:
            if needed not in others:
                raise ComposeError(f"{where}: service `{service.name}` depends on `{needed}`, "
                                   "which is not a service beside main")  # fmt: skip
    return Project(path, main, _in_start_order(others, where))


def _service(name: str, spec: dict, environment_dir: Path, where: str, volumes: set[str]) -> Service:
    if not isinstance(spec, dict):
        raise ComposeError(f"{where}: expected a mapping")
    allowed = MAIN_KEYS if name == MAIN else SUPPORTED | IGNORED
    for key in spec:
        if key not in allowed and not str(key).startswith("x-"):
            why = ("Harbor's own; the task's Dockerfile builds main" if name == MAIN and key in SUPPORTED
                   else "not supported by the sandbox")  # fmt: skip
            raise ComposeError(f"{where}: `{key}` is {why}")
    service = Service(name)
    if name == MAIN and "build" in spec:
        build = spec["build"] if isinstance(spec["build"], dict) else {"context": spec["build"]}
        if _inside(environment_dir, build.get("context", "."), where) != environment_dir.resolve() or (
            set(build) - {"context", "args"}
        ):
            raise ComposeError(
                f"{where}: main's `build` may only add `args`: its image is the task's Dockerfile"
            )
        service.args = _mapping(build.get("args"), f"{where}: build.args")
    elif "build" in spec:
        build = spec["build"] if isinstance(spec["build"], dict) else {"context": spec["build"]}
        keys = {str(k) for k in build if not str(k).startswith("x-")}
        unknown = sorted(keys - {"context", "dockerfile", "args", "target"})
        unknown += ["target"] if build.get("target") else []  # a stage of a multi-stage build
        if unknown:
            raise ComposeError(f"{where}: build.{unknown[0]} is not supported by the sandbox")
        service.context = _inside(environment_dir, build.get("context", "."), where)
        service.dockerfile = str(build.get("dockerfile", "Dockerfile"))
        service.args = _mapping(build.get("args"), f"{where}: build.args")
    service.image = str(spec["image"]) if spec.get("image") else None
    if name != MAIN and service.context is None and service.image is None:
        raise ComposeError(f"{where}: needs `build` or `image`")
    for key in ("command", "entrypoint"):
        if spec.get(key) is not None:
            value = spec[key]
            setattr(service, key, tuple(shlex.split(value) if isinstance(value, str) else map(str, value)))
    service.environment = {**_env_files(spec.get("env_file"), environment_dir, where),
                           **_mapping(spec.get("environment"), f"{where}: environment")}  # fmt: skip
    service.working_dir = spec.get("working_dir")
    if spec.get("user") is not None:
        user, _, group = str(spec["user"]).partition(":")
        if group and group != user:
            raise ComposeError(f"{where}: a user with a group other than its own ({spec['user']}) "
                               "is not supported by the sandbox")  # fmt: skip
        service.user = user
    service.hostname = spec.get("hostname")
    service.depends_on = _depends_on(spec.get("depends_on"), where)
    service.healthcheck, service.healthcheck_disabled = _healthcheck(spec.get("healthcheck"), where)
    service.volumes = tuple(_volume(v, environment_dir, where, volumes) for v in spec.get("volumes") or [])
    service.extra_hosts = tuple(_extra_hosts(spec.get("extra_hosts")))
    if spec.get("cpus") is not None:
        service.cpus = float(spec["cpus"])
    if spec.get("mem_limit") is not None:
        service.memory_mb = _megabytes(spec["mem_limit"], where)
    return service


def _interpolate(value, variables: dict[str, str], where: str):
    """Compose's interpolation, in every string of the file."""
    if isinstance(value, dict):
        return {key: _interpolate(item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, variables, where) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match[1]:
            return "$"
        if match[2]:
            return variables.get(match[2], "")
        braced = _BRACED.fullmatch(match[3])
        if braced is None:
            raise ComposeError(f"{where}: invalid interpolation `{match[0]}`")
        name, operator, word = braced[1], braced[2], braced[3] or ""
        present = name in variables and (variables[name] != "" or ":" not in (operator or ""))
        if operator in (":-", "-"):
            return variables[name] if present else _interpolate(word, variables, where)
        if operator in (":+", "+"):
            return _interpolate(word, variables, where) if present else ""
        if operator in (":?", "?") and not present:
            raise ComposeError(f"{where}: {name} is required: {word or 'not set'}")
        return variables.get(name, "")

    return _VARIABLE.sub(substitute, value)


def _dot_env(environment_dir: Path) -> dict[str, str]:
    """The `.env` beside the Compose file: its variables for interpolation, as Compose reads it."""
    path = environment_dir / ".env"
    return _env_lines(path.read_text()) if path.is_file() else {}


def _env_lines(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[name.strip()] = value
    return result


def _env_files(value, environment_dir: Path, where: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in [value] if isinstance(value, (str, dict)) else value or []:
        path = item.get("path") if isinstance(item, dict) else item
        required = item.get("required", True) if isinstance(item, dict) else True
        file = _inside(environment_dir, path, where)
        if file.is_file():
            result.update(_env_lines(file.read_text()))
        elif required:
            raise ComposeError(f"{where}: env_file {path} does not exist")
    return result


def _mapping(value, where: str) -> dict[str, str]:
    """`KEY: value` or `- KEY=value`; a bare `KEY` would come from the host, which is not passed."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return {k: v for k, eq, v in (str(item).partition("=") for item in value) if eq}
    raise ComposeError(f"{where}: expected a mapping or a list")


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _depends_on(value, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(name): "service_started" for name in value}
    result = {}
    for name, spec in value.items():
        condition = (spec or {}).get("condition", "service_started")
        if condition not in CONDITIONS:
            raise ComposeError(f"{where}: depends_on `{name}`: unknown condition {condition}")
        result[str(name)] = condition
    return result


def _healthcheck(value, where: str) -> tuple[Healthcheck | None, bool]:
    if not value:
        return None, False
    if value.get("disable"):
        return None, True
    test = value.get("test")
    if isinstance(test, str):
        command = test
    elif isinstance(test, list) and test and test[0] == "NONE":
        return None, True
    elif isinstance(test, list) and len(test) > 1 and test[0] == "CMD-SHELL":
        command = test[1]
    elif isinstance(test, list) and len(test) > 1 and test[0] == "CMD":
        command = shlex.join(map(str, test[1:]))
    else:
        raise ComposeError(f"{where}: healthcheck.test must be a string, [CMD, ...] or [CMD-SHELL, ...]")
    options = {}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if value.get(key) is not None:
            try:
                options[key] = duration(str(value[key]), f"{where}: healthcheck.{key}")
            except UnsupportedDockerfile as error:
                raise ComposeError(str(error)) from None
    if value.get("retries") is not None:
        options["retries"] = int(value["retries"])
    return Healthcheck(command=command, **options), False


def _volume(value, environment_dir: Path, where: str, named: set[str]) -> Volume:
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 1:
            return Volume(target=parts[0])  # anonymous: the sandbox's own writable layer already is
        source, target, *mode = parts
        spec = {"type": "bind" if source[:1] in "./~" else "volume", "source": source,
                "target": target, "read_only": mode == ["ro"]}  # fmt: skip
    else:
        spec = value
    kind, source, target = spec.get("type"), spec.get("source"), spec.get("target")
    if not target or not PurePosixPath(target).is_absolute():
        raise ComposeError(f"{where}: volume {value!r} needs an absolute target")
    if kind == "volume":
        if source and source not in named:
            raise ComposeError(f"{where}: volume `{source}` is not declared under the top-level volumes")
        return Volume(target=target, source=source, read_only=bool(spec.get("read_only")))
    if kind == "bind":
        path = _inside(environment_dir, source, where)
        if not path.exists():
            raise ComposeError(f"{where}: bind source {source} does not exist")
        return Volume(target=target, source=str(path), bind=True, read_only=bool(spec.get("read_only")))
    raise ComposeError(f"{where}: volumes of type {kind} are not supported by the sandbox")


def _inside(environment_dir: Path, path: str | None, where: str) -> Path:
    """A path of the task's own directory: the task may not reach the host's files."""
    if not path:
        raise ComposeError(f"{where}: a path is missing")
    resolved = (environment_dir / path).resolve()
    if not resolved.is_relative_to(environment_dir.resolve()):
        raise ComposeError(
            f"{where}: {path} is outside the task's environment directory; the sandbox "
            "gives a task none of the host's files"
        )
    return resolved


def _extra_hosts(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{name}:{address}" for name, address in value.items()]
    return [str(item).replace("=", ":", 1) for item in value or []]


def _megabytes(value, where: str) -> int:
    match = _SIZE.fullmatch(str(value).strip())
    if match is None:
        raise ComposeError(f"{where}: mem_limit {value!r} is not a size")
    scale = {"": 1 / 2**20, "b": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024}[match[2].lower()]
    return max(1, int(float(match[1]) * scale))


def _in_start_order(services: dict[str, Service], where: str) -> list[Service]:
    ordered: list[Service] = []
    visiting: set[str] = set()

    def visit(service: Service) -> None:
        if service in ordered:
            return
        if service.name in visiting:
            raise ComposeError(f"{where}: services depend on each other in a cycle through `{service.name}`")
        visiting.add(service.name)
        for needed in service.depends_on:
            visit(services[needed])
        ordered.append(service)

    for service in services.values():
        visit(service)
    return ordered
