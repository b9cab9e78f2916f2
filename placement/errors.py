"""The package's error family.

`InputError` and its children are the user's fault (bad file, bad option): the CLI
prints them in one line and exits 2. `PlacementError` that is not an `InputError`
is ours: exit 1. Running out of time or finding no plan is *not* an exception: it is
a plan status (see `placement.plan.Status`).
"""

from __future__ import annotations


class PlacementError(Exception):
    """Base class of every error the package raises on purpose."""


class InputError(PlacementError):
    """Bad input from the user: a file, a field, an option. CLI exit code 2."""


class ProblemError(InputError):
    """A problem file breaks a rule of SPEC section 3.

    The message names the file, the field path (``model.blocks[3].flops``), what was
    expected and what was found.
    """

    def __init__(self, field: str, expected: str, found: object = None, *, file: str | None = None,
                 detail: str | None = None):
        self.file = file
        self.field = field
        self.expected = expected
        self.found = found
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.file}: " if self.file else ""
        text = f"{where}{self.field}: expected {self.expected}"
        if self.found is not None:
            text += f", found {_short(self.found)}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def in_file(self, file: str | None) -> "ProblemError":
        """The same error, attributed to ``file``."""
        if file and not self.file:
            self.file = file
            self.args = (self._message(),)
        return self


class PlanError(InputError):
    """A plan file or plan dict is malformed (not merely infeasible)."""


class MethodError(InputError):
    """Unknown method name, or a method asked for an objective it does not support."""


class UnsupportedFeatureError(MethodError):
    """A method asked to solve a problem with a feature it does not support (SPEC section 8):
    the message names the feature and the methods that support it. ``compare`` shows such a
    row as ``unsupported``."""

    def __init__(self, message: str, feature: str):
        self.feature = feature
        super().__init__(message)


def closest(word: str, choices) -> str | None:
    """The valid name closest to ``word`` (case-insensitive first), or None."""
    import difflib

    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.5)
    return lower[close[0]] if close else None


def did_you_mean(word: str, choices) -> str | None:
    """``"did you mean 'x'?"`` for the closest valid name, or None."""
    best = closest(word, choices)
    return f"did you mean '{best}'?" if best else None


def fmt_bytes(n: float) -> str:
    """Bytes in decimal units (kB, MB, GB), as everywhere the package prints memory."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


class JsonKind(str):
    """A JSON type word (``an array``) shown as found, unquoted."""


def json_kind(value: object) -> JsonKind:
    """What a value is, in JSON's words: an object, an array, a string, a number, true/false, null."""
    if value is None:
        return JsonKind("null")
    if isinstance(value, bool):
        return JsonKind("true" if value else "false")
    if isinstance(value, (int, float)):
        return JsonKind("a number")
    if isinstance(value, str):
        return JsonKind("a string")
    if isinstance(value, (list, tuple)):
        return JsonKind("an array")
    if isinstance(value, dict):
        return JsonKind("an object")
    return JsonKind(type(value).__name__)


def _short(value: object, limit: int = 80) -> str:
    """A found value as JSON writes it (true, null, "text", [1, 2]), cut to ``limit``."""
    import json
    if isinstance(value, JsonKind):
        return str(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
