"""The HTTP address a node advertises (raftctl/node/main.py: advertised_http)."""

from __future__ import annotations

import pytest

from raftctl.commands._common import CliError
from raftctl.node.main import advertised_http


def test_the_http_address_is_told_as_given_unless_it_is_a_wildcard():
    assert advertised_http(("127.0.0.1", 7101), ("127.0.0.1", 7001)) == (("127.0.0.1", 7101), None)
    assert advertised_http(("10.0.0.5", 7101), ("10.0.0.6", 7001)) == (("10.0.0.5", 7101), None)


def test_a_wildcard_http_host_is_told_as_the_raft_host_the_peers_reach():
    assert advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001)) == (("10.0.0.5", 7101), None)
    assert advertised_http(("::", 7101), ("fd00::5", 7001)) == (("fd00::5", 7101), None)
    told, warning = advertised_http(("0.0.0.0", 7101), ("0.0.0.0", 7001))
    assert told == ("0.0.0.0", 7101) and warning is not None and "--advertise-http" in warning


def test_an_advertised_address_wins_and_is_never_a_wildcard():
    assert advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001), ("node1.example", 80)) == (("node1.example", 80), None)
    with pytest.raises(CliError) as err:
        advertised_http(("0.0.0.0", 7101), ("10.0.0.5", 7001), ("::", 80))
    assert err.value.exit_code == 2 and "wildcard" in err.value.message
