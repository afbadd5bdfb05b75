"""Command line: ``python -m elwh_nb demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elwh-nb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="sign, verify and store realistic deliveries; print a summary")
    demo.add_argument("--events", type=int, default=200, help="how many deliveries (default 200)")
    demo.add_argument("--store", default=None, help="SQLite file (default ./elwh_events.sqlite) or :memory:")
    demo.add_argument("--seed", type=int, default=None, help="seed for the payload factory")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ._demo import run

        run(args.events, store=args.store, seed=args.seed).close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
