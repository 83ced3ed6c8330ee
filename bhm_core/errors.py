"""Exceptions the library raises for problems a user can fix.

Every one subclasses ValueError so callers that only know the builtin still catch them, and every
message says what was expected and what came (column, row, allowed range), so the dashboard and the
command line can show it as it is, without a traceback.
"""


class BhmError(ValueError):
    """Base of all user-facing errors: the message is meant to be shown verbatim."""


class DataError(BhmError):
    """Input data is missing, malformed or inconsistent."""


class ConfigError(BhmError):
    """A prior, a setting or a feature option is outside its allowed range.

    When the problem is one value, `key` names it as a dotted path of the settings ("fit.learning_rate",
    "priors.promo.mu_scale", "features.trend"), with the `value` given and the `allowed` range in
    words, so that a settings file can name the file and the key, and a form the widget's label.
    """

    def __init__(self, message, *, key: str | None = None, value=None, allowed: str | None = None):
        super().__init__(message)
        self.key, self.value, self.allowed = key, value, allowed


class FitDivergedError(BhmError):
    """SVI produced a non-finite loss; carries the last finite state."""

    def __init__(self, message, *, step=None, last_good=None):
        super().__init__(message)
        self.step = step
        self.last_good = last_good


class ArtifactError(BhmError):
    """A saved fit is missing, corrupt, or was made by other data, settings or library versions."""
