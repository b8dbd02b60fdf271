"""The table of unserved requests knows every message ib_async's client sends, and where
each carries its request id, read from ib_async's own source so a new message cannot slip by.
"""

from __future__ import annotations

import ast
import inspect

import ib_async.client

from tradingbot.sim.unserved import NO_ID, UNSERVED, request_id

ID_NAMES = frozenset({"reqId", "tickerId", "orderId"})
PROTOCOL_ONLY = frozenset({105})  # reqCurrentTimeInMillis: IB's client, not ib_async's


def _fields(node: ast.AST) -> list[ast.expr] | None:
    """The fields of ``self.send(N, …)`` or of ``fields = [N, …]``, message id first."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "send"
        and node.args
        and not isinstance(node.args[0], ast.Starred)
    ):
        return list(node.args)
    if (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.List)
        and any(isinstance(t, ast.Name) and t.id == "fields" for t in node.targets)
    ):
        return list(node.value.elts)
    return None


def _sent_by_ib_async() -> dict[int, tuple[str, int | None]]:
    """Message id → (the ``Client`` method that sends it, the index of its request id)."""
    tree = ast.parse(inspect.getsource(ib_async.client))
    client = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Client")
    sent: dict[int, tuple[str, int | None]] = {}
    for method in client.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        for node in ast.walk(method):
            fields = _fields(node)
            if fields and isinstance(fields[0], ast.Constant) and type(fields[0].value) is int:
                names = [f.id if isinstance(f, ast.Name) else "" for f in fields]
                at = next((i for i, n in enumerate(names) if n in ID_NAMES), None)
                sent[fields[0].value] = (method.name, at)
                break
    return sent


SENT = _sent_by_ib_async()


def test_ib_async_source_was_read() -> None:
    assert len(SENT) > 75
    assert SENT[87] == ("reqHeadTimeStamp", 1)


def test_the_table_covers_every_message_ib_async_sends() -> None:
    missing = sorted(set(SENT) - set(UNSERVED))
    assert missing == [], f"messages ib_async sends that the table lacks: {missing}"
    assert set(UNSERVED) - set(SENT) == PROTOCOL_ONLY


def test_each_entry_names_its_method_and_the_field_its_id_sits_in() -> None:
    for msg_id, (method, at) in SENT.items():
        entry = UNSERVED[msg_id]
        assert (entry.call, entry.id_at) == (method, at), msg_id


def test_the_answer_carries_the_request_id_or_minus_one() -> None:
    assert UNSERVED[87].answer(["87", "12"])[:2] == (12, 162)
    assert UNSERVED[11].answer(["11", "1", "5", "0"])[2].endswith("tickerId:5")
    assert UNSERVED[24].answer(["24", "1"])[0] == NO_ID
    assert "'24'" in UNSERVED[24].answer(["24", "1"])[2]


def test_a_missing_or_garbled_id_falls_back_to_minus_one() -> None:
    assert request_id(["87"]) == NO_ID
    assert request_id(["87", "x"]) == NO_ID
    assert request_id(["9999", "5"]) == NO_ID
    assert request_id(["19", "1", "1", "<xml/>", "33"]) == 33
