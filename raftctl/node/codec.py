"""What a node process writes to disk and to its peers: orjson documents, never pickle.

Log entries are ``(term, command)`` with ``command`` either None (a leader's no-op) or
``(client_id, seq, order, order_id)``; orjson writes tuples as arrays, and :func:`decode_entries`
turns them back into tuples, so a decoded entry equals the one the leader appended.

Snapshot data is what ``Replica.snapshot_state`` returns: ``(exchange_bytes, sessions)``. The
exchange bytes are orjson output (UTF-8), so they travel as a string.

A :class:`~raftctl.core.raft.Message` travels as an array of its fields in slot order.
Everything decoded from outside is checked for shape first: a malformed document raises
``ValueError`` and never reaches Raft.
"""

from __future__ import annotations

from typing import Any

import orjson

from raftctl.core.raft import KIND_NAMES, Message

__all__ = ["decode_entries", "decode_message", "dumps_messages", "loads_messages", "decode_snapshot_data", "encode_message",
           "encode_snapshot_data", "message_fields"]

_FIELDS = Message.__slots__
_ENTRIES = _FIELDS.index("entries")
_SNAP_DATA = _FIELDS.index("snap_data")
_INT_FIELDS = tuple(_FIELDS.index(f) for f in ("kind", "term", "group", "last_log_index", "last_log_term",
                                                   "prev_index", "commit", "match_index", "hint",
                                                   "snap_index", "snap_term", "epoch"))
_BOOL_FIELDS = tuple(_FIELDS.index(f) for f in ("force", "granted", "success"))
_PREV_TERM = _FIELDS.index("prev_term")


def message_fields() -> tuple[str, ...]:
    """The field order of an encoded message."""
    return tuple(_FIELDS)


def encode_snapshot_data(data: Any) -> Any:
    """Snapshot data as plain JSON values (None stays None)."""
    if data is None:
        return None
    exchange_bytes, sessions = data
    if isinstance(exchange_bytes, (bytes, bytearray)):
        exchange_bytes = bytes(exchange_bytes).decode("utf-8")
    return [exchange_bytes, [[cid, low, list(above)] for cid, low, above in sessions]]


def decode_snapshot_data(doc: Any) -> Any:
    """The inverse of :func:`encode_snapshot_data`; ValueError on anything else."""
    if doc is None:
        return None
    if not isinstance(doc, list) or len(doc) != 2 or not isinstance(doc[0], str) or not isinstance(doc[1], list):
        raise ValueError("snapshot data must be [exchange, sessions]")
    sessions = []
    for row in doc[1]:
        if (not isinstance(row, list) or len(row) != 3 or not isinstance(row[0], str)
                or type(row[1]) is not int or not isinstance(row[2], list)
                or not all(type(s) is int for s in row[2])):
            raise ValueError("snapshot sessions must be [client_id, low, [seq, ...]] rows")
        sessions.append((row[0], row[1], tuple(row[2])))
    return (doc[0].encode("utf-8"), tuple(sessions))


def decode_entries(raw: Any) -> list[tuple[int, Any]]:
    """Log entries from their JSON form, as tuples; ValueError when the shape is wrong."""
    if not isinstance(raw, list):
        raise ValueError("entries must be a list")
    out: list[tuple[int, Any]] = []
    append = out.append
    for entry in raw:
        if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not int:
            raise ValueError("an entry must be [term, command]")
        command = entry[1]
        if command is None:
            append((entry[0], None))
            continue
        if (type(command) is not list or len(command) != 4 or type(command[0]) is not str
                or type(command[1]) is not int or type(command[2]) is not dict or type(command[3]) is not str):
            raise ValueError("a command must be [client_id, seq, order, order_id]")
        append((entry[0], (command[0], command[1], command[2], command[3])))
    return out


def encode_message(msg: Message) -> list[Any]:
    """A message as a JSON array of its fields (snapshot data made JSON-safe)."""
    out = [getattr(msg, f) for f in _FIELDS]
    if out[_SNAP_DATA] is not None:
        out[_SNAP_DATA] = encode_snapshot_data(out[_SNAP_DATA])
    return out


def decode_message(raw: Any, groups: int = 1) -> Message:
    """A message from :func:`encode_message`'s array; ValueError unless every field has its type."""
    if type(raw) is not list or len(raw) != len(_FIELDS):
        raise ValueError(f"a message must be an array of {len(_FIELDS)} fields")
    for i in _INT_FIELDS:
        if type(raw[i]) is not int or raw[i] < 0:
            raise ValueError(f"message field {_FIELDS[i]} must be a non-negative integer")
    for i in _BOOL_FIELDS:
        if type(raw[i]) is not bool:
            raise ValueError(f"message field {_FIELDS[i]} must be true or false")
    if raw[0] not in KIND_NAMES:
        raise ValueError(f"unknown message kind {raw[0]!r}")
    if not isinstance(raw[1], str) or not isinstance(raw[2], str):
        raise ValueError("message src and dst must be strings")
    if raw[4] >= groups:
        raise ValueError(f"message group {raw[4]} out of range")
    if raw[_PREV_TERM] is not None and (type(raw[_PREV_TERM]) is not int or raw[_PREV_TERM] < 0):
        raise ValueError("message field prev_term must be a non-negative integer or null")
    entries = decode_entries(raw[_ENTRIES]) if raw[_ENTRIES] else []
    snap_data = decode_snapshot_data(raw[_SNAP_DATA])
    (kind, src, dst, term, group, force, last_log_index, last_log_term, granted, prev_index, prev_term,
     _entries, commit, success, match_index, hint, snap_index, snap_term, _snap, epoch) = raw
    return Message(kind, src, dst, term, group=group, force=force, last_log_index=last_log_index,
                   last_log_term=last_log_term, granted=granted, prev_index=prev_index, prev_term=prev_term,
                   entries=entries, commit=commit, success=success, match_index=match_index, hint=hint,
                   snap_index=snap_index, snap_term=snap_term, snap_data=snap_data, epoch=epoch)


def dumps_messages(msgs: list[Message]) -> bytes:
    """Messages as one orjson document (a frame's payload)."""
    return orjson.dumps([encode_message(m) for m in msgs])


def loads_messages(data: bytes, groups: int = 1) -> list[Message]:
    """The inverse of :func:`dumps_messages`; ValueError for anything malformed."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from None
    if type(raw) is not list:
        raise ValueError("a frame must be an array of messages")
    return [decode_message(m, groups) for m in raw]
