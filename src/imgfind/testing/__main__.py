"""``python -m imgfind.testing make-model DIR [--size tiny|vit-b-32] [--seed N]``."""

from __future__ import annotations

import argparse
import sys

from . import SIZES, make_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgfind.testing",
                                     description="Tools for tests and benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make-model", help="write a random-weight CLIP model folder "
                                           "in the Immich layout")
    mk.add_argument("dir", help="folder to write: new, empty, or an earlier test model")
    mk.add_argument("--size", choices=sorted(SIZES), default="tiny")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--no-reference", action="store_true",
                    help="skip the transformers copy in reference/")
    args = parser.parse_args(argv)
    path = make_model(args.dir, args.size, seed=args.seed, reference=not args.no_reference)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
