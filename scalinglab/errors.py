"""User-facing errors.

Anything a user can cause (a bad file, a config typo, a corrupted database)
raises a subclass of :class:`ScalingLabError` whose message says what went
wrong *and what to do*. The CLI prints that message on one line and exits
with status 2; it never shows a traceback for these.
"""


class ScalingLabError(Exception):
    """Base class for errors caused by input the user can fix."""


class ConfigError(ScalingLabError, ValueError):
    """A sweep, study or CLI setting is invalid; the message names the field."""


class DataError(ScalingLabError):
    """A data file or table is missing, corrupt or unusable."""


class StoreError(ScalingLabError):
    """The run database cannot be used as asked (foreign, corrupt, newer schema)."""


class FitError(ScalingLabError, ValueError):
    """A fit cannot be attempted on the given data (too few points, bad values)."""
