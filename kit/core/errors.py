"""One exception type for mistakes a user can fix.

The CLI turns a :class:`UserError` into a one-line message and exit code 2, with no traceback:
a missing file or a wrong flag is not a bug in the kit, and a stack trace would only hide the
sentence that says what to do. Anything else that escapes is a bug and keeps its traceback.
In a notebook (IPython) a :class:`UserError` shows as the same one line.
"""


class UserError(Exception):
    """Bad input, a missing file, an unsupported device: something the user can fix.

    The message should name the file (and line, where there is one) and say what is wrong.
    """

    exit_code = 2

    def _render_traceback_(self) -> list:
        """How IPython shows it in a notebook: the same one line as the CLI (``UserError: <message>``), no traceback.

        ``kit workshop`` recognises a notebook's user error by this rendering
        (:func:`kit.workshop.runner.user_error_in`).
        """
        return [f"{type(self).__name__}: {self}"]
