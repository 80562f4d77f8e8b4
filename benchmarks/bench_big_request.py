"""The largest order request against a real 3-process cluster: is its leader deposed?

    .venv/bin/python benchmarks/bench_big_request.py [--rounds 10] [--parallel 1] [TREE ...]

Each round starts a fresh 3-node cluster (``python -m raftctl.node``, fsync on), waits for a
leader, and POSTs ``--parallel`` requests of 20,000 orders each (the most one request may carry,
1.9 MB) to it at once. A round is deposed when any answer is not 200 (a 503 or 421 says the
leader lost its leadership part way) or the leader's term moved. With several trees (for example
``git worktree add /tmp/before HEAD~1`` and ``.``) the rounds alternate tree by tree, so a noisy
machine's drift falls on both alike; each round runs in a fresh process started in its tree, and
so do its nodes. Busy loops beside it (``--busy N`` CPU-bound processes) stand for a loaded
machine. Prints one line per round and, per tree, how many rounds were deposed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
ORDERS = 20_000


def post(addr: tuple[str, int], body: bytes, timeout: float) -> int:
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request("POST", "/api/orders", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def one_round(parallel: int, seed: int) -> dict[str, object]:
    """One round with the raftctl of the current directory (run by :func:`main` in each tree)."""
    sys.path.insert(0, os.getcwd())
    from raftctl.node.launcher import ClusterLauncher, layout

    sys.path.insert(0, str(HERE))
    from bench_durable import free_base_port

    rng = random.Random(seed)
    bodies = [orjson.dumps([{"client_id": f"big{k}", "seq": s, "symbol": rng.choice(["BTC-USD", "ETH-USD"]),
                             "side": rng.choice(["buy", "sell"]), "type": "limit",
                             "price": round(100 + rng.uniform(-5, 5), 2), "qty": rng.randint(1, 5)}
                            for s in range(1, ORDERS + 1)]) for k in range(parallel)]
    with tempfile.TemporaryDirectory(prefix="bench-big-") as root:
        launcher = ClusterLauncher(layout(3, root, free_base_port(), fast=True), root, record=False)
        try:
            launcher.start_all()
            leader = launcher.wait_leader(30)
            if leader is None:
                raise RuntimeError("no leader within 30 s")
            status = launcher.status(leader)
            term = status["term"] if status else None
            codes: list[int] = [0] * parallel
            started = time.monotonic()

            def send(k: int) -> None:
                codes[k] = post(launcher.specs[leader].http, bodies[k], timeout=60.0)

            threads = [threading.Thread(target=send, args=(k,)) for k in range(parallel)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            took = time.monotonic() - started
            after = launcher.status(leader)
        finally:
            launcher.close()
    kept = after is not None and after.get("state") == "LEADER" and after.get("term") == term
    return {"codes": codes, "seconds": round(took, 2), "deposed": not (kept and codes == [200] * parallel)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", default=["."], help="source trees to compare (default: this one)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per tree")
    parser.add_argument("--parallel", type=int, default=1, help="requests of 20,000 orders sent at once")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes run beside it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or not 1 <= args.parallel <= 20 or not 0 <= args.busy <= 16:
        parser.error("--rounds must be >= 1, --parallel 1..20, --busy 0..16")
    if args.one:
        print(orjson.dumps(one_round(args.parallel, args.seed)).decode())
        return
    trees = [str(Path(t).resolve()) for t in args.trees]
    for tree in trees:
        if not (Path(tree) / "raftctl" / "node" / "launcher.py").is_file():
            parser.error(f"{tree} is not a raftctl source tree with raftctl/node/launcher.py")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    deposed = {tree: 0 for tree in trees}
    try:
        print(f"{args.parallel} request(s) of {ORDERS} orders at once to a fresh 3-node cluster per round, "
              f"{args.busy} busy loop(s) beside; load average {os.getloadavg()[0]:.2f}", flush=True)
        for round_no in range(1, args.rounds + 1):
            for tree in trees:
                out = subprocess.run(
                    [sys.executable, str(HERE / "bench_big_request.py"), "--one", "--parallel", str(args.parallel),
                     "--seed", str(args.seed + round_no)],
                    cwd=tree, env={**os.environ, "PYTHONPATH": tree}, capture_output=True, text=True, timeout=300)
                if out.returncode != 0:
                    raise SystemExit(f"round {round_no} in {tree} failed:\n{out.stderr[-2000:]}")
                result = orjson.loads(out.stdout.strip().splitlines()[-1])
                deposed[tree] += bool(result["deposed"])
                print(f"round {round_no:3d} {tree:30s} answers {result['codes']} in {result['seconds']:.1f} s"
                      f"{'  DEPOSED' if result['deposed'] else ''}", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    for tree in trees:
        print(f"{tree}: leader deposed in {deposed[tree]} of {args.rounds} rounds")


if __name__ == "__main__":
    main()
