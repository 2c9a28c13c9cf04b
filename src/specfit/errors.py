"""The one exception type that the command line turns into a one-line ``error:`` message."""


class SpecfitError(ValueError):
    """A problem with what the user asked for or handed in (bad file, bad option, bad value).

    The command line prints ``error: <message>`` and exits with code 2; library callers can catch
    it like any ``ValueError``. ``setting`` names the library setting at fault (e.g.
    ``"shape_target"``), so that a front end can name its own option instead.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting
