"""Headless Chromium for tests of the HTML reports: the `chromium` fixture (installs Debian's package when missing),
screenshots, the DOM after the page's scripts ran, and every URL the browser asked for.

Use in a test module with `chromium = browser.chromium` at module level (pytest registers a fixture it finds there),
then `rendered = render(chromium, path, tmp_path)`, `outside_requests(rendered)` and `dom_elements(rendered.dom)`.

Chromium runs as root here, so it needs --no-sandbox; a D-Bus error on its stderr is harmless. Every host name
resolves to nothing (--host-resolver-rules), so even a page that tried could not reach the network, and the net log
(--log-net-log) records each URL it asked for all the same: that is what "no request leaves the page" is checked on.
This Chromium also makes requests of its own (time sync, component updates) whatever the flags; the net log tells
them apart from the page's (net_log_requests).
"""
import dataclasses
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess

import pytest

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
          "--disable-extensions", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
          "--metrics-recording-only", "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0")
_CONSOLE_CSP = re.compile(r"Content Security Policy|Refused to (?:load|connect|execute|apply)", re.I)


def _install():
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    attempts = []
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, check=False)
        attempts.append(f"$ {' '.join(command)} -> {result.returncode}\n{result.stderr[-2000:]}")
        if command[1] == "install" and result.returncode == 0:
            return
    pytest.fail("could not install Debian's chromium package for the HTML report tests (needs root and the Debian archive):\n"
                + "\n".join(attempts))


@pytest.fixture(scope="session")
def chromium():
    """The path of the chromium binary; installed with apt-get first when it is missing."""
    binary = shutil.which("chromium")
    if binary is None:
        _install()
        binary = shutil.which("chromium")
    assert binary, "apt-get installed chromium but there is no chromium on PATH"
    return binary


@dataclasses.dataclass
class Rendered:
    dom: str  # the DOM after the page's scripts ran (--dump-dom)
    screenshot: str  # path of the PNG
    page_urls: list  # every URL requested for the page, from the net log
    browser_urls: list  # what the browser itself asked for meanwhile (not the page's doing)
    events: int  # how many net log events were read: the logs were there and parsed
    console: str  # chromium's stderr: console messages, CSP violations among them


def _run(binary, url, *flags, timeout=120):
    result = subprocess.run([binary, *_FLAGS, *flags, url], capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"chromium {' '.join(flags)} {url} exited {result.returncode}: {result.stderr[-2000:]}"
    return result


def _net_log_events(path):
    """The events of a net log and the names of their types; an exiting browser may leave the JSON unterminated."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    try:
        log = json.loads(text)
    except ValueError:
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    return [(names.get(event["type"]), event.get("params") or {}) for event in log.get("events", [])]


def net_log_requests(path):
    """(URLs the page asked for, URLs the browser asked for on its own), from the URL_REQUEST_START_JOB events.

    A request made for the page carries the page as its initiator and the file:// page in its network isolation key;
    the browser's own (time sync, component updates, account checks) have no initiator ("not an origin") and
    another key. A file:// page's own file is read outside the network stack, so it does not show here.
    """
    page, browser = set(), set()
    for name, params in _net_log_events(path):
        if name == "URL_REQUEST_START_JOB" and params.get("url"):
            made_for_page = params.get("initiator") != "not an origin" or "file://" in str(params.get("network_isolation_key"))
            (page if made_for_page else browser).add(params["url"])
    return sorted(page), sorted(browser)


def render(binary, page_path, tmp_path, window="1400,1000"):
    """Open page_path: a screenshot, then the DOM, each run with a net log; returns a Rendered."""
    url = "file://" + os.path.abspath(page_path)
    shot, logs = os.path.join(tmp_path, "page.png"), [os.path.join(tmp_path, "shot.netlog.json"), os.path.join(tmp_path, "dom.netlog.json")]
    first = _run(binary, url, f"--screenshot={shot}", f"--window-size={window}", f"--log-net-log={logs[0]}")
    second = _run(binary, url, "--dump-dom", "--virtual-time-budget=2000", f"--log-net-log={logs[1]}")
    page, browser = set(), set()
    for log in logs:
        made_for_page, own = net_log_requests(log)
        page.update(made_for_page)
        browser.update(own)
    events = sum(len(_net_log_events(log)) for log in logs)
    return Rendered(dom=second.stdout, screenshot=shot, page_urls=sorted(page), browser_urls=sorted(browser), events=events,
                    console=first.stderr + second.stderr)


def outside_requests(rendered):
    """URLs that are not the page's own file or inline data, and console lines of blocked (CSP) loads: both must be empty."""
    outside = [url for url in rendered.page_urls if not url.startswith(("file://", "data:"))]
    blocked = [line for line in rendered.console.splitlines() if _CONSOLE_CSP.search(line)]
    return outside, blocked


class _Dom(html.parser.HTMLParser):
    """Elements with their attributes and their own text, in document order."""

    def __init__(self):
        super().__init__()
        self.elements, self._open = [], []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(element)
        if tag not in ("meta", "input", "br", "img", "link"):
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data


def dom_elements(text):
    """Every element of an HTML text, in document order, as {tag, attrs, text} (text: all the text inside it)."""
    parser = _Dom()
    parser.feed(text)
    return parser.elements


def png_size(path):
    """(width, height) of a PNG file."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])
