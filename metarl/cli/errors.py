"""Turning expected failures into one clear line and an exit code, never a traceback."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from metarl.envs.registry import EnvParamError, UnknownEnvError
from metarl.outer.checkpoint import CheckpointError
from metarl.spec.loader import SpecError
from metarl.tracking import TrackingUnavailable

# exit status 2 is click's own for usage errors; bad specs are usage errors too
USER_ERRORS: dict[type[BaseException], int] = {
    SpecError: 2, UnknownEnvError: 2, EnvParamError: 2, TrackingUnavailable: 1,
    CheckpointError: 1,
}


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class FriendlyGroup(click.Group):
    """A click group whose commands report known errors without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except tuple(USER_ERRORS) as err:
            fail(str(err), USER_ERRORS[type(err)])
