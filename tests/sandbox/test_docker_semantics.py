"""What Harbor's Docker environment does, the sandbox does: the Dockerfile's variables,
ENTRYPOINT and login files, and exec's contract (merged output, streaming, error returns)."""

import asyncio

import pytest

from autoagent.sandbox import SandboxUnavailableError
from autoagent.sandbox.roots import DEFAULT_PATH
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox")



async def started(tmp_path, dockerfile, **kwargs):
    box = make_sandbox(tmp_path, dockerfile, **kwargs)
    await box.start(force_build=False)
    return box


async def test_env_path_extends_the_images_path_and_commands_still_run(tmp_path):
    box = await started(tmp_path, "FROM debian:bookworm-slim\nENV PATH=/opt/tool/bin:$PATH\n")
    try:
        result = await box.exec("echo $PATH; ls / >/dev/null && echo listed")
        assert result.return_code == 0
        assert result.stdout.split() == [f"/opt/tool/bin:{DEFAULT_PATH}", "listed"]
    finally:
        await box.stop(delete=True)


async def test_defaults_alternatives_and_variable_workdirs_reach_commands(tmp_path):
    box = await started(
        tmp_path,
        "FROM debian:bookworm-slim\nARG D=/srv\nENV A= B=${A:-b}\nENV C=${B:+x}\nWORKDIR $D/sub\n",
    )
    try:
        result = await box.exec('echo "$B $C"; pwd')
        assert result.stdout.split() == ["b", "x", "/srv/sub"]
    finally:
        await box.stop(delete=True)


async def test_a_login_shell_reads_roots_profile_as_in_a_debian_image(tmp_path):
    # Debian's /root/.profile sources ~/.bashrc: what a Dockerfile appends there is
    # what `bash -l` (a login shell under tmux, say) sees.
    box = await started(
        tmp_path, "FROM debian:bookworm-slim\nRUN echo 'export GREETING=hello' >> ~/.bashrc\n"
    )
    try:
        result = await box.exec("ls -A /root; bash -lc 'echo greeting=$GREETING'")
        assert ".profile" in result.stdout.split()
        assert "greeting=hello" in result.stdout
    finally:
        await box.stop(delete=True)


async def test_the_entrypoint_runs_at_start_with_harbors_command(tmp_path):
    script = "#!/bin/sh\necho \"$(id -un) in $(pwd): $*\" > /tmp/entrypoint-ran\nexec \"$@\"\n"
    box = await started(
        tmp_path,
        "FROM debian:bookworm-slim\nWORKDIR /app\nCOPY start.sh /start.sh\n"
        'RUN chmod +x /start.sh\nENTRYPOINT ["/start.sh"]\nCMD ["ignored"]\n',
        files={"start.sh": script},
    )
    try:
        for _ in range(50):
            result = await box.exec("cat /tmp/entrypoint-ran 2>/dev/null")
            if result.return_code == 0:
                break
            await asyncio.sleep(0.1)
        assert result.stdout.strip() == "root in /app: sh -c sleep infinity"
        sleeping = await box.exec("ps -eo args | grep -x 'sleep infinity'")
        assert sleeping.return_code == 0  # `exec "$@"` left Harbor's keep-alive running
    finally:
        await box.stop(delete=True)


async def test_start_waits_for_the_images_healthcheck_like_compose_up_wait(tmp_path):
    script = "#!/bin/sh\n(sleep 1; touch /tmp/ready) &\nexec \"$@\"\n"
    box = await started(
        tmp_path,
        "FROM debian:bookworm-slim\nCOPY start.sh /start.sh\nRUN chmod +x /start.sh\n"
        'ENTRYPOINT ["/start.sh"]\n'
        "HEALTHCHECK --interval=1s --start-period=30s --start-interval=200ms "
        "CMD test -f /tmp/ready\n",
        files={"start.sh": script},
    )
    try:
        assert (await box.exec("test -f /tmp/ready")).return_code == 0
    finally:
        await box.stop(delete=True)


async def test_unknown_user_and_a_stopped_sandbox_return_non_zero(tmp_path):
    box = await started(tmp_path, "FROM debian:bookworm-slim\n")
    try:
        unknown = await box.exec("id", user="no-such-user")
        assert unknown.return_code != 0 and "no-such-user" in unknown.stdout
    finally:
        await box.stop(delete=True)
    after = await box.exec("true")
    assert after.return_code != 0 and "not running" in after.stdout


async def test_stderr_merges_into_stdout_and_streams_line_by_line(tmp_path):
    box = await started(tmp_path, "FROM debian:bookworm-slim\n")
    seen = []

    async def on_output(text, stream):
        seen.append((text, stream))

    try:
        with box.scoped_output_callback(on_output):
            result = await box.exec("echo one; echo two >&2; sleep 0.3; printf three")
        assert (result.stdout, result.stderr) == ("one\ntwo\nthree", None)
        assert seen == [("one\n", "stdout"), ("two\n", "stdout"), ("three", "stdout")]
    finally:
        await box.stop(delete=True)


async def test_copy_chown_without_a_group_uses_the_uid_as_gid(tmp_path):
    box = await started(
        tmp_path,
        "FROM debian:bookworm-slim\nRUN useradd -u 1234 -m builder\n"
        "COPY --chown=builder --chmod=640 notes.txt /data/notes.txt\n",
        files={"notes.txt": "hi\n"},
    )
    try:
        result = await box.exec("stat -c '%u:%g %a' /data/notes.txt")
        assert result.stdout.strip() == "1234:1234 640"
    finally:
        await box.stop(delete=True)


def test_what_the_sandbox_cannot_honour_fails_when_the_task_loads(tmp_path):
    with pytest.raises(SandboxUnavailableError, match=r"line 2 \(COPY --from=builder"):
        make_sandbox(tmp_path, "FROM debian:bookworm-slim\nCOPY --from=builder /out /app\n")
