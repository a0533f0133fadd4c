"""``python -m collabkit`` is the ``collabkit`` command."""

import sys

from collabkit.cli.main import main

sys.exit(main())
