"""Durable throughput of a real 3-process cluster, side by side with PySyncObj 0.3.17 and etcd 3.4.

    .venv/bin/pip install pysyncobj==0.3.17      # once; not part of the test extra
    .venv/bin/python benchmarks/bench_durable.py [--seconds 10] [--outstanding 1000] [--batch 100]

Every system runs 3 nodes on loopback and is driven by ONE load-generator process with at most
``--outstanding`` orders in flight, counted when the client has its acknowledgement
(committed and applied):

- **raftctl, fsync on / off**: 3 `python -m raftctl.node` processes; the load generator (this
  process) runs ``outstanding / batch`` client sessions, each POSTing batches of ``batch`` orders to
  the leader (``raftctl/node/loadgen.py``).
- **PySyncObj 0.3.17**: 3 processes, each a ``SyncObj`` whose ``@replicated`` method applies the
  same order to the same matching engine (``raftctl.core.exchange.Exchange``), with a journal
  file. PySyncObj has no client protocol: the load generator is node 1's process, calling the
  replicated method with a callback, at most ``outstanding`` callbacks pending. (PySyncObj's
  journal is an mmap it never flushes, so "fsync on" has no equivalent there.)
- **etcd 3.4** through its HTTP gateway: the same shape of client, each batch one
  ``/v3/kv/txn`` of ``batch`` puts (etcd's ``--max-txn-ops`` default is 128).

Then, on the raftctl cluster: the collection cost per node (median ``/api/status`` answer over
HTTP, as the ``raftctl`` source polls it) and the impact of a 1 Hz collector on throughput
(alternating windows with and without it).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftctl.node.launcher import ClusterLauncher, layout  # noqa: E402
from raftctl.node.loadgen import LoadGenerator  # noqa: E402


def free_base_port(span: int = 110) -> int:
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - span)
        ok = True
        for port in (base + i for i in range(span)):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def measure(gen: LoadGenerator, warmup: float, seconds: float) -> float:
    """Acknowledged orders per second over ``seconds`` after ``warmup``."""
    time.sleep(warmup)
    a0, t0 = gen.acknowledged, time.monotonic()
    time.sleep(seconds)
    return (gen.acknowledged - a0) / (time.monotonic() - t0)


# ---- raftctl ---------------------------------------------------------------------------------


def run_raftctl(args: argparse.Namespace, fsync: bool, extras: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-raftctl-"))
    specs = layout(3, root, free_base_port(), fast=True, extra_args=[] if fsync else ["--no-fsync"])
    launcher = ClusterLauncher(specs, root)
    out: dict = {}
    try:
        launcher.start_all()
        if launcher.wait_leader(30) is None:
            raise RuntimeError("no leader: " + launcher.log_tail("node1"))
        urls = {s.node_id: s.url for s in specs}
        gen = LoadGenerator(urls, workers=max(1, args.outstanding // args.batch), batch=args.batch).start()
        out["ops"] = measure(gen, args.warmup, args.seconds)
        if extras:
            out.update(collection_figures(gen, urls, args))
        gen.stop()
        out["stats"] = gen.stats()
        if extras:
            # the collection cost at cluster up's default load (100 orders/s), not at saturation
            paced = LoadGenerator(urls, rate=100.0, workers=2, batch=1).start()
            time.sleep(1.0)
            out["collection_ms_median_100"] = collection_cost(urls, polls=200)
            paced.stop()
    finally:
        launcher.close()
    return out


def collection_cost(urls: dict[str, str], polls: int) -> float:
    """Median time (ms) of one node's answer to the raftctl source's poll."""
    from raftctl.sources import build_source

    source = build_source("raftctl:" + ",".join(f"{k}={v}" for k, v in urls.items()), timeout=0.5)
    costs: list[float] = []
    for _ in range(polls):
        costs += [a.poll_ms for a in source.poll().answers.values() if a.poll_ms is not None]
        time.sleep(0.005)
    source.close()
    return statistics.median(costs)


def collection_figures(gen: LoadGenerator, urls: dict[str, str], args: argparse.Namespace) -> dict:
    from raftctl.runtime.collector import MetricsCollector
    from raftctl.sources import build_source

    source = build_source("raftctl:" + ",".join(f"{k}={v}" for k, v in urls.items()), timeout=0.5)
    costs: list[float] = []
    for _ in range(200):
        costs += [a.poll_ms for a in source.poll().answers.values() if a.poll_ms is not None]
        time.sleep(0.005)
    # impact: pairs of adjacent windows without and with a 1 Hz collector (the order alternates, so a
    # drift of the machine's load does not favour either); the figure is the median ratio of the pairs
    without, with_collector, ratios = [], [], []
    for i in range(args.impact_rounds):
        pair = {}
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            collector = None
            if on:
                collector = MetricsCollector(collection_interval=1.0, retention_period=60)
                collector.set_source(source)
                collector.start()
            pair[on] = measure(gen, 0.3, args.impact_seconds)
            if collector is not None:
                collector.stop()
        without.append(pair[False])
        with_collector.append(pair[True])
        ratios.append(pair[True] / pair[False] if pair[False] else float("nan"))
    source.close()
    return {"collection_ms_median": statistics.median(costs), "collection_ms_p99": sorted(costs)[int(len(costs) * 0.99)],
            "collection_polls": len(costs), "ops_without_collector": statistics.median(without),
            "ops_with_collector": statistics.median(with_collector), "impact_windows": (without, with_collector),
            "impact_ratio": statistics.median(ratios)}


# ---- PySyncObj ---------------------------------------------------------------------------------


def pso_node(argv: list[str]) -> None:
    """One PySyncObj node (``--drive``: also the load generator); prints a JSON line when done."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", dest="self_addr")
    parser.add_argument("--partners")
    parser.add_argument("--journal")
    parser.add_argument("--drive", action="store_true")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--outstanding", type=int, default=1000)
    parser.add_argument("--lifetime", type=float, default=60)
    a = parser.parse_args(argv)
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    from raftctl.core.exchange import Exchange
    from raftctl.core.orders import validate_order
    from raftctl.node.loadgen import random_order

    class Book(SyncObj):
        def __init__(self) -> None:
            conf = SyncObjConf(journalFile=a.journal, dynamicMembershipChange=False)
            super().__init__(a.self_addr, a.partners.split(","), conf)
            self.exchange = Exchange()

        @replicated
        def apply(self, command: dict, order_id: str) -> int:
            return int(self.exchange.apply(command, order_id))

    book = Book()
    end = time.monotonic() + a.lifetime
    if not a.drive:
        while time.monotonic() < end:
            time.sleep(0.5)
        return
    while book._getLeader() is None and time.monotonic() < end:
        time.sleep(0.05)
    rng = random.Random(1)
    cond = threading.Condition()
    state = {"outstanding": 0, "ok": 0, "failed": 0}

    def done(_result: object, err: int) -> None:
        with cond:
            state["outstanding"] -= 1
            if err == FAIL_REASON.SUCCESS:
                state["ok"] += 1
            else:
                state["failed"] += 1
            cond.notify()

    stop = threading.Event()

    def drive() -> None:
        seq = 0
        while not stop.is_set():
            with cond:
                while state["outstanding"] >= a.outstanding and not stop.is_set():
                    cond.wait(0.1)
                state["outstanding"] += 1
            seq += 1
            command = validate_order(random_order(rng))  # the same orders as raftctl's load
            book.apply(command, f"pso:{seq}", callback=done)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    time.sleep(a.warmup)
    with cond:
        ok0 = state["ok"]
    t0 = time.monotonic()
    time.sleep(a.seconds)
    with cond:
        ok1 = state["ok"]
        failed = state["failed"]
    ops = (ok1 - ok0) / (time.monotonic() - t0)
    stop.set()
    print(json.dumps({"ops": ops, "failed": failed}), flush=True)
    os._exit(0)


