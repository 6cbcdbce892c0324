"""The errors that decide a night's status, below every module that raises or classifies them."""


class InputError(ValueError):
    """The run cannot start: the message names the path or span and the fix."""


class IngestError(RuntimeError):
    """An earlier span tonight's window needs could not be ingested (broken data); names the span."""
