"""``python -m defocus``: the ``defocus`` command line (see :mod:`defocus.cli`)."""

import sys

from defocus.cli import main

if __name__ == "__main__":
    sys.exit(main())
