import pytest

from autoagent.sandbox.dockerfile import Copy, Run, UnsupportedDockerfile, build_plan, parse


def test_continuations_and_comments_join_into_one_instruction():
    instructions = parse(
        "# a comment\nFROM python:3.11-slim\n\nRUN apt-get update && apt-get install -y \\\n"
        "    tmux \\\n    # a comment inside\n    asciinema\n"
    )
    assert [i.keyword for i in instructions] == ["FROM", "RUN"]
    assert instructions[1].arguments == "apt-get update && apt-get install -y tmux asciinema"
    assert instructions[1].line == 4


def test_env_arg_workdir_and_user_shape_the_image():
    image = build_plan(
        "FROM ubuntu:24.04\nARG VERSION=1.2\nENV PYTHONPATH=/app:$PYTHONPATH TOOL=v${VERSION}\n"
        "ENV LEGACY some value\nWORKDIR /srv\nWORKDIR app\nUSER agent\n"
    )
    assert image.base == "ubuntu:24.04"
    assert image.env == {"PYTHONPATH": "/app:", "TOOL": "v1.2", "LEGACY": "some value"}
    assert image.workdir == "/srv/app"
    assert image.user == "agent"


def test_run_steps_carry_the_state_at_their_line():
    image = build_plan(
        "FROM debian\nWORKDIR /app\nENV A=1\nRUN echo $A\nUSER nobody\nRUN [\"ls\", \"-l\"]\n"
        'SHELL ["/bin/bash", "-c"]\nRUN echo bash\n'
    )
    first, second, third = image.steps
    assert isinstance(first, Run)
    assert first.argv == ("/bin/sh", "-c", "echo $A")
    assert (first.workdir, first.env, first.user) == ("/app", {"A": "1"}, None)
    assert second.argv == ("ls", "-l") and second.user == "nobody"
    assert third.argv == ("/bin/bash", "-c", "echo bash")


def test_copy_destinations_resolve_against_workdir():
    image = build_plan(
        "FROM x\nWORKDIR /app\nCOPY feal.py ./\nCOPY trunc.db /app\nCOPY --chown=1000:1000 data /data\n"
    )
    relative, absolute, owned = image.steps
    assert isinstance(relative, Copy)
    assert relative.destination.endswith("/") and relative.sources == ("feal.py",)
    assert absolute.destination == "/app"
    assert owned.chown == "1000:1000" and owned.destination == "/data"


def test_heredocs_become_the_script_or_the_file():
    image = build_plan(
        "FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<CONF /etc/app.conf\nkey=value\nCONF\n"
    )
    run, copy = image.steps
    assert run.argv == ("/bin/sh", "-c", "echo one\necho two\n")
    assert copy.content == "key=value\n" and copy.destination == "/etc/app.conf"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("FROM a AS build\nFROM b\n", "multi-stage"),
        ("FROM a\nCOPY --from=build /x /y\n", "--from"),
        ("FROM a\nADD https://example.com/x.tgz /x\n", "URL"),
        ("FROM a\nFROBNICATE now\n", "unknown instruction"),
        ("FROM a\nRUN <<EOF\necho\n", "never closed"),
    ],
)
def test_what_cannot_be_replayed_is_named_with_its_line(text, complaint):
    with pytest.raises(UnsupportedDockerfile, match=complaint) as raised:
        build_plan(text)
    assert "line" in str(raised.value)
