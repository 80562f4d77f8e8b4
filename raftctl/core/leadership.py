"""Who leads, worked out from the nodes' own reports only.

A node that says LEADER is believed only when a majority of the cluster backs it in its term.
Backing comes from two kinds of report:

* a node that answered and names it as leader in the same term (the claimant counts itself);
* a follower the claimant's own report heard from within ``max_contact_ms`` — unless that
  follower answered and its own report says otherwise (a different term or leader), or refused
  the poll (its process is gone): a node's word about itself beats another's word about it.

Of the claimants so backed, the one of the highest term leads. Every other node that still says
LEADER is *stale*: a leader that was paused or cut off and woke in an old term. It is shown as
such, never as a second leader. A leader that does not answer is not believed at all: the monitor
cannot tell it from a dead one.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from raftctl.core.measures import quorum_size

__all__ = ["LeaderView", "find_leader"]

LEADER = "LEADER"


class LeaderView(NamedTuple):
    """The leader the reports support (None: none does), its term and backers, and the stale."""

    leader: str | None = None
    term: int | None = None
    support: frozenset[str] = frozenset()
    stale: tuple[str, ...] = ()


_NO_LEADER = LeaderView()
_view = tuple.__new__  # builds a LeaderView from its four fields without NamedTuple's keyword-handling __new__


def _backers(claimant: str, term: int, reports: Mapping[str, Mapping[str, Any] | None],
             max_contact_ms: float, gone: frozenset[str]) -> set[str]:
    backers = {node_id for node_id, report in reports.items()
               if report is not None and report.get("leader_id") == claimant and report.get("term") == term}
    backers.add(claimant)  # whatever its report says of itself
    contacts = reports[claimant].get("last_contact_ms")  # type: ignore[union-attr]
    if type(contacts) is not dict:  # malformed: the claimant's word about others counts for nothing
        return backers
    for peer, age in contacts.items():
        if peer in backers or peer in gone or (type(age) is not float and type(age) is not int) \
                or age > max_contact_ms or peer not in reports:
            continue
        own = reports[peer]
        if own is None or (own.get("term") == term and own.get("leader_id") in (claimant, None)):
            backers.add(peer)
    return backers


def find_leader(reports: Mapping[str, Mapping[str, Any] | None], max_contact_ms: float,
                size: int | None = None, gone: frozenset[str] = frozenset(),
                claimants: list[str] | None = None) -> LeaderView:
    """``reports``: every member's report, None for a node that did not answer; ``gone``: nodes
    whose poll was refused (their process is not running), which back nobody; ``claimants``: the
    nodes whose report says LEADER, in ``reports``' order, when the caller has found them already."""
    quorum = quorum_size(len(reports) if size is None else size)
    best: tuple[int, int, str] | None = None
    best_backers: set[str] = set()
    if claimants is None:
        claimants = [node_id for node_id, report in reports.items()
                     if report is not None and report.get("state") == LEADER]
    if len(claimants) == 1 and len(reports) >= quorum:
        # the common case first: one claimant that every member answered for, naming it in its
        # term, is backed by all of them (what _backers finds; contacts can add no one more)
        claimant = claimants[0]
        own = reports.get(claimant)
        if own is not None:
            said = own.get("term")
            term = said if type(said) is int else 0
            for report in reports.values():
                if report is None or report.get("leader_id") != claimant or report.get("term") != term:
                    break
            else:
                return _view(LeaderView, (claimant, term, frozenset(reports), ()))
    for node_id in claimants:
        report = reports[node_id]
        if report is None:
            continue
        said = report.get("term")
        term = said if type(said) is int else 0  # a report's word, unchecked: a bad term counts as 0
        backers = _backers(node_id, term, reports, max_contact_ms, gone)
        if len(backers) >= quorum:
            key = (term, len(backers), node_id)
            if best is None or key > best:
                best, best_backers = key, backers
    if best is None:
        return LeaderView(None, None, frozenset(), tuple(claimants)) if claimants else _NO_LEADER
    leader = best[2]
    stale = () if len(claimants) == 1 else tuple(c for c in claimants if c != leader)
    return _view(LeaderView, (leader, best[0], frozenset(best_backers), stale))
