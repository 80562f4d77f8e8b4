"""Reading an etcd member list (sources/etcd_members.py): voters, learners, members not started."""

from __future__ import annotations

import pytest

from raftctl.core.source import SourceError
from raftctl.sources.etcd_members import EtcdMemberInfo, membership_from


def member(member_id: int, name: str = "", url: str | None = None, learner: bool = False) -> dict:
    raw: dict = {"ID": str(member_id), "name": name, "peerURLs": [f"http://127.0.0.1:{member_id + 100}"]}
    if url is not None:
        raw["clientURLs"] = [url]
    if learner:
        raw["isLearner"] = True
    return raw


def test_voters_in_name_order_learners_apart_and_an_unstarted_voter_named_by_its_id() -> None:
    listing = [member(30, "etcd10", "http://127.0.0.1:30"), member(7, "etcd2", "http://127.0.0.1:7"),
               member(12, "etcd1", "http://127.0.0.1:12"), member(255, learner=True),
               member(99, "etcd4", "http://127.0.0.1:99", learner=True), member(0xabc)]
    got = membership_from(listing, {12: "http://localhost:12"})  # a seed's URL beats the advertised one
    assert got.voters == (EtcdMemberInfo("abc", 0xabc, ""), EtcdMemberInfo("etcd1", 12, "http://localhost:12"),
                          EtcdMemberInfo("etcd2", 7, "http://127.0.0.1:7"),
                          EtcdMemberInfo("etcd10", 30, "http://127.0.0.1:30"))
    assert got.learners == ((255, "ff"), (99, "etcd4"))
    assert got.unstarted == {255, 0xabc}
    assert got.ids() == {30, 7, 12, 255, 99, 0xabc}


def test_a_started_voter_without_an_http_url_or_an_entry_without_an_id_is_refused() -> None:
    with pytest.raises(SourceError, match="advertises no http:// client URL"):
        membership_from([member(1, "etcd1", "https://127.0.0.1:1")], {})
    with pytest.raises(SourceError, match="without an ID"):
        membership_from([{"name": "x"}], {})
