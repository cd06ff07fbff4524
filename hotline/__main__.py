"""`python -m hotline serve | create-admin | create-user`."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from aiohttp import web

from hotline.config import HotlineConfig
from hotline.store import ROLES, Store


def _password(prompt_env: str = "HOTLINE_ADMIN_PASSWORD") -> str:
    password = os.environ.get(prompt_env)
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit(f"no password: set {prompt_env} or run in a terminal")
    first = getpass.getpass("Password (at least 10 characters): ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("the passwords differ")
    return first


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline", description="Hotline handoff service and staff console")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default=os.environ.get("HOTLINE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("HOTLINE_PORT", "8003")))
    for name, role, text in (("create-admin", "supervisor", "create a supervisor"),
                             ("create-user", None, "create a staff account")):
        cmd = sub.add_parser(name, help=text + " (password from HOTLINE_ADMIN_PASSWORD or a prompt)")
        cmd.add_argument("--username", required=True)
        cmd.add_argument("--display-name")
        if role is None:
            cmd.add_argument("--role", choices=ROLES, default="worker")
        cmd.set_defaults(role=role) if role else None
    args = parser.parse_args(argv)
    config = HotlineConfig.from_env()

    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if not config.api_token:
            logging.warning("HOTLINE_API_TOKEN is not set: the ticket API refuses every request")
        from hotline.app import create_app

        web.run_app(create_app(config), host=args.host, port=args.port, access_log=None)
        return 0

    store = Store(config.db_path)
    try:
        user_id = store.create_user(args.username, _password(), args.role, args.display_name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"created {args.role} {args.username!r} (id {user_id}) in {config.db_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
