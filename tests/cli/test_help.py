"""Every command and every option of the CLI says what it does in --help."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from elax_plan.cli import main


def _commands(command: click.Command, name: str) -> Iterator[tuple[str, click.Command]]:
    yield name, command
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            yield from _commands(sub, f"{name} {sub_name}")


COMMANDS = list(_commands(main, "elax-plan"))


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_option_has_help_text(name: str, command: click.Command) -> None:
    """No option of any command is listed in --help without a sentence saying what it does."""
    missing = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not missing, f"{name}: options without help text: {missing}"
    assert (command.help or "").strip(), f"{name} has no help text"
