"""The demo in a real browser: headless Chromium driven by Selenium against
a real `rex serve` on 127.0.0.1, with JavaScript and without.

Each test saves a screenshot of what it ends on (and of the states it
passes through) in its ``tmp_path``, named for what it shows."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from attach_demo.throttle import ThrottlingProxy
from helpers import serve
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30  # seconds, for any page or download
MiB = 1 << 20
RATE = 2 * MiB  # bytes per second: the slow uplink of the throttling proxy
JAVASCRIPT = pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])


@contextmanager
def chromium(tmp_path: Path, *, javascript: bool = True) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile that downloads, without
    asking, into ``tmp_path/downloads`` and logs its network requests."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing; install the Debian packages chromium "
                               "and chromium-driver (scripts/install-system-deps)")
    downloads = tmp_path / "downloads"
    downloads.mkdir(exist_ok=True)
    profile = tmp_path / "chromium-profile"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1000,800", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    prefs = {"download.default_directory": str(downloads),
             "download.prompt_for_download": False,
             "safebrowsing.enabled": False}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        if not javascript:
            # JavaScript is really off: this page's script would change the text.
            driver.get("data:text/html,<p id=probe>off</p>"
                       "<script>document.getElementById('probe').textContent='on'</script>")
            assert driver.find_element(By.ID, "probe").text == "off"
        yield driver
    finally:
        driver.quit()  # ends Chromium and stops chromedriver (by its pid)
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    """Saves a screenshot of the page as ``tmp_path/NAME.png``, whole (the
    window made as tall as the page), for a person to look at."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(600, min(height + 140, 4000)))
    driver.save_screenshot(str(tmp_path / f"{name}.png"))


def network(driver: webdriver.Chrome) -> list[dict]:
    """The browser's network events since the last call (performance log)."""
    return [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]


def requested_urls(events: list[dict]) -> list[str]:
    return [event["params"]["request"]["url"] for event in events
            if event["method"] == "Network.requestWillBeSent"]


def statuses(events: list[dict], path: str) -> list[int]:
    """The statuses of the answers to requests for `path`, redirects too."""
    answers = [event["params"].get("redirectResponse") if event["method"] ==
               "Network.requestWillBeSent" else event["params"].get("response")
               for event in events]
    return [answer["status"] for answer in answers
            if answer is not None and urlsplit(answer["url"]).path == path]


def wait_for_download(directory: Path, name: str) -> Path:
    """The downloaded file, once Chromium has finished writing it."""
    path = directory / name
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        partial = [entry for entry in os.listdir(directory) if entry.endswith(".crdownload")]
        if path.exists() and not partial:
            return path
        time.sleep(0.1)
    raise AssertionError(f"no {name} in {directory} after {WAIT} s: {os.listdir(directory)}")


