"""A throw-away etcd cluster of real ``etcd`` processes, for tests, benchmarks and chaos.

``EtcdCluster(members=3)`` starts N members from the ``etcd`` binary on PATH, each on two free
loopback ports (client, peer), in one temporary directory (per member a data dir and a log
file), and gives the faults chaos needs on real processes: :meth:`EtcdCluster.kill` (SIGKILL),
:meth:`EtcdCluster.pause` / :meth:`EtcdCluster.resume` (SIGSTOP / SIGCONT) and
:meth:`EtcdCluster.restart` (a new process on the same data dir and ports).
:meth:`EtcdCluster.close` kills every process it started and removes the directory; as a context
manager it does so on any exception, Ctrl-C included::

    with EtcdCluster(members=3) as cluster:      # started, every member answering
        cluster.wait_for_leader()
        print(cluster.source_spec)                # etcd:http://127.0.0.1:41235,...
        cluster.kill("etcd2")

Members are named ``etcd1`` … ``etcdN``. Each process asks the kernel to SIGKILL it when the
thread that started it exits (``PR_SET_PDEATHSIG``), so a cluster never outlives a crashed
Python process; start clusters from a thread that lives as long as the cluster.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable

from raftctl.runtime.ports import free_ports
from raftctl.runtime.stopping import sigstop

__all__ = ["EtcdCluster", "EtcdMember", "EtcdNotFoundError", "EtcdStartError", "find_etcd", "free_ports"]

INSTALL_HINT = "install it with `apt-get install etcd-server` (Debian/Ubuntu) or put `etcd` on PATH"


class EtcdNotFoundError(RuntimeError):
    """No ``etcd`` binary to start a cluster from."""


class EtcdStartError(RuntimeError):
    """A member did not start or the cluster did not come up in time (the message says which)."""


def find_etcd(binary: str | None = None) -> str:
    """The path of the etcd binary (``binary``, else ``$ETCD_BINARY``, else ``etcd`` on PATH)."""
    wanted = binary or os.environ.get("ETCD_BINARY") or "etcd"
    found = shutil.which(wanted)
    if found is None:
        raise EtcdNotFoundError(f"no etcd binary found ({wanted!r} is not on PATH); {INSTALL_HINT}")
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class EtcdMember:
    """One member: its name, URLs, directories and (while running) its process."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0
    joined: bool = False  # added to a running cluster (``--initial-cluster-state existing``)
    member_id: int | None = None  # known once added by :meth:`EtcdCluster.add_member`
    _log_files: list[Any] = field(default_factory=list, repr=False)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """A process exists and has not exited (a paused one is running)."""
        return self.process is not None and self.process.poll() is None


