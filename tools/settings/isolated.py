"""Evaluate one Nickel file in this (child) process, bounded in CPU time and memory.

`python -I isolated.py FILE SEARCH...` prints `{"value": ...}` or `{"nickel_error": "..."}`.
The settings tools run given text here, not in the platform's process: the Nickel
binding holds the GIL while it evaluates, so a text that never finishes
(`let rec f = fun x => f x in f 0`) would freeze every tier at once. It imports nothing
of the project, so it starts in tens of milliseconds.
"""

from __future__ import annotations

import json
import resource
import sys

CPU_S = 20
MEMORY_BYTES = 2 * 1024**3


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    import nickel

    target, *search = argv
    try:
        text = nickel.run(f'import "{target}"', search)
    except nickel.NickelException as exc:
        print(json.dumps({"nickel_error": str(exc)}))
        return 0
    print(json.dumps({"value": json.loads(str(text))}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
