"""The console's Starlette application: login, worklist, live updates, image view,
feedback, export and the admin operations.

Every page needs a logged-in user (:mod:`iqgate.node.console.security`); every POST
needs the session's CSRF token; the export and the spool operations need the admin role.
Pages are rendered on the server (Jinja2); ``static/console.js`` adds the live rows,
the overlay controls, box drawing and keyboard navigation. ``/healthz`` needs no login;
the feedback metrics are on the node's ``/metrics`` (:mod:`iqgate.node.console.metrics`).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iqgate.node.console.audit import AuditLog
from iqgate.node.console.export import export_feedback
from iqgate.node.console.feedback import FeedbackKind, parse_boxes
from iqgate.node.console.index import PAGE_SIZE, ConsoleIndex, IndexedImage, WorklistFilter
from iqgate.node.console.pictures import frame_png, overlay_png
from iqgate.node.console.security import (
    Access,
    csrf_token,
    csrf_valid,
    current_user,
    log_in,
    log_out,
)
from iqgate.node.console.users import User
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobState

HERE = Path(__file__).parent
LIVE_POLL_S = 0.25
"""How often a live-update stream looks for new images (an in-memory read)."""
KEEPALIVE_S = 15.0
FILTER_KEYS = ("scanner", "verdict", "model", "study", "hours")
"""Query parameters of the worklist's filters (kept on the image view's links)."""
EXPORT_NAME = re.compile(r"^export-[0-9TZ]+\.zip$")
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:"),
]


@dataclass
class Console:
    """What the pages work on."""

    index: ConsoleIndex
    audit: AuditLog
    access: Access
    spool: Spool
    exports_dir: Path
    stopping: threading.Event


Handler = Callable[[Request, Console, User], Awaitable[Response]]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (pages hold patient data: no
    caching, no framing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["when"] = lambda t: datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
templates.env.globals["FeedbackKind"] = FeedbackKind


def _page(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: object
) -> Response:
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": csrf_token(request), **context},
        status_code=status_code,
    )


def guarded(handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the login, the CSRF check of POSTs and, with ``admin``, the
    admin role."""

    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        user = await run_in_threadpool(current_user, request, console.access)
        if user is None:
            if request.method == "GET":
                return RedirectResponse(f"/login?next={quote(str(request.url.path))}", 303)
            return PlainTextResponse("log in first\n", 401)
        if admin and not user.is_admin:
            return PlainTextResponse("this page is for admins only\n", 403)
        if request.method == "POST" and not await csrf_valid(request):
            return PlainTextResponse("missing or wrong CSRF token; reload the page\n", 403)
        return await handler(request, console, user)

    return endpoint


async def login_page(request: Request) -> Response:
    """The login form (with the session's CSRF token)."""
    console: Console = request.app.state.console
    no_users = not await run_in_threadpool(console.access.users.users)
    target = request.query_params.get("next", "/")
    return _page(request, "login.html", None, next=target, no_users=no_users)


async def login(request: Request) -> Response:
    """Check the CSRF token and the password; start a session or say it failed."""
    console: Console = request.app.state.console
    if not await csrf_valid(request):
        return PlainTextResponse("missing or wrong CSRF token; reload the page\n", 403)
    form = await request.form()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    target = str(form.get("next", "/"))
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        target = "/"  # only paths of this site: no redirect elsewhere after the login
    user = await run_in_threadpool(console.access.users.authenticate, name, password)
    if user is None:
        console.audit.record("login_failed", name)
        return _page(request, "login.html", None, next=target, error=True, status_code=401)
    log_in(request, user)
    console.audit.record("login", user.name, role=user.role.value)
    return RedirectResponse(target, 303)


async def logout(request: Request, console: Console, user: User) -> Response:
    """End the session."""
    log_out(request)
    console.audit.record("logout", user.name)
    return RedirectResponse("/login", 303)


