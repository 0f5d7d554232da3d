"""A bad value of one named setting, whose message names the setting as its reader spelled it.

A config field can be set three ways (a config file, `--config.tune.beta`, the flat alias
`--tune_beta`) and an attack setting two (a config field, a tools.evaluate flag). The check that
finds the bad value knows only the field; the tool that read the input knows how it was spelled.
So the message keeps a `{field}` slot that the tool fills (`spelled`); `str()` fills it with the
field's own name.
"""

from collections.abc import Callable

SLOT = "{field}"


class FieldError(ValueError):
    """`message` holds SLOT where the setting's name goes, e.g. "{field} must be >= 0, got -1."."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(self.spelled(str))

    def spelled(self, spell: Callable[[str], str]) -> str:
        return self.message.replace(SLOT, spell(self.field))

    def renamed(self, field: str) -> "FieldError":
        """The same problem, of the setting the checked value came from."""
        return FieldError(field, self.message)
