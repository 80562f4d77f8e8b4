"""``raftctl chaos --target processes``: the real-process campaign on raftctl's own node processes.

:class:`NodeProcessCluster` is a :class:`raftctl.runtime.real_chaos.ProcessCluster` over the node
launcher: a fresh cluster of ``raftctl node`` processes on free loopback ports in a temporary
directory, kill -9, SIGSTOP / SIGCONT and restart from the data dir. :func:`run_process_campaign`
runs a trading load against it during the campaign, scores detection with the honest scorer
(through ``raftctl/runtime/real_chaos.py``), and checks safety from the nodes' own reports:

Faults: kill -9, SIGSTOP / SIGCONT, restart from disk, and isolation of a node from its peers by
the node transport's own fault rule (``POST /api/control/isolate``) rather than iptables: no root,
no change to the host's firewall, the same in CI, and the monitor still reaches the node.

* every sample: at most one node claims LEADER (or is a stale leader) per term;
* every sample: nodes at the same applied index report the same state digest;
* at the end, after the load stops and the cluster settles: every node at the same applied index
  with the same digest, and at least as many orders applied as the client saw acknowledged.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from raftctl.node.launcher import ClusterLauncher, NodeSpec, layout
from raftctl.runtime.ports import free_base_port
from raftctl.runtime.stopping import sigstop

__all__ = ["NodeProcessCluster", "ReportSafety", "run_process_campaign"]


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) if text else "(empty log)"


class NodeProcessCluster:
    """``nodes`` node processes in a temporary directory; :meth:`close` kills them and removes it."""

    def __init__(self, nodes: int, *, election_timeout_ms: int = 150, base_dir: str | None = None,
                 start_timeout_s: float = 30.0, attempts: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="raftctl-nodes-", dir=base_dir))
        try:
            for attempt in range(1, attempts + 1):
                base = free_base_port(nodes)
                specs = layout(nodes, self.root, base, fast=True,
                               extra_args=["--election-timeout-ms", str(int(election_timeout_ms))])
                self.launcher = ClusterLauncher(specs, self.root, throwaway=True)
                self.launcher.start_all()
                lost = self._wait_started(start_timeout_s)
                if not lost:
                    break
                # another program took a port between our check and the node's bind: new ports, clean dirs
                self.launcher.close()
                for spec in specs:
                    shutil.rmtree(spec.data_dir, ignore_errors=True)
                if attempt == attempts:
                    raise RuntimeError(f"the node processes could not listen after {attempts} tries: {lost}")
        except BaseException:
            self.close()
            raise

    def _wait_started(self, timeout: float) -> str:
        """Until every node answers /api/status: "" then; a node that could not listen: its log line
        (the caller tries new ports); a node that exited otherwise, or no answer in time: RuntimeError."""
        deadline = time.monotonic() + timeout
        waiting = set(self.launcher.ids)
        while waiting:
            for nid in sorted(waiting):
                if self.launcher.status(nid) is not None:
                    waiting.discard(nid)
                elif not self.launcher.running(nid):
                    tail = _log_tail(self.root / f"{nid}.log")
                    if "cannot listen" in tail:
                        return f"{nid}: {tail}"
                    raise RuntimeError(f"node process {nid} exited while starting: {tail}")
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"node processes {', '.join(sorted(waiting))} did not answer within {timeout:g} s")
            if waiting:
                time.sleep(0.05)
        return ""

    def diagnose(self) -> str:
        """A line on each node process that is not running (exit code and log tail); "" if all run."""
        parts = []
        for nid, proc in self.launcher.procs.items():
            code = proc.poll()
            if code is not None:
                parts.append(f"{nid} exited with code {code}: {_log_tail(self.root / f'{nid}.log')}")
        return "; ".join(parts)

    @property
    def members(self) -> dict[str, NodeSpec]:
        return dict(self.launcher.specs)

    @property
    def urls(self) -> dict[str, str]:
        return {nid: spec.url for nid, spec in self.launcher.specs.items()}

    @property
    def source_spec(self) -> str:
        return "raftctl:" + ",".join(f"{nid}={url}" for nid, url in self.urls.items())

    def kill(self, name: str) -> None:
        self.launcher.kill(name)

    def pause(self, name: str) -> None:
        proc = self.launcher.procs.get(name)
        if proc is not None and proc.poll() is None:
            sigstop(proc.pid)  # returns once it has taken hold: from then on it answers nobody

    def resume(self, name: str) -> None:
        self.launcher.signal(name, signal.SIGCONT)

    def restart(self, name: str) -> None:
        if self.launcher.running(name):
            self.launcher.kill(name)
        self.launcher.start(name)

    def isolate(self, name: str) -> None:
        """Cut ``name`` off from every peer with its transport's fault rule (both directions):
        the monitor still reaches it, as a firewall rule between members would."""
        self._isolate(name, [n for n in self.launcher.ids if n != name])

    def heal(self, name: str) -> None:
        self._isolate(name, [])

    def _isolate(self, name: str, peers: list[str]) -> None:
        import http.client

        import orjson

        host, port = self.launcher.specs[name].http
        conn = http.client.HTTPConnection(host, port, timeout=2.0)
        try:
            conn.request("POST", "/api/control/isolate", body=orjson.dumps({"peers": peers}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{name} refused the isolation rule: HTTP {resp.status} {body[:200]!r}")
        finally:
            conn.close()

    def leader(self) -> str | None:
        return self.launcher.leader()

    def wait_for_leader(self, timeout: float) -> str | None:
        return self.launcher.wait_leader(timeout)

    def wait_whole(self, timeout: float) -> tuple[str | None, list[str]]:
        """Until the cluster is whole, as ``raftctl cluster up`` waits: every node answers, follows
        one leader that says LEADER, and reaches every peer. A leader is elected once a majority
        connects, so a campaign started then would see the last node 'isolated' for a moment and
        score that as a false alarm. Returns (the leader, []) or, at ``timeout``, (None, what is
        still missing)."""
        deadline = time.monotonic() + timeout
        while True:
            reports = self.statuses()
            missing = [f"{nid} not answering" for nid, r in reports.items() if r is None]
            followed = {r.get("leader_id") for r in reports.values() if r is not None}
            leader = next(iter(followed)) if len(followed) == 1 and not missing else None
            if leader is None or (reports.get(leader) or {}).get("state") != "LEADER":
                missing.append("no leader every node follows")
                leader = None
            peers = len(reports) - 1
            missing += [f"{nid} reaches {r.get('peers_connected')} of {peers} peers"
                        for nid, r in reports.items() if r is not None and r.get("peers_connected") != peers]
            if not missing:
                return leader, []
            if time.monotonic() >= deadline:
                return None, missing
            time.sleep(0.05)

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        return {nid: self.launcher.status(nid) for nid in self.launcher.ids}

    def close(self) -> None:
        launcher = getattr(self, "launcher", None)
        if launcher is not None:
            for nid in launcher.ids:  # a paused node must be continued to die of SIGTERM; kill works anyway
                launcher.signal(nid, signal.SIGCONT)
            launcher.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "NodeProcessCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ReportSafety:
    """Safety checks fed from the nodes' reports as the monitor published them (one per sample)."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.samples = 0

    def observe(self, sample: dict[str, Any]) -> None:
        self.samples += 1
        t = sample.get("sim_time")
        leaders: dict[int, list[str]] = {}
        digests: dict[int, tuple[str, str]] = {}
        for node_id, node in (sample.get("nodes") or {}).items():
            if not node.get("up"):
                continue
            if node.get("state") in ("LEADER", "STALE_LEADER") and node.get("term") is not None:
                leaders.setdefault(int(node["term"]), []).append(node_id)
            digest, applied = node.get("state_digest"), node.get("last_applied")
            if digest is not None and applied is not None:
                first = digests.setdefault(int(applied), (node_id, digest))
                if first[1] != digest:
                    self.violations.append(f"t={t}: {first[0]} and {node_id} applied index {applied} "
                                           f"but hold different state ({first[1][:12]} vs {digest[:12]})")
        for term, who in leaders.items():
            if len(who) > 1:
                self.violations.append(f"t={t}: two leaders in term {term}: {', '.join(sorted(who))}")


