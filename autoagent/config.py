"""`autoagent.toml`: a workspace's settings, validated with errors that name the line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FILENAME = "autoagent.toml"
DEFAULT_MODEL = "anthropic/claude-sonnet-4-5"


class ConfigError(ValueError):
    """autoagent.toml is wrong; the message names the file, the line and the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tasks(_Section):
    path: str = Field("tasks", description="A directory of Harbor tasks, relative to this file.")
    dataset: str | None = Field(
        None, description="A Harbor dataset (name@version) downloaded into `path` when missing."
    )
    include: list[str] = Field(default_factory=list, description="Task name globs to keep.")
    exclude: list[str] = Field(default_factory=list, description="Task name globs to drop.")


class Model(_Section):
    model: str | None = Field(None, description="Any LiteLLM model name.")
    api_base: str | None = Field(
        None, description="An OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, ...)."
    )
    timeout_sec: float = Field(600, gt=0, description="Seconds one model call may take before it is retried.")
    input_usd_per_mtok: float | None = Field(
        None, ge=0, description="USD per million input tokens, for a model LiteLLM has no price for."
    )
    output_usd_per_mtok: float | None = Field(None, ge=0, description="USD per million output tokens.")

    @model_validator(mode="after")
    def _whole_price(self) -> Model:
        if (self.input_usd_per_mtok is None) != (self.output_usd_per_mtok is None):
            raise ValueError("set both input_usd_per_mtok and output_usd_per_mtok, or neither")
        return self

    @property
    def price(self) -> tuple[float, float] | None:
        """(USD per million input tokens, per million output tokens), if given."""
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        return self.input_usd_per_mtok, self.output_usd_per_mtok


class Meta(Model):
    backend: str = Field("builtin", pattern="^(builtin|claude-code)$",
                         description="builtin, or claude-code (the extra autoagent[claude]).")  # fmt: skip
    max_turns: int = Field(40, ge=1, description="Model turns per proposal.")
    max_minutes: float = Field(30, gt=0, description="Minutes per proposal.")
    max_usd: float = Field(5.0, gt=0, description="USD per proposal.")


class Run(_Section):
    concurrency: int = Field(4, ge=1, description="Trials at once, across every evaluation.")
    start_rate: float | None = Field(
        None, gt=0, description="Sandbox starts per second at most (cloud providers throttle creation)."
    )
    candidates: int = Field(1, ge=1, description="Candidates in flight at once, each proposed and judged on its own.")
    attempts: int = Field(1, ge=1, description="Attempts per task (k).")
    environment: str = Field("sandbox", description="sandbox, a Harbor environment, or module:Class.")
    environment_kwargs: dict[str, Any] = Field(default_factory=dict)


class Splits(_Section):
    held_out: list[str] = Field(default_factory=list, description="Tasks the meta-agent never sees.")
    test: list[str] = Field(default_factory=list, description="Sealed tasks for `autoagent test`.")
    held_out_fraction: float = Field(0.0, ge=0, lt=1)
    test_fraction: float = Field(0.0, ge=0, lt=1)
    seed: int = 0


class Decision(_Section):
    gate: str = Field("paired", pattern="^(paired|reference)$")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    max_rounds: int = Field(3, ge=0, description="Rounds of extra attempts for an indecisive candidate.")
    canaries: int = Field(5, ge=0, description="Tasks the parent passes, run first as a canary.")
    baseline_attempts: int = Field(2, ge=1, description="Attempts per task for the baseline (the noise floor).")
    objective: Literal["score", "score-then-cost"] = Field(
        "score-then-cost", description="score-then-cost: at equal score, a cheaper candidate is kept too.")
    cost_measure: Literal["auto", "usd", "tokens", "turns", "time"] = Field(
        "auto", description="The cost compared at equal score; auto: usd when priced, tokens otherwise.")
    parents: Literal["best", "frontier"] = Field(
        "best", description="What a candidate is proposed from: the best so far, or a harness from the "
                            "Pareto frontier per task (strategies/parents.py).")  # fmt: skip


class Budget(_Section):
    iterations: int | None = Field(None, ge=0)
    hours: float | None = Field(None, gt=0)
    usd: float | None = Field(None, gt=0)


class Config(_Section):
    tasks: Tasks = Field(default_factory=Tasks)
    agent: Model = Field(default_factory=Model)
    meta: Meta = Field(default_factory=Meta)
    run: Run = Field(default_factory=Run)
    splits: Splits = Field(default_factory=Splits)
    decision: Decision = Field(default_factory=Decision)
    budget: Budget = Field(default_factory=Budget)

    @model_validator(mode="after")
    def _defaults(self) -> Config:
        self.agent.model = self.agent.model or DEFAULT_MODEL
        return self  # [meta] model stays unset when unset: see Settings.meta_endpoint


def load(path: Path) -> Config:
    """Read and check `path`; every problem is a `ConfigError` saying where and what."""
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}.") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        keys = [str(part) for part in first["loc"]]
        line = _line_of(text, keys)
        where = f"{path}, line {line}" if line else str(path)
        setting = f"[{keys[0]}] {'.'.join(keys[1:])}" if len(keys) > 1 else keys[0]
        if first["type"] == "extra_forbidden":
            problem = f"unknown setting {setting}"
            known = _known_keys(keys[:-1])
            if known:
                problem += f" (known here: {', '.join(known)})"
        else:
            given = f" (got {first['input']!r})" if "input" in first else ""
            problem = f"{setting}: {first['msg']}{given}"
        more = error.error_count() - 1
        raise ConfigError(f"{where}: {problem}." + (f" {more} more problem(s) after this one." if more else "")) from None
    tasks_dir = path.parent / config.tasks.path
    if not tasks_dir.is_dir() and not config.tasks.dataset:
        line = _line_of(text, ["tasks", "path"])
        raise ConfigError(
            f"{path}{f', line {line}' if line else ''}: [tasks] path = {config.tasks.path!r}: "
            f"{tasks_dir} is not a directory. Point it at a directory of Harbor tasks, or set "
            "[tasks] dataset to a Harbor dataset name to download."
        )
    return config


def check_models(path: Path, config: Config) -> None:
    """A `ConfigError` for a model LiteLLM does not know (before a run, not on every command:
    LiteLLM takes seconds to import)."""
    from autoagent import llm

    for section in ("agent", "meta"):
        model: Model = getattr(config, section)
        problem = model.model and llm.model_problem(model.model, model.api_base)
        if problem:
            line = _line_of(path.read_text(), [section, "model"])
            raise ConfigError(f"{path}{f', line {line}' if line else ''}: [{section}] model: {problem}")


def _known_keys(keys: list[str]) -> list[str]:
    model: type[BaseModel] = Config
    for key in keys:
        annotation = model.model_fields[key].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line where `[section] key` is set (or the section starts)."""
    section, key = (keys[0], keys[1]) if len(keys) > 1 else (None, keys[0] if keys else None)
    current = None
    section_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([\w.-]+)\s*\]", line)
        if header:
            current = header.group(1)
            if current == section or (section is None and current == key):  # [budegt]
                section_line = section_line or number
            continue
        if current == section and key and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return section_line