def _http(url: str, method: str = "GET", path: str = "/health", body: bytes | None = None,
          timeout: float = 1.0) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class EtcdCluster:
    """N real etcd members on loopback; see the module docstring.

    ``heartbeat_ms`` / ``election_ms`` are etcd's ``--heartbeat-interval`` and
    ``--election-timeout`` (etcd's defaults: 100 and 1000). ``startup_timeout`` bounds
    :meth:`start` (every member answering and a leader elected) and each :meth:`restart`.
    """

    def __init__(self, members: int = 3, *, etcd_binary: str | None = None,
                 base_dir: str | os.PathLike[str] | None = None, heartbeat_ms: int = 100,
                 election_ms: int = 1000, startup_timeout: float = 30.0,
                 token: str | None = None, extra_args: Iterable[str] = ()) -> None:
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= 15:
            raise ValueError(f"members must be an integer from 1 to 15, got {members!r}")
        for name, value in (("heartbeat_ms", heartbeat_ms), ("election_ms", election_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer (ms), got {value!r}")
        if election_ms < 5 * heartbeat_ms:
            raise ValueError(f"etcd wants election_ms >= 5 x heartbeat_ms, got {election_ms} and {heartbeat_ms}")
        self.binary = find_etcd(etcd_binary)
        self.size = members
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.startup_timeout = float(startup_timeout)
        self.extra_args = list(extra_args)
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._owns_dir = base_dir is None
        self.root: Path | None = None
        self.token = token or f"raftctl-{os.getpid()}-{time.monotonic_ns()}"
        self.members: dict[str, EtcdMember] = {}
        self.closed = False

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> "EtcdCluster":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> "EtcdCluster":
        """Start every member; return once each answers and a leader is elected."""
        if self.members:
            raise RuntimeError("this EtcdCluster was already started")
        if self._base_dir is not None:
            self._base_dir.mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix="etcd-cluster-", dir=self._base_dir))
        else:
            self.root = Path(tempfile.mkdtemp(prefix="raftctl-etcd-"))
        ports = free_ports(2 * self.size)
        for index in range(self.size):
            name = f"etcd{index + 1}"
            self.members[name] = EtcdMember(
                name, ports[2 * index], ports[2 * index + 1],
                self.root / f"{name}.etcd", self.root / f"{name}.log")
        for member in self.members.values():
            self._spawn(member, initial=True)
        deadline = time.monotonic() + self.startup_timeout
        for member in self.members.values():
            self._wait_answering(member, deadline)
        if not self.wait_for_leader(timeout=max(0.1, deadline - time.monotonic())):
            raise EtcdStartError(f"no etcd leader within {self.startup_timeout:g} s; logs in {self.root}")
        return self

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members.values())

    def _command(self, member: EtcdMember) -> list[str]:
        return [
            self.binary, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", self._initial_cluster(),
            "--initial-cluster-state", "existing" if member.joined else "new",
            "--initial-cluster-token", self.token,
            "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
            *self.extra_args,
        ]

    def _spawn(self, member: EtcdMember, *, initial: bool) -> None:
        log = open(member.log_path, "ab")  # noqa: SIM115 - kept open for the process's lifetime
        member._log_files.append(log)
        log.write(f"--- raftctl: start #{member.starts + 1} ({'new' if initial else 'restart'}) ---\n".encode())
        log.flush()
        env = dict(os.environ)
        env.pop("ETCDCTL_API", None)
        # no ETCD_* variable of the caller's environment may change the flags above
        for key in [k for k in env if k.startswith("ETCD_")]:
            del env[key]
        member.process = subprocess.Popen(
            self._command(member), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=str(self.root), start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        member.paused = False
        member.starts += 1

    def _wait_answering(self, member: EtcdMember, deadline: float) -> None:
        """Until the member's client port answers HTTP (any status); EtcdStartError past the deadline."""
        while True:
            if not member.running:
                raise EtcdStartError(f"etcd member {member.name} exited with code "
                                     f"{member.process.returncode if member.process else '?'}; "
                                     f"last log lines:\n{self.log_tail(member.name)}")
            try:
                _http(member.client_url, path="/version", timeout=0.5)
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise EtcdStartError(f"etcd member {member.name} did not answer on {member.client_url} "
                                     f"in time; last log lines:\n{self.log_tail(member.name)}")
            time.sleep(0.05)

    def close(self) -> None:
        """SIGKILL every process started here (paused ones too), wait for them, remove the directory."""
        for member in self.members.values():
            self._kill_process(member)
            for log in member._log_files:
                with contextlib.suppress(OSError):
                    log.close()
            member._log_files.clear()
        if self.root is not None and not self.closed:
            shutil.rmtree(self.root, ignore_errors=True)
        self.closed = True

    def __del__(self) -> None:  # a last resort: close() is the way
        with contextlib.suppress(Exception):
            if not self.closed and self.members:
                self.close()

    # ------------------------------------------------------------------ faults

    def member(self, name: str) -> EtcdMember:
        try:
            return self.members[name]
        except KeyError:
            raise KeyError(f"no etcd member {name!r}; members: {', '.join(self.members)}") from None

    def _kill_process(self, member: EtcdMember) -> None:
        process = member.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        member.paused = False

    def kill(self, name: str) -> None:
        """kill -9 the member (its data dir stays; :meth:`restart` brings it back)."""
        member = self.member(name)
        if not member.running:
            raise RuntimeError(f"etcd member {name} is not running")
        self._kill_process(member)

    def pause(self, name: str) -> None:
        """SIGSTOP the member: its sockets stay open, nothing answers."""
        member = self.member(name)
        if not member.running:
            raise RuntimeError(f"etcd member {name} is not running")
        assert member.process is not None
        sigstop(member.process.pid)  # returns once it has taken hold: from then on it answers nobody
        member.paused = True

    def resume(self, name: str) -> None:
        """SIGCONT a paused member."""
        member = self.member(name)
        if not member.running:
            raise RuntimeError(f"etcd member {name} is not running")
        assert member.process is not None
        member.process.send_signal(signal.SIGCONT)
        member.paused = False

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Start a killed member again from its data dir on the same ports.

        With ``wait`` it returns once the client port answers (which etcd does at once, even
        without a quorum; a member's Raft status may answer only once there is one).
        """
        member = self.member(name)
        if member.running:
            raise RuntimeError(f"etcd member {name} is still running; kill it first")
        self._spawn(member, initial=False)
        if wait:
            self._wait_answering(member, time.monotonic() + self.startup_timeout)

    # ------------------------------------------------------------------ membership

    def _ask_cluster(self, path: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """A Cluster API call (``/v3/cluster/member/...``) through the first running member
        that takes it; RuntimeError with etcd's answer when none does. etcd refuses a change
        while a member has been connected for under 5 s ("unhealthy cluster", its strict
        reconfiguration check), or a promotion of a learner not caught up yet: asked again
        until ``timeout`` (``startup_timeout``)."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        while True:
            errors = []
            for member in self.members.values():
                if not member.running or member.paused:
                    continue
                try:
                    status, text = _http(member.client_url, "POST", path, json.dumps(body).encode(), 5.0)
                except OSError as exc:
                    errors.append(f"{member.name}: {exc}")
                    continue
                if status == 200:
                    answer = json.loads(text)
                    return answer if isinstance(answer, dict) else {}
                errors.append(f"{member.name}: HTTP {status} {text[:200]!r}")
            passing = all(b"unhealthy cluster" in e.encode() or b"not in sync" in e.encode() for e in errors)
            if not errors or not passing or time.monotonic() >= deadline:
                raise RuntimeError(f"{path} failed: " + ("; ".join(errors) or "no member is running"))
            time.sleep(0.25)

    def add_member(self, name: str | None = None, *, learner: bool = False, start: bool = True) -> EtcdMember:
        """``etcdctl member add``: a new member (``etcd<N+1>`` unless named) on two free ports,
        a learner if asked; started at once (``start``) or left added-but-not-started (etcd
        then lists it with no name and no client URL until :meth:`restart` starts it)."""
        if self.root is None:
            raise RuntimeError("start the cluster before adding members")
        name = name or f"etcd{len(self.members) + 1}"
        if name in self.members:
            raise ValueError(f"there is already an etcd member {name!r}")
        client_port, peer_port = free_ports(2)
        member = EtcdMember(name, client_port, peer_port, self.root / f"{name}.etcd", self.root / f"{name}.log",
                            joined=True)
        answer = self._ask_cluster("/v3/cluster/member/add", {"peerURLs": [member.peer_url], "isLearner": learner})
        member.member_id = int(answer["member"]["ID"])
        self.members[name] = member
        if start:
            self._spawn(member, initial=True)
            self._wait_answering(member, time.monotonic() + self.startup_timeout)
        return member

    def remove_member(self, name: str) -> None:
        """``etcdctl member remove``: out of the cluster, its process killed (a removed etcd
        member stops by itself, not always at once) and forgotten; its log and data stay."""
        member = self.member(name)
        self._ask_cluster("/v3/cluster/member/remove", {"ID": self.member_id(name)})
        self._kill_process(member)
        for log in member._log_files:
            with contextlib.suppress(OSError):
                log.close()
        del self.members[name]

    def promote_member(self, name: str) -> None:
        """``etcdctl member promote``: a learner that has caught up becomes a voter."""
        self._ask_cluster("/v3/cluster/member/promote", {"ID": self.member_id(name)})

    def member_id(self, name: str) -> int:
        """The member's ID, as the cluster lists it (or as :meth:`add_member` was told)."""
        member = self.member(name)
        if member.member_id is not None:
            return member.member_id
        for hex_id, listed in self.member_ids().items():
            if listed == name:
                member.member_id = int(hex_id, 16)
                return member.member_id
        raise RuntimeError(f"the running etcd members do not list {name}")

    # ------------------------------------------------------------------ reading

    @property
    def client_urls(self) -> list[str]:
        return [m.client_url for m in self.members.values()]

    @property
    def source_spec(self) -> str:
        """The ``--source`` spec naming every member (one URL would do)."""
        return "etcd:" + ",".join(self.client_urls)

    def raft_status(self, name: str, timeout: float = 0.5) -> dict[str, Any] | None:
        """The member's ``raft.status`` from ``/debug/vars``, or None when it does not answer."""
        member = self.member(name)
        if not member.running or member.paused:
            return None
        try:
            status, body = _http(member.client_url, path="/debug/vars", timeout=timeout)
            if status != 200:
                return None
            raft = json.loads(body).get("raft.status")
        except (OSError, ValueError):
            return None
        return raft if isinstance(raft, dict) else None

    def member_ids(self) -> dict[str, str]:
        """``{hex member id: name}`` as the running members list them."""
        for member in self.members.values():
            if not member.running or member.paused:
                continue
            try:
                status, body = _http(member.client_url, "POST", "/v3/cluster/member/list", b"{}", 1.0)
                if status == 200:
                    return {format(int(m["ID"]), "x"): m.get("name", "")
                            for m in json.loads(body).get("members", [])}
            except (OSError, ValueError, KeyError):
                continue
        return {}

    def leader(self, among: Iterable[str] | None = None) -> str | None:
        """The name of a member that reports itself StateLeader (among ``among``), else None."""
        for name in among if among is not None else self.members:
            raft = self.raft_status(name)
            if raft and raft.get("raftState") == "StateLeader":
                return name
        return None

    def wait_until(self, predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
        """Poll ``predicate`` until it returns a truthy value (returned) or ``timeout`` s pass (None)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            time.sleep(step)

    def wait_for_leader(self, timeout: float = 10.0, among: Iterable[str] | None = None,
                        exclude: Iterable[str] = ()) -> str | None:
        """Wait until a member (not in ``exclude``) leads and every live member follows it."""
        excluded = set(exclude)
        candidates = [n for n in (among if among is not None else self.members) if n not in excluded]

        def settled() -> str | None:
            leader = self.leader(candidates)
            if leader is None:
                return None
            lead_id = (self.raft_status(leader) or {}).get("id")
            for name in candidates:
                raft = self.raft_status(name)
                if raft is not None and raft.get("lead") != lead_id:
                    return None
            return leader

        return self.wait_until(settled, timeout)

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.member(name).log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """``python -m raftctl.runtime.etcd_cluster [--members N]``: a local cluster until Ctrl-C/SIGTERM.

    Kill, stop and continue its members as you like to see what raftctl says: a member that
    exits is reported and its data dir kept; SIGHUP to this process restarts every exited member.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m raftctl.runtime.etcd_cluster",
        description="Start a throw-away etcd cluster on free loopback ports (removed on Ctrl-C or SIGTERM). "
                    "A member that exits (kill -9 it to see what raftctl says) is reported and its data kept; "
                    "SIGHUP to this process restarts every exited member.")
    parser.add_argument("--members", type=int, default=3, help="how many members (default 3)")
    parser.add_argument("--heartbeat-ms", type=int, default=100)
    parser.add_argument("--election-ms", type=int, default=1000)
    args = parser.parse_args(argv)
    restart_asked = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: restart_asked.set())
    say = functools.partial(print, file=sys.stderr, flush=True)
    try:
        with EtcdCluster(args.members, heartbeat_ms=args.heartbeat_ms, election_ms=args.election_ms) as cluster:
            for member in cluster.members.values():
                say(f"{member.name}: client {member.client_url}, peer {member.peer_url}, "
                    f"pid {member.pid}, log {member.log_path}")
            say(f"watch it with:\n  raftctl serve --source {cluster.source_spec}\n"
                f"kill -9 / kill -STOP / kill -CONT a member's pid to see what raftctl says; "
                f"kill -HUP {os.getpid()} restarts the exited ones; Ctrl-C or kill {os.getpid()} removes the cluster")
            print(cluster.source_spec, flush=True)
            reported: set[str] = set()
            while True:
                if restart_asked.wait(0.5):
                    restart_asked.clear()
                    for member in cluster.members.values():
                        if not member.running:
                            try:
                                cluster.restart(member.name, wait=False)
                            except (EtcdStartError, OSError) as err:
                                say(f"{member.name} could not restart: {err}")
                                continue
                            reported.discard(member.name)
                            say(f"{member.name} restarted from its data dir: pid {member.pid}")
                for member in cluster.members.values():
                    if not member.running and member.name not in reported:
                        reported.add(member.name)
                        code = member.process.returncode if member.process is not None else None
                        say(f"{member.name} exited ({_exit_text(code)}); its data dir is kept: "
                            f"kill -HUP {os.getpid()} restarts it")
    except KeyboardInterrupt:
        return 0
    except (EtcdNotFoundError, EtcdStartError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


if __name__ == "__main__":
    raise SystemExit(main())
