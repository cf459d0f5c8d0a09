"""The runbook in docs/operating.md, run: every `tools/ops.py` command it gives, in order,
against the emulator, with its AWS profiles swapped for the emulator's endpoint. On a healthy
deployment each must succeed; tests/test_ops_*.py cover what they do when something is wrong.
The Chinese runbook must give the same commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from deployment.names import CHINA, GLOBAL
from replication.stamping import stamp
from tools import ops

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "operating.md"
OPS_LINE = re.compile(r"^python tools/ops\.py .*$", re.MULTILINE)


def runbook_commands(path: Path, heading: str) -> list[str]:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start)
    return OPS_LINE.findall(text[start : end if end != -1 else None])


def test_the_runbook_gives_commands_for_each_scenario():
    commands = runbook_commands(RUNBOOK, "## Runbook")
    used = {shlex.split(c)[2] for c in commands}
    assert used == {"backfill", "verify", "status", "redrive"}
    assert any("--retry-poison" in c for c in commands)


def test_the_chinese_runbook_gives_the_same_commands():
    english = runbook_commands(RUNBOOK, "## Runbook")
    chinese = runbook_commands(ROOT / "docs" / "zh-CN" / "operating.md", "## 处置手册")
    assert chinese == english


def test_every_runbook_command_succeeds_on_a_healthy_deployment(
    deployment, tmp_path, monkeypatch, capsys
):
    for region, table in ((CHINA, "user-cn"), (GLOBAL, "user-sg")):
        ddb = deployment.regions[region].client("dynamodb")
        for i in range(15):
            item = stamp(
                {"PK": {"S": f"runbook-{region}-{i}"}, "n": {"N": str(i)}}, region, typed=True
            )
            ddb.put_item(TableName=table, Item=item)
    assert deployment.wait_until_converged(90)
    monkeypatch.chdir(tmp_path)  # backfill checkpoints land in the working directory

    url = deployment.endpoint_url
    for command in runbook_commands(RUNBOOK, "## Runbook"):
        argv = shlex.split(command)[2:]
        argv = re.sub(
            r"--profile \S+ --peer-profile \S+",
            f"--endpoint-url {url} --peer-endpoint-url {url}",
            " ".join(argv),
        ).split()
        code = ops.main([*argv, "--quiet"])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}\n{out}\n{err}"
