"""Fixtures that start real etcd members (Debian's ``etcd-server``; scripts/test.sh installs it).

Import the fixtures into a test module (``from etcd_fixtures import etcd3  # noqa: F401``).
``etcd3`` is a fresh 3-member cluster per test (tests kill and stop members), started on free
loopback ports in the test's tmp dir, with a leader elected and followed by every member before
the test starts; it is torn down (every process SIGKILLed, directories removed) after the test,
on failure too. The tails of the member logs show under a failing test.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
from collections.abc import Iterator

import pytest

from raftctl.runtime.etcd_cluster import EtcdCluster

ETCD = shutil.which("etcd")


def require_etcd() -> str:
    if ETCD is None:
        pytest.fail("etcd not found on PATH: run scripts/test.sh (it installs Debian's etcd-server) "
                    "or `apt-get install etcd-server`", pytrace=False)
    return ETCD


def start_cluster(members: int, tmp_path_factory: pytest.TempPathFactory) -> EtcdCluster:
    require_etcd()
    cluster = EtcdCluster(members=members, base_dir=tmp_path_factory.mktemp("etcd"), startup_timeout=30.0)
    try:
        cluster.start()
        if cluster.wait_for_leader(timeout=15.0) is None:
            raise RuntimeError("the etcd members did not agree on a leader within 15 s")
    except BaseException:
        cluster.close()
        raise
    return cluster


@pytest.fixture
def etcd3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """A fresh 3-member etcd cluster with an agreed leader."""
    cluster = start_cluster(3, tmp_path_factory)
    try:
        yield cluster
    finally:
        # pytest shows a fixture's captured output only when the test fails
        for name in cluster.members:
            print(f"--- {name} log (tail) ---\n{cluster.log_tail(name, 30)}")
        cluster.close()


def put_key(url: str, key: str) -> None:
    """One write through etcd's HTTP gateway (one committed entry)."""
    host, _, port = url.removeprefix("http://").partition(":")
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": "eA=="}).encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=5.0)
    try:
        conn.request("POST", "/v3/kv/put", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read()
        assert response.status == 200, text
    finally:
        conn.close()
