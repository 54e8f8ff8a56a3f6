#!/usr/bin/env python3
"""The dashboard in a real browser (headless Chromium through Selenium and chromedriver),
against the broker of AMQP_URL / AMQP_MGMT_URL:

- the page loads and goes live, with no console errors;
- a line published on the `logs` exchange appears within 2 s;
- anon through the form shows the rewritten text;
- crosscor through the form draws the cumulative distribution chart;
- the page has no horizontal overflow at phone width;
- screenshots are saved under the output directory for review.

    scripts/dashboard-browser-test.py BIN_DIR OUT_DIR

BIN_DIR holds the built binaries (target/debug). Processes run with fixed argv and are stopped
by pid when the test ends.
"""

import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "prisem-tools", "data")
SAMPLE = "Mail from 192.0.2.15 was relayed by 203.0.113.200 to 192.0.2.16.\n"


_picked = set()


def free_port():
    """A loopback port free for TCP now, picked below the kernel's ephemeral range (as the Rust
    tests' `free_port`) so no port-0 bind or outgoing connection can take it before the daemon
    binds it, and never one this run picked before."""
    for port in random.sample(range(26000, 32000), 6000):
        if port in _picked:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _picked.add(port)
        return port
    raise SystemExit("dashboard test: no free loopback port in 26000-31999")


def wait_port(port, what, limit=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"dashboard test: {what} never listened on {port}")


def main():
    bin_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    url = os.environ["AMQP_URL"]
    mgmt = os.environ["AMQP_MGMT_URL"]
    logs_dir = os.path.join(out_dir, "logs")
    os.makedirs(logs_dir, exist_ok=True)
    procs = []
    timings = {}

    def start(name, argv):
        err = open(os.path.join(logs_dir, name + ".stderr"), "wb")
        p = subprocess.Popen([os.path.join(bin_dir, argv[0])] + argv[1:],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        procs.append((p, err))
        return p

    def amqp(*args, body=None):
        subprocess.run([os.path.join(bin_dir, "amqp"), "--url", url, *args],
                       input=body, check=True, stdout=subprocess.DEVNULL)

    m_anon, m_cc, m_sys, web = free_port(), free_port(), free_port(), free_port()
    syslog_port = free_port()
    inbox = f"dashboard-test-{uuid.uuid4().hex[:8]}-inbox"
    driver = None
    try:
        start("anon_server", ["anon_server", "--url", url, "--metrics", str(m_anon)])
        start("crosscor_server", ["crosscor_server", "--url", url, "--metrics", str(m_cc)])
        start("syslog-bridge", ["syslog-bridge", "--url", url, "--tcp", f"127.0.0.1:{syslog_port}",
                                "--metrics", str(m_sys)])
        start("prisem-dashboard", [
            "prisem-dashboard", "--url", url, "--management-url", mgmt,
            "--listen", f"127.0.0.1:{web}", "--refresh", "1",
            "--service", f"anon=http://127.0.0.1:{m_anon}/metrics",
            "--service", f"crosscor=http://127.0.0.1:{m_cc}/metrics",
            "--syslog-metrics", f"http://127.0.0.1:{m_sys}/metrics",
            "--netmap", f"sample={os.path.join(DATA, 'netmap.txt')}",
        ])
        for port, what in [(m_anon, "anon_server"), (m_cc, "crosscor_server"),
                           (m_sys, "syslog-bridge"), (web, "prisem-dashboard")]:
            wait_port(port, what)
        # Something for the block list and the backbone table.
        amqp("declare", "queue", inbox)
        amqp("publish", "-e", "firewall", "-r", "block",
             "-b", json.dumps({"action": "block", "ip": "198.51.100.77", "ttl": 600}))

        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,1700"]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)

        t0 = time.monotonic()
        driver.get(f"http://127.0.0.1:{web}/")
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "conn"), "live"))
        WebDriverWait(driver, 15).until(
            EC.text_to_be_present_in_element((By.ID, "services"), "anon_0.5.5"))
        timings["page live"] = time.monotonic() - t0

        # A line on `logs` shows up within 2 s of being published.
        probe = f"dashboard probe {uuid.uuid4()}"
        subprocess.run([os.path.join(bin_dir, "logmon"), "--url", url, "-m", probe],
                       check=True, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        WebDriverWait(driver, 2, poll_frequency=0.05).until(
            EC.text_to_be_present_in_element((By.ID, "logs"), probe))
        timings["log line shown"] = time.monotonic() - t0

        # anon on pasted text with the sample map: addresses inside the map are rewritten.
        driver.find_element(By.ID, "text").send_keys(SAMPLE)
        Select(driver.find_element(By.ID, "map")).select_by_value("sample")
        Select(driver.find_element(By.ID, "service")).select_by_value("anon")
        t0 = time.monotonic()
        driver.find_element(By.ID, "run-button").click()
        WebDriverWait(driver, 30).until(
            EC.text_to_be_present_in_element((By.ID, "run-output"), "203.0.113.200"))
        out = driver.find_element(By.ID, "run-output").text
        timings["anon answered"] = time.monotonic() - t0
        assert "192.0.2.15" not in out and "192.0.2.16" not in out, out
        assert "CTYSEA" in out, out

        # crosscor on the sample report: the chart has one point per site.
        with open(os.path.join(DATA, "report.txt")) as f:
            report = f.read()
        area = driver.find_element(By.ID, "text")
        area.clear()
        driver.execute_script("arguments[0].value = arguments[1];", area, report)
        Select(driver.find_element(By.ID, "service")).select_by_value("crosscor")
        t0 = time.monotonic()
        driver.find_element(By.ID, "run-button").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "chart").is_displayed())
        timings["crosscor chart"] = time.monotonic() - t0
        points = driver.find_elements(By.CSS_SELECTOR, "#cumdist circle.point")
        labels = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#cumdist text")]
        curve = driver.find_elements(By.CSS_SELECTOR, "#cumdist polyline.curve")
        assert len(curve) == 1, "no cumulative curve"
        assert len(points) == 4, f"{len(points)} points, wanted 4 sites"
        for site in ["UWMED", "CTYSEA", "KCNET", "SEAPORT"]:
            assert site in labels, (site, labels)
        box = driver.find_element(By.ID, "cumdist").rect
        assert box["width"] > 100 and box["height"] > 50, box

        # The block published above and the inbox declared above are listed.
        WebDriverWait(driver, 10).until(
            EC.text_to_be_present_in_element((By.ID, "blocks"), "198.51.100.77"))
        WebDriverWait(driver, 10).until(
            EC.text_to_be_present_in_element((By.ID, "backbone"), inbox))
        WebDriverWait(driver, 10).until(
            EC.text_to_be_present_in_element((By.ID, "syslog"), "received"))

        driver.execute_script("window.scrollTo(0, 0);")
        desktop = os.path.join(out_dir, "dashboard.png")
        driver.save_screenshot(desktop)

        # Phone width: nothing wider than the screen.
        driver.set_window_size(390, 844)
        time.sleep(0.3)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;")
        assert overflow <= 1, f"the page is {overflow} px wider than a phone screen"
        driver.save_screenshot(os.path.join(out_dir, "dashboard-phone.png"))

        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, f"console errors: {errors}"
        for k, v in timings.items():
            print(f"dashboard test: {k} in {v:.2f} s")
        print(f"dashboard test: ok; screenshots in {out_dir}")
    finally:
        if driver is not None:
            driver.quit()
        for p, err in procs:
            p.terminate()
        for p, err in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err.close()
        try:
            amqp("delete", "queue", inbox)
        except subprocess.CalledProcessError:
            pass


if __name__ == "__main__":
    main()
