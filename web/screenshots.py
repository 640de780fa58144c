#!/usr/bin/env python3
"""Takes docs/screenshots/{viewer,host}-{desktop,phone}.png from a running demo with headless
Chromium over chromedriver's WebDriver API (Debian: chromium, chromium-driver), waiting 8 s of
real time on each page so the player, the chat and the charts have started. Standard library
only; run by web/screenshots.sh. Usage: screenshots.py BASE_URL OUT_DIR"""
import base64, json, os, socket, subprocess, sys, tempfile, time, urllib.request

base, out = sys.argv[1].rstrip("/"), sys.argv[2]
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
driver = subprocess.Popen(["chromedriver", f"--port={port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["value"]

try:
    for _ in range(100):
        try:
            if call("GET", "/status")["ready"]:
                break
        except OSError:
            time.sleep(0.1)
    profile = tempfile.mkdtemp()
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
            "--hide-scrollbars", f"--user-data-dir={profile}"]
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium", "args": args}}}}
    session = call("POST", "/session", caps)["sessionId"]
    for name, path, width, height in [("viewer-desktop", "/", 1280, 800),
                                      ("viewer-phone", "/", 390, 844),
                                      ("host-desktop", "/host", 1280, 800),
                                      ("host-phone", "/host", 390, 844)]:
        call("POST", f"/session/{session}/window/rect", {"width": width, "height": height})
        call("POST", f"/session/{session}/url", {"url": base + path})
        time.sleep(8)
        png = base64.b64decode(call("GET", f"/session/{session}/screenshot"))
        with open(os.path.join(out, name + ".png"), "wb") as f:
            f.write(png)
        print(f"wrote {out}/{name}.png")
    call("DELETE", f"/session/{session}")
finally:
    driver.kill()
