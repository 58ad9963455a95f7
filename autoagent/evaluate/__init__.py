"""Scored runs of an agent over Harbor tasks: `evaluate` and `check`."""

from autoagent.evaluate.check import Finding, check
from autoagent.evaluate.evaluation import EvalResult, TaskResult, evaluate
from autoagent.evaluate.results import Trial

__all__ = ["EvalResult", "Finding", "TaskResult", "Trial", "check", "evaluate"]
