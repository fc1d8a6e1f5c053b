"""After start-up, move what start-up made out of the collector's way (`gc.freeze`).

A full (generation 2) collection walks every tracked object; in a started keeper or
controller most of them are modules, models and schemas that live as long as the
process, so a burst of ops paid a pause of tens of milliseconds whenever one ran
(`python -m bench.ops`: a gen-2 pause of ~180 ms under load in 1,000 ops, ~6 ms with
the start-up heap frozen). Frozen objects are not collected (garbage found first is),
so it is done once per process: by whichever of keeper and controller started first.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_heap() -> None:
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
