"""`ivr users add|list` and `ivr tokens add|list|revoke`: manage web users and API tokens from the
shell (the first admin is created here)."""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy import select

from ivr.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = subparsers.add_parser("users", help="web users: add, list")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=("admin", "operator", "manager"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--phone", help="operator's own line for click-to-call, e.g. PJSIP/101")
    add.add_argument("--queues", default="", help="comma-separated queues (empty = all)")
    add.set_defaults(func=users_add)
    listing = users_sub.add_parser("list", help="list users")
    listing.set_defaults(func=users_list)

    tokens = subparsers.add_parser("tokens", help="API tokens: add, list, revoke")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    tadd = tokens_sub.add_parser("add", help="create a token and print it once")
    tadd.add_argument("name")
    tadd.add_argument("--scopes", required=True, metavar="SCOPES",
                      help="what the token may do, comma separated: import (push accounts and payments), "
                           "export (read outcomes, block list, callbacks)")
    tadd.set_defaults(func=tokens_add)
    tlist = tokens_sub.add_parser("list", help="list tokens (names only; tokens are stored hashed)")
    tlist.set_defaults(func=tokens_list)
    trevoke = tokens_sub.add_parser("revoke", help="revoke a token by name")
    trevoke.add_argument("name")
    trevoke.set_defaults(func=tokens_revoke)


def _db(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ivr.wiring import open_database

    return open_database(load_settings(args.env_file))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        # getpass would read the password from a pipe, echoed, or fail with a traceback
        raise ValueError("no terminal to ask for the password on; pipe it in with --password-stdin, "
                         "e.g.: printf '%s\\n' \"$PASSWORD\" | ivr users add NAME --role admin --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise ValueError("the passwords differ")
    return first


def users_add(args: argparse.Namespace) -> int:
    from ivr.web.auth import AuthError, create_user, normalize_queues

    try:
        password = _read_password(args)
        db = _db(args)
        with db.sessions.begin() as session:
            create_user(session, username=args.username, role=args.role, password=password, phone=args.phone,
                        queues=normalize_queues(args.queues))
    except (AuthError, ValueError) as exc:
        print(f"users add: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.username} added ({args.role})")
    return 0


def users_list(args: argparse.Namespace) -> int:
    from ivr.db.models import User

    db = _db(args)
    with db.sessions() as session:
        rows = session.scalars(select(User).order_by(User.username)).all()
        for u in rows:
            queues = ",".join(u.queues or []) or "*"
            print(f"{u.username:20} {u.role:9} {'active' if u.active else 'inactive':9} {u.phone or '-':14} {queues}")
    return 0


def tokens_add(args: argparse.Namespace) -> int:
    from ivr.web.auth import AuthError, create_api_token

    db = _db(args)
    try:
        with db.sessions.begin() as session:
            row, token = create_api_token(session, args.name, args.scopes)
            scopes = row.scopes
    except AuthError as exc:
        print(f"tokens add: {exc}", file=sys.stderr)
        return 1
    print(token)
    print(f"token {args.name!r} ({scopes}) created; it is shown only this once", file=sys.stderr)
    return 0


def tokens_list(args: argparse.Namespace) -> int:
    from ivr.db.models import ApiToken

    db = _db(args)
    with db.sessions() as session:
        for tok in session.scalars(select(ApiToken).order_by(ApiToken.name)):
            state = f"revoked {tok.revoked_at:%Y-%m-%d}" if tok.revoked_at else "active"
            print(f"{tok.name:24} {tok.scopes:14} {tok.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    from ivr.db.models import ApiToken, utcnow

    db = _db(args)
    with db.sessions.begin() as session:
        tok = session.scalar(select(ApiToken).where(ApiToken.name == args.name))
        if tok is None:
            print(f"tokens revoke: no token named {args.name!r}", file=sys.stderr)
            return 1
        tok.revoked_at = tok.revoked_at or utcnow()
    print(f"token {args.name!r} revoked")
    return 0
