"""The one base class of every error that a user's input causes.

The CLI prints such an error as one line (what, where, how to fix) and exits with 2;
anything else is a bug and keeps its traceback. Each module defines its own subclass
(``DatasetError``, ``BuildError``, ...), which also derives from the built-in class it
used to be (RuntimeError, ValueError, KeyError), so existing ``except`` clauses still
catch it. The deploy driver (``hw/driver``) runs on boards without this package
and keeps its own ``DriverError``.
"""


class UserError(Exception):
    """Bad input, a missing file or tool, or a request that cannot be met."""
