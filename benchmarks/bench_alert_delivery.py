"""Alert delivery end to end: `raftctl serve --chaos demo` with the webhook and alertmanager sinks.

Starts a real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, a webhook
receiver that answers 500 for the first OUTAGE seconds and then 200 (deduping by the
Idempotency-Key header), and `raftctl serve --chaos demo --sink webhook:... --sink
alertmanager:...`; stops serve after RUN seconds, restarts it on the same spool while the
receiver is down again (to cross a restart), and prints what arrived:

    .venv/bin/python benchmarks/bench_alert_delivery.py [--run 50] [--outage 15]

Figures: webhook events raftctl produced (from its jsonl sink), distinct delivered, duplicate
copies, lost; the alerts Alertmanager listed while the faults lasted, and whether they resolved.
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAFTCTL = [sys.executable, "-m", "raftctl"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    def __init__(self) -> None:
        self.failing = True
        self.keys: list[str] = []
        self.refused = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    failing = receiver.failing
                    if failing:
                        receiver.refused += 1
                    else:
                        receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def am_alerts(url: str) -> list[dict]:
    try:
        with urllib.request.urlopen(url + "/api/v2/alerts", timeout=2) as response:
            return [a for a in json.loads(response.read()) if a["labels"].get("cluster") == "bench"]
    except OSError:
        return []


def serve(port: int, receiver: Receiver, am_url: str, spool: Path, jsonl: Path, log: Path) -> subprocess.Popen:
    sinks = [f"webhook:{receiver.url}?spool={spool}&cluster=bench&backoff=0.2&max_backoff=2",
             f"alertmanager:{am_url}?cluster=bench", f"jsonl:{jsonl}"]
    args = [*RAFTCTL, "serve", "--chaos", "demo", "--port", str(port), "--interval", "1"]
    for spec in sinks:
        args += ["--sink", spec]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))  # noqa: SIM115


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=float, default=50.0, help="seconds of the first serve run")
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the receiver answers 500 at first")
    options = parser.parse_args()
    binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if binary is None:
        print("needs prometheus-alertmanager (apt-get install prometheus-alertmanager)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="raftctl-bench-alerts-"))
    am_port = free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    (tmp / "am.yml").write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    am = subprocess.Popen([binary, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'am'}",
                           f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                           "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    receiver = Receiver()
    spool, jsonl, log = tmp / "spool", tmp / "events.jsonl", tmp / "serve.log"
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(am_url + "/-/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        procs.append(serve(free_port(), receiver, am_url, spool, jsonl, log))
        started = time.monotonic()
        seen_in_am: set[str] = set()
        while time.monotonic() - started < options.run:
            if receiver.failing and time.monotonic() - started >= options.outage:
                receiver.failing = False
            seen_in_am |= {a["labels"]["alertname"] for a in am_alerts(am_url)}
            time.sleep(1.0)
        # the receiver goes down again and raftctl restarts: the spool crosses the restart
        receiver.failing = True
        stop(procs[-1])
        procs.append(serve(free_port(), receiver, am_url, spool, jsonl, log))
        time.sleep(3.0)
        receiver.failing = False
        events = [json.loads(line) for line in jsonl.read_text().splitlines() if '"type":"alert"' in line]
        produced = len(events)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(set(receiver.keys)) < produced:
            time.sleep(0.2)
        stop(procs[-1])
        distinct = set(receiver.keys)
        am_left = am_alerts(am_url)
        print(f"run {options.run:g} s + restart; receiver answered 500 for the first {options.outage:g} s "
              f"and for 3 s around the restart ({receiver.refused} posts refused)")
        print(f"webhook events produced: {produced}; delivered (distinct keys): {len(distinct)}; "
              f"duplicate copies: {len(receiver.keys) - len(distinct)}; lost: {max(0, produced - len(distinct))}")
        print(f"alertmanager listed during the run: {sorted(seen_in_am)}")
        print(f"alertmanager still listing after the stop: {sorted(a['labels']['alertname'] for a in am_left)} "
              "(firing ones expire there at their endsAt, 4 intervals after the last push)")
        return 0 if produced and len(distinct) >= produced else 1
    finally:
        for proc in procs:
            stop(proc)
        am.terminate()
        am.wait(timeout=10)
        print(f"(files in {tmp})")


if __name__ == "__main__":
    sys.exit(main())
