"""The errors a user sees as one line, and the exit codes any entry script can rely on.

``UserError`` is a problem with the user's input (a file, a flag, a config); its message says
what to fix. The entry scripts print it as ``error: ...`` and exit with ``EXIT_USAGE``.
A program's own exit codes beyond these (a diverged training run, say) are its business:
it describes them to the engine through ``program.ProgramHooks.describe_exit``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: config, data, flags
EXIT_INTERRUPTED = 130  # ended by Ctrl-C (128 + SIGINT), as a shell reports it
EXIT_BROKEN_PIPE = 141  # its reader went away (`... | head`): 128 + SIGPIPE, as a shell reports


class UserError(Exception):
    """A problem with the user's input (file, flag, config); the message says what to fix."""


class StoppedEmptyHanded(Exception):
    """A stop (Ctrl-C, SIGTERM) that came before the program had anything to keep. It is
    no fault of the input, so the entry scripts print it as ``stopped: ...`` and exit with
    ``EXIT_INTERRUPTED``, as any interrupted program does."""


class ConfigError(UserError, ValueError):
    """A config (a sweep YAML, a sweep ID) that cannot be used; the message names where."""
