"""``python -m chainrule``: the ``chainrule`` command line."""

import sys

from chainrule.cli import main

sys.exit(main())
