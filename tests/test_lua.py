"""The Lua script registry: every script file is registered as a step (in the bundle) or standalone
(left out of it), documents its KEYS and ARGV, and the named argument tuples match their scripts."""

from __future__ import annotations

import itertools
import re
from typing import Any, NamedTuple

import pytest
from redis.exceptions import NoScriptError

from livemap.storage import db
from livemap.storage.orders import OrderUpdateArgs
from livemap.tracking.positions import OrderFixArgs

FILES = sorted(f.name.removesuffix(".lua") for f in db._LUA.iterdir() if f.name.endswith(".lua"))


def header(name: str) -> str:
    """The comment block a script starts with."""
    lines = db._LUA.joinpath(f"{name}.lua").read_text().splitlines()
    return "\n".join(itertools.takewhile(lambda line: line.startswith("--"), lines))


def test_every_script_is_registered_once() -> None:
    assert sorted([*db.STEPS, *db.STANDALONE]) == FILES
    assert not db.STEPS.keys() & db.STANDALONE.keys()
    assert [s.name for s in db.package_scripts()] == FILES


def test_the_bundle_runs_the_steps_only() -> None:
    branches = re.findall(r"name == '(\w+)'", db.BUNDLE.text)
    assert branches == sorted(db.STEPS)


@pytest.mark.parametrize("name", FILES)
def test_every_script_names_its_keys_and_argv(name: str) -> None:
    text = header(name)
    assert "KEYS[1]" in text
    assert "ARGV" in text


@pytest.mark.parametrize(("name", "args"), [("order_fix", OrderFixArgs), ("order_update", OrderUpdateArgs)])
def test_the_script_header_lists_the_named_arguments_in_order(name: str, args: type[NamedTuple]) -> None:
    text = header(name)
    listed = re.findall(r"\[(\d+)\] (\w+)", text[text.index("ARGV") :])
    fields = [f for f in args._fields if f != "items"]
    assert listed == [(str(i), field) for i, field in enumerate(fields, start=1)]


def test_order_fix_argv_flattens_the_items_after_the_fields() -> None:
    items = [(1, "L", b"{}", b"", ""), (2, "E", b"{}", b"{}", "t")]
    args = OrderFixArgs("d", "PUBLISH", "oc", "sc", 100, 2, 1, b"{}", 5, 6, "", "", items)
    argv = args.argv()
    assert argv[:12] == ["d", "PUBLISH", "oc", "sc", 100, 2, 1, b"{}", 5, 6, "", ""]
    assert argv[12:] == [1, "L", b"{}", b"", "", 2, "E", b"{}", b"{}", "t"]


class _ForgetfulNode:
    """A client whose node lost its scripts: EVALSHA answers NOSCRIPT."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def execute_command(self, *args: Any) -> Any:
        self.sent.append(args)
        if args[0] == "EVALSHA":
            raise NoScriptError("NOSCRIPT No matching script.")
        return 1


async def test_a_standalone_script_is_resent_as_eval_when_the_node_lost_it() -> None:
    script = db.STANDALONE["watchdog_forget"]
    node = _ForgetfulNode()
    assert await script.call(node, ["k"], ["d", 5]) == 1  # type: ignore[arg-type]
    assert node.sent == [("EVALSHA", script.sha, 1, "k", "d", 5), ("EVAL", script.text, 1, "k", "d", 5)]
