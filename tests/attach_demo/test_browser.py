"""The demo in a real browser: headless Chromium driven by Selenium against
a real `rex serve` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
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
        yield driver
    finally:
        driver.quit()  # ends Chromium and stops chromedriver (by its pid)
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the browser requested since the last call (performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


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


def submit_upload(driver: webdriver.Chrome, code: str, title: str, path: Path) -> None:
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.ID, "title").send_keys(title)
    driver.find_element(By.ID, "attachment").send_keys(str(path))
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(lambda driver: is_gone(page))  # the next page is loading


def is_gone(element: WebElement) -> bool:
    """Is the element's document replaced?  ChromeDriver says so with a stale
    reference, or, while the old document is being torn down, with a node
    that "does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" not in str(error):
            raise
        return True
    return False


def table_rows(driver: webdriver.Chrome) -> list[tuple[str, str, str]]:
    return [(row.find_element(By.CLASS_NAME, "code").text,
             row.find_element(By.CLASS_NAME, "title").text,
             row.find_element(By.CLASS_NAME, "size").text)
            for row in driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")]


def test_upload_list_and_download_in_chromium(tmp_path: Path) -> None:
    document = tmp_path / "Les Misérables.pdf"
    content = os.urandom(300_000)
    document.write_bytes(content)
    with serve(tmp_path) as url, chromium(tmp_path) as driver:
        driver.get("about:blank")
        requested_urls(driver)  # forget the browser's own start page
        driver.get(url + "/")
        assert driver.title == "Attachments"
        assert driver.find_element(By.ID, "empty").text == "No files yet."
        # The page's Content-Security-Policy lets its own inline stylesheet
        # apply (by its hash): the body has the width the stylesheet gives it.
        assert driver.execute_script("return getComputedStyle(document.body).maxWidth") == "768px"

        submit_upload(driver, "LM1862", "Les Misérables, tome I", document)
        WebDriverWait(driver, WAIT).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, "#files tbody tr"))
        assert driver.current_url == url + "/"  # the 303 led back to the list
        assert table_rows(driver) == [("LM1862", "Les Misérables, tome I", "300,000 bytes")]

        (tmp_path / "other.txt").write_text("Notre-Dame de Paris\n")
        submit_upload(driver, "ND1831", "Notre-Dame", tmp_path / "other.txt")
        WebDriverWait(driver, WAIT).until(lambda driver: len(table_rows(driver)) == 2)
        assert table_rows(driver) == [("LM1862", "Les Misérables, tome I", "300,000 bytes"),
                                      ("ND1831", "Notre-Dame", "20 bytes")]
        driver.save_screenshot(str(tmp_path / "list.png"))

        # Every resource of the page came from the server itself.
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(name.startswith(url + "/") for name in resources), resources
        requested = requested_urls(driver)
        assert requested[0] == url + "/"  # the log does see the page's requests
        assert url + "/upload" in requested
        assert all(name.startswith(url + "/") for name in requested), requested

        link = driver.find_element(By.XPATH, "//tr[td[@class='code']='LM1862']//a[@class='download']")
        assert link.get_attribute("href") == url + "/download?code=LM1862"
        link.click()
        downloaded = wait_for_download(tmp_path / "downloads", "Les_Misérables.pdf")
        assert downloaded.read_bytes() == content
        assert driver.current_url == url + "/"  # a download, not a navigation
        assert all(name.startswith(url + "/") for name in requested_urls(driver))


def test_the_page_works_without_javascript(tmp_path: Path) -> None:
    document = tmp_path / "plain.txt"
    document.write_bytes(b"No script needed.\n")
    with serve(tmp_path) as url, chromium(tmp_path, javascript=False) as driver:
        # JavaScript is really off: this page's script would change the text.
        driver.get("data:text/html,<p id=probe>off</p>"
                   "<script>document.getElementById('probe').textContent='on'</script>")
        assert driver.find_element(By.ID, "probe").text == "off"

        driver.get(url + "/")
        submit_upload(driver, "P1", "Plain form", document)
        WebDriverWait(driver, WAIT).until(
            lambda driver: driver.find_elements(By.CSS_SELECTOR, "#files tbody tr"))
        assert table_rows(driver) == [("P1", "Plain form", "18 bytes")]
        driver.find_element(By.CSS_SELECTOR, "a.download").click()
        assert wait_for_download(tmp_path / "downloads", "plain.txt").read_bytes() == \
            b"No script needed.\n"
        assert driver.find_elements(By.TAG_NAME, "script") == []


@pytest.mark.parametrize("code", ["a b", "dup"])
def test_a_refused_upload_shows_the_reason(tmp_path: Path, code: str) -> None:
    document = tmp_path / "a.txt"
    document.write_text("a")
    with serve(tmp_path) as url, chromium(tmp_path) as driver:
        driver.get(url + "/")
        submit_upload(driver, "dup", "First", document)
        WebDriverWait(driver, WAIT).until(lambda driver: len(table_rows(driver)) == 1)
        # The page's own check (pattern) would stop "a b"; drop it, as an old
        # browser or a hand-made request would, so the server has to refuse.
        driver.execute_script("document.getElementById('code').removeAttribute('pattern')")
        submit_upload(driver, code, "Second", document)
        status = "409" if code == "dup" else "400"
        WebDriverWait(driver, WAIT).until(lambda driver: status in driver.title)
        message = driver.find_element(By.TAG_NAME, "pre").text
        expected = ("A file with this code already exists:\n    dup" if code == "dup"
                    else "While parsing parameter:\n    code")
        assert expected in message
        driver.back()
        driver.refresh()
        assert table_rows(driver) == [("dup", "First", "1 bytes")]
