"""``python -m service.auth``: create, list and revoke API keys in the service's database
(``DATABASE_URL``; ``AUTO_MIGRATE=true`` migrates it first, as the service does).

    python -m service.auth create --role portal --name "某区一网通办" --applicant 91310000MA1FL8XQ37
    python -m service.auth create --role reviewer --name "评审处 张三" --by "admin 李四"
    python -m service.auth list
    python -m service.auth revoke 3 --by "admin 李四"

The new key is printed once, on standard output; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence

from service.auth import keys
from service.auth.roles import ALL_APPLICANTS, Role
from service.config import Settings
from service.db import Database, migrate
from service.errors import ServiceError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.auth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="who or what holds the key")
    create.add_argument(
        "--applicant",
        action="append",
        default=[],
        metavar="USCC",
        help="portal keys: an applicant the portal acts for (repeat for several)",
    )
    create.add_argument(
        "--all-applicants",
        action="store_true",
        help="portal keys: act for every applicant (the city's one-stop portal)",
    )
    create.add_argument("--by", default=None, help="who creates it (default: the OS user)")
    commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    revoke.add_argument("--by", default=None, help="who revokes it (default: the OS user)")
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or Settings()
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    who = args.by if getattr(args, "by", None) else getpass.getuser()
    try:
        with db.transaction() as session:
            if args.command == "create":
                applicants = [*args.applicant, *([ALL_APPLICANTS] if args.all_applicants else [])]
                row, key = keys.create(
                    session, keys.KeyRequest(args.name, Role(args.role), tuple(applicants), who)
                )
                print(json.dumps({**keys.view(row), "key": key}, ensure_ascii=False))
            elif args.command == "revoke":
                print(
                    json.dumps(
                        keys.view(keys.revoke(session, args.key_id, who)), ensure_ascii=False
                    )
                )
            else:
                for row in keys.listed(session):
                    print(json.dumps(keys.view(row), ensure_ascii=False))
    except ServiceError as exc:
        print(f"{exc.message_zh} / {exc.message_en}", file=sys.stderr)
        for problem in exc.extra.get("detail", []):
            print(f"  {problem['path']}: {problem['msg']}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0
