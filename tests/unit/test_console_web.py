"""The console's pages through Starlette's test client: login, CSRF, roles, worklist,
live updates, feedback, export and the admin operations."""

from __future__ import annotations

import csv
import json
import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.testclient import TestClient

from iqgate.config import Settings
from iqgate.node.console.follower import SpoolFollower
from iqgate.node.console.index import INDEX_NAME
from iqgate.node.console.metrics import FeedbackCollector, read_feedback_counts
from iqgate.node.console.server import open_console
from iqgate.node.console.users import Role, UsersFile
from iqgate.node.console.web import build_app
from iqgate.node.store.states import JobState
from iqgate_testkit.console import assessed_image, received_image

PATIENT = "GEHEIM^PATIENTIN"
ADMIN, TECH = ("ann", "admin password"), ("tom", "tech password")


@pytest.fixture()
def console(tmp_path):
    settings = Settings(
        spool_dir=tmp_path / "spool",
        results_dir=tmp_path / "results",
        console_dir=tmp_path / "console",
        console_users_file=tmp_path / "users.json",
        console_trusted_user_header="X-Forwarded-User",
        console_trusted_proxies=["10.0.0.1"],
    )
    users = UsersFile(settings.console_users_file)
    users.add(*ADMIN, Role.ADMIN)
    users.add(*TECH, Role.TECHNOLOGIST)
    console = open_console(settings)
    console.settings = settings
    yield console
    console.stopping.set()
    console.index.close()


def index_images(console, *probabilities: float) -> list[str]:
    uids = [
        assessed_image(
            console.spool,
            console.settings.results_dir,
            probability=p,
            seed=n,
            patient_name=PATIENT,
        )
        for n, p in enumerate(probabilities)
    ]
    SpoolFollower(
        console.settings.spool_dir, console.index, console.settings.console_dir / "images", 3600
    ).run_once()
    return uids


def client_for(console, client_host: str = "testclient") -> TestClient:
    app = build_app(console, "test secret", secure_cookie=True)
    return TestClient(app, base_url="https://console.test", client=(client_host, 5000))


