"""The file registers' commands read a period of the register's cadence, or say which one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from typer.testing import CliRunner

from services.cli.files import file_commands
from shared.files.register import FileRegister
from shared.files.settings import FileWorkerSettings


@contextlib.asynccontextmanager
async def no_register(_settings: FileWorkerSettings) -> AsyncIterator[FileRegister]:
    raise AssertionError("a bad period is refused before the register is reached")
    yield  # pragma: no cover


@pytest.mark.parametrize(
    ("periods", "given", "said"),
    [
        ("monthly", "2027-01-15", "periods are monthly (YYYY-MM), not '2027-01-15'"),
        ("daily", "2027-01", "periods are daily (YYYY-MM-DD), not '2027-01'"),
        ("monthly", "2027-13", "month must be 1 to 12"),
    ],
)
@pytest.mark.parametrize("command", ["files", "deliver-now"])
def test_a_period_of_the_wrong_shape_is_a_usage_error(
    periods: str, given: str, said: str, command: str
) -> None:
    app = file_commands(
        "demo",
        lambda: FileWorkerSettings(periods=periods, input_topic="t"),
        no_register,
    )
    result = CliRunner().invoke(app, [command, "--period", given])
    assert result.exit_code == 2
    assert said in " ".join(result.output.replace("│", " ").split())
