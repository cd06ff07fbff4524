"""``python -m reminders serve [--host 127.0.0.1] [--port 8002]``"""
from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from .api import create_app
from .config import Config
from .phones import install_log_masking


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reminders")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="run the reminders API and sweep worker")
    sp.add_argument("--host", default=None)
    sp.add_argument("--port", type=int, default=None)
    sp.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one INFO line per sweep otherwise
    cfg = Config.from_env()
    if args.host:
        cfg.host = args.host
    if args.port:
        cfg.port = args.port
    if not cfg.api_token:
        logging.getLogger("reminders").warning("REMINDERS_API_TOKEN is not set: the API is unauthenticated")
    web.run_app(create_app(cfg), host=cfg.host, port=cfg.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
