"""A `public` trial has a network of its own: the outside is reachable, the host's
loopback is not, its ports are its own, and a switch to no-network cuts every process."""

import asyncio
import contextlib
import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from harbor.models.task.config import NetworkMode, NetworkPolicy

from autoagent.sandbox import network
from tests.conftest import REPO, outside_address
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox")

PROBE = """python3 - <<'EOF'
import socket
try:
    socket.create_connection(("{host}", {port}), timeout=3).close()
    print("reached")
except OSError as error:
    print("blocked", error)
EOF"""


@contextlib.contextmanager
def http_server(address: str):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.asynccontextmanager
async def started(tmp_path, mode: str = "public"):
    tmp_path.mkdir(exist_ok=True)
    box = make_sandbox(tmp_path, network=mode)
    await box.start(force_build=False)
    try:
        yield box
    finally:
        await box.stop(delete=True)


def host_reaches_pypi() -> bool:
    try:
        return urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10).status == 200
    except OSError:
        return False


async def test_a_public_trial_reaches_out_but_never_the_hosts_loopback(tmp_path):
    with http_server("127.0.0.1") as loopback_port, http_server(outside_address()) as outside_port:
        async with started(tmp_path) as box:
            outside = await box.exec(PROBE.format(host=outside_address(), port=outside_port))
            assert outside.stdout.strip() == "reached"
            for host in ("127.0.0.1", "10.0.2.2", "localhost"):
                inside = await box.exec(PROBE.format(host=host, port=loopback_port))
                assert inside.stdout.startswith("blocked"), (host, inside)
            if host_reaches_pypi():  # DNS and HTTPS for pip, through the sandbox's own network
                pip = await box.exec(
                    "python3 -c \"import urllib.request; "
                    "print(urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=20).status)\""
                )
                assert pip.stdout.strip() == "200", pip


async def test_two_public_trials_bind_the_same_port_and_the_host_never_sees_it(tmp_path):
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    serve = (
        f"python3 -m http.server {port} --bind 0.0.0.0 >/dev/null 2>&1 & sleep 1; "
        f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}').status)\""
    )
    async with started(tmp_path / "a") as first, started(tmp_path / "b") as second:
        results = await asyncio.gather(first.exec(serve), second.exec(serve))
        assert [r.stdout.strip() for r in results] == ["200", "200"], results
        with socket.socket() as host:  # the port is still free on the host
            host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            host.bind(("0.0.0.0", port))
            host.listen()


async def test_a_switch_to_no_network_cuts_a_daemon_left_running(tmp_path):
    address = outside_address()
    daemon = f"""nohup python3 - > /tmp/probe.log 2>&1 <<'EOF' &
import socket, time
while True:
    try:
        socket.create_connection(("{address}", {{port}}), timeout=1).close()
        print("reached", flush=True)
    except OSError:
        print("blocked", flush=True)
    time.sleep(0.2)
EOF
sleep 1; tail -n 1 /tmp/probe.log"""
    latest = "sleep 1.5; tail -n 1 /tmp/probe.log"
    with http_server(address) as port:
        async with started(tmp_path) as box:
            assert (await box.exec(daemon.replace("{port}", str(port)))).stdout.strip() == "reached"
            await box.set_network_policy(NetworkPolicy(network_mode=NetworkMode.NO_NETWORK))
            assert (await box.exec(latest)).stdout.strip() == "blocked"
            await box.set_network_policy(NetworkPolicy(network_mode=NetworkMode.PUBLIC))
            assert (await box.exec(latest)).stdout.strip() == "reached"


async def test_dns_works_when_the_hosts_resolver_is_on_its_loopback(tmp_path, monkeypatch):
    """systemd-resolved's 127.0.0.53 is out of a sandbox's reach: pasta relays DNS to it."""
    assert network.resolv_conf("nameserver 10.1.1.1\nsearch corp\n") is None
    stub = tmp_path / "resolv.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
    assert network.resolv_conf(stub.read_text()) == (
        f"nameserver {network.DNS_FORWARD}\noptions edns0 trust-ad\nsearch .\n"
    )
    monkeypatch.setattr(network, "HOST_RESOLV_CONF", stub)
    async with started(tmp_path) as box:
        conf = await box.exec("cat /etc/resolv.conf")
        assert conf.stdout.startswith(f"nameserver {network.DNS_FORWARD}\n")
        if socket.getaddrinfo("pypi.org", 443):
            assert (await box.exec("getent hosts pypi.org")).return_code == 0


def test_the_network_helper_dies_with_a_killed_run(tmp_path):
    """`kill -9` of the process that runs trials leaves no pasta behind."""
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from tests.conftest import REPO, outside_address
from tests.sandbox.test_environment import make_sandbox

async def main():
    box = make_sandbox(Path({str(tmp_path)!r}))
    await box.start(force_build=False)
    print(box._jail._uplink._process.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pasta = int(run.stdout.readline())
        assert alive(pasta)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 10
    while alive(pasta) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pasta)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
