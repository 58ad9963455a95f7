"""The bubblewrap command line of a harness box, and what the box may see.

Read-only: the Python environment (the venv, the base interpreter, the AutoAgent
package), the harness's own files (its module and `.agent/`), the scripted model's
scripts and what programs need to run (`/usr`, a few files of `/etc`). Writable: a
scratch directory of its own and the directories given (a trial's logs). Shared: the
host's network, so that a model server on the host's loopback answers. Nothing else:
not the workspace's tasks, config, ledger or `.autoagent/`, not `/root`, not other
trials, and of the host's environment variables only the model's credentials.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import autoagent
from autoagent import spend
from autoagent.llm import TIMEOUT_ENV

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
# Files of /etc that DNS, TLS and time zones need; no passwords, no credentials.
ETC = ("resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "localtime",
       "ssl", "ca-certificates", "ca-certificates.conf", "pki")  # fmt: skip
# The credentials (keys, base URLs, settings) of each provider, by LiteLLM's prefix.
PROVIDER_ENV = {
    "anthropic": ("ANTHROPIC_",), "openai": ("OPENAI_",), "hosted_vllm": ("HOSTED_VLLM_",),
    "azure": ("AZURE_",), "bedrock": ("AWS_",), "gemini": ("GEMINI_", "GOOGLE_"),
    "vertex_ai": ("VERTEX", "GOOGLE_"), "openrouter": ("OPENROUTER_",), "groq": ("GROQ_",),
    "mistral": ("MISTRAL_",), "deepseek": ("DEEPSEEK_",), "together_ai": ("TOGETHER",),
    "ollama": ("OLLAMA_",), "xai": ("XAI_",), "fireworks_ai": ("FIREWORKS",),
}  # fmt: skip
# What the model layer and the spend meter read (see llm.py, spend.py, scripted.py).
AUTOAGENT_ENV = (spend.FILE_ENV, spend.BUDGET_ENV, spend.ROLE_ENV, spend.EXPERIMENT_ENV, spend.PRICES_ENV,
                 TIMEOUT_ENV, "AUTOAGENT_SCRIPTS", "LITELLM_LOCAL_MODEL_COST_MAP", "HARBOR_TELEMETRY",
                 "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                 # where the CA bundle is (a TLS-intercepting proxy's certificate, say): no secret
                 "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # fmt: skip
EXTRA_ENV = "AUTOAGENT_HARNESS_ENV"  # comma-separated names a user lets through as well
EXAMPLE_TASKS = Path(autoagent.__file__).parent.resolve() / "examples" / "tasks"  # with their solutions


class HarnessBoxError(RuntimeError):
    """The harness box cannot be set up on this host."""


def bwrap() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise HarnessBoxError(
            "AutoAgent runs the harness (agent.py) in a bubblewrap box, and `bwrap` is not "
            f"on PATH: {INSTALL_HINT}. The harness is never run unboxed inside the loop."
        )
    return found


def provider_prefixes(model: str | None) -> tuple[str, ...]:
    """Which variables hold the credentials of `model`'s provider (all known ones if
    the model does not say, since LiteLLM then guesses the provider from its name)."""
    if model and model.startswith("scripted/"):
        return ()
    provider = model.split("/", 1)[0] if model and "/" in model else None
    if provider is None:
        return tuple(prefix for prefixes in PROVIDER_ENV.values() for prefix in prefixes)
    return PROVIDER_ENV.get(provider, (provider.upper() + "_",))


def allowed_env(model: str | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The host's variables the harness may see: its model's credentials, the spend
    meter's and the scripted model's settings, and what $AUTOAGENT_HARNESS_ENV names."""
    environ = dict(os.environ if environ is None else environ)
    names = set(AUTOAGENT_ENV) | {n.strip() for n in environ.get(EXTRA_ENV, "").split(",") if n.strip()}
    prefixes = provider_prefixes(model)
    return {
        name: value for name, value in environ.items()
        if name in names or (prefixes and name.startswith(prefixes))
    }  # fmt: skip


def python_paths() -> list[Path]:
    """The interpreter, the venv and the AutoAgent package (an editable install's
    source directory holds more than the package: only the package is shown)."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(autoagent.__file__).parent]
    return [path.resolve() for path in dict.fromkeys(paths)]


def harness_files(harness_dir: Path, import_path: str) -> list[Path]:
    """The harness module (a file or a package) and `.agent/`, when they exist."""
    module = import_path.split(":", 1)[0].split(".", 1)[0]
    candidates = [harness_dir / f"{module}.py", harness_dir / module, harness_dir / ".agent"]
    return [path for path in candidates if path.exists()]


def model_files(environ: dict[str, str], model: str | None) -> list[Path]:
    """What the scripted model reads: its scripts directories, or a script named by path."""
    found = [Path(d) for d in environ.get("AUTOAGENT_SCRIPTS", "").split(os.pathsep) if d]
    if model and model.startswith("scripted/") and model.endswith(".json"):
        found.append(Path(model.removeprefix("scripted/")))
    return [path.absolute() for path in found if path.exists()]


def spend_file(environ: dict[str, str]) -> list[Path]:
    """The spend meter's file: the one host file the box may append to."""
    path = environ.get(spend.FILE_ENV)
    if not path:
        return []
    file = Path(path).absolute()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.touch()
    return [file]


def _system() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def command(
    argv: list[str],
    *,
    cwd: Path,
    scratch: Path,
    readable: Iterable[Path] = (),
    writable: Iterable[Path] = (),
    env: dict[str, str] | None = None,
) -> list[str]:
    """`argv` in a new box; `scratch` becomes its HOME and TMPDIR."""
    args = [bwrap(), "--unshare-all", "--share-net", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--clearenv", *_system(),
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]  # fmt: skip
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--tmpfs", str(EXAMPLE_TASKS)]  # the package's example tasks come with solutions
    for path in [scratch, *writable]:
        args += ["--bind", str(path), str(path)]
    variables = {
        **(env or {}),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch), "TMPDIR": str(scratch), "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # the harness files are read-only
    }  # fmt: skip
    for name, value in variables.items():
        args += ["--setenv", name, value]
    return [*args, "--chdir", str(cwd), "--", *argv]


def module_command(module: str, harness_dir: Path, import_path: str, scratch: Path, *,
                   model: str | None = None, writable: Iterable[Path] = (),
                   args: Iterable[str] = ()) -> list[str]:  # fmt: skip
    """`python -m module args...` in a box that sees the harness of `harness_dir`."""
    environ = dict(os.environ)
    readable = [*python_paths(), *model_files(environ, model), *harness_files(harness_dir, import_path)]
    return command(
        [sys.executable, "-m", module, *args], cwd=harness_dir, scratch=scratch, readable=readable,
        writable=[*spend_file(environ), *writable], env=allowed_env(model, environ),
    )  # fmt: skip


def run_import_check(path: Path, name: str = "AutoAgent", timeout: float = 120) -> subprocess.CompletedProcess:
    """Import the harness at `path` in a box, as a trial will: exit 0 if it defines
    `name`, 3 if not, 1 (with a traceback on stderr) if it does not import."""
    with tempfile.TemporaryDirectory(prefix=f"autoagent-box-{os.getpid()}-") as scratch:
        argv = module_command("autoagent.harness_box.import_check", path.parent.absolute(),
                              f"{path.stem}:{name}", Path(scratch), args=[path.stem, name])  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
