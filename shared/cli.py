"""Operator commands.

    python -m shared.cli create-superadmin --email ops@example.com [--name "Ops"]
    python -m shared.cli rotate-secrets

The password is read from PYTAKE_SUPERADMIN_PASSWORD or asked for (never a command-line
argument, which would land in shell history). `make superadmin EMAIL=...` runs it against
the embedded stores.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from shared.db import unit_of_work
from shared.errors import DomainError
from shared.services.users import create_superadmin


def _password() -> str:
    password = os.environ.get("PYTAKE_SUPERADMIN_PASSWORD")
    if password:
        return password
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise SystemExit("The passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-superadmin", help="create a platform super_admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Platform admin")
    commands.add_parser("rotate-secrets",
                        help="re-encrypt stored WhatsApp credentials and AI keys with the first ENCRYPTION_KEYS key")
    args = parser.parse_args(argv)

    if args.command == "rotate-secrets":
        from shared.services.ai_settings import rotate_ai_keys
        from shared.services.numbers import rotate_secrets

        with unit_of_work() as session:
            print(f"re-encrypted the credentials of {rotate_secrets(session)} numbers "
                  f"and the AI keys of {rotate_ai_keys(session)} organizations")
        return 0
    try:
        with unit_of_work() as session:
            user = create_superadmin(session, email=args.email, password=_password(), full_name=args.name)
            print(f"super_admin {user.email} created (id {user.id})")
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
