"""A Docker-free Harbor environment: `harbor run -e autoagent.sandbox:Sandbox`."""

from autoagent.sandbox.environment import Sandbox, SandboxUnavailableError

__all__ = ["Sandbox", "SandboxUnavailableError"]
