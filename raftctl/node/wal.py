"""The node process's write-ahead log: a :class:`~raftctl.core.node.LogStore` on disk.

Layout of a data dir::

    meta.json          {"format", "node_id", "cluster_id", "members", "peers", "cluster_token",
                       "shards"}: whose dir this is (written when the dir is created)
    LOCK               flock'ed while a process uses the dir
    wal-00000001.log   records, appended; the highest generation is the live one
    stopped.json       {"generation", "size"} of the log at the last clean stop (removed at start)
    snap-0.json        the latest snapshot of shard 0 (one file per shard): {"index", "term",
                       "crc32" (of "data" as orjson writes it), "data"}

A record is ``length (u32 LE) | crc32 (u32 LE) | orjson payload``. Payloads:

    [1, shard, term, voted_for, commit]            hard state
    [2, shard, from_index, [[term, command], ...]] entries: the log is replaced from from_index on
    [3, shard, snap_index, snap_term]              a snapshot became the log's base (Raft's rule:
                                                   keep the suffix if the entry there has snap_term)

Group commit: :meth:`DiskLogStore.persist` only encodes into a buffer; :meth:`DiskLogStore.sync`
writes the buffer and fsyncs once. The process loop calls ``sync()`` after handling a batch of
inputs and before it sends a message or answers a client, so many Readys share one fsync and the
persist-before-send rule holds for all of them.

Snapshots: written to a temporary file, fsynced, renamed over ``snap-N.json`` and the directory
fsynced; then the log is compacted by writing a new generation (hard state, snapshot base and the
entries after it, for every shard) the same way, after which the old generation is deleted.

Cluster identity: ``cluster_id`` is a hash of every member's id *and Raft address* and of the
cluster token (as etcd derives its cluster id from ``--initial-cluster`` and
``--initial-cluster-token``). The dir keeps the id it was created with and refuses to open for
any other, so a node can only ever talk to the cluster its log belongs to (the transport's
hello carries the id). ``raftctl cluster up`` gives every cluster it creates a random token.
A dir written by format 1 (whose id hashed the member names only) is taken into the cluster it
is next started in: its meta.json is rewritten with that cluster's id.

On start, :meth:`DiskLogStore.load` replays the live generation. A record cut short or failing
its CRC at the *end* of the log is a write torn by a crash, never acknowledged (acknowledgement
waits for the fsync): the file is truncated there, and the node says how many bytes it cut. A
bad record with a valid one after it is corruption, not a torn write: cutting there would throw
away fsynced, committed entries, so the node refuses to start (``DataDirError``) and says where.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from raftctl.core.raft import Ready, Storage
from raftctl.node.codec import decode_entries, decode_snapshot_data, encode_snapshot_data

__all__ = ["DataDirError", "DiskLogStore", "cluster_id", "legacy_cluster_id", "FORMAT"]

FORMAT = 2
LEGACY_FORMAT = 1  # meta.json of raftctl before cluster ids held addresses and a token
_HEADER = struct.Struct("<II")
_HS, _ENTRIES, _SNAP = 1, 2, 3
MAX_RECORD = 256 * 1024 * 1024


class DataDirError(Exception):
    """The data dir cannot be used: another node's or cluster's, locked, or unreadable."""


def _peer_map(members: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """``{id: "host:port"}`` from a mapping, or from bare ids (no addresses: tests of the log)."""
    if isinstance(members, Mapping):
        return {str(k): str(v) for k, v in sorted(members.items())}
    return {str(k): "" for k in sorted(members)}


def cluster_id(members: Mapping[str, str] | Iterable[str], token: str = "") -> str:
    """A cluster's id: a hash of every member's id and Raft address (``{id: "host:port"}``) and
    of the cluster token. Two clusters differ in it unless they have the same members at the same
    addresses and the same token."""
    doc = {"members": sorted(_peer_map(members).items()), "token": token}
    return hashlib.sha256(orjson.dumps(doc)).hexdigest()[:16]


def legacy_cluster_id(member_ids: Iterable[str]) -> str:
    """The id format 1 wrote: a hash of the sorted member ids only."""
    return hashlib.sha256("\n".join(sorted(member_ids)).encode()).hexdigest()[:16]


def _peers_text(peers: Any) -> str:
    if not isinstance(peers, dict):
        return "?"
    return ",".join(f"{k}={v}" if v else str(k) for k, v in sorted(peers.items()))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename, then fsync the dir."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:  # a full disk: no half-written temporary file left behind, the path named
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from err
    if fsync:
        _fsync_dir(path.parent)


# what every "start it on an empty data dir" advice adds: an empty node votes for any candidate
# until it has caught up, so it may help elect a leader that lacks acknowledged entries
REJOIN_CAVEAT = (", with --rejoin (it then campaigns only once it has caught up, and votes only for a "
                 "candidate that holds the log: a majority of emptied nodes cannot elect one of themselves)")
_REJOINING = "rejoining"  # present while a node started with --rejoin has not caught up yet
_STOPPED = "stopped.json"  # written by a clean stop: the live log's generation and size
_TORN_SCAN_LIMIT = 4 * 1024 * 1024  # a torn tail is the end of one write; more after a bad record is damage


def _damage_after_tail(data: bytes, start: int) -> str | None:
    """Why what follows ``start`` (where the log stopped parsing) is no torn tail, else None: a
    record after it passes its CRC (looked for at the bad record's own end first, then at every
    later byte), or more follows than one torn write leaves. Zero fill passes no CRC (length >= 2)."""
    end = len(data)
    header = _HEADER.size

    def valid_at(at: int) -> bool:
        if end - at < header:
            return False
        length, crc = _HEADER.unpack_from(data, at)
        body = at + header
        return 2 <= length <= MAX_RECORD and body + length <= end and zlib.crc32(data[body:body + length]) == crc

    if end - start >= header:
        length, _crc = _HEADER.unpack_from(data, start)
        following = start + header + length
        if length <= MAX_RECORD and following < end and valid_at(following):
            return f"a valid record follows it at byte {following}"
    if end - start > _TORN_SCAN_LIMIT:
        return f"{end - start} bytes follow it, more than a torn write leaves"
    for at in range(start + 1, end):
        if valid_at(at):
            return f"a valid record follows it at byte {at}"
    return None


def _record(payload: list[Any]) -> bytes:
    body = orjson.dumps(payload)
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


class _Shard:
    """What the log holds for one shard (replayed on load, tracked while running)."""

    __slots__ = ("term", "voted_for", "commit", "durable_last")

    def __init__(self) -> None:
        self.term = 0
        self.voted_for: str | None = None
        self.commit = 0
        self.durable_last = 0  # last log index handed to persist()


class DiskLogStore:
    """A write-ahead log in ``data_dir`` for node ``node_id`` of the cluster ``members``
    (``{id: "host:port"}``, or bare ids) with the cluster token ``token``.

    Call :meth:`load` once, give its :class:`Storage` objects to the node host's replicas, then
    let the host call :meth:`persist` / :meth:`save_snapshot`; call :meth:`sync` before sending
    or acknowledging anything. ``fsync=False`` (benchmarks only) writes without fsync.
    """

    def __init__(self, data_dir: str | os.PathLike[str], node_id: str, members: Mapping[str, str] | Iterable[str],
                 *, token: str = "", shards: int = 1, fsync: bool = True, rejoin: bool = False,
                 rejoin_if_empty: bool = False) -> None:
        peers = _peer_map(members)
        if node_id not in peers:
            raise DataDirError(f"node id {node_id!r} is not one of the members {sorted(peers)}")
        self.dir = Path(data_dir)
        self.node_id = node_id
        self.members = sorted(peers)
        self.peers = peers
        self.token = token
        self.cluster_id = cluster_id(peers, token)
        self.upgraded_from: int | None = None  # the meta.json format this start rewrote, if any
        self.shards = shards
        self.fsync = fsync
        self.storages: list[Storage] = []
        self._state = [_Shard() for _ in range(shards)]
        self._buffer = bytearray()
        self._fd = -1
        self._lock_fd = -1
        self.generation = 0
        # counters (the node's /metrics shows them)
        self.syncs = 0
        self.bytes_written = 0
        self.records_written = 0
        self.snapshots_saved = 0
        self.compactions = 0
        self.truncated_bytes = 0  # cut from a torn tail at load
        self.cut_after_clean_stop = False  # what was cut followed the log as its last clean stop left it
        self._clean_size: int | None = None  # the live log's size at its last clean stop, if the marker says
        self.records_loaded = 0
        self._open_dir()
        # a node that lost its state and is catching up (``RaftNode.rejoining``): asked for
        # (--rejoin), a node known to have run before that finds its dir empty (--rejoin-if-empty:
        # cluster.json's argv says so), or a start of one that had not caught up before it stopped
        self.rejoining_because_empty = rejoin_if_empty and self.created_meta and not rejoin
        self.rejoining = rejoin or self.rejoining_because_empty or (self.dir / _REJOINING).exists()

    # ---- the data dir --------------------------------------------------------------------

    def _open_dir(self) -> None:
        self.created_dir = not self.dir.exists()  # this start made the dir (discard_new may remove it)
        self.created_meta = False  # this start wrote meta.json into a dir without one
        if self.dir.exists() and not self.dir.is_dir():
            raise DataDirError(f"data dir {self.dir} is not a directory (it is a file)")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataDirError(f"cannot create data dir {self.dir}: {err.strerror or err}") from None
        if not self.dir.is_dir():
            raise DataDirError(f"data dir {self.dir} is not a directory")
        try:
            self._lock_fd = os.open(self.dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DataDirError(f"cannot open {self.dir / 'LOCK'}: {err.strerror or err}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise DataDirError(f"data dir {self.dir} is in use by another process") from None
        meta_path = self.dir / "meta.json"
        want = {"format": FORMAT, "node_id": self.node_id, "cluster_id": self.cluster_id,
                "members": self.members, "peers": self.peers, "cluster_token": self.token, "shards": self.shards}
        if meta_path.exists():
            try:
                meta = orjson.loads(meta_path.read_bytes())
                if not isinstance(meta, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as err:
                self.close()
                raise DataDirError(f"{meta_path} is unreadable ({err}); is this a raftctl node data dir?") from None
            problems = self._meta_problems(meta)
            if problems:
                self.close()
                raise DataDirError(f"refusing data dir {self.dir}: " + "; ".join(problems))
            if meta.get("format") == LEGACY_FORMAT:
                # an earlier raftctl's dir: it joins the cluster it is started in, for good
                _write_atomic(meta_path, orjson.dumps(want, option=orjson.OPT_INDENT_2), fsync=True)
                self.upgraded_from = LEGACY_FORMAT
        else:
            if any(self.dir.glob("wal-*.log")):
                self.close()
                raise DataDirError(f"data dir {self.dir} holds a log but no meta.json; refusing to guess whose it is")
            _write_atomic(meta_path, orjson.dumps(want, option=orjson.OPT_INDENT_2), fsync=True)
            self.created_meta = True

    def _meta_problems(self, meta: dict[str, Any]) -> list[str]:
        """Why this dir is not this node's of this cluster (empty: it is)."""
        problems = []
        fmt = meta.get("format")
        if fmt not in (FORMAT, LEGACY_FORMAT):
            return [f"its meta.json has format {fmt!r}, this raftctl reads {LEGACY_FORMAT} and {FORMAT} "
                    f"(was it written by a newer raftctl?)"]
        if meta.get("node_id") != self.node_id:
            problems.append(f"it belongs to node {meta.get('node_id')!r}, not {self.node_id!r}")
        if fmt == LEGACY_FORMAT:
            if meta.get("cluster_id") != legacy_cluster_id(self.members):
                problems.append(f"it belongs to cluster {meta.get('cluster_id')!r} (members {meta.get('members')}), "
                                f"not one of the members {self.members}")
        elif meta.get("cluster_id") != self.cluster_id:
            theirs = meta.get("peers")
            if isinstance(theirs, dict) and sorted(theirs) != self.members:
                why = f"members {sorted(theirs)} (not {self.members})"
            elif isinstance(theirs, dict) and theirs != self.peers:
                why = f"--peers {_peers_text(theirs)} (not {_peers_text(self.peers)})"
            else:
                why = f"--cluster-token {meta.get('cluster_token')!r} (not {self.token!r})"
            problems.append(f"it belongs to cluster {meta.get('cluster_id')!r}, created with {why}; start it with "
                            f"the --peers and --cluster-token it was created with (its meta.json has them; "
                            f"cluster.json's argv for 'raftctl cluster up'), or use another --data-dir for a new node")
        if meta.get("shards", 1) != self.shards:
            problems.append(f"it has {meta.get('shards')} shards, not {self.shards}")
        return problems

    def close(self) -> None:
        """Write what is buffered (with fsync), close the log and release the dir lock.

        A log closed whole leaves ``stopped.json`` (its generation and size): the next start
        refuses a log found shorter than that, cut after the node stopped (no crash tears a log
        that is not being written), rather than take the lost acknowledged entries for a torn tail."""
        if self._fd >= 0:
            try:
                self.sync()
                marker = {"generation": self.generation, "size": os.fstat(self._fd).st_size}
                _write_atomic(self.dir / _STOPPED, orjson.dumps(marker), fsync=self.fsync)
            finally:
                os.close(self._fd)
                self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def rejoined(self) -> None:
        """The node has caught up (``RaftNode.rejoining`` is over): it is a voter again, here for good."""
        if self.rejoining:
            self.rejoining = False
            (self.dir / _REJOINING).unlink(missing_ok=True)
            if self.fsync:
                _fsync_dir(self.dir)

    def discard_new(self) -> None:
        """Close; and if this start made the data dir a node's (it had no meta.json), undo that:
        a node that never ran leaves no dir that would bind a retry to these options. Only the
        files this store writes go, and the dir only if this start made it and it is then empty."""
        self.close()
        if not self.created_meta:
            return
        for path in [*self.dir.glob("wal-*.log"), *self.dir.glob("snap-*"), self.dir / "meta.json", self.dir / _STOPPED,
                     self.dir / _REJOINING, self.dir / "LOCK"]:
            try:
                path.unlink()
            except OSError:
                pass
        if self.created_dir:
            try:
                self.dir.rmdir()
            except OSError:
                pass

    def _segment(self, generation: int) -> Path:
        return self.dir / f"wal-{generation:08d}.log"

    def _snap_path(self, shard: int) -> Path:
        return self.dir / f"snap-{shard}.json"

    # ---- start: replay -------------------------------------------------------------------

    def load(self) -> list[Storage]:
        """Rebuild every shard's :class:`Storage` from disk and open the log for appending;
        DataDirError for what the dir holds or lets it do (a file it cannot read or write, named)."""
        try:
            return self._load()
        except DataDirError:
            self.close()  # refused: the dir is free again (for a retry after a fix, in this process too)
            raise
        except OSError as err:
            self.close()
            where = err.filename or self.dir
            raise DataDirError(f"cannot use {where}: {err.strerror or err}") from None

    def _load(self) -> list[Storage]:
        storages = [Storage() for _ in range(self.shards)]
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        generations = sorted(int(p.name[4:12]) for p in self.dir.glob("wal-*.log")
                             if p.name[4:12].isdigit() and len(p.name) == 16)
        self.generation = generations[-1] if generations else 1
        path = self._segment(self.generation)
        self._check_clean_stop(path)
        if not generations and not self.created_meta and not self.rejoining \
                and not any(self.dir.glob("snap-*.json")):
            raise DataDirError(
                f"data dir {self.dir} holds this node's meta.json but no log (wal-*.log): the node has run "
                f"here, and its log, which holds its term, its vote and every entry it acknowledged, was "
                f"removed. Restore it from a backup, or start the node on this dir{REJOIN_CAVEAT}")
        if not generations:
            snapshots = sorted(p.name for p in self.dir.glob("snap-*.json"))
            if snapshots:  # a node's first start writes its log before any snapshot: this one was removed
                raise DataDirError(
                    f"data dir {self.dir} holds {', '.join(snapshots)} but no log (wal-*.log): the log, which "
                    f"holds the node's term, vote and every entry after the snapshot, was removed. Restore it "
                    f"from a backup, or move the dir away and start the node on an empty one so that it "
                    f"rejoins from its peers{REJOIN_CAVEAT}")
        if path.exists():
            # a generation after the first is a compaction's, written whole (atomically) and
            # starting with the hard state: a first record it lacks is damage, never a torn write
            self._replay(path, storages, whole=self.generation > 1,
                         older=[self._segment(g).name for g in generations[:-1]])
        # older generations are what a crash between a compaction's rename and its unlink left:
        # dropped only now that the newest one has proved whole (never before: it may be damage)
        for stale in generations[:-1]:
            self._segment(stale).unlink()
        # A snapshot renamed into place just before a crash, before its compaction record: use it.
        for shard, storage in enumerate(storages):
            snap = self._read_snapshot(shard)
            if snap is not None and snap[0] > storage.snap_index:
                self._install(storage, *snap)
            elif snap is not None and snap[0] == storage.snap_index:
                storage.snap_data = snap[2]
            elif storage.snap_index > 0:
                raise DataDirError(f"{self._snap_path(shard)} is missing or older than the log's snapshot "
                                   f"at index {storage.snap_index}: the log holds only what came after it, "
                                   f"so the node's state cannot be rebuilt; restore this data dir from a "
                                   f"backup, or move it away and start the node on an empty one so that it "
                                   f"rejoins from its peers{REJOIN_CAVEAT}")
            if storage.snap_index > 0 and storage.current_term < storage.snap_term:
                # a term never goes back, and a snapshot's entry is of a term the node had reached
                raise DataDirError(
                    f"{path}: its hard state says term {storage.current_term}, below the term "
                    f"{storage.snap_term} of the snapshot at index {storage.snap_index}: the log has lost "
                    f"its hard state (term, vote, commit index); restore this data dir from a backup, or "
                    f"move it away and start the node on an empty one so that it rejoins from its peers{REJOIN_CAVEAT}")
            st = self._state[shard]
            st.term, st.voted_for = storage.current_term, storage.voted_for
            st.durable_last = storage.last_index
        self.storages = storages
        self._drop_clean_stop()
        if not path.exists():  # a new node's first log, made only once the dir has passed every check
            _write_atomic(path, b"", fsync=self.fsync)
        if self.rejoining:
            _write_atomic(self.dir / _REJOINING, b"", fsync=self.fsync)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        return storages

    def _read_snapshot(self, shard: int) -> tuple[int, int, Any] | None:
        path = self._snap_path(shard)
        if not path.exists():
            return None
        try:
            doc = orjson.loads(path.read_bytes())
            index, term = doc["index"], doc["term"]
            if type(index) is not int or type(term) is not int or index < 1 or term < 0:
                raise ValueError("bad index or term")
            said = doc.get("crc32")  # absent in a snapshot an earlier raftctl wrote
            if said is not None and said != zlib.crc32(orjson.dumps(doc["data"])):
                raise DataDirError(
                    f"snapshot {path} fails its checksum: its content changed after it was written "
                    f"(edited or damaged), so the state it holds cannot be trusted; restore this data dir "
                    f"from a backup, or move it away and start the node on an empty one so that it "
                    f"rejoins from its peers{REJOIN_CAVEAT}")
            return index, term, decode_snapshot_data(doc["data"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataDirError(f"snapshot {path} is unreadable: {err}") from None

    @staticmethod
    def _install(storage: Storage, index: int, term: int, data: Any) -> None:
        """Raft's rule for a snapshot: keep the log after it if the entry there has its term."""
        offset = index - storage.snap_index
        if 0 < offset <= len(storage.log) and storage.log[offset - 1][0] == term:
            del storage.log[:offset]
        else:
            storage.log = []
        storage.snap_index, storage.snap_term, storage.snap_data = index, term, data

    def _check_clean_stop(self, path: Path) -> None:
        """The last clean stop's ``stopped.json``: a live log shorter than it was then was cut
        since (by hand, a bad restore), and what it lost was fsynced and acknowledged; it also vouches
        for every record up to its size (``_replay``). It goes once the dir passed every check."""
        marker_path = self.dir / _STOPPED
        if not marker_path.exists():
            return
        try:
            marker = orjson.loads(marker_path.read_bytes())
            generation, size = marker["generation"], marker["size"]
        except (ValueError, KeyError, TypeError):
            generation = size = None  # unreadable: it vouches for nothing
        now = path.stat().st_size if path.exists() else 0
        marked = self._segment(generation) if type(generation) is int and generation >= self.generation else None
        if marked is not None and type(size) is int and size > 0 and not marked.exists():
            raise DataDirError(
                f"{marked} is gone: the node had it ({size} bytes) when it last stopped cleanly, so the entries "
                f"it had fsynced and acknowledged, its term and its vote went with it. Restore it from a backup; "
                f"to go on without them, delete {marker_path} and start again (on an empty data dir if it "
                f"holds a snapshot): the node then catches up from its peers, which is safe only while a "
                f"majority of the nodes still hold those entries")
        if generation == self.generation and type(size) is int and now < size:
            raise DataDirError(
                f"{path} is {size - now} bytes shorter than when the node last stopped cleanly ({size} bytes): it "
                f"was cut after the stop, so entries it had fsynced and acknowledged are gone (no crash tears a log "
                f"that is not being written). Restore it from a backup; to go on without them, delete "
                f"{marker_path} and start again: the node then cuts what is torn and catches up from its peers, "
                f"which is safe only while a majority of the nodes still hold those entries")
        if generation == self.generation and type(size) is int:
            self._clean_size = size  # every record up to there was written whole: damage there is no torn write

    def _drop_clean_stop(self) -> None:
        """The log passed its checks: the marker goes before anything is written, from here on the
        log may grow or be torn by a crash (a refused start keeps it, for the retry's checks)."""
        marker_path = self.dir / _STOPPED
        if marker_path.exists():
            marker_path.unlink()
            if self.fsync:
                _fsync_dir(self.dir)

    def _replay(self, path: Path, storages: list[Storage], whole: bool = False,
                older: list[str] | None = None) -> None:
        data = path.read_bytes()
        pos = 0
        end = len(data)
        good = 0
        header = _HEADER.size
        while pos < end:
            if end - pos < header:
                break
            length, crc = _HEADER.unpack_from(data, pos)
            body_start = pos + header
            if length < 2 or length > MAX_RECORD or body_start + length > end:
                break  # no record is shorter than "[]": a zero length is a filesystem's zero fill
            body = data[body_start:body_start + length]
            if zlib.crc32(body) != crc:
                break
            try:
                self._apply_record(orjson.loads(body), storages)
            except (ValueError, TypeError, IndexError, KeyError) as err:
                raise DataDirError(f"{path}: a record at byte {pos} passes its CRC but is invalid ({err})") from None
            self.records_loaded += 1
            pos = body_start + length
            good = pos
        if whole and good == 0:
            kept = (f"; the older generation{'s' if len(older or []) > 1 else ''} "
                    f"{', '.join(older)} {'are' if len(older or []) > 1 else 'is'} kept as found") if older else ""
            raise DataDirError(
                f"{path}: its first record is {'missing (the file is empty)' if end == 0 else 'damaged'}; "
                f"a compacted log generation is written whole, so this is damage, not a write a crash "
                f"interrupted{kept}. Restore this data dir from a backup, or move it away and start the "
                f"node on an empty one so that it rejoins from its peers{REJOIN_CAVEAT}") from None
        if good < end and self._clean_size is not None and good < self._clean_size:
            raise DataDirError(
                f"{path}: the record at byte {good} is damaged, within the {self._clean_size} bytes the log held "
                f"when the node last stopped cleanly: no crash tore it (it was not being written), so this is "
                f"damage to fsynced, acknowledged entries ({self._clean_size - good} bytes from there); restore "
                f"this data dir from a backup, or move it away and start the node on an empty one so that it "
                f"rejoins from its peers{REJOIN_CAVEAT}") from None
        if good < end:
            damage = _damage_after_tail(data, good)
            if damage is not None:
                raise DataDirError(
                    f"{path}: the record at byte {good} is damaged and {damage}: this log is corrupt, not "
                    f"torn by a crash, and cutting it there would lose {end - good} bytes of fsynced entries; "
                    f"restore this data dir from a backup, or move it away and start the node on an empty "
                    f"one so that it rejoins from its peers{REJOIN_CAVEAT}") from None
            # a torn tail (or bytes added after a clean stop): cut it off so new records follow the last good one
            self.truncated_bytes = end - good
            self.cut_after_clean_stop = self._clean_size is not None
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, good)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _apply_record(self, rec: Any, storages: list[Storage]) -> None:
        kind, shard = rec[0], rec[1]
        storage = storages[shard]
        if kind == _HS:
            storage.current_term, storage.voted_for = rec[2], rec[3]
            self._state[shard].commit = rec[4]
        elif kind == _ENTRIES:
            first = rec[2]
            if not storage.snap_index < first <= storage.last_index + 1:
                if first <= storage.snap_index:
                    entries = decode_entries(rec[3])[storage.snap_index + 1 - first:]
                    first = storage.snap_index + 1
                else:
                    raise ValueError(f"entries from {first} leave a gap after {storage.last_index}")
            else:
                entries = decode_entries(rec[3])
            del storage.log[first - storage.snap_index - 1:]
            storage.log.extend(entries)
        elif kind == _SNAP:
            self._install(storage, rec[2], rec[3], None)
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    # ---- running: the LogStore protocol --------------------------------------------------

    def persist(self, shard: int, ready: Ready) -> None:
        """Buffer ``ready``'s durable parts; they are on disk after the next :meth:`sync`."""
        st = self._state[shard]
        buf = self._buffer
        if ready.snapshot is not None:
            snap = ready.snapshot
            self._write_snapshot(shard, snap.index, snap.term, snap.data)
            buf += _record([_SNAP, shard, snap.index, snap.term])
            self.records_written += 1
            # Raft kept the log after the snapshot (if it matched) or cleared it
            st.durable_last = max(snap.index, min(st.durable_last, self.storages[shard].last_index))
        if ready.hs_changed:
            st.term, st.voted_for, st.commit = ready.term, ready.voted_for, ready.commit
            buf += _record([_HS, shard, ready.term, ready.voted_for, ready.commit])
            self.records_written += 1
        entries = ready.entries
        if entries:
            buf += _record([_ENTRIES, shard, ready.entries_from, entries])
            self.records_written += 1
            st.durable_last = ready.entries_from + len(entries) - 1
        if ready.snapshot is not None:
            self._compact()

    def save_snapshot(self, shard: int, index: int, term: int, data: Any) -> None:
        """The host compacted its log at ``index``: write the snapshot, then compact the log."""
        self._write_snapshot(shard, index, term, data)
        self._compact()

    def abandon(self) -> None:
        """Close without writing the buffer: what kill -9 leaves behind (for tests)."""
        self._buffer.clear()
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    def durable_commit(self, shard: int) -> int:
        """The commit index the log's latest hard state recorded for ``shard`` (0 if none)."""
        return self._state[shard].commit if shard < len(self._state) else 0

    def sync(self) -> None:
        """Write every buffered record and fsync once (group commit)."""
        buf = self._buffer
        if not buf:
            return
        view = memoryview(buf)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as err:  # a full disk, an I/O error: name the log (a partial record is a torn tail)
            raise OSError(err.errno, err.strerror, str(self._segment(self.generation))) from err
        finally:
            view.release()
        self.bytes_written += len(buf)
        self.syncs += 1
        buf.clear()

    @property
    def pending(self) -> int:
        """Bytes buffered, not yet written."""
        return len(self._buffer)

    # ---- snapshots and compaction --------------------------------------------------------

    def _write_snapshot(self, shard: int, index: int, term: int, data: Any) -> None:
        encoded = encode_snapshot_data(data)
        # the checksum covers the data as orjson writes it (and writes it again once read)
        doc = {"index": index, "term": term, "crc32": zlib.crc32(orjson.dumps(encoded)), "data": encoded}
        _write_atomic(self._snap_path(shard), orjson.dumps(doc), fsync=self.fsync)
        self.snapshots_saved += 1

    def _compact(self) -> None:
        """Write a new generation holding only what the snapshots do not, then drop the old one.

        The new generation is built from the in-memory Storage, which up to each shard's
        ``durable_last`` is exactly what the buffered and written records say; the buffer is
        therefore not needed any more once the new generation is durable.
        """
        out = bytearray()
        for shard, storage in enumerate(self.storages):
            st = self._state[shard]
            out += _record([_HS, shard, st.term, st.voted_for, st.commit])
            if storage.snap_index:
                out += _record([_SNAP, shard, storage.snap_index, storage.snap_term])
            keep = max(0, st.durable_last - storage.snap_index)
            if keep:
                out += _record([_ENTRIES, shard, storage.snap_index + 1, storage.log[:keep]])
        old = self._segment(self.generation)
        new = self._segment(self.generation + 1)
        _write_atomic(new, bytes(out), fsync=self.fsync)
        os.close(self._fd)
        self._fd = os.open(new, os.O_WRONLY | os.O_APPEND)
        self.generation += 1
        self._buffer.clear()
        self.bytes_written += len(out)
        self.compactions += 1
        try:
            old.unlink()
        except FileNotFoundError:
            pass

    def stats(self) -> dict[str, int]:
        return {"wal_syncs": self.syncs, "wal_bytes_written": self.bytes_written,
                "wal_records_written": self.records_written, "wal_snapshots_saved": self.snapshots_saved,
                "wal_compactions": self.compactions, "wal_generation": self.generation,
                "wal_truncated_bytes": self.truncated_bytes, "wal_records_loaded": self.records_loaded}
