"""`python -m servers.cli`: the same as `prvng`."""

import sys

from servers.cli.main import main

sys.exit(main())
