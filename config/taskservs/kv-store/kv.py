"""kv: a tiny key-value store, one file per key under a data directory.

Usage: kv get KEY | kv set KEY [VALUE] (stdin when VALUE is omitted) | kv del KEY | kv list
Writes are atomic (temporary file, fsync, rename), so a crash never leaves half a value.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def _key(value: str) -> str:
    if not KEY.match(value):
        raise argparse.ArgumentTypeError(
            f"bad key {value!r}: use letters, digits, '_', '.', '-' (not leading '.' or '-')"
        )
    return value


def _set(data: Path, key: str, value: bytes, limit: int) -> int:
    if len(value) > limit:
        print(f"kv: value is {len(value)} bytes, the limit is {limit}", file=sys.stderr)
        return 2
    tmp = data / f".{key}.{os.getpid()}.tmp"
    with tmp.open("wb") as f:
        f.write(value)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(data / key)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kv", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the data directory")
    parser.add_argument("--max-value-bytes", type=int, default=65536)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("get").add_argument("key", type=_key)
    setter = commands.add_parser("set")
    setter.add_argument("key", type=_key)
    setter.add_argument("value", nargs="?")
    commands.add_parser("del").add_argument("key", type=_key)
    commands.add_parser("list")
    args = parser.parse_args(argv)

    data: Path = args.data
    data.mkdir(parents=True, exist_ok=True)
    if args.command == "list":
        for entry in sorted(data.iterdir()):
            if not entry.name.startswith("."):
                print(entry.name)
        return 0
    target = data / args.key
    if args.command == "get":
        try:
            sys.stdout.buffer.write(target.read_bytes() + b"\n")
        except FileNotFoundError:
            print(f"kv: no key {args.key!r}", file=sys.stderr)
            return 1
        return 0
    if args.command == "del":
        target.unlink(missing_ok=True)
        return 0
    value = args.value.encode() if args.value is not None else sys.stdin.buffer.read()
    return _set(data, args.key, value, args.max_value_bytes)


if __name__ == "__main__":
    sys.exit(main())
