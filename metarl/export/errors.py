"""The one error type of `metarl.export`."""

from metarl.errors import UserError


class ExportError(UserError):
    """A rule could not be exported, or an exported module could not be used; the message
    names the file and says what to do."""
