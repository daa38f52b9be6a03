"""``python -m imgfind.testing make-model DIR [--size tiny|vit-b-32] [--seed N]
[--layout immich|transformers.js]`` and ``python -m imgfind.testing milvus-server DIR
--port P``."""

from __future__ import annotations

import argparse
import sys

from . import LAYOUTS, SIZES, make_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgfind.testing",
                                     description="Tools for tests and benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make-model", help="write a random-weight CLIP model folder "
                                           "in the Immich or transformers.js layout")
    mk.add_argument("dir", help="folder to write: new, empty, or an earlier test model")
    mk.add_argument("--size", choices=sorted(SIZES), default="tiny")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--layout", choices=LAYOUTS, default="immich",
                    help="immich: visual/ + textual/ (default); transformers.js: onnx/ + "
                         "preprocessor_config.json, MobileCLIP-like settings")
    mk.add_argument("--dim", type=int, default=None,
                    help="vector width instead of the size's (the model name says it)")
    mk.add_argument("--no-reference", action="store_true",
                    help="skip the transformers copy in reference/")
    ms = sub.add_parser("milvus-server", help="run a local Milvus Lite gRPC server on "
                                              "127.0.0.1 (for --store milvus://127.0.0.1:P)")
    ms.add_argument("dir", help="data folder (created if missing)")
    ms.add_argument("--port", type=int, default=19530, help="TCP port; 0 picks a free one")
    args = parser.parse_args(argv)
    if args.command == "milvus-server":
        from .milvus_server import serve
        return serve(args.dir, args.port)
    path = make_model(args.dir, args.size, seed=args.seed, reference=not args.no_reference,
                      layout=args.layout, dim=args.dim)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
