"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Chromium started with ``--remote-debugging-pipe`` reads protocol messages from its fd 3 and
writes them to its fd 4, each a JSON object terminated by a NUL byte: no websocket library and
no TCP port are needed. :func:`inspect_page` loads one local HTML file headless and reports what
a reviewer's browser would do with it: every request the page made, failed loads, console
errors and exceptions, the result of a JavaScript probe, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--hide-scrollbars", "--disable-dev-shm-usage",
    # Belt and braces: even if the page tried, no host name would resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process driven through the pipe transport."""

    def __init__(self, chromium: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="fairgen-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above fd 9 so the shell's 3/4 redirections cannot clobber them
        # (bash, not dash: dash only handles single-digit descriptors).
        child_r, child_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w))
        os.close(to_chrome_r), os.close(from_chrome_w)
        args = [chromium, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "about:blank"]
        self.log_path = Path(self.profile) / "chromium-stderr.log"
        self._stderr = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", 'exec 3<&"$FAIRGEN_CDP_R" 4>&"$FAIRGEN_CDP_W"; exec "$@"', "bash", *args],
            env={**os.environ, "FAIRGEN_CDP_R": str(child_r), "FAIRGEN_CDP_W": str(child_w)},
            pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
        os.close(child_r), os.close(child_w)
        self._out, self._in = to_chrome_w, from_chrome_r
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    # -- transport ---------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"timed out waiting for Chromium (stderr: {self.stderr_tail()})")
            ready, _, _ = select.select([self._in], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise CDPError(f"Chromium exited with {self.proc.returncode}: {self.stderr_tail()}")
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise CDPError(f"Chromium closed the debugging pipe: {self.stderr_tail()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        for e in self.events:
            if e["method"] == method and e.get("sessionId") == session:
                return e
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method and msg.get("sessionId") == session:
                    return msg

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                except (CDPError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            for fd in (self._out, self._in):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def inspect_page(chromium: str, html: Path, probe: str, screenshot: Path | None = None,
                 width: int = 1280, height: int = 900, timeout: float = 60.0,
                 element_shots: dict[str, Path] | None = None) -> dict:
    """Load ``html`` headless; return requests, failures, console errors, probe result.

    ``probe`` is a JavaScript expression evaluated after the load event; its value (JSON-able)
    is returned as ``probe``. With ``screenshot`` a full-page PNG is written there, and with
    ``element_shots`` (CSS selector -> path) a PNG of each selected element.
    """
    url = Path(html).resolve().as_uri()
    with Browser(chromium, timeout) as b:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            b.send(f"{domain}.enable", session=s)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        nav = b.send("Page.navigate", {"url": url}, session=s)
        if nav.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {nav['errorText']}")
        b.wait_event("Page.loadEventFired", session=s)
        value = b.send("Runtime.evaluate", {"expression": probe, "returnByValue": True, "awaitPromise": True},
                       session=s)
        if "exceptionDetails" in value:
            raise CDPError(f"probe failed: {value['exceptionDetails']}")
        if screenshot is not None:
            metrics = b.send("Page.getLayoutMetrics", session=s)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = b.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}}, session=s)
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        for selector, path in (element_shots or {}).items():
            box = b.send("Runtime.evaluate", {"returnByValue": True, "expression":
                         f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                         " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()"},
                         session=s)["result"]["value"]
            shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                     "clip": {**box, "scale": 1}}, session=s)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(base64.b64decode(shot["data"]))
        events = [e for e in b.events if e.get("sessionId") == s]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    failed = [{"url": _request_url(events, e["params"]["requestId"]), "error": e["params"].get("errorText")}
              for e in events if e["method"] == "Network.loadingFailed"]
    console = [e["params"] for e in events if e["method"] == "Runtime.consoleAPICalled"
               and e["params"].get("type") in ("error", "warning", "assert")]
    log_errors = [e["params"]["entry"] for e in events if e["method"] == "Log.entryAdded"
                  and e["params"]["entry"].get("level") == "error"]
    exceptions = [e["params"]["exceptionDetails"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    return {"url": url, "requests": requests, "failed": failed, "console": console, "log_errors": log_errors,
            "exceptions": exceptions, "probe": value.get("result", {}).get("value")}


def _request_url(events: list[dict], request_id: str) -> str | None:
    for e in events:
        if e["method"] == "Network.requestWillBeSent" and e["params"]["requestId"] == request_id:
            return e["params"]["request"]["url"]
    return None
