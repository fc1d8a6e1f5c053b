"""`python -m daemons.orchestrator --host 127.0.0.1 --port N`."""

import sys

from daemons.orchestrator.serving.daemon import main

sys.exit(main())
