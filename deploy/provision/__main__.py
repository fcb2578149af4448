"""`python -m provision`: see the package docstring."""

import sys

from provision.cli import main

sys.exit(main())
