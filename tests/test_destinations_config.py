"""destinations.yml (spec/destinations.md): every mistake is a clear error naming the file, the entry
and the field; secrets come only from environment variables, which must be set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from openmrr.cli import app
from openmrr.destinations.config import ANALYTICS_DATASETS, load_destinations
from openmrr.errors import ConfigError

S3 = {"name": "lake", "type": "s3", "settings": {"bucket": "acme", "access_key_id_env": "LAKE_KEY",
                                                 "secret_access_key_env": "LAKE_SECRET"}}
ENV = {"LAKE_KEY": "k", "LAKE_SECRET": "s"}


def _file(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"destinations": list(entries)}))
    return path


def _error(path: Path, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        load_destinations(path, ENV if environ is None else environ)
    return str(raised.value)


def test_a_valid_entry_defaults_to_every_analytics_dataset_and_keeps_its_settings(tmp_path):
    destinations = load_destinations(_file(tmp_path, S3), ENV)
    (lake,) = destinations.destinations
    assert (lake.name, lake.type, lake.schedule) == ("lake", "s3", None)
    assert lake.datasets == ANALYTICS_DATASETS
    assert (lake.settings.bucket, lake.settings.prefix, lake.settings.format) == ("acme", "openmrr", "parquet")
    assert lake.environ(ENV) == {"LAKE_KEY": "k", "LAKE_SECRET": "s"}


def test_an_unknown_type_names_the_entry_and_the_known_types(tmp_path):
    message = _error(_file(tmp_path, S3, {"name": "crm", "type": "salesforce"}))
    assert "destinations.yml: destination 'crm' (entry 2), type: unknown destination type 'salesforce'" in message
    assert "s3" in message and "email" in message


def test_a_missing_environment_variable_names_the_field_and_the_variable(tmp_path):
    message = _error(_file(tmp_path, S3), {"LAKE_KEY": "k"})
    assert message.endswith("destination 'lake' (entry 1), settings.secret_access_key_env:"
                            " environment variable LAKE_SECRET is not set")


def test_environment_variables_can_be_left_unchecked_until_a_destination_is_used(tmp_path):
    lake = load_destinations(_file(tmp_path, S3), {}, check_env=False).get("lake")
    with pytest.raises(ConfigError, match="LAKE_KEY is not set"):
        lake.environ({})


def test_a_bad_cron_schedule_is_rejected(tmp_path):
    message = _error(_file(tmp_path, S3 | {"schedule": "every morning"}))
    assert "destination 'lake' (entry 1), schedule: 'every morning' is not a cron expression" in message


def test_a_missing_setting_and_an_unknown_key_name_their_fields(tmp_path):
    message = _error(_file(tmp_path, {"name": "lake", "type": "s3", "settings": {"region": "eu-west-1"}}))
    assert "destination 'lake' (entry 1), settings.bucket: Field required" in message
    message = _error(_file(tmp_path, S3 | {"shedule": "0 7 * * *"}))
    assert "destination 'lake' (entry 1), shedule: Extra inputs are not permitted" in message


def test_an_unknown_dataset_and_a_duplicate_name_are_rejected(tmp_path):
    assert "datasets: 'mrr' is not a dataset a s3 destination can send" in _error(
        _file(tmp_path, S3 | {"datasets": ["mrr"]}))
    assert "destination 'lake' (entry 2), name: 'lake' is declared twice" in _error(_file(tmp_path, S3, S3))


def test_source_datasets_are_sent_by_their_schema_qualified_name(tmp_path):
    lake = load_destinations(_file(tmp_path, S3 | {"datasets": ["source.invoices", "customers"]}), ENV).get("lake")
    assert lake.datasets == ("source.invoices", "customers")


def test_a_name_that_is_not_an_identifier_and_bad_yaml_are_rejected(tmp_path):
    assert "(entry 1), name: Value error, 'my lake' is not a name: use letters, digits and _" in _error(
        _file(tmp_path, S3 | {"name": "my lake"}))
    path = tmp_path / "destinations.yml"
    path.write_text("destinations:\n  - name: lake\n   type: s3\n")
    assert "destinations.yml, line 3: not valid YAML" in _error(path)


def test_every_warehouse_type_is_accepted_with_a_mode_and_connection_variables(tmp_path):
    entries = [{"name": kind, "type": kind, "settings": {"mode": "load"}}
               for kind in ("duckdb", "postgres", "snowflake", "bigquery", "redshift")]
    entries[1]["settings"]["password_env"] = "PG_PASSWORD"
    destinations = load_destinations(_file(tmp_path, *entries), {"PG_PASSWORD": "x"})
    assert [d.settings.mode for d in destinations.destinations] == ["load"] * 5
    assert "settings.mode: Input should be 'compute' or 'load'" in _error(
        _file(tmp_path, {"name": "pg", "type": "postgres", "settings": {"mode": "copy"}}))
    assert "environment variable PG_PASSWORD is not set" in _error(_file(tmp_path, *entries), {})


def test_the_cli_lists_destinations_and_validate_exits_2_naming_the_unset_variable(tmp_path, monkeypatch):
    path = _file(tmp_path, S3 | {"schedule": "0 7 * * *", "datasets": ["customers"]})
    monkeypatch.setenv("LAKE_KEY", "k")
    monkeypatch.delenv("LAKE_SECRET", raising=False)
    runner = CliRunner()
    listed = runner.invoke(app, ["destinations", "list", "--file", str(path)], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert "lake" in listed.output and "0 7 * * *" in listed.output and "unset: LAKE_SECRET" in listed.output
    checked = runner.invoke(app, ["destinations", "validate", "--file", str(path)], catch_exceptions=False)
    assert checked.exit_code == 2
    assert "environment variable LAKE_SECRET is not set" in checked.output and "Traceback" not in checked.output
    monkeypatch.setenv("LAKE_SECRET", "s")
    assert runner.invoke(app, ["destinations", "validate", "--file", str(path)]).exit_code == 0


def test_a_date_that_does_not_exist_is_a_usage_error_naming_the_field(tmp_path):
    path = tmp_path / "destinations.yml"
    path.write_text("destinations:\n  - name: hook\n    type: webhook\n    settings:\n"
                    "      url: https://hooks.example.com/openmrr\n      secret_env: HOOK_SECRET\n"
                    "      since: 2024-02-30\n")
    result = CliRunner().invoke(app, ["destinations", "validate", "--file", str(path)], env={"HOOK_SECRET": "s"})
    assert result.exit_code == 2, result.output
    assert "since" in result.output and "internal error" not in result.output
    valid = path.read_text().replace("2024-02-30", "2024-02-29")
    path.write_text(valid)
    (hook,) = load_destinations(path, {"HOOK_SECRET": "s"}).destinations
    assert str(hook.settings.since) == "2024-02-29"


def test_sending_to_an_undeclared_destination_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["destinations", "send", "archive", "--file", str(_file(tmp_path, S3)),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "no destination named 'archive' (declared: lake)" in result.output


def test_validate_reports_every_problem_of_the_file_at_once_one_per_line(tmp_path):
    path = _file(
        tmp_path,
        {"name": "crm", "type": "salesforce"},
        {"name": "lake", "type": "s3", "schedule": "every morning", "settings": {"region": "eu-west-1"}},
        S3 | {"name": "lake2", "datasets": ["mrr", "customers"]},
        {"name": "bad-name", "type": "s3", "sheduled": "x", "settings": {"bucket": "b"}},
        S3 | {"name": "lake3"},
    )
    result = CliRunner().invoke(app, ["destinations", "validate", "--file", str(path)], env={"LAKE_KEY": "k"})
    assert result.exit_code == 2, result.output
    lines = [line.removeprefix("error: ") for line in result.output.splitlines()]
    expected = [
        f"{path}: destination 'crm' (entry 1), type: unknown destination type 'salesforce'",
        f"{path}: destination 'lake' (entry 2), settings.bucket: Field required",
        f"{path}: destination 'lake' (entry 2), schedule: 'every morning' is not a cron expression",
        f"{path}: destination 'lake2' (entry 3), datasets: 'mrr' is not a dataset a s3 destination can send",
        f"{path}: destination 'bad-name' (entry 4), name: Value error, 'bad-name' is not a name",
        f"{path}: destination 'bad-name' (entry 4), sheduled: Extra inputs are not permitted",
        f"{path}: destination 'lake3' (entry 5), settings.secret_access_key_env: environment variable LAKE_SECRET"
        " is not set",
    ]
    for problem in expected:
        assert sum(line.startswith(problem) for line in lines) == 1, (problem, result.output)
    assert not any(line.startswith(f"{path}: destination 'lake2'") and "LAKE_SECRET" in line for line in lines[:-2])


def _documented_destination_examples() -> list[str]:
    """Every ```yaml block of README.md and docs/*.md that is a destinations file, or entries of its
    `destinations:` list (shown as `- name: ...`), as the text of a destinations file."""
    import re

    root = Path(__file__).resolve().parent.parent
    pages = "\n".join(path.read_text() for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    examples = []
    for block in re.findall(r"^```yaml\n(.*?)^```", pages, flags=re.S | re.M):
        parsed = yaml.safe_load(block)
        if isinstance(parsed, dict) and "destinations" in parsed:
            examples.append(block)
        elif isinstance(parsed, list) and all(isinstance(e, dict) and "type" in e for e in parsed):
            examples.append("destinations:\n" + "".join(f"  {line}\n" for line in block.splitlines()))
    return examples


def test_every_destinations_example_in_the_docs_passes_validate(tmp_path):
    examples = _documented_destination_examples()
    assert len(examples) >= 4  # the full file, the webhook, Slack and Intercom entries
    for number, example in enumerate(examples):
        path = tmp_path / f"example-{number}.yml"
        path.write_text(example)
        named = {value for entry in yaml.safe_load(example)["destinations"]
                 for key, value in (entry.get("settings") or {}).items() if key.endswith("_env")}
        result = CliRunner().invoke(app, ["destinations", "validate", "--file", str(path)],
                                    env={name: "dummy" for name in named})
        assert result.exit_code == 0, f"documented example {number}:\n{example}\n{result.output}"
