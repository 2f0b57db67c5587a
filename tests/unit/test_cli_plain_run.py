"""``run`` with plain arguments skips Typer's command tree: the values it passes must be the ones Typer would pass."""

from __future__ import annotations

import inspect
import io
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from dativo_ingest import cli, cli_app, commands
from dativo_ingest.commands import run_jobs

PLAIN = [
    [],
    ["--config", "jobs/acme/x.yaml"],
    ["-c", "jobs/acme/x.yaml", "--secrets-dir", "secrets"],
    ["--config=jobs/acme/x.yaml", "--secrets-dir=/abs/secrets"],
    ["--job-dir", "jobs/acme", "--workers", "3", "--tenant", "acme", "--mode", "cloud"],
    ["--job-dir", "jobs/acme", "--tenant-id", "acme", "--runner-config", "configs/runner.yaml"],
    ["--config", "x.yaml", "--dry-run", "--refresh-catalog", "--debug", "--log-format", "json"],
    ["--config", "x.yaml", "--log-format", "yaml"],  # refused by run itself, with its own message
    ["--workers", "12"],
]

NOT_PLAIN = [
    ["--help"],
    ["--config"],  # no value
    ["--config", "-x.yaml"],  # a value that looks like an option
    ["--config", ""],
    ["--config="],
    ["--config", "a.yaml", "--config", "b.yaml"],  # given twice
    ["--config", "a.yaml", "-c", "b.yaml"],
    ["--workers", "0"],
    ["--workers", "-1"],
    ["--workers", "02"],
    ["--workers", "two"],
    ["--workers", "²"],
    ["--dry-run=yes"],
    ["--no-dry-run"],
    ["-cx.yaml"],
    ["-c=x.yaml"],
    ["--conf", "x.yaml"],  # no abbreviations
    ["--config", "x.yaml", "extra"],
    ["--", "--config", "x.yaml"],
    ["--unknown"],
]


def typer_params(args: list[str]) -> dict[str, Any]:
    """The parameters Typer's own parser gives ``run`` for ``args``."""
    group = typer.main.get_command(cli_app.app)
    with group.make_context("dativo_ingest", ["run", *args]) as ctx:
        command = group.get_command(ctx, "run")
        assert command is not None
        with command.make_context("run", list(args), parent=ctx) as sub:
            return dict(sub.params)


def defaults() -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(cli_app.run).parameters.items()}


def test_run_jobs_has_the_defaults_of_the_run_command() -> None:
    """A plain ``run`` passes only the options given: ``run_jobs`` supplies the rest, as the command would."""
    assert {name: p.default for name, p in inspect.signature(run_jobs).parameters.items()} == defaults()


@pytest.mark.parametrize("args", PLAIN, ids=" ".join)
def test_plain_arguments_give_run_what_typer_gives_it(args: list[str]) -> None:
    plain = cli.plain_run_args(args)
    assert plain is not None
    assert {**defaults(), **plain} == typer_params(args)


@pytest.mark.parametrize("args", NOT_PLAIN, ids=" ".join)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert cli.plain_run_args(args) is None


def test_every_option_of_run_is_known_with_its_names() -> None:
    """An option renamed or added in ``run`` must be renamed or added in ``plain_run_args`` too (else: not plain)."""
    group = typer.main.get_command(cli_app.app)
    with group.make_context("dativo_ingest", ["run"]) as ctx:
        command = group.get_command(ctx, "run")
        assert command is not None
        names = {opt: p.name for p in command.params for opt in p.opts if opt != "--help"}
    assert names == {**cli.RUN_VALUE_OPTIONS, **cli.RUN_FLAGS}


def test_paths_are_paths() -> None:
    assert cli.plain_run_args(["--config", "a.yaml"]) == {"config": Path("a.yaml")}


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream_class", [io.TextIOWrapper, _Terminal])
@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
@pytest.mark.parametrize(("message", "nl"), [("ok → \x1b[31mred\x1b[0m ü", True), ("", True), ("", False),
                                              ("no newline", False)])
def test_echo_writes_what_typer_echo_writes(monkeypatch: pytest.MonkeyPatch, stream_class: type, encoding: str,
                                            message: str, nl: bool) -> None:
    written = []
    for echo in (commands.echo, typer.echo):
        for err in (False, True):
            stream = stream_class(io.BytesIO(), encoding=encoding, errors="replace")
            monkeypatch.setattr(sys, "stderr" if err else "stdout", stream)
            echo(message, err=err, nl=nl)
            written.append(stream.buffer.getvalue())
    assert written[:2] == written[2:]
