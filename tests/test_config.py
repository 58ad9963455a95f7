from dataclasses import replace

import pytest

from autoagent import config
from autoagent.config import ConfigError
from autoagent.loop import Settings


def write(tmp_path, text: str):
    (tmp_path / "tasks").mkdir(exist_ok=True)
    path = tmp_path / "autoagent.toml"
    path.write_text(text)
    return path


def test_defaults_and_the_meta_model_follows_the_agent(tmp_path):
    loaded = config.load(write(tmp_path, '[agent]\nmodel = "openai/gpt-5"\napi_base = "http://x/v1"\n'))
    assert loaded.tasks.path == "tasks" and loaded.run.concurrency == 4
    settings = Settings(model=loaded.agent.model, api_base=loaded.agent.api_base)
    assert settings.meta_endpoint() == ("openai/gpt-5", "http://x/v1")  # model and endpoint both
    other = config.load(write(tmp_path, '[meta]\nmodel = "anthropic/claude-sonnet-4-5"\n'))
    assert other.agent.model == config.DEFAULT_MODEL and other.meta.api_base is None
    # A meta-agent model of its own (in autoagent.toml or --meta-model) never borrows the agent's endpoint.
    assert replace(settings, meta_model="anthropic/claude-sonnet-4-5").meta_endpoint() == \
        ("anthropic/claude-sonnet-4-5", None)


def test_unknown_key_names_file_line_and_the_known_keys(tmp_path):
    path = write(tmp_path, '[run]\nconcurrency = 2\nparallelism = 8\n')
    with pytest.raises(ConfigError) as raised:
        config.load(path)
    message = str(raised.value)
    assert f"{path}, line 3" in message
    assert "unknown setting [run] parallelism" in message
    assert "concurrency" in message and "environment" in message


def test_wrong_type_names_the_setting_and_value(tmp_path):
    path = write(tmp_path, '[tasks]\npath = "tasks"\n\n[run]\nattempts = "three"\n')
    with pytest.raises(ConfigError, match=r"line 5: \[run\] attempts: Input should be a valid integer.*'three'"):
        config.load(path)


def test_missing_task_dir_says_what_to_do(tmp_path):
    path = tmp_path / "autoagent.toml"
    path.write_text('[tasks]\npath = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"line 2: \[tasks\] path = 'nowhere'.*is not a directory"):
        config.load(path)


def test_unknown_model_is_rejected_with_advice(tmp_path):
    path = write(tmp_path, '[agent]\nmodel = "gpt-9000-ultra"\n')
    loaded = config.load(path)  # reading the file needs no LiteLLM (autoagent status stays fast)
    with pytest.raises(ConfigError, match=r"line 2: \[agent\] model: LiteLLM does not know the model 'gpt-9000-ultra'"):
        config.check_models(path, loaded)


def test_broken_toml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        config.load(write(tmp_path, '[run]\nconcurrency = \n'))


def test_parent_selection_is_best_unless_set_to_frontier(tmp_path):
    assert config.load(write(tmp_path, "")).decision.parents == "best"
    assert config.load(write(tmp_path, '[decision]\nparents = "frontier"\n')).decision.parents == "frontier"
    with pytest.raises(ConfigError, match=r"line 3: \[decision\] parents: Input should be 'best' or 'frontier'"):
        config.load(write(tmp_path, '[decision]\ngate = "paired"\nparents = "pareto"\n'))


def test_the_start_rate_from_the_template_reaches_the_loop(tmp_path):
    from autoagent import workspace

    root = workspace.init(tmp_path / "ws", model="scripted/examples").root
    assert Settings.from_workspace(workspace.Workspace(root)).start_rate is None  # unset: starts are not spaced
    toml = root / "autoagent.toml"
    toml.write_text(toml.read_text().replace("# start_rate = 2", "start_rate = 2"))
    assert Settings.from_workspace(workspace.Workspace(root)).start_rate == 2
    toml.write_text(toml.read_text().replace("start_rate = 2", "start_rate = 0"))
    with pytest.raises(ConfigError, match="start_rate"):
        Settings.from_workspace(workspace.Workspace(root))
