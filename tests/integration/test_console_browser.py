"""The console in a real browser (Debian's chromium through selenium) on a running node:
log in, push an image with ``storescu``, watch it appear, open it, toggle the overlay,
give feedback, export, log out; refusals of a wrong password, of a form without its
CSRF token, and of the admin pages to a technologist.

Set ``CONSOLE_SCREENSHOTS=FOLDER`` to keep the screenshots (docs/console.md's
come from here).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from iqgate.node.console.users import Role, UsersFile
from iqgate_testkit.dicom_factory import write_image
from iqgate_testkit.package_factory import tiny_package
from iqgate_testkit.peers import free_port, http_get, require, running_node, storescu, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PATIENT = "Browser^Patientin"
ADMIN, TECH = ("ann", "admin password"), ("tom", "tech password")
LIVE_LIMIT_S = 2.0
"""The issue's bound: a new verdict shows in an open worklist within 2 s."""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    tiny_package(folder, "tiny-cxr", modalities=["DX", "CR"], seed=0)
    return folder


@pytest.fixture()
def browser() -> Iterator[webdriver.Chrome]:
    require("chromium", "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def submit(driver, button_id: str) -> None:
    """Click a submit button and wait for the next page."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 30).until(lambda d: not _attached(old))


def _attached(element) -> bool:
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return False
    return True


def log_in(driver, base: str, user: tuple[str, str]) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "user").send_keys(user[0])
    driver.find_element(By.ID, "password").send_keys(user[1])
    submit(driver, "login")


def verdict_time(spool: Path) -> float:
    """When the only job recorded its verdict (its row's last change: with no PACS the job
    is finished in the same transaction)."""
    with closing(sqlite3.connect(f"file:{spool / 'jobs.sqlite3'}?mode=ro", uri=True)) as db:
        (updated_at,) = db.execute(
            "SELECT updated_at FROM jobs WHERE verdict IS NOT NULL"
        ).fetchone()
    return float(updated_at)


def rows(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")


def test_a_technologist_and_an_admin_work_through_the_console(tmp_path, models_dir, browser):
    require("storescu")
    users = UsersFile(tmp_path / "users.json")
    users.add(*ADMIN, Role.ADMIN)
    users.add(*TECH, Role.TECHNOLOGIST)
    console_port = free_port()
    env = {
        "IQGATE_CONSOLE_PORT": str(console_port),
        "IQGATE_CONSOLE_HOST": "127.0.0.1",
        "IQGATE_CONSOLE_DIR": str(tmp_path / "console"),
        "IQGATE_CONSOLE_USERS_FILE": str(users.path),
        "IQGATE_RECEIVE_PROCESSES": "1",
    }
    base = f"http://127.0.0.1:{console_port}"
    image = write_image(tmp_path / "in" / "chest.dcm", seed=3, patient_name=PATIENT)
    with running_node(tmp_path / "node", models_dir, env) as node:
        wait_for(lambda: http_get(f"{base}/healthz")[0] == 200, 30, "the console")
        driver, wait = browser, WebDriverWait(browser, 30)

        log_in(driver, base, (TECH[0], "not the password"))
        assert driver.find_element(By.ID, "login-error").is_displayed()
        shoot(driver, "login-refused")

        driver.get(f"{base}/login")
        driver.execute_script("document.querySelector('input[name=csrf]').remove()")
        driver.find_element(By.ID, "user").send_keys(TECH[0])
        driver.find_element(By.ID, "password").send_keys(TECH[1])
        submit(driver, "login")
        assert "CSRF" in driver.find_element(By.TAG_NAME, "body").text

        log_in(driver, base, TECH)
        assert driver.find_elements(By.ID, "worklist")
        assert rows(driver) == []
        time.sleep(0.5)  # the event stream is open
        sent = storescu([image], node.port)
        assert sent.returncode == 0, sent.stderr
        wait.until(lambda d: rows(d))
        delay_s = time.time() - verdict_time(node.spool)
        print(f"row shown {delay_s:.2f} s after the verdict")
        assert delay_s < LIVE_LIMIT_S
        row = rows(driver)[0]
        assert "flagged" in row.text and "SCANNER" in row.text and "Browser^Patientin" in row.text
        shoot(driver, "worklist")

        row.find_element(By.CSS_SELECTOR, "a.open").click()
        overlay = wait.until(lambda d: d.find_element(By.ID, "overlay"))
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", overlay) > 0)
        frame = driver.find_element(By.ID, "frame")
        assert driver.execute_script("return arguments[0].naturalWidth", frame) > 0
        shoot(driver, "image-overlay")
        driver.find_element(By.ID, "overlay-toggle").click()
        assert not overlay.is_displayed()
        driver.find_element(By.TAG_NAME, "body").send_keys("o")
        assert overlay.is_displayed()

        marks = driver.find_element(By.ID, "marks")
        ActionChains(driver).move_to_element_with_offset(
            marks, -60, -60
        ).click_and_hold().move_by_offset(50, 40).release().perform()
        boxes = json.loads(driver.find_element(By.ID, "boxes").get_attribute("value"))
        assert len(boxes) == 1 and boxes[0][2] > boxes[0][0] and boxes[0][3] > boxes[0][1]
        shoot(driver, "image-box")
        submit(driver, "kind-missed_defect")
        assert "missed defect by tom" in wait.until(lambda d: d.find_element(By.ID, "given")).text
        submit(driver, "kind-agree")
        assert "agree by tom" in wait.until(lambda d: d.find_element(By.ID, "given")).text

        driver.get(f"{base}/admin")
        assert "admins only" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(base)
        assert "agree" in rows(driver)[0].find_element(By.CLASS_NAME, "feedback").text
        submit(driver, "logout")
        assert driver.find_elements(By.ID, "login")
        driver.get(base)
        assert "/login" in driver.current_url

        log_in(driver, base, ADMIN)
        driver.get(f"{base}/admin")
        assert driver.find_elements(By.ID, "purge-failed")
        shoot(driver, "operations")
        driver.get(f"{base}/export")
        submit(driver, "export")
        assert "Exported 1 images" in wait.until(lambda d: d.find_element(By.ID, "exported")).text
        shoot(driver, "export")
        submit(driver, "logout")
        assert driver.find_elements(By.ID, "login")

        manifest = next((tmp_path / "console" / "exports").glob("export-*/manifest.csv"))
        assert manifest.read_text().splitlines()[1].endswith(",1,")
        audit = [json.loads(line) for line in (tmp_path / "console" / "audit.jsonl").open()]
        events = [(a["event"], a["user"]) for a in audit]
        for expected in (
            ("login_failed", "tom"),
            ("image_view", "tom"),
            ("feedback", "tom"),
            ("export", "ann"),
            ("logout", "ann"),
        ):
            assert expected in events
        node.terminate()
        for text in (node.logs(), (tmp_path / "console" / "audit.jsonl").read_text()):
            assert "Patientin" not in text
