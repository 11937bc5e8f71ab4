"""The base of every error metarl expects a user to cause and to be able to fix.

The CLI catches `UserError` alone and prints its message as one line with the class's exit
status, so a new error type needs no change to the CLI, and the CLI needs no import of the
module (jax, mlflow) that raises it.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected failure whose message, as it is, tells the user what to change."""

    exit_code: int = 2  # click's own status for usage errors; bad input is one
