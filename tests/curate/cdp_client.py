"""A small Chrome DevTools Protocol client over Chromium's ``--remote-debugging-pipe`` (fd 3 in, fd 4 out), for
tests that press real keys and click in headless Chromium without a WebDriver or a websocket library.

Input goes through ``Input.dispatchKeyEvent`` / ``Input.dispatchMouseEvent``: the browser's own input pipeline,
so keydown handlers, focus and default actions behave as for a person. Chromium runs in its own process group
with a fresh profile and is killed with its group on close.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
HEADLESS = (  # headless, offline, no first-run work: the flags every test browser starts with
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

# key -> (code, windowsVirtualKeyCode, text)
SPECIAL = {
    "Enter": ("Enter", 13, "\r"),
    "Escape": ("Escape", 27, ""),
    "ArrowRight": ("ArrowRight", 39, ""),
    "ArrowLeft": ("ArrowLeft", 37, ""),
}


class Browser:
    """Headless Chromium driven over a CDP pipe; ``page(url)`` opens a tab."""

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 30.0):
        assert CHROMIUM, "chromium not installed"
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="mmskin-cdp-")
        cmd_r, self._cmd_w = os.pipe()  # we write commands, chromium reads fd 3
        self._res_r, res_w = os.pipe()  # chromium writes fd 4, we read

        def child() -> None:
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *HEADLESS,
                "--remote-debugging-pipe",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child,
            close_fds=False,
            start_new_session=True,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def page(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        p = Page(self, session, target)
        p.send("Page.enable")
        p.send("Runtime.enable")
        p.send("Page.navigate", {"url": url})
        return p

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str, target: str):
        self.b, self.session, self.target = browser, session, target

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.b.send(method, params, self.session)

    def js(self, expr: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 15.0) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = self.js(expr)
            except RuntimeError:
                v = None
            if v:
                return v
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout} s for {expr}")

    def focus(self) -> None:
        self.send("Target.activateTarget", {"targetId": self.target})
        self.send("Page.bringToFront")

    def key(self, key: str, modifiers: int = 0) -> None:
        """Press and release one key (a character or a name in SPECIAL); modifiers 2 = Ctrl."""
        if key in SPECIAL:
            code, vk, text = SPECIAL[key]
        else:
            code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}" if key.isalpha() else ""
            vk, text = ord(key.upper()), key
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}
        down = (
            dict(base, type="keyDown", text=text) if text and not modifiers else dict(base, type="rawKeyDown")
        )
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    def type(self, text: str) -> None:
        for ch in text:
            self.key(ch) if ch.isalnum() else self.send("Input.insertText", {"text": ch})

    def click(self, selector: str) -> None:
        box = self.js(
            f"(() => {{const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            "return [r.x + r.width / 2, r.y + r.height / 2];})()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
