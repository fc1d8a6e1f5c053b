"""At the end of start-up, move what start-up made out of the collector's way (`gc.freeze`).

A full (generation 2) collection walks every tracked object; in a started process most of
them are modules, models and schemas that live as long as the process, so a burst of
calls paid a pause of tens of milliseconds whenever one ran (`python -m bench.ops`: a gen-2
pause of ~180 ms under load in 1,000 ops, ~6 ms with the start-up heap frozen;
`python -m bench.orchestrator`: the stall of a 1 MiB `workflow.submit`). Frozen objects
are never collected, so only start-up calls this: each daemon when it has started, and
the platform once all its components have (a second call freezes what came since).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()  # garbage is collected, not frozen
    gc.freeze()