def run_pysyncobj(args: argparse.Namespace) -> dict:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return {"skipped": "pysyncobj is not installed (.venv/bin/pip install pysyncobj==0.3.17)"}
    from importlib.metadata import version

    root = Path(tempfile.mkdtemp(prefix="bench-pso-"))
    base = free_base_port(10)
    addrs = [f"127.0.0.1:{base + i}" for i in range(3)]
    procs = []
    try:
        for i, addr in enumerate(addrs):
            partners = ",".join(x for x in addrs if x != addr)
            cmd = [sys.executable, __file__, "_pso_node", "--self", addr, "--partners", partners,
                   "--journal", str(root / f"journal{i}"), "--seconds", str(args.seconds),
                   "--warmup", str(args.warmup), "--outstanding", str(args.outstanding),
                   "--lifetime", str(args.seconds + args.warmup + 40)]
            if i == 0:
                cmd.append("--drive")
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, text=True))
        out, _ = procs[0].communicate(timeout=args.seconds + args.warmup + 60)
        result = json.loads(out.strip().splitlines()[-1])
        result["version"] = version("pysyncobj")
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


# ---- etcd ------------------------------------------------------------------------------------------


def run_etcd(args: argparse.Namespace) -> dict:
    try:
        from raftctl.runtime.etcd_cluster import EtcdCluster, find_etcd

        find_etcd()
    except Exception as err:  # noqa: BLE001 - no etcd here: say so
        return {"skipped": str(err)}
    with EtcdCluster(members=3) as cluster:
        cluster.wait_for_leader(20)
        urls = cluster.client_urls
        stop = threading.Event()
        lock = threading.Lock()
        count = {"ok": 0, "failed": 0}

        def worker(index: int) -> None:
            from urllib.parse import urlsplit

            parts = urlsplit(urls[index % len(urls)])
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
            n = 0
            while not stop.is_set():
                ops = []
                for _ in range(args.batch):
                    n += 1
                    key = base64.b64encode(f"order/{index}/{n}".encode()).decode()
                    value = base64.b64encode(b'{"symbol":"BTC-USD","side":"buy","price":100.0,"qty":1}').decode()
                    ops.append({"requestPut": {"key": key, "value": value}})
                body = json.dumps({"success": ops}).encode()
                try:
                    conn.request("POST", "/v3/kv/txn", body=body, headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
                    ok = False
                with lock:
                    count["ok" if ok else "failed"] += args.batch if ok else 1

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(max(1, args.outstanding // args.batch))]
        for t in threads:
            t.start()
        time.sleep(args.warmup)
        with lock:
            ok0 = count["ok"]
        t0 = time.monotonic()
        time.sleep(args.seconds)
        with lock:
            ok1 = count["ok"]
        ops = (ok1 - ok0) / (time.monotonic() - t0)
        stop.set()
        for t in threads:
            t.join(timeout=5)
        return {"ops": ops, "failed": count["failed"]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_pso_node":
        pso_node(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per system")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--outstanding", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--impact-rounds", type=int, default=8)
    parser.add_argument("--impact-seconds", type=float, default=2.0)
    parser.add_argument("--skip-etcd", action="store_true")
    args = parser.parse_args()
    print(f"3 nodes on loopback, one load generator, at most {args.outstanding} outstanding, "
          f"{args.seconds:g} s measured after {args.warmup:g} s warm-up; load average {os.getloadavg()[0]:.1f}")
    ours = run_raftctl(args, fsync=True, extras=True)
    print(f"raftctl, fsync on:   {ours['ops']:9.0f} orders/s committed  (batches of {args.batch})")
    pso = run_pysyncobj(args)
    if "ops" in pso:
        ratio = ours["ops"] / pso["ops"] if pso["ops"] else float("inf")
        print(f"PySyncObj {pso['version']}:   {pso['ops']:9.0f} ops/s committed (callbacks)  -> raftctl is {ratio:.2f}x")
    else:
        print(f"PySyncObj: skipped ({pso['skipped']})")
    nofsync = run_raftctl(args, fsync=False, extras=False)
    print(f"raftctl, fsync off:  {nofsync['ops']:9.0f} orders/s committed")
    if not args.skip_etcd:
        etcd = run_etcd(args)
        if "ops" in etcd:
            print(f"etcd 3.4 (gateway):  {etcd['ops']:9.0f} puts/s committed  (txn of {args.batch} puts per request)")
        else:
            print(f"etcd: skipped ({etcd['skipped']})")
    print(f"collection cost per node over HTTP: median {ours['collection_ms_median_100']:.3f} ms at 100 orders/s; "
          f"at full load median {ours['collection_ms_median']:.3f} ms, p99 {ours['collection_ms_p99']:.3f} ms "
          f"({ours['collection_polls']} answers)")
    w, c = ours["ops_without_collector"], ours["ops_with_collector"]
    print(f"impact of a 1 Hz collector: median ratio of {args.impact_rounds} paired windows {ours['impact_ratio']:.3f}x "
          f"({c:.0f} vs {w:.0f} orders/s median)  "
          f"(windows without {[round(x) for x in ours['impact_windows'][0]]}, "
          f"with {[round(x) for x in ours['impact_windows'][1]]})")


if __name__ == "__main__":
    main()