def is_gone(element: WebElement) -> bool:
    """Is the element out of its document, or its document replaced?
    ChromeDriver says so with a stale reference, or, while the old document
    is being torn down, with a node that "does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" not in str(error):
            raise
        return True
    return False


def fill(driver: webdriver.Chrome, code: str, title: str, path: Path | None) -> None:
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.ID, "title").send_keys(title)
    if path is not None:
        driver.find_element(By.ID, "attachment").send_keys(str(path))


def submit(driver: webdriver.Chrome, button: str = "#upload button[type=submit]") -> None:
    """Clicks a form's button and waits for its answer to replace the page:
    a new document without JavaScript, a new body with it."""
    body = driver.find_element(By.TAG_NAME, "body")
    driver.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(driver, WAIT).until(lambda driver: is_gone(body))
    WebDriverWait(driver, WAIT).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
        and driver.find_elements(By.TAG_NAME, "h1"))


def upload(driver: webdriver.Chrome, code: str, title: str, path: Path | None) -> None:
    fill(driver, code, title, path)
    submit(driver)


def text(driver: webdriver.Chrome, selector: str) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else None


def table_rows(driver: webdriver.Chrome) -> list[tuple[str, ...]]:
    """The list as a person reads it: code, title, file, size, and the size
    in bytes shown on hover."""
    return [(row.find_element(By.CLASS_NAME, "code").text,
             row.find_element(By.CLASS_NAME, "title").text,
             row.find_element(By.CLASS_NAME, "name").text,
             row.find_element(By.CLASS_NAME, "size").text,
             row.find_element(By.CLASS_NAME, "size").get_attribute("title"))
            for row in driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")]


def mode(javascript: bool) -> str:
    return "js" if javascript else "nojs"


@JAVASCRIPT
def test_upload_list_and_download(tmp_path: Path, javascript: bool) -> None:
    document = tmp_path / "Les Misérables.pdf"
    content = os.urandom(300_000)
    document.write_bytes(content)
    (tmp_path / "other.txt").write_text("Notre-Dame de Paris\n")
    with serve(tmp_path) as url, chromium(tmp_path, javascript=javascript) as driver:
        network(driver)  # forget the browser's own start page
        driver.get(url + "/")
        assert driver.title == "Attachments"
        assert text(driver, "#empty") == "No files yet."
        # The stylesheet, a file of the application, applies under the
        # page's Content-Security-Policy.
        assert driver.execute_script("return getComputedStyle(document.querySelector('main'))"
                                     ".maxWidth") == "960px"
        assert driver.find_element(By.ID, "progress").get_attribute("hidden") == "true"

        upload(driver, "LM1862", "Les Misérables, tome I", document)
        assert text(driver, "#notice") == "The file LM1862 was uploaded."
        # Without JavaScript the URL keeps the notice; the script drops it,
        # so that a reload does not show it again.
        assert driver.current_url.startswith(url + "/?notice=") != javascript
        upload(driver, "ND1831", "Notre-Dame", tmp_path / "other.txt")
        assert text(driver, "#notice") == "The file ND1831 was uploaded."
        assert table_rows(driver) == [  # newest first
            ("ND1831", "Notre-Dame", "other.txt", "20 Bytes", "20 bytes"),
            ("LM1862", "Les Misérables, tome I", "Les Misérables.pdf", "293.0 KiB",
             "300,000 bytes")]
        created = driver.find_element(By.CSS_SELECTOR, "#files tbody tr time")
        uploaded = datetime.datetime.fromisoformat(created.get_attribute("datetime"))
        assert abs(uploaded - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 600
        assert created.text == uploaded.strftime("%Y-%m-%d %H:%M UTC")
        shot(driver, tmp_path, f"upload-list-{mode(javascript)}")

        events = network(driver)
        requested = requested_urls(events)
        assert requested[0] == url + "/"  # the log does see the page's requests
        assert url + "/static/style.css" in requested
        assert (url + "/static/upload.js" in requested) == javascript
        assert all(name.startswith(url + "/") for name in requested), requested
        assert statuses(events, "/upload") == [303, 303]

        link = driver.find_element(By.XPATH, "//tr[td[@class='code']='LM1862']//a[@class='download']")
        assert link.get_attribute("href") == url + "/download?code=LM1862"
        link.click()
        downloaded = wait_for_download(tmp_path / "downloads", "Les_Misérables.pdf")
        assert downloaded.read_bytes() == content
        assert text(driver, "h1") == "Attachments"  # a download, not a navigation
        assert all(name.startswith(url + "/") for name in requested_urls(network(driver)))


# Each error a person can make, and what the page then says next to the
# field: (case, code, title, file, what to undo of the page's own checks
# first, as an old browser or a hand-made request would, field, reason).
ERRORS = [
    ("bad-code", "a b!", "Spaced", "a.txt", "#code:pattern", "code", 400,
     "The code may contain only letters, digits and underscores."),
    ("long-code", "c" * 65, "Long", "a.txt", "#code:maxlength", "code", 400,
     "The code may have at most 64 characters."),
    ("blank-title", "V2", "   ", "a.txt", None, "title", 400, "Enter a title."),
    ("no-file", "V2", "No file", None, "#attachment:required", "attachment", 400,
     "Choose a file."),
    ("taken-code", "dup", "Second", "a.txt", None, "code", 409,
     "A file with code dup already exists."),
    ("too-large", "V2", "Too large", "big.bin", None, "attachment", 413,
     "The file is larger than 1 MiB."),
]


@JAVASCRIPT
def test_each_error_is_shown_next_to_its_field(tmp_path: Path, javascript: bool) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "big.bin").write_bytes(bytes(MiB + 1))
    with serve(tmp_path, f"attach_max_size={MiB}") as url, \
            chromium(tmp_path, javascript=javascript) as driver:
        driver.get(url + "/")
        upload(driver, "dup", "First", tmp_path / "a.txt")
        assert [row[0] for row in table_rows(driver)] == ["dup"]
        for case, code, title, name, undo, field, status, reason in ERRORS:
            driver.get(url + "/")
            network(driver)
            if undo:
                selector, attribute = undo.split(":")
                driver.execute_script(f"document.querySelector('{selector}')"
                                      f".removeAttribute('{attribute}')")
            upload(driver, code, title, tmp_path / name if name else None)
            assert driver.title == "Upload refused: Attachments", case
            assert text(driver, f"#{field}-error") == reason, case
            assert len(driver.find_elements(By.CSS_SELECTOR, ".error")) == 1, case
            # The form again, with what was typed, the wrong field focused,
            # and a word about the file; the list below it.
            assert driver.find_element(By.ID, "code").get_attribute("value") == code, case
            assert driver.find_element(By.ID, "title").get_attribute("value") == title, case
            assert driver.find_element(By.ID, "attachment").get_attribute("value") == ""
            assert driver.find_element(By.ID, field).get_attribute("aria-invalid") == "true"
            assert driver.switch_to.active_element.get_attribute("id") == field, case
            assert text(driver, "#attachment-again") == \
                "Choose the file again: a refused form does not keep it."
            assert [row[0] for row in table_rows(driver)] == ["dup"], case
            assert statuses(network(driver), "/upload") == [status], case
            shot(driver, tmp_path, f"error-{case}-{mode(javascript)}")

        # A page whose cookie is gone (or a form from elsewhere): refused,
        # said for the whole form; the page again brings a token that works.
        driver.get(url + "/")
        driver.delete_cookie("csrf_token")
        upload(driver, "V3", "Tokenless", tmp_path / "a.txt")
        assert text(driver, "#form-error") == (
            "This page was open for too long, or your browser did not keep its cookie: "
            "nothing was done. Please send the form again.")
        assert driver.find_element(By.ID, "code").get_attribute("value") == "V3"
        assert statuses(network(driver), "/upload") == [403]
        shot(driver, tmp_path, f"error-no-token-{mode(javascript)}")
        driver.find_element(By.ID, "attachment").send_keys(str(tmp_path / "a.txt"))
        submit(driver)
        assert text(driver, "#notice") == "The file V3 was uploaded."
        assert [row[0] for row in table_rows(driver)] == ["V3", "dup"]
        shot(driver, tmp_path, f"error-then-uploaded-{mode(javascript)}")


def test_upload_progress_on_a_slow_link(tmp_path: Path) -> None:
    """Through a proxy that forwards 2 MiB/s, a 12 MiB upload shows its
    progress, percentage and bytes, with the button disabled until the
    answer; then the list."""
    document = tmp_path / "scan.tif"
    document.write_bytes(bytes(12 * MiB))
    with serve(tmp_path) as url, ThrottlingProxy(urlsplit(url).port, RATE) as proxy, \
            chromium(tmp_path) as driver:
        driver.get(proxy.url + "/")
        fill(driver, "SCAN1", "A slow scan", document)
        driver.find_element(By.CSS_SELECTOR, "#upload button").click()
        seen: list[int] = []

        def progressing(driver: webdriver.Chrome) -> bool:
            bar = driver.find_element(By.CSS_SELECTOR, "#progress progress")
            value = int(bar.get_attribute("value"))
            if 0 < value < 100 and value not in seen:
                seen.append(value)
            return len(seen) >= 2

        WebDriverWait(driver, WAIT, poll_frequency=0.05).until(progressing)
        assert seen == sorted(seen)
        assert driver.find_element(By.ID, "progress").is_displayed()
        assert driver.find_element(By.CSS_SELECTOR, "#upload button").get_attribute("disabled")
        label = driver.find_element(By.ID, "progress-text").text
        assert re.fullmatch(r"(\d+)% \u00b7 [\d.]+ (Bytes|KiB|MiB) of 12\.0 MiB", label), label
        shot(driver, tmp_path, "progress-js")
        WebDriverWait(driver, 3 * WAIT).until(lambda driver: text(driver, "#notice"))
        assert text(driver, "#notice") == "The file SCAN1 was uploaded."
        assert table_rows(driver)[0][:4] == ("SCAN1", "A slow scan", "scan.tif", "12.0 MiB")
        assert driver.find_element(By.CSS_SELECTOR, "#upload button").is_enabled()
        assert proxy.exchange(b"POST /upload")[1].sent > 12 * MiB
        shot(driver, tmp_path, "progress-done-js")


@JAVASCRIPT
def test_a_taken_code_is_refused_before_the_file_is_sent(tmp_path: Path, javascript: bool) -> None:
    """A 100 MiB file under a taken code, through a proxy that forwards
    2 MiB/s: the answer comes back before 4 MiB went through (2 s at that
    rate), and the connection is closed, not drained to the end of the file."""
    (tmp_path / "a.txt").write_text("a")
    big = tmp_path / "big.bin"
    with open(big, "wb") as stream:
        stream.truncate(100 * MiB)
    with serve(tmp_path) as url, ThrottlingProxy(urlsplit(url).port, RATE) as proxy, \
            chromium(tmp_path, javascript=javascript) as driver:
        driver.get(proxy.url + "/")
        upload(driver, "dup", "First", tmp_path / "a.txt")
        fill(driver, "dup", "Second", big)
        started = time.monotonic()
        submit(driver)
        seconds = time.monotonic() - started
        assert text(driver, "#code-error") == "A file with code dup already exists."
        connection, exchange = proxy.exchange(b"POST /upload")
        assert connection.relayed.wait(WAIT)  # the server closed the connection
        print(f"\nrefused after {exchange.answered_after / MiB:.2f} MiB forwarded, "
              f"{exchange.sent / MiB:.2f} MiB in all, shown in {seconds:.2f} s "
              f"({mode(javascript)})")
        assert exchange.answered_after < 2 * RATE
        assert exchange.sent < 4 * RATE
        shot(driver, tmp_path, f"early-refusal-{mode(javascript)}")


@JAVASCRIPT
def test_delete_asks_first(tmp_path: Path, javascript: bool) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("bb")
    with serve(tmp_path) as url, chromium(tmp_path, javascript=javascript) as driver:
        driver.get(url + "/")
        upload(driver, "KEEP", "Kept", tmp_path / "a.txt")
        upload(driver, "GONE", "To delete", tmp_path / "b.txt")
        delete = "//tr[td[@class='code']='GONE']//a[@class='delete']"
        driver.find_element(By.XPATH, delete).click()
        assert text(driver, "h1") == "Delete GONE?"
        assert text(driver, "dd.name") == "b.txt"
        shot(driver, tmp_path, f"delete-confirm-{mode(javascript)}")
        driver.find_element(By.LINK_TEXT, "Cancel").click()
        assert [row[0] for row in table_rows(driver)] == ["GONE", "KEEP"]

        driver.find_element(By.XPATH, delete).click()
        network(driver)
        submit(driver, "#delete button[type=submit]")
        assert statuses(network(driver), "/delete") == [303]
        assert text(driver, "#notice") == "The file GONE was deleted."
        assert [row[0] for row in table_rows(driver)] == ["KEEP"]
        shot(driver, tmp_path, f"delete-done-{mode(javascript)}")
        driver.get(url + "/delete?code=GONE")
        assert text(driver, "#form-error") == \
            "There is no file with code GONE: it may have been deleted already."
        shot(driver, tmp_path, f"delete-missing-{mode(javascript)}")


@JAVASCRIPT
def test_the_list_has_pages_of_fifty(tmp_path: Path, javascript: bool) -> None:
    with serve(tmp_path) as url, chromium(tmp_path, javascript=javascript) as driver:
        driver.get(url + "/")
        start = datetime.datetime(2024, 1, 1)
        with sqlite3.connect(tmp_path / "demo.sqlite") as connection:
            connection.executemany(
                "INSERT INTO file (code, title, handle, size, created, name) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(f"F{number:03}", f"File number {number}",
                  f"/2024/01/01/00000000-0000-4000-8000-{number:012}/f.bin", number * 1000,
                  (start + datetime.timedelta(minutes=number)).isoformat(" "), "f.bin")
                 for number in range(120)])
        driver.get(url + "/")
        codes = [row[0] for row in table_rows(driver)]
        assert codes == [f"F{number:03}" for number in range(119, 69, -1)]
        assert text(driver, ".pages span") == "Page 1 of 3:"
        driver.find_element(By.LINK_TEXT, "Older").click()
        assert [row[0] for row in table_rows(driver)][0] == "F069"
        driver.find_element(By.LINK_TEXT, "3").click()
        assert [row[0] for row in table_rows(driver)] == \
            [f"F{number:03}" for number in range(19, -1, -1)]
        assert driver.find_elements(By.LINK_TEXT, "Older") == []
        shot(driver, tmp_path, f"paging-last-{mode(javascript)}")
        driver.find_element(By.LINK_TEXT, "Newer").click()
        assert text(driver, ".pages span") == "Page 2 of 3:"


def test_the_page_at_400_pixels(tmp_path: Path) -> None:
    """On a narrow screen the list is a column of cards, nothing is wider
    than the window, and every field has its label."""
    (tmp_path / "a.txt").write_text("a")
    with serve(tmp_path) as url, chromium(tmp_path) as driver:
        driver.set_window_size(400, 900)
        driver.get(url + "/")
        upload(driver, "NARROW", "A rather long title that has to wrap on a narrow screen " * 3,
               tmp_path / "a.txt")
        width = driver.execute_script("return document.documentElement.clientWidth")
        assert width <= 400
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        for element in driver.find_elements(By.CSS_SELECTOR, "main *"):
            if element.is_displayed():
                rect = element.rect
                assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width + 0.5, element.tag_name
        for field in ("code", "title", "attachment"):
            assert driver.execute_script(
                f"return document.querySelector('label[for={field}]').control.id") == field
        assert driver.find_element(By.CSS_SELECTOR, "#files thead").size["height"] <= 1
        assert driver.find_element(By.CSS_SELECTOR, "td.size").text == "1 Byte"
        shot(driver, tmp_path, "narrow-400px")
