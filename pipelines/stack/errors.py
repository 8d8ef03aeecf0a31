"""The one error type of the stack layer: a single readable line, detail goes to the log."""


class StackError(RuntimeError):
    """A local stack component could not be installed, started, reached or stopped.

    `str(err)` is one line naming the component and what went wrong; `detail` holds the
    longer story (e.g. the last lines of the component's log) for the log file or --verbose.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
