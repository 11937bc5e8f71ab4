"""Turning expected failures into one clear line and an exit code, never a traceback."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from metarl.errors import UserError


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class FriendlyGroup(click.Group):
    """A click group whose commands report known errors without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            fail(str(err), err.exit_code)
