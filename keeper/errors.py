"""The user-facing error of the command line (the lowest room: anything may raise it)."""


class CliError(Exception):
    """A user-facing error: `keeper` prints it without a traceback and exits with code 2."""
