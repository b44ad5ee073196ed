"""IPython start-up file: checks every figure a chapter draws against the book's limits.

``tests/conftest.py`` copies this file into the start-up folder of a temporary IPython
profile and points ``IPYTHONDIR`` at it, so every kernel nbmake starts runs it. It acts
only when ``AUTOENCODERS_FIGURE_LOG`` names a file (conftest sets it per notebook).

After each cell it draws every open figure, runs
:func:`autoencoders.figure_style.figure_problems` on it, appends the problems to the log
as JSON lines, and closes the figure (the inline backend closes shown figures after
each cell too). The first line of the log says the check was installed, so a kernel
that skipped this file cannot pass as "no problems". conftest turns the log into a
failure of the notebook's test.
"""

import json
import os


def _install_figure_check() -> None:
    log = os.environ.get("AUTOENCODERS_FIGURE_LOG")
    ip = get_ipython()  # noqa: F821 (defined in IPython's start-up namespace)
    if not log or ip is None:
        return

    def write(record: dict) -> None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def check(result) -> None:
        import sys

        if "matplotlib.pyplot" not in sys.modules:
            return
        import matplotlib.pyplot as plt

        cell = (result.info.raw_cell or "").strip().splitlines()
        where = cell[0][:80] if cell else "?"
        try:
            from autoencoders.figure_style import figure_problems

            for num in plt.get_fignums():
                fig = plt.figure(num)
                fig.canvas.draw()
                problems = figure_problems(fig)
                if problems:
                    write({"cell": where, "problems": problems})
                plt.close(fig)
        except Exception as exc:  # a broken check must fail the test, not pass it
            write({"cell": where, "problems": [f"the figure check failed: {exc!r}"]})

    ip.events.register("post_run_cell", check)
    write({"installed": True})


_install_figure_check()
del _install_figure_check
