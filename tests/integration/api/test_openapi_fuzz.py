"""schemathesis against the published OpenAPI spec of the running bot: no input, however
odd, makes the API answer 5xx, and every answer matches the status codes, content types
and schemas the spec publishes.

Runs the real CLI in a subprocess while this test's loop serves the bot, so the requests
cross a real socket and reach the real broker, risk manager and database.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.integration.api.conftest import TOKEN, running_bot

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.timeout(240)
async def test_fuzzing_the_spec_finds_no_server_errors(tmp_path: Path) -> None:
    async with running_bot(tmp_path, token=TOKEN) as bot:
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            f"{bot.server.url}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--header", f"Authorization: Bearer {TOKEN}",
            "--max-examples", "40",
            "--seed", "7",
            "--generation-database", "none",
            "--request-timeout", "15",
            "--no-color",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 200)
        report = out.decode(errors="replace")
        print(report[-1200:])  # the summary: operations tested, cases generated
        assert proc.returncode == 0, report[-6000:]
        assert "No issues found" in report or "passed" in report, report[-3000:]
        assert bot.gateway.accounts[0] not in report
