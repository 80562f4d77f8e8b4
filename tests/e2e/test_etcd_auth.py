"""An etcd cluster with authentication enabled, as production ones often are.

raftctl's latency probe (a linearizable read of one key) was refused there ("etcdserver: user
name is empty") and the sample only showed no latency, with no word of why. The probe now
takes a user from RAFTCTL_ETCD_USER / RAFTCTL_ETCD_PASSWORD, and the sample's
``performance.latency_note`` says why nothing was measured. A real single-member etcd 3.4.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator

import pytest

from etcd_fixtures import start_cluster

from raftctl.core.source import SourceError
from raftctl.runtime.collector import MetricsCollector
from raftctl.runtime.etcd_cluster import EtcdCluster
from raftctl.sources import build_source
from raftctl.sources.etcd import EtcdClientView, EtcdSource

ROOT_PASSWORD = "s3cret-root-pw"


def _post(url: str, path: str, doc: dict, token: str | None = None) -> dict:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5.0)
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": token} if token else {})}
        conn.request("POST", path, body=json.dumps(doc).encode(), headers=headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (path, body)
        return json.loads(body)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One member with auth enabled: users root (role root) and nobody (no role)."""
    cluster = start_cluster(1, tmp_path_factory)
    try:
        url = cluster.client_urls[0]
        _post(url, "/v3/auth/role/add", {"name": "root"})
        _post(url, "/v3/auth/user/add", {"name": "root", "password": ROOT_PASSWORD})
        _post(url, "/v3/auth/user/grant", {"user": "root", "role": "root"})
        _post(url, "/v3/auth/user/add", {"name": "nobody", "password": "pw"})
        _post(url, "/v3/auth/enable", {})
        yield cluster
    finally:
        cluster.close()


def probe_once(cluster: EtcdCluster, monkeypatch: pytest.MonkeyPatch, user: str | None,
               password: str | None) -> tuple[EtcdSource, EtcdClientView]:
    for name, value in (("RAFTCTL_ETCD_USER", user), ("RAFTCTL_ETCD_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    source = build_source(f"etcd:{cluster.client_urls[0]}", timeout=2.0)
    assert isinstance(source, EtcdSource)
    poll = source.poll()
    assert all(a.report is not None for a in poll.answers.values()), poll.answers  # the rest needs no user
    assert isinstance(poll.client, EtcdClientView)
    return source, poll.client


def test_without_a_user_the_sample_says_why_there_is_no_latency(secured, monkeypatch):
    source, client = probe_once(secured, monkeypatch, None, None)
    source.close()
    assert client.latencies_ms == []
    assert client.latency_note is not None and "etcd has auth enabled" in client.latency_note
    assert "RAFTCTL_ETCD_USER" in client.latency_note, client.latency_note
    # and so does the collector's sample (what summary, watch and the dashboard read)
    monkeypatch.delenv("RAFTCTL_ETCD_USER", raising=False)
    watched = build_source(f"etcd:{secured.client_urls[0]}", timeout=2.0)
    collector = MetricsCollector(collection_interval=1.0)
    collector.set_source(watched)
    try:
        perf = collector.collect()["performance"]
    finally:
        watched.close()
    assert perf["avg_latency_ms"] is None and "etcd has auth enabled" in perf["latency_note"], perf


def test_with_a_user_the_probe_measures_and_renews_a_token_etcd_no_longer_takes(secured, monkeypatch):
    source, client = probe_once(secured, monkeypatch, "root", ROOT_PASSWORD)
    try:
        assert len(client.latencies_ms) == 1 and client.latency_note is None, client
        source._token = "not-a-token.1"  # as after the member restarted or the token expired
        poll = source.poll()
        assert isinstance(poll.client, EtcdClientView)
        assert poll.client.latency_note is None and len(poll.client.latencies_ms) == 2, poll.client
        assert source._token != "not-a-token.1"
    finally:
        source.close()


@pytest.mark.parametrize("user, password, said", [
    ("root", "not-the-pw-42", "authentication failed"),
    ("nobody", "pw", "may not read the probe key"),
])
def test_a_refused_user_is_named_and_its_password_never_shown(secured, monkeypatch, user, password, said):
    source, client = probe_once(secured, monkeypatch, user, password)
    source.close()
    assert client.latencies_ms == [] and client.latency_note is not None
    assert said in client.latency_note and repr(user) in client.latency_note, client.latency_note
    assert password not in client.latency_note


def test_a_password_without_a_user_is_refused_at_start(secured, monkeypatch):
    monkeypatch.delenv("RAFTCTL_ETCD_USER", raising=False)
    monkeypatch.setenv("RAFTCTL_ETCD_PASSWORD", ROOT_PASSWORD)
    with pytest.raises(SourceError, match="RAFTCTL_ETCD_PASSWORD is set but RAFTCTL_ETCD_USER is not") as info:
        build_source(f"etcd:{secured.client_urls[0]}", timeout=2.0)
    assert ROOT_PASSWORD not in str(info.value)


def test_etcds_own_words_are_kept_when_it_refuses_a_call(secured):
    from raftctl.sources.etcd_http import Connection as _Connection
    from raftctl.sources.members import Silent

    conn = _Connection(secured.client_urls[0])
    key = base64.b64encode(b"k").decode()
    try:
        with pytest.raises(Silent) as info:
            conn.request("POST", "/v3/kv/put", time.monotonic() + 5.0, json.dumps({"key": key, "value": key}).encode())
    finally:
        conn.close()
    assert "answered HTTP" in info.value.detail and "etcdserver: user name is empty" in info.value.detail
