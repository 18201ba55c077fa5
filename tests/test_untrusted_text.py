"""spec/inputs.md "Bad input": text from the inputs is data, never markup. Names, column, folder and file
names, and a receiver's error body are printed literally (no rich markup, control characters visible),
customer names never break a chart (matplotlib mathtext), and a delivered CSV cannot run a formula."""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from openmrr.cli import app
from tests.helpers import base_rows, write_folder
from tests.http_receiver import Receiver, Reply, serving

runner = CliRunner()
# rich markup that crashes ([/x]), links ([link=...]), mathtext ($x^2$) and a spreadsheet formula
HOSTILE = '[/x] $x^2$ [link=http://evil]hi[/link] =HYPERLINK("x")'
MATH_ERROR = "Mega $^$ Corp"  # mathtext matplotlib cannot parse: the chart itself failed
OSC8_LINK = "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\"  # a raw terminal hyperlink
FORMULAS = ('=HYPERLINK("http://evil","click")', "@SUM(1+1)")  # cells a spreadsheet would run
SOURCE = "[black on black]app"  # a folder name that would hide itself
STRAY_FILE = "[link=evil.example]notes.txt"  # a file name cannot hold a slash


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def hostile_folder(folder: Path) -> Path:
    """base_rows with hostile customer names, a plan name with a raw escape sequence, an
    unknown column named `[/x]`, a source folder named as markup and a stray file named as a link."""
    rows = base_rows()
    rows["app/customers"][0].update({"company": HOSTILE, "name": FORMULAS[0], "[/x]": "1"})
    rows["app/customers"][1].update({"company": MATH_ERROR, "name": FORMULAS[1]})
    # both customers churn within the last three months, so both are top movers
    rows["app/cancellations"].append({"subscription_external_id": "s2", "customer_external_id": "c2",
                                      "cancelled_at": "2023-06-15"})
    rows["app/plans"][0]["name"] = f"{HOSTILE} {OSC8_LINK}"  # explain's description names the plan
    write_folder(folder, rows)
    (folder / "app").rename(folder / SOURCE)
    (folder / SOURCE / STRAY_FILE).write_text("not an input file\n")
    for name in ("tags", "custom_attributes"):  # account-level files name the source
        path = folder / f"{name}.csv"
        path.write_text(path.read_text().replace("\napp,", f"\n{SOURCE},"))
    return folder


def assert_literal(output: str) -> None:
    """No traceback, no raw escape character reached the terminal."""
    assert "Traceback" not in output and "internal error" not in output
    assert "\x1b" not in output


