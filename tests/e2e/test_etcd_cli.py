"""`raftctl serve --source etcd:URL` and the client commands, as a user's shell runs them.

A real 3-member etcd cluster (``etcd3``); `serve` is a subprocess on a free port, stopped with
SIGTERM at the end (killed by PID if it does not stop). Waits are conditions with deadlines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_helpers import RAFTCTL, run_cli
from etcd_fixtures import etcd3  # noqa: F401 - the fixture

from raftctl.runtime.etcd_cluster import EtcdCluster


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def summary(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/api/summary", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def until(self, predicate: Callable[[dict[str, Any]], Any], timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.summary()
            if predicate(doc):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not within {timeout} s: {doc['cluster']}")
            time.sleep(0.2)


@pytest.fixture
def served(etcd3: EtcdCluster) -> Iterator[Served]:  # noqa: F811 - the fixture
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([*RAFTCTL, "serve", "--source", f"etcd:{etcd3.client_urls[0]}", "--port", "0",
                             "--interval", "0.5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first line names the dashboard's URL
        found = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/ \(source etcd, 3 members\)", line)
        assert found, line
        yield Served(proc, found.group(1))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "stopped after" in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serve_watches_etcd_and_the_client_commands_read_it(etcd3: EtcdCluster, served: Served) -> None:  # noqa: F811
    doc = served.until(lambda d: d["cluster"]["health_status"] == "HEALTHY", 15, "HEALTHY")
    leader = doc["cluster"]["leader_node"]
    assert leader == etcd3.leader() and sorted(doc["nodes"]) == ["etcd1", "etcd2", "etcd3"]

    proc = run_cli("summary", "--json", "--url", served.url)
    assert proc.returncode == 0 and json.loads(proc.stdout)["cluster"]["leader_node"] == leader
    proc = run_cli("alerts", "--url", served.url)
    assert proc.returncode == 0 and proc.stdout.startswith("RAFTCTL OK - HEALTHY, 3/3 nodes healthy, leader "
                                                           f"{leader}"), proc.stdout
    with urllib.request.urlopen(served.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for name in etcd3.members:
        assert f'node="{name}"' in text

    victim = next(n for n in etcd3.members if n != leader)
    etcd3.kill(victim)
    served.until(lambda d: d["cluster"]["health_status"] == "DEGRADED", 10, "DEGRADED")
    proc = run_cli("alerts", "--url", served.url)
    assert proc.returncode == 1 and proc.stdout.startswith(f"RAFTCTL WARNING - DEGRADED: {victim} down"), proc.stdout
    proc = run_cli("watch", "--once", "--url", served.url)
    assert proc.returncode == 0 and victim in proc.stdout and "DOWN" in proc.stdout

    etcd3.restart(victim)
    served.until(lambda d: d["cluster"]["health_status"] == "HEALTHY" and not d["alerts"], 20, "HEALTHY again")
    assert run_cli("alerts", "--url", served.url).returncode == 0


@pytest.mark.parametrize("spec", ["etcd:", "etcd:ftp://127.0.0.1:2379", "etcd:http://127.0.0.1:1"])
def test_serve_with_a_bad_etcd_spec_exits_2_with_one_line(spec: str) -> None:
    proc = run_cli("serve", "--source", spec, "--port", "0", timeout=30)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--source" in lines[0], proc.stderr
