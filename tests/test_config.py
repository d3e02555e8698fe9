"""Configuration: every kind of bad file gets a message naming the key; env overrides work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.agent.cli import app
from vigil.agent.config import Config, config_schema, load_config, redacted
from vigil.core import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ or {})
    return info.value.problems


def test_empty_file_and_no_file_give_safe_defaults(tmp_path: Path) -> None:
    for cfg in (load_config(write(tmp_path, ""), {}), load_config(None, {})):
        assert cfg.guardrails.dry_run is True
        assert "kube-system" in cfg.guardrails.namespaces_deny
        assert cfg.llm.provider == "none"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prometheus:\n  urll: http://x\n", "prometheus.urll: unknown key; allowed keys here:"),
        ("nonsense: 1\n", "nonsense: unknown key; allowed keys here: agent,"),
        ("prometheus:\n  timeout: -3\n", "prometheus.timeout: Input should be greater than 0"),
        ("prometheus:\n  url: ftp://x\n", "prometheus.url: Value error, must start with http://"),
        (
            "guardrails:\n  dry_run: perhaps\n",
            "guardrails.dry_run: Input should be a valid boolean",
        ),
        ("logging:\n  format: xml\n", "logging.format: Input should be 'text' or 'json'"),
        ("llm:\n  provider: openai\n", "llm.model is required when llm.provider is 'openai'"),
        ("notify:\n  slack:\n    chanel: x\n", "notify.slack.chanel: unknown key"),
        ("prometheus: [1, 2]\n", "prometheus: Input should be a valid dictionary"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(write(tmp_path, text))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "prometheus:\n  timeout: 0\n  retries: 99\nfoo: 1\n"))
    assert len(found) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prometheus:\n  url: [unclosed\n", "not valid YAML at line"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_unparseable_files(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in " ".join(problems(write(tmp_path, text)))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", {})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus:\n  url: http://prom:9090\n  timeout: 10\n")
    env = {
        "VIGIL_PROMETHEUS__TIMEOUT": "2.5",
        "VIGIL_NOTIFY__SLACK__TOKEN": "0123",
        "VIGIL_NOTIFY__SLACK__CHANNEL": "#ops",
        "VIGIL_GUARDRAILS__NAMESPACES_ALLOW": "[shop, payments]",
        "UNRELATED": "x",
    }
    cfg = load_config(path, env)
    assert cfg.prometheus.url == "http://prom:9090"
    assert cfg.prometheus.timeout == 2.5
    assert cfg.guardrails.namespaces_allow == ("shop", "payments")
    assert cfg.notify.slack.token is not None
    assert cfg.notify.slack.token.get_secret_value() == "0123"


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    found = problems(write(tmp_path, ""), {"VIGIL_PROMETHEUS__RETRIES": "many"})
    assert any("VIGIL_PROMETHEUS__RETRIES" in p for p in found), found


def test_kube_system_is_always_denied(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "guardrails:\n  namespaces_deny: [dev]\n"), {})
    assert cfg.guardrails.namespaces_deny == ("dev", "kube-system")


def test_redacted_hides_every_secret() -> None:
    cfg = load_config(
        None,
        {
            "VIGIL_NOTIFY__SLACK__TOKEN": "xoxb-secret-1",
            "VIGIL_NOTIFY__SLACK__CHANNEL": "#ops",
            "VIGIL_NOTIFY__WEBHOOK__SECRET": "hmac-secret-2",
            "VIGIL_PROMETHEUS__PASSWORD": "pw-secret-3",
            "VIGIL_LLM__API_KEY": "sk-secret-4",
        },
    )
    text = json.dumps(redacted(cfg))
    for secret in ("xoxb-secret-1", "hmac-secret-2", "pw-secret-3", "sk-secret-4"):
        assert secret not in text
    assert text.count('"***"') == 4


def test_schema_covers_every_group() -> None:
    schema = config_schema()
    assert set(schema["properties"]) == set(Config.model_fields)
    assert schema["additionalProperties"] is False


runner = CliRunner()


def test_cli_validate_reports_and_exits_2(tmp_path: Path) -> None:
    bad = write(tmp_path, "prometheus:\n  urll: x\n")
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert "prometheus.urll: unknown key" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("agent:\n  interval: 30\n")
    result = runner.invoke(app, ["config", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_cli_show_redacts_and_schema_is_json(tmp_path: Path) -> None:
    cfg = write(tmp_path, "notify:\n  slack:\n    token: xoxb-very-secret\n    channel: ops\n")
    result = runner.invoke(app, ["--config", str(cfg), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "xoxb-very-secret" not in result.output
    assert json.loads(result.output)["notify"]["slack"]["token"] == "***"
    result = runner.invoke(app, ["config", "schema"])
    assert json.loads(result.output)["title"] == "vigil configuration"
