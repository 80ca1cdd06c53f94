"""`python -m sandbox --host 127.0.0.1 --port 8090 [--config sandbox.json] [--seed N] [--quiet]`"""

from __future__ import annotations

import argparse
import json

from sandbox.server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local WhatsApp Cloud API sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--config", help="JSON file with create_app settings (numbers, templates, faults, ...)")
    parser.add_argument("--seed", type=int, help="seed of the RNG behind faults and webhook knobs")
    parser.add_argument("--quiet", action="store_true", help="no access-log line per request")
    args = parser.parse_args(argv)
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    if args.seed is not None:
        config["seed"] = args.seed
    serve_forever(config, host=args.host, port=args.port, quiet=args.quiet)


if __name__ == "__main__":
    main()