@pytest.fixture(scope="module")
def hostile_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`openmrr run` on the hostile folder, once per module: (warehouse, the command's output)."""
    root = tmp_path_factory.mktemp("hostile")
    folder = hostile_folder(root / "data")
    (folder / "openmrr.yml").write_text("as_of: 2023-07-01T00:00:00Z\n")
    result = invoke("run", "--data", str(folder), "--warehouse", str(root / "w.duckdb"))
    assert result.exit_code == 0, result.output
    return root / "w.duckdb", result.output


def test_validate_prints_column_folder_and_file_names_literally(tmp_path):
    result = invoke("validate", "--data", str(hostile_folder(tmp_path / "data")))
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert f"warning: {SOURCE}/customers.csv: unknown columns kept as extra: [/x]" in result.output
    assert f"warning: {SOURCE}/{STRAY_FILE}: not an input file; ignored" in result.output
    assert "valid: every file is within max_bad_row_share" in result.output


def test_run_prints_names_literally_and_charts_a_top_mover_named_with_dollars(hostile_warehouse):
    warehouse, output = hostile_warehouse
    assert_literal(output)
    assert f"{SOURCE}/customers.csv: unknown columns kept as extra: [/x]" in output
    assert "MRR summary" in output
    # the Dagster asset drew the charts on metrics_monthly, both customers among the top movers
    assert (warehouse.parent / "report" / "top_movers.png").stat().st_size > 0


def test_explain_prints_a_plan_name_literally_with_the_escape_sequence_made_visible(hostile_warehouse):
    warehouse, _ = hostile_warehouse
    result = invoke("explain", "--customer", "c1", "--warehouse", str(warehouse))
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert f"s1: purchased the {HOSTILE} \\x1b]8;;http://evil\\x1b\\click\\x1b]8;;\\x1b\\ plan" in result.output
    assert f"from {SOURCE}/line_items.csv line 2" in result.output


def test_explain_names_an_unknown_customer_literally(hostile_warehouse):
    warehouse, _ = hostile_warehouse
    result = invoke("explain", "--customer", "[/x]ghost", "--warehouse", str(warehouse))
    assert result.exit_code == 2
    assert_literal(result.output)
    assert "error: customer '[/x]ghost' not found" in result.output


def test_report_draws_names_with_dollars_as_text(hostile_warehouse, tmp_path):
    warehouse, _ = hostile_warehouse
    result = invoke("report", "--warehouse", str(warehouse), "--out", str(tmp_path / "report"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "<b>" in page and "[/x]" not in page  # names are only drawn in the PNGs, never HTML


def test_report_labels_are_not_mathtext(hostile_warehouse, tmp_path, monkeypatch):
    """$x^2$ is drawn as the five characters, not as x squared: every text is created with parse_math off."""
    import matplotlib.text

    labels: list[tuple[str, bool]] = []
    draw = matplotlib.text.Text.draw

    def recording_draw(self, renderer):
        labels.append((self.get_text(), self.get_parse_math()))
        return draw(self, renderer)

    monkeypatch.setattr(matplotlib.text.Text, "draw", recording_draw)
    warehouse, _ = hostile_warehouse
    assert invoke("report", "--warehouse", str(warehouse), "--out", str(tmp_path)).exit_code == 0
    assert (HOSTILE, False) in labels and (MATH_ERROR, False) in labels


def test_generate_prints_an_output_folder_named_as_markup(tmp_path):
    out = tmp_path / "[/x]" / "data"
    result = invoke("generate", "--customers", "2", "--months", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"Generated{out}" in "".join(result.output.split())  # the title wraps


# --- destinations ---------------------------------------------------------------------------------------


def _run_destination(warehouse: Path, tmp_path: Path, entry: dict, env: dict[str, str], *extra: str):
    """`openmrr destinations send` of one entry, on a copy of the hostile warehouse."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(warehouse, copy)
    file = tmp_path / "destinations.yml"
    file.write_text(yaml.safe_dump({"destinations": [entry]}))
    result = runner.invoke(app, ["destinations", "send", entry["name"], "--warehouse", str(copy),
                                 "--file", str(file), *extra], env=env, catch_exceptions=False)
    return copy, result


@pytest.mark.slow
def test_a_csv_delivery_neutralises_formula_text_and_keeps_numbers(hostile_warehouse, moto_s3, tmp_path):
    import boto3

    warehouse, _ = hostile_warehouse
    bucket = f"openmrr-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    prefix = "exports/[/x]"  # the location printed in the table is markup too
    entry = {"name": "lake", "type": "s3", "datasets": ["customers", "mrr_activities"],
             "settings": {"bucket": bucket, "endpoint_url": moto_s3.endpoint, "region": "us-east-1",
                          "access_key_id_env": "TEST_S3_KEY", "secret_access_key_env": "TEST_S3_SECRET",
                          "prefix": prefix, "format": "csv"}}
    _, result = _run_destination(warehouse, tmp_path, entry, moto_s3.env)
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert f"s3://{bucket}/{prefix}/" in result.output.replace("\n", "").replace("│", "").replace(" ", "")

    def delivered(dataset: str) -> list[dict[str, str]]:
        [key] = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]
                 if f"/{dataset}/" in item["Key"]]
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        return list(csv.DictReader(io.StringIO(body)))

    customers = {row["customer_external_id"]: row for row in delivered("customers")}
    assert [customers[c]["name"] for c in ("c1", "c2")] == ["'" + formula for formula in FORMULAS]
    # only a leading =, +, -, @, tab or CR is a formula: other text is delivered as it is
    assert [customers[c]["company"] for c in ("c1", "c2")] == [HOSTILE, MATH_ERROR]
    movements = delivered("mrr_activities")
    churns = [row["mrr_movement"] for row in movements if row["type"] == "churn"]
    assert len(churns) == 2 and all(value.startswith("-") and float(value) < 0 for value in churns)


@pytest.mark.slow
def test_a_receivers_error_body_is_printed_literally_by_send_and_log(hostile_warehouse, tmp_path):
    warehouse, _ = hostile_warehouse
    body = f"[/x] [link=http://evil]click[/link] [black on black]hidden {OSC8_LINK}"
    with serving(Receiver()) as receiver:
        receiver.plan(Reply(422, body=body.encode()))
        entry = {"name": "hook", "type": "webhook", "datasets": ["mrr_activities"],
                 "settings": {"url": f"{receiver.base_url}/hooks/openmrr", "secret_env": "HOOK_SECRET",
                              "base_delay_seconds": 0.05, "max_delay_seconds": 5, "timeout_seconds": 2}}
        copy, sent = _run_destination(warehouse, tmp_path, entry, {"HOOK_SECRET": "s"})
    assert sent.exit_code == 3, sent.output
    assert_literal(sent.output)
    shown = "[/x] [link=http://evil]click[/link] [black on black]hidden \\x1b]8;;http://evil\\x1b\\click"
    assert f"HTTP 422: {shown}" in sent.output

    logged = invoke("destinations", "log", "--warehouse", str(copy))
    assert logged.exit_code == 0, logged.output
    assert_literal(logged.output)
    # the error is the last column, folded over several lines
    cells = "".join(line.split("│")[-2] for line in logged.output.splitlines() if line.count("│") > 2)
    assert "HTTP422:[/x][link=http://evil]click[/link][blackonblack]hidden" in cells.replace(" ", "")


def test_progress_bars_show_a_file_label_literally(monkeypatch):
    """On a terminal `run` shows bars whose detail column is the file being loaded: its name is data."""
    from types import SimpleNamespace

    from openmrr import cli
    from openmrr.terminal import DataConsole

    terminal = DataConsole(file=io.StringIO(), force_terminal=True, width=160, record=True)
    monkeypatch.setattr(cli, "console", terminal)
    display, callbacks = cli._progress()
    with display:
        callbacks.on_step("ingest")
        callbacks.on_file(SimpleNamespace(label=f"{SOURCE}/[/x]customers.csv\x1b[2J"))
    shown = terminal.export_text()
    assert f"{SOURCE}/[/x]customers.csv\\x1b[2J" in shown and "\x1b" not in shown


@pytest.mark.slow
def test_an_email_attachment_neutralises_formula_text(hostile_warehouse, smtp_server, tmp_path):
    import email
    from email import policy

    warehouse, _ = hostile_warehouse
    entry = {"name": "finance", "type": "email", "datasets": ["customers"],
             "settings": {"host": "127.0.0.1", "port": smtp_server.port, "username_env": "RELAY_USER",
                          "password_env": "RELAY_PASSWORD", "ca_file": str(smtp_server.ca_file),
                          "sender": "openmrr@acme.example", "to": ["cfo@acme.example"]}}
    _, result = _run_destination(warehouse, tmp_path, entry,
                                 {"RELAY_USER": smtp_server.user, "RELAY_PASSWORD": smtp_server.password})
    assert result.exit_code == 0, result.output
    (envelope, _, _), = smtp_server.messages
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    [attachment] = [part.get_content() for part in message.iter_attachments()]
    data = attachment if isinstance(attachment, str) else attachment.decode()
    customers = {row["customer_external_id"]: row for row in csv.DictReader(io.StringIO(data))}
    assert [customers[c]["name"] for c in ("c1", "c2")] == ["'" + formula for formula in FORMULAS]
    assert customers["c1"]["company"] == HOSTILE


def test_the_cli_prints_only_through_the_data_consoles():
    """One way to print: no module builds its own rich Console or markup-parsing TextColumn."""
    from openmrr.paths import PROJECT_ROOT

    for path in [*(PROJECT_ROOT / "openmrr").rglob("*.py"), *(PROJECT_ROOT / "orchestration").rglob("*.py")]:
        if path.name == "terminal.py":
            continue
        source = path.read_text()
        assert "Console(" not in source.replace("DataConsole(", ""), path
        assert "TextColumn(" not in source and "from_markup" not in source, path
