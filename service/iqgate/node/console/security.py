"""Who is asking: the login session, the trusted proxy header, and CSRF tokens.

Sessions are Starlette's signed cookies (HTTP-only, ``SameSite=Strict``, ``Secure``
when the console is served over HTTPS or behind the proxy), holding the user name, the
role, the login time and the CSRF token. A session older than ``session_s`` is over,
and a user removed from the users file is logged out on their next request. With a
trusted header set (an OIDC reverse proxy such as oauth2-proxy), a request from one of
the trusted proxy addresses is the user the header names; their role comes from the
users file (technologist when it does not list them).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request

from iqgate.node.console.users import Role, User, UsersFile

CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Access:
    """The console's access settings."""

    users: UsersFile
    session_s: float
    trusted_user_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


async def csrf_valid(request: Request) -> bool:
    """Whether a POST carries this session's CSRF token (form field or header)."""
    expected = request.session.get(CSRF_FIELD)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        given = (await request.form()).get(CSRF_FIELD)
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given, expected)


def log_in(request: Request, user: User) -> None:
    """Start a session for ``user`` (a fresh CSRF token with it)."""
    request.session.clear()
    request.session.update(
        {"user": user.name, "login_at": time.time(), CSRF_FIELD: secrets.token_urlsafe(32)}
    )


def log_out(request: Request) -> None:
    """End the session."""
    request.session.clear()


def current_user(request: Request, access: Access) -> User | None:
    """The user of this request; None when nobody is logged in."""
    proxy = request.client.host if request.client else None
    if access.trusted_user_header and proxy in access.trusted_proxies:
        name = request.headers.get(access.trusted_user_header, "").strip()
        if name:
            return User(name, access.users.role_of(name) or Role.TECHNOLOGIST)
    name = request.session.get("user")
    login_at = request.session.get("login_at", 0.0)
    if not name or time.time() - float(login_at) > access.session_s:
        return None
    role = access.users.role_of(name)
    return None if role is None else User(name, role)
