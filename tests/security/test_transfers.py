"""Attacks on file transfers: a trial that plants links, crafted archives or a fake `tar`
must not write a host file outside the target, read a host secret, or forge what is copied."""

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.sandbox.test_environment import sandbox  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("needs_sandbox")

# A stand-in for the sandbox's tar: whatever it is asked, it prints the crafted archive
# (and writes it, gzipped, where `tar czf PATH ...` would).
FAKE_TAR = """#!/bin/sh
if [ "$1" = czf ]; then gzip -c /tmp/crafted.tar > "$2"; exit 0; fi
case "$*" in *-x*) printf '#!/bin/sh\\necho 1 > /logs/verifier/reward.txt\\n' > /tests/test.sh; exit 0;; esac
cat /tmp/crafted.tar
"""


def snapshot(directory: Path, skip: Path) -> dict[str, tuple]:
    """Every path under `directory` (but `skip`), with what it holds."""
    found = {}
    for path in directory.rglob("*"):
        if path == skip or skip in path.parents:
            continue
        info = path.lstat()
        body = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path)] = (info.st_mode, info.st_size, body)
    return found


def escaping_archive(target: Path) -> bytes:
    """A stream that `tarfile`'s data filter (before CVE-2025-4517's fix) extracts outside
    `target`: a chain of links too long for `os.path.realpath` to expand hides `escape`,
    a link to the target's parent, through which `escape/pwned` is written."""
    steps = "abcdefghijklmnop"
    component = "d" * ((4096 - len(str(target)) - 1) // (len(steps) + 1))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, kind: bytes, link: str = "", data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)

        path = ""
        for step in steps:
            add(os.path.join(path, component), tarfile.DIRTYPE)
            add(os.path.join(path, step), tarfile.SYMTYPE, component)
            path = os.path.join(path, component)
        hidden = os.path.join(*steps, "l" * 254)
        add(hidden, tarfile.SYMTYPE, "../" * len(steps))
        add("escape", tarfile.SYMTYPE, hidden + "/..")
        add("escape/pwned", tarfile.REGTYPE, data=b"written by the sandbox\n")
        add("reward.txt", tarfile.REGTYPE, data=b"1\n")
    return buffer.getvalue()


async def plant_fake_tar(sandbox, archive: bytes, tmp_path: Path) -> None:
    staged = tmp_path / "crafted.tar"
    staged.write_bytes(archive)
    await sandbox.upload_file(staged, "/tmp/crafted.tar")
    fake = tmp_path / "tar"
    fake.write_text(FAKE_TAR)
    fake.chmod(0o755)
    await sandbox.upload_file(fake, "/usr/local/bin/tar")
    result = await sandbox.exec("cp /usr/local/bin/tar /usr/bin/tar && command -v tar")
    assert result.return_code == 0, result


@pytest.mark.parametrize("method", ["download_dir", "download_dir_filtered", "download_dir_with_exclusions"])
async def test_a_crafted_archive_from_a_replaced_tar_writes_nothing_outside_the_target(sandbox, tmp_path, method):
    out = tmp_path / "jobs" / "trial" / "artifacts"
    out.parent.mkdir(parents=True)
    await sandbox.exec("mkdir -p /app/out && echo real > /app/out/result.txt")
    await plant_fake_tar(sandbox, escaping_archive(out), tmp_path)
    before = snapshot(tmp_path, skip=out)

    if method == "download_dir":
        await sandbox.download_dir("/app/out", out)
    elif method == "download_dir_filtered":
        await sandbox.download_dir_filtered(source_dir="/app/out", target_dir=out, include=["*"])
    else:
        await sandbox.download_dir_with_exclusions(source_dir="/app/out", target_dir=out, exclude=["*.log"])

    assert snapshot(tmp_path, skip=out) == before
    assert not (out.parent / "pwned").exists()
    # What arrives is what the sandbox holds, not what its tar says.
    assert sorted(p.name for p in out.iterdir()) == ["result.txt"]
    assert (out / "result.txt").read_text() == "real\n"


async def test_a_replaced_tar_cannot_forge_a_reward_or_the_tests(sandbox, tmp_path):
    await sandbox.exec("mkdir -p /logs/verifier && echo 0 > /logs/verifier/reward.txt")
    await plant_fake_tar(sandbox, escaping_archive(tmp_path / "verifier"), tmp_path)

    await sandbox.download_dir("/logs/verifier", tmp_path / "verifier")
    assert (tmp_path / "verifier" / "reward.txt").read_text() == "0\n"

    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test.sh").write_text("#!/bin/sh\necho 0 > /logs/verifier/reward.txt\n")
    await sandbox.upload_dir(tests, "/tests")
    inside = await sandbox.exec("cat /tests/test.sh; stat -c '%U %a' /tests/test.sh")
    assert inside.stdout == "#!/bin/sh\necho 0 > /logs/verifier/reward.txt\nroot 644\n"


async def test_links_in_the_sandbox_are_copied_as_links_and_never_followed(sandbox, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("host secret: never copy me")
    victim = tmp_path / "victim"
    victim.mkdir()
    script = f"""
        set -e
        mkdir -p /app/tree/sub
        echo data > /app/tree/sub/real.txt
        chmod 750 /app/tree/sub/real.txt
        ln /app/tree/sub/real.txt /app/tree/hard.txt
        ln -s /etc /app/tree/etc
        ln -s {secret} /app/tree/secret
        ln -s {victim} /app/tree/into-victim
        ln -s ../../../../../../.. /app/tree/up
        ln -s sub/real.txt /app/tree/relative
        mkfifo /app/tree/pipe
    """
    assert (await sandbox.exec(script)).return_code == 0
    out = tmp_path / "out"
    before = snapshot(tmp_path, skip=out)

    await sandbox.download_dir("/app/tree", out)

    assert snapshot(tmp_path, skip=out) == before
    links = {p.name: os.readlink(p) for p in out.iterdir() if p.is_symlink()}
    assert links == {"etc": "/etc", "secret": str(secret), "into-victim": str(victim),
                     "up": "../../../../../../..", "relative": "sub/real.txt"}  # fmt: skip
    assert (out / "hard.txt").read_text() == "data\n" and not (out / "hard.txt").is_symlink()
    assert (out / "sub" / "real.txt").stat().st_mode & 0o777 == 0o750
    assert not (out / "pipe").exists()
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert b"host secret" not in path.read_bytes()

    # A second copy where the sandbox turned the link into a directory replaces the
    # link on the host; it never writes through it into the host's directory.
    await sandbox.exec("rm /app/tree/into-victim && mkdir /app/tree/into-victim && echo x > /app/tree/into-victim/x")
    await sandbox.download_dir("/app/tree", out)
    assert list(victim.iterdir()) == []
    assert (out / "into-victim").is_dir() and not (out / "into-victim").is_symlink()

    # A link an earlier copy made on the host is never written through by a later one.
    with pytest.raises(RuntimeError, match="is a symbolic link on the host"):
        await sandbox.download_file("/app/tree/sub/real.txt", out / "etc" / "real.txt")
    with pytest.raises(RuntimeError, match="is a symbolic link on the host"):
        await sandbox.download_dir("/app/tree/sub", out / "etc")
    await sandbox.download_file("/app/tree/sub/real.txt", out / "secret")
    assert (out / "secret").read_text() == "data\n" and secret.read_text() == "host secret: never copy me"

    # The host's root can read there what the sandbox's cannot (/proc/kcore): kernel
    # filesystems are refused, even through a link, and skipped inside a tree.
    await sandbox.exec("ln -s /proc /app/kernel")
    with pytest.raises(RuntimeError, match="kernel's proc"):
        await sandbox.download_dir("/app/kernel", tmp_path / "kernel")
    with pytest.raises(RuntimeError, match="kernel's proc"):
        await sandbox.upload_dir(tmp_path / "victim", "/app/kernel/1")
    await sandbox.download_dir("/dev", tmp_path / "dev")
    copied = {p.name: p.lstat().st_mode for p in (tmp_path / "dev").iterdir()}
    assert "null" not in copied and "pts" not in copied and stat.S_ISDIR(copied["shm"])
    assert all(stat.S_ISDIR(mode) or stat.S_ISLNK(mode) for mode in copied.values())

    # download_file: a link is refused with a reason, a directory copied whole, modes kept.
    with pytest.raises(RuntimeError, match="symbolic link"):
        await sandbox.download_file("/app/tree/secret", tmp_path / "secret-copy")
    assert not (tmp_path / "secret-copy").exists()
    await sandbox.download_file("/app/tree/sub", tmp_path / "sub-copy")
    assert (tmp_path / "sub-copy" / "real.txt").read_text() == "data\n"
    await sandbox.download_file("/app/tree/sub/real.txt", tmp_path / "real-copy.txt")
    assert (tmp_path / "real-copy.txt").stat().st_mode & 0o777 == 0o750


async def test_agent_logs_reach_the_jobs_dir_capped_and_with_no_link_out(sandbox, tmp_path):
    """Harbor reads the logs it copies (rewards, agents' logs): an 100 MB flood is cut
    with a note, and a link that could lead to a host file is dropped."""
    secret = tmp_path / "host-secret"
    secret.write_text("host secret: never copy me")
    await sandbox.exec(
        "mkdir -p /logs/agent && truncate -s 100M /logs/agent/flood.txt && "
        "echo '{\"steps\": []}' > /logs/agent/trajectory.json && "
        f"ln -s {secret} /logs/agent/reward.txt && ln -s ../../etc/passwd /logs/agent/up && "
        "ln -s trajectory.json /logs/agent/same"
    )
    out = tmp_path / "agent"
    await sandbox.download_dir("/logs/agent", out)

    assert sorted(p.name for p in out.iterdir()) == [
        "CUT-BY-SANDBOX.txt", "flood.txt", "same", "trajectory.json"
    ]  # fmt: skip
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total <= 33 * 2**20
    assert (out / "trajectory.json").read_text() == '{"steps": []}\n'
    assert (out / "same").read_text() == '{"steps": []}\n'
    note = (out / "CUT-BY-SANDBOX.txt").read_text()
    assert "flood.txt" in note and str(100 * 2**20) in note

    # A flood of names is cut too: each costs the jobs dir an inode (1 KiB of the limit).
    sandbox.options = sandbox.options.model_copy(update={"log_limit_mb": 1})
    await sandbox.exec(
        "rm /logs/agent/flood.txt && mkdir /logs/agent/many && "
        "python3 -c \"[open(f'/logs/agent/many/{i}', 'w').close() for i in range(3000)]\""
    )
    out = tmp_path / "agent-again"
    await sandbox.download_dir("/logs/agent", out)
    assert 1000 < len(list((out / "many").iterdir())) < 1024
    assert (out / "trajectory.json").exists() and "left out many/" in (out / "CUT-BY-SANDBOX.txt").read_text()


async def test_a_tree_of_thousands_of_directories_does_not_exhaust_descriptors(sandbox, tmp_path):
    """One descriptor per directory of the tree would fail here (and, meanwhile, every other
    open of the process: other trials, the model client)."""
    import resource

    made = await sandbox.exec("mkdir -p /logs/artifacts && cd /logs/artifacts && "
                              "for i in $(seq 1500); do mkdir -p d$i/e; done && echo ok")  # fmt: skip
    assert (made.stdout or "").strip().endswith("ok")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        await sandbox.download_dir("/logs/artifacts", tmp_path / "artifacts")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (tmp_path / "artifacts" / "d1500" / "e").is_dir()


async def test_a_sparse_file_cannot_fill_the_hosts_disk(sandbox, tmp_path):
    """`truncate -s` makes a huge file that costs nothing inside; the host writes at most the
    download limit."""
    sandbox.options.download_limit_mb = 1
    made = await sandbox.exec("mkdir -p /logs/artifacts && truncate -s 300M /logs/artifacts/huge && echo ok")
    assert (made.stdout or "").strip() == "ok"
    await sandbox.download_dir("/logs/artifacts", tmp_path / "artifacts")
    assert (tmp_path / "artifacts" / "huge").stat().st_size <= 2**20
    await sandbox.download_file("/logs/artifacts/huge", tmp_path / "one")
    assert (tmp_path / "one").stat().st_size <= 2**20
