"""``python -m eqfree``: the ``eqfree`` command line (:func:`eqfree.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