def csrf_of(client: TestClient, path: str = "/login") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def logged_in(console, user: tuple[str, str]) -> TestClient:
    client = client_for(console)
    token = csrf_of(client)
    answer = client.post(
        "/login",
        data={"user": user[0], "password": user[1], "csrf": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return client


def audit(console) -> list[dict]:
    return [json.loads(line) for line in console.audit.path.read_text().splitlines()]


def test_pages_redirect_to_the_login_and_hide_patient_data(console):
    index_images(console, 0.9)
    client = client_for(console)
    for path in ("/", "/admin", "/export", "/live"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert PATIENT not in client.get("/login").text


def test_the_login_page_says_how_to_add_the_first_user(console):
    assert "no-users" not in client_for(console).get("/login").text
    for name in (ADMIN[0], TECH[0]):
        console.access.users.remove(name)
    assert "iqgate users add" in client_for(console).get("/login").text


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/", "/\\evil.test/"])
def test_the_login_redirects_only_within_the_console(console, target):
    client = client_for(console)
    answer = client.post(
        "/login",
        data={"user": ADMIN[0], "password": ADMIN[1], "csrf": csrf_of(client), "next": target},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_wrong_password_is_refused_and_audited(console):
    client = client_for(console)
    answer = client.post(
        "/login", data={"user": "ann", "password": "wrong password", "csrf": csrf_of(client)}
    )
    assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    assert client.get("/", follow_redirects=False).status_code == 303
    assert audit(console)[-1]["event"] == "login_failed"


def test_posts_without_the_csrf_token_are_refused(console):
    client = client_for(console)
    client.get("/login")
    answer = client.post("/login", data={"user": ADMIN[0], "password": ADMIN[1]})
    assert answer.status_code == 403 and "CSRF" in answer.text
    uid = index_images(console, 0.9)[0]
    client = logged_in(console, ADMIN)
    for path in (f"/images/{uid}/feedback", "/export", "/admin/purge", "/logout"):
        answer = client.post(path, data={"kind": "agree", "csrf": "forged"})
        assert answer.status_code == 403, path
    assert console.index.image(uid).feedback is None


def test_the_session_cookie_is_http_only_strict_and_secure(console):
    client = client_for(console)
    cookie = client.get("/login").headers["set-cookie"]
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert "Max-Age=28800" in cookie


def test_a_session_ends_after_its_time(console, monkeypatch):
    client = logged_in(console, TECH)
    assert client.get("/").status_code == 200
    later = __import__("time").time() + console.access.session_s + 1
    monkeypatch.setattr("iqgate.node.console.security.time.time", lambda: later)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_worklist_lists_newest_first_with_flags_and_patient(console):
    flagged, passed = index_images(console, 0.9, 0.2)
    page = logged_in(console, TECH).get("/").text
    assert page.index(passed) < page.index(flagged)
    assert PATIENT in page and "flagged" in page
    filtered = logged_in(console, TECH).get("/?verdict=flagged").text
    assert flagged in filtered and passed not in filtered


def test_the_image_view_shows_verdict_and_frame_and_is_audited(console):
    uid = index_images(console, 0.9)[0]
    client = logged_in(console, TECH)
    page = client.get(f"/images/{uid}").text
    assert "Flagged" in page and "0.900" in page and "tiny-cxr 0.0.1" in page
    assert 'class="peak"' in page and 'class="hotspot"' in page
    frame = client.get(f"/images/{uid}/frame.png")
    assert frame.status_code == 200 and frame.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/images/{uid}/overlay.png").status_code == 404
    view = audit(console)[-1]
    assert view["event"] == "image_view" and view["sop_instance_uid"] == uid
    assert view["user"] == TECH[0]
    assert PATIENT.split("^")[0] not in console.audit.path.read_text()


def test_feedback_is_stored_shown_and_changeable(console):
    uid = index_images(console, 0.2)[0]
    client = logged_in(console, TECH)
    token = csrf_of(client, f"/images/{uid}")
    answer = client.post(
        f"/images/{uid}/feedback", data={"kind": "missed_defect", "csrf": token, "boxes": ""}
    )
    assert "Draw a box" in answer.text and console.index.image(uid).feedback is None
    client.post(
        f"/images/{uid}/feedback",
        data={"kind": "missed_defect", "csrf": token, "boxes": "[[10, 12, 30, 40]]"},
    )
    feedback = console.index.image(uid).feedback
    assert feedback.kind.value == "missed_defect" and feedback.boxes == ((10, 12, 30, 40),)
    assert "missed defect" in client.get("/").text
    client.post(f"/images/{uid}/feedback", data={"kind": "agree", "csrf": token})
    assert console.index.image(uid).feedback.kind.value == "agree"
    assert [r["kind"] for r in audit(console) if r["event"] == "feedback"] == [
        "missed_defect",
        "agree",
    ]
    registry = CollectorRegistry()
    index_path = console.settings.console_dir / INDEX_NAME
    registry.register(FeedbackCollector(lambda: read_feedback_counts(index_path)))
    metrics = generate_latest(registry).decode()
    assert 'iqgate_console_feedback{kind="agree",model="tiny-cxr"} 1.0' in metrics
    assert 'iqgate_console_feedback{kind="false_alarm",model="tiny-cxr"} 0.0' in metrics


def test_technologists_cannot_reach_the_admin_actions(console):
    client = logged_in(console, TECH)
    token = csrf_of(client, "/")
    assert client.get("/admin").status_code == 403
    assert client.get("/export").status_code == 403
    for path in ("/admin/retry", "/admin/purge", "/export"):
        assert client.post(path, data={"csrf": token}).status_code == 403, path
    assert "/admin" not in client.get("/").text


def test_admins_retry_and_purge_failed_jobs(console):
    folder = console.settings.results_dir
    jobs = [received_image(console.spool, folder, seed=seed)[0] for seed in (1, 2)]
    console.spool.jobs.claim_received("test", 10, 60.0)
    for job in jobs:
        console.spool.jobs.fail(job, "decoder crashed")
    client = logged_in(console, ADMIN)
    assert "decoder crashed" in client.get("/admin").text
    token = csrf_of(client, "/admin")
    client.post("/admin/retry", data={"csrf": token, "job": str(jobs[0])})
    assert console.spool.query.job(jobs[0]).state is JobState.RECEIVED
    assert "purged 1" in client.post("/admin/purge", data={"csrf": token}).text
    assert [job.id for job in console.spool.query.jobs()] == [jobs[0]]


def test_the_export_holds_the_files_and_a_manifest_of_the_feedback(console):
    agree, false_alarm, missed, _without_feedback = index_images(console, 0.9, 0.8, 0.1, 0.1)
    for uid, kind, boxes in (
        (agree, "agree", ""),
        (false_alarm, "false_alarm", ""),
        (missed, "missed_defect", "[[5, 6, 20, 30]]"),
    ):
        tech = logged_in(console, TECH)
        tech.post(
            f"/images/{uid}/feedback",
            data={"kind": kind, "csrf": csrf_of(tech, "/"), "boxes": boxes},
        )
    client = logged_in(console, ADMIN)
    page = client.post("/export", data={"csrf": csrf_of(client, "/export")}).text
    assert "Exported 3 images" in page
    folder = next((console.settings.console_dir / "exports").glob("export-*/"))
    rows = list(csv.DictReader((folder / "manifest.csv").open()))
    assert [(r["path"], r["label"], r["boxes"]) for r in rows] == [
        (f"images/{agree}.dcm", "1", ""),
        (f"images/{false_alarm}.dcm", "0", ""),
        (f"images/{missed}.dcm", "1", "5 6 20 30"),
    ]
    assert all((folder / r["path"]).read_bytes()[128:132] == b"DICM" for r in rows)
    download = client.get(re.search(r'href="(/exports/[^"]+)"', page).group(1))
    assert download.status_code == 200 and download.content[:2] == b"PK"
    exported = {r["sop_instance_uid"] for r in audit(console) if r["event"] == "export"}
    assert exported == {agree, false_alarm, missed}
    assert client.get("/exports/..%2Fusers.json").status_code == 404


def test_live_updates_send_new_rows(console):
    client = logged_in(console, TECH)
    uid = index_images(console, 0.9)[0]
    with client.stream("GET", "/live?after=0") as stream:
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("data:"):
                break
        console.stopping.set()
    event = json.loads(line.removeprefix("data:"))
    assert uid in event["html"] and "flagged" in event["html"]


def test_a_trusted_proxy_names_the_user_and_others_cannot(console):
    proxied = client_for(console, client_host="10.0.0.1")
    answer = proxied.get("/", headers={"X-Forwarded-User": "ann"})
    assert answer.status_code == 200 and "ann (admin)" in answer.text
    assert "eve (technologist)" in proxied.get("/", headers={"X-Forwarded-User": "eve"}).text
    direct = client_for(console, client_host="10.0.0.2")
    answer = direct.get("/", headers={"X-Forwarded-User": "ann"}, follow_redirects=False)
    assert answer.status_code == 303
