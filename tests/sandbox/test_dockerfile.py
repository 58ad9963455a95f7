import pytest

from autoagent.sandbox.dockerfile import Copy, Run, UnsupportedDockerfile, build_plan, parse


def test_continuations_and_comments_join_into_one_instruction():
    instructions = parse(
        "# a comment\nFROM python:3.11-slim\n\nRUN apt-get update && apt-get install -y \\\n"
        "    tmux \\\n    # a comment inside\n    asciinema\n"
    )
    assert [i.keyword for i in instructions] == ["FROM", "RUN"]
    assert " ".join(instructions[1].words[0].split()) == (
        "apt-get update && apt-get install -y tmux asciinema"
    )
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
        ("FROM a\nRUN <<EOF\necho\n", "unterminated heredoc"),
    ],
)
def test_what_cannot_be_replayed_is_named_with_its_line(text, complaint):
    with pytest.raises(UnsupportedDockerfile, match=complaint) as raised:
        build_plan(text)
    assert "line" in str(raised.value)


DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_env_path_extends_the_base_images_own_path():
    dockerfile = "FROM debian\nENV PATH=/opt/tool/bin:$PATH\n"
    image = build_plan(dockerfile, base_env={"PATH": DEBIAN_PATH})
    assert image.env["PATH"] == f"/opt/tool/bin:{DEBIAN_PATH}"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("${UNSET:-b}", "b"),
        ("${EMPTY:-b}", "b"),
        ("${EMPTY-b}", ""),
        ("${UNSET-b}", "b"),
        ("${SET:-b}", "yes"),
        ("${SET:+x}", "x"),
        ("${EMPTY:+x}", ""),
        ("${EMPTY+x}", "x"),
        ("${UNSET:+x}", ""),
        ("${UNSET:-$SET}", "yes"),
        ("${UNSET:-${SET}-more}", "yes-more"),
        ("$SET/sub", "yes/sub"),
        ("${SET}_x", "yes_x"),
        ("$SET_x", ""),
        ("'$SET'", "$SET"),
        ('"$SET and more"', "yes and more"),
        ("\\$SET", "$SET"),
        ("a\\ b", "a b"),
        ("cost$", "cost$"),
        ("${FILE%.tar.gz}", "pkg-1.0"),
        ("${FILE#*-}", "1.0.tar.gz"),
        ("${FILE##*.}", "gz"),
    ],
)
def test_env_values_expand_every_form_docker_supports(value, expected):
    image = build_plan(f"FROM x\nENV SET=yes EMPTY= FILE=pkg-1.0.tar.gz\nENV R={value}\n")
    assert image.env["R"] == expected


def test_one_env_line_sees_the_values_from_before_it():
    image = build_plan("FROM x\nENV A=old\nENV A=new B=$A\n")
    assert (image.env["A"], image.env["B"]) == ("new", "old")


def test_workdir_expands_variables_and_joins_relative_paths():
    image = build_plan("FROM x\nARG D=/srv\nENV E=data\nWORKDIR $D/sub\nWORKDIR ${E}\n")
    assert image.workdir == "/srv/sub/data"


def test_args_before_from_reach_from_and_a_redeclared_arg():
    image = build_plan("ARG V=3.12\nFROM python:${V}-slim\nARG V\nENV PY=$V\n", {"X": "1"})
    assert image.base == "python:3.12-slim" and image.env["PY"] == "3.12"
    assert build_plan("ARG V=1\nFROM x\nARG V\nENV V=$V\n", {"V": "2"}).env["V"] == "2"


def test_entrypoint_is_kept_in_both_forms():
    assert build_plan('FROM x\nENTRYPOINT ["/start.sh", "-v"]\n').entrypoint == ("/start.sh", "-v")
    assert build_plan('FROM x\nSHELL ["/bin/bash", "-c"]\nENTRYPOINT /start.sh\n').entrypoint == (
        "/bin/bash", "-c", "/start.sh",
    )  # fmt: skip
    assert build_plan('FROM x\nENTRYPOINT ["/a"]\nENTRYPOINT []\n').entrypoint is None


def test_copy_flags_and_paths_expand():
    dockerfile = "FROM x\nENV U=app\nCOPY --chown=$U:$U --chmod=755 ${U}.sh /opt/$U/\n"
    (copy,) = build_plan(dockerfile).steps
    assert (copy.chown, copy.chmod) == ("app:app", "755")
    assert copy.sources == ("app.sh",) and copy.destination == "/opt/app/"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("FROM a\nRUN --mount=type=secret,id=key cat /run/secrets/key\n", "type=secret"),
        ("FROM a\nRUN --mount=target=/src make\n", "type=bind"),
        ("FROM a\nCOPY --exclude=*.md . /app\n", "--exclude"),
        ("FROM a\nUSER app:staff\n", "group"),
        ("FROM a\nENV A=${B:?unset!}\n", "B: unset!"),
        ("FROM a\nENV A=${B/x/y}\n", "unsupported modifier"),
    ],
)
def test_more_of_what_cannot_be_replayed_is_named_with_its_line(text, complaint):
    with pytest.raises(UnsupportedDockerfile, match=complaint) as raised:
        build_plan(text)
    assert "line 2" in str(raised.value)


def test_run_mount_cache_and_user_with_own_group_are_fine():
    image = build_plan(
        "FROM a\nUSER app:app\nRUN --mount=type=cache,target=/root/.cache pip install x\n"
    )
    assert image.user == "app" and image.steps[0].argv[-1] == "pip install x"


def test_healthcheck_keeps_docker_defaults_and_reads_durations():
    check = build_plan(
        "FROM x\nHEALTHCHECK --interval=1m30s --timeout=500ms --retries=5 "
        'CMD ["curl", "-f", "http://a b"]\n'
    ).healthcheck
    assert (check.command, check.interval, check.timeout, check.retries) == (
        "curl -f 'http://a b'", 90.0, 0.5, 5,
    )  # fmt: skip
    assert check.start_period == 0.0
    shell_form = build_plan("FROM x\nHEALTHCHECK CMD curl x || exit 1\n").healthcheck
    assert shell_form.command == "curl x || exit 1"
    assert build_plan("FROM x\nHEALTHCHECK CMD true\nHEALTHCHECK NONE\n").healthcheck is None
    with pytest.raises(UnsupportedDockerfile, match="not a duration"):
        build_plan("FROM x\nHEALTHCHECK --interval=soon CMD true\n")
