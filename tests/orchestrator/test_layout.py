"""The orchestrator's package layout: every module imports on its own, whichever loads first.

`engine` and `durability` import each other (snapshots and recovery build runtime objects),
so a name imported from a half-initialised module would break only for some import orders.
"""

from __future__ import annotations

import subprocess
import sys

from daemons.common.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "daemons" / "orchestrator"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_orchestrator_module_imports_first_in_a_fresh_interpreter() -> None:
    # One interpreter, the orchestrator's modules dropped from sys.modules between imports.
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('daemons.orchestrator')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    modules = _modules()
    assert len(modules) > 30
    done = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == ""