def _filters(request: Request) -> WorklistFilter:
    query = request.query_params
    hours = query.get("hours", "")
    return WorklistFilter(
        scanner=query.get("scanner", ""),
        verdict=query.get("verdict", ""),
        model=query.get("model", ""),
        study=query.get("study", ""),
        since=time.time() - float(hours) * 3600.0 if hours.replace(".", "", 1).isdigit() else None,
    )


def _filter_query(request: Request) -> str:
    kept = {k: v for k, v in request.query_params.items() if k in FILTER_KEYS and v}
    return urlencode(kept)


async def worklist(request: Request, console: Console, user: User) -> Response:
    """One page of the worklist under the query's filters."""
    before = request.query_params.get("before", "")
    page = console.index.page(_filters(request), int(before) if before.isdigit() else None)
    return _page(
        request,
        "worklist.html",
        user,
        page=page,
        first_page=not before,
        latest=console.index.last_added,
        query=_filter_query(request),
        selected=dict(request.query_params),
        choices=console.index.choices(),
    )


@lru_cache(maxsize=1024)
def _row_html(image: IndexedImage, query: str) -> str:
    """A worklist row (rendered once per image and filter for all open live streams)."""
    return templates.get_template("row.html").render(image=image, query=query)


async def live(request: Request, console: Console, user: User) -> Response:
    """Server-sent events: one ``image`` event (the row's HTML) per new image."""
    filters, query = _filters(request), _filter_query(request)
    after_text = request.query_params.get("after", "")
    after = int(after_text) if after_text.isdigit() else console.index.last_added

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        yield "retry: 1000\n\n"
        quiet_since = time.monotonic()
        while not console.stopping.is_set():
            latest = console.index.last_added
            if latest > after:
                images = await run_in_threadpool(console.index.newer_than, after, filters)
                for image in images:
                    data = json.dumps({"id": image.id, "html": _row_html(image, query)})
                    yield f"event: image\ndata: {data}\n\n"
                newest = images[-1].id if images else latest
                after = newest if len(images) == PAGE_SIZE else max(latest, newest)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(LIVE_POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream")


def _indexed(console: Console, request: Request) -> IndexedImage | None:
    return console.index.image(request.path_params["uid"])


async def image_view(request: Request, console: Console, user: User) -> Response:
    """The image view (audited)."""
    image = _indexed(console, request)
    if image is None:
        return PlainTextResponse("no such image in the console\n", 404)
    console.audit.record("image_view", user.name, image.sop_instance_uid)
    newer, older = console.index.neighbours(image.id, _filters(request))
    return _page(
        request,
        "image.html",
        user,
        image=image,
        newer=newer,
        older=older,
        query=_filter_query(request),
        error=request.query_params.get("error", ""),
    )


async def frame(request: Request, console: Console, user: User) -> Response:
    """The kept frame as a PNG."""
    image = _indexed(console, request)
    if image is None or not image.image_path or not Path(image.image_path).exists():
        return PlainTextResponse("the DICOM file of this image is no longer kept\n", 404)
    return Response(await run_in_threadpool(frame_png, image.image_path), media_type="image/png")


async def overlay(request: Request, console: Console, user: User) -> Response:
    """The saliency overlay as a PNG."""
    image = _indexed(console, request)
    if image is None or not image.overlay_path or not Path(image.overlay_path).exists():
        return PlainTextResponse("this image has no saliency overlay\n", 404)
    picture = await run_in_threadpool(overlay_png, image.overlay_path, image.rows, image.columns)
    return Response(picture, media_type="image/png")


async def give_feedback(request: Request, console: Console, user: User) -> Response:
    """Record (or change) the user's feedback on an image."""
    image = _indexed(console, request)
    if image is None:
        return PlainTextResponse("no such image in the console\n", 404)
    form = await request.form()
    back = f"/images/{image.sop_instance_uid}?{_filter_query(request)}"
    try:
        kind = FeedbackKind(str(form.get("kind", "")))
        boxes = parse_boxes(str(form.get("boxes", "")), image.columns, image.rows)
    except (ValueError, TypeError):
        return PlainTextResponse("unknown feedback kind or malformed boxes\n", 400)
    if kind is FeedbackKind.MISSED_DEFECT and not boxes:
        return RedirectResponse(back + "&error=box", 303)
    await run_in_threadpool(
        console.index.give_feedback, image.sop_instance_uid, kind, boxes, user.name
    )
    console.audit.record(
        "feedback", user.name, image.sop_instance_uid, kind=kind.value, boxes=len(boxes)
    )
    return RedirectResponse(back, 303)


async def admin_page(request: Request, console: Console, user: User) -> Response:
    """Failed jobs and dead letters."""
    failed = await run_in_threadpool(console.spool.query.jobs, [JobState.FAILED])
    dead = await run_in_threadpool(console.spool.query.dead_letters)
    return _page(
        request,
        "admin.html",
        user,
        failed=failed,
        dead=dead,
        done=request.query_params.get("done", ""),
    )


async def retry(request: Request, console: Console, user: User) -> Response:
    """Requeue one failed job (or all) and revive its dead letters."""
    job = str((await request.form()).get("job", ""))
    count = await run_in_threadpool(console.spool.jobs.retry, int(job) if job.isdigit() else None)
    console.audit.record("retry", user.name, job=job or "all", requeued=count)
    return RedirectResponse(f"/admin?done=requeued+{count}", 303)


async def purge(request: Request, console: Console, user: User) -> Response:
    """Remove the failed jobs and their spool files."""
    count = await run_in_threadpool(console.spool.jobs.purge, 0.0, states=[JobState.FAILED])
    console.audit.record("purge", user.name, purged=count)
    return RedirectResponse(f"/admin?done=purged+{count}", 303)


async def export_page(request: Request, console: Console, user: User) -> Response:
    """How many images an export would hold."""
    count = len(await run_in_threadpool(console.index.with_feedback))
    return _page(request, "export.html", user, count=count, result=None)


async def export(request: Request, console: Console, user: User) -> Response:
    """Export the images with feedback (audited per image)."""
    result = await run_in_threadpool(export_feedback, console.index, console.exports_dir)
    for uid in result.sop_instance_uids:
        console.audit.record("export", user.name, uid, folder=result.folder.name)
    return _page(request, "export.html", user, count=result.images, result=result)


async def download(request: Request, console: Console, user: User) -> Response:
    """The zip of an export."""
    name = request.path_params["name"]
    path = console.exports_dir / name
    if not EXPORT_NAME.match(name) or not path.is_file():
        return PlainTextResponse("no such export\n", 404)
    return FileResponse(path, media_type="application/zip", filename=name)


async def healthz(request: Request) -> Response:
    """Liveness, without login."""
    return PlainTextResponse("ok\n")


def build_app(console: Console, session_secret: str, *, secure_cookie: bool) -> Starlette:
    """The console's ASGI application."""
    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guarded(logout), methods=["POST"]),
        Route("/", guarded(worklist), methods=["GET"]),
        Route("/live", guarded(live), methods=["GET"]),
        Route("/images/{uid}", guarded(image_view), methods=["GET"]),
        Route("/images/{uid}/frame.png", guarded(frame), methods=["GET"]),
        Route("/images/{uid}/overlay.png", guarded(overlay), methods=["GET"]),
        Route("/images/{uid}/feedback", guarded(give_feedback), methods=["POST"]),
        Route("/admin", guarded(admin_page, admin=True), methods=["GET"]),
        Route("/admin/retry", guarded(retry, admin=True), methods=["POST"]),
        Route("/admin/purge", guarded(purge, admin=True), methods=["POST"]),
        Route("/export", guarded(export_page, admin=True), methods=["GET"]),
        Route("/export", guarded(export, admin=True), methods=["POST"]),
        Route("/exports/{name}", guarded(download, admin=True), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret,
            session_cookie="iqgate_console",
            max_age=int(console.access.session_s),
            same_site="strict",
            https_only=secure_cookie,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = console
    return app
