"""`python -m pgaudit`: the same as the `pgaudit` console script, minus the working directory on sys.path.

`python -m` puts the working directory first on the module path, so a submission folder that ships its own
`json.py`, `typer.py` or `numpy.py` would be imported (and run) by pgaudit when started from inside it. That
entry goes before anything else is imported. The one place this cannot guard is a `pgaudit/` package in the
working directory: Python imports it before this file runs; `pgaudit` or `python -P -m pgaudit` avoid that.
"""

import os
import sys


def _strip_cwd() -> None:
    """Drop sys.path entries that are the working directory, unless this very package was loaded from there."""
    home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `pgaudit` itself came from
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:  # the working directory was removed: nothing to shadow from
        return
    kept = []
    for entry in sys.path:
        where = os.path.realpath(entry or os.curdir)
        if where == cwd and where != os.path.realpath(home):
            continue
        kept.append(entry)
    sys.path[:] = kept


_strip_cwd()

from pgaudit.launch import main  # noqa: E402  (after the module path is safe)

main()