def _settle(cluster: NodeProcessCluster, timeout: float) -> tuple[bool, dict[str, Any]]:
    """Wait until every node answers with the same applied index and digest."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        statuses = cluster.statuses()
        last = statuses
        answers = [s for s in statuses.values() if s is not None]
        if len(answers) == len(statuses) and len({(s.get("last_applied"), s.get("state_digest")) for s in answers}) == 1 \
                and all(s.get("commit_index") == s.get("last_applied") for s in answers):
            return True, statuses
        time.sleep(0.1)
    return False, last


def run_process_campaign(nodes: int, config: Any, *, rate: float = 100.0, base_dir: str | None = None,
                         progress: Callable[[str], None] | None = None,
                         campaign_hook: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Start ``nodes`` node processes, load them at ``rate`` orders/s, run one campaign; the report."""
    from raftctl.node.loadgen import LoadGenerator
    from raftctl.runtime.real_chaos import RealChaosCampaign

    config.validate(nodes)  # kinds may include "isolate": these nodes can cut themselves off
    with NodeProcessCluster(nodes, election_timeout_ms=int(config.election_timeout_ms),
                            base_dir=base_dir) as cluster:
        leader, missing = cluster.wait_whole(15.0)
        if leader is None:
            raise RuntimeError(f"the node processes did not form a whole cluster within 15 s: {'; '.join(missing)}")
        load = LoadGenerator(cluster.urls, rate=rate if rate > 0 else None, workers=4, batch=10).start() \
            if rate > 0 else None
        safety = ReportSafety()
        try:
            campaign = RealChaosCampaign(cluster, config, target="processes", signals=False, progress=progress,
                                         source_context={"load": load} if load is not None else None,
                                         sample_hook=safety.observe)
            if campaign_hook is not None:
                campaign_hook(campaign)
            report = campaign.run()
        finally:
            if load is not None:
                load.stop()
        settled, statuses = _settle(cluster, 20.0)
        acked = int(load.stats().get("acknowledged", 0)) if load is not None else 0
        applied = [int((s or {}).get("orders_applied") or 0) for s in statuses.values()]
        violations = list(safety.violations)
        if not settled:
            violations.append("the nodes did not converge to one applied index and digest within 20 s of the end")
        elif applied and min(applied) < acked:
            violations.append(f"{acked} orders acknowledged but a node applied only {min(applied)}")
        report.update({
            "rate": rate,
            "orders_acknowledged": acked,
            "orders_applied_min": min(applied) if applied else 0,
            "safety_samples": safety.samples,
            "safety_violations": len(violations),
            "safety_violation_examples": violations[:10],
            "converged": settled,
        })
        return report
