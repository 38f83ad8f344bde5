"""Errors a user can cause: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad params, a missing input, an unusable file: something the user can fix."""
