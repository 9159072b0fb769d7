"""livemap's handle on Redis: one server or a Cluster, and how multi-key work runs on either.

On a Cluster a Lua script or a MULTI may only touch keys of one hash slot, so every write that
spans slots (a driver's fix reaches its driver hash, its store's indexes, a geo cell and its
orders) is made of per-slot steps: a script or command per slot, each atomic on its own and each
correct on its own, so that a crash between two of them loses nothing and shows nobody anything
wrong. An operation queues its steps in *phases* (functions of a `Batch`), and `run` sends them:

- a Cluster: one cluster pipeline per phase, phases in order (redis-py sends each node its part in
  parallel), so a step that must be in Redis before another (a notification's outbox entry before
  the event it announces) is, whatever happens in between;
- one Redis: everything in one pipeline, in order, and consecutive script steps in one EVALSHA of
  the *bundle*, one script generated from the step scripts that runs them one after the other with
  all their keys declared: the hot path stays one command and one round trip, and atomic.

The package's scripts (`livemap/storage/lua/*.lua`) are registered here, each as one of two kinds:
*step* scripts (`STEPS`), queued in a `Batch` and therefore all in the bundle, and *standalone*
scripts (`STANDALONE`), which background work calls on their own (`StandaloneScript.call`) and which
the bundle leaves out. All are loaded on every node at start and sent as EVALSHA: a node that lost
them (a restart, a failover) answers NOSCRIPT for those commands only, which are resent as EVAL.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT

Client = aioredis.Redis | aioredis.RedisCluster
Pipe = Pipeline | ClusterPipeline

_LUA = resources.files("livemap.storage.lua")


class Script:
    """A Lua script, called by its SHA1: one of the package's (`livemap/storage/lua/NAME.lua`) or generated."""

    def __init__(self, name: str, text: str | None = None) -> None:
        self.name = name
        self.text = _LUA.joinpath(f"{name}.lua").read_text() if text is None else text
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()


class StepScript(Script):
    """A script run as one step of an operation (`Batch.script`). On one Redis, consecutive steps
    go as one EVALSHA of the bundle, so every step script is part of it (never on a Cluster, where
    the steps' keys are in different slots)."""


class StandaloneScript(Script):
    """A script called on its own, outside any operation's round trip (`call`): no batch ever
    queues it, so the bundle, sent with every driver's fix, leaves it out."""

    async def call(self, client: Client, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:
        """Run it: EVALSHA, resent as EVAL if the node lost it (like `Db.run`'s steps)."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", self.text, len(keys), *keys, *args)


# The registry: every livemap/storage/lua/*.lua is exactly one of these, checked at import.
#: Steps of the hot path and of order changes, in the bundle.
STEPS = {
    n: StepScript(n)
    for n in ("driver_fix", "emit", "geo_fix", "order_fix", "order_route", "order_update", "return_step", "store_fix")
}
#: Work that calls its script directly on the client: the watchdog's, the outbox's, the fleet speeds', analytics'.
STANDALONE = {
    n: StandaloneScript(n)
    for n in ("analytics_sum", "fleet_observe", "outbox_finish", "outbox_promote", "watchdog_claim", "watchdog_forget")
}


def package_scripts() -> list[Script]:
    """Every script of the package, by name."""
    return sorted([*STEPS.values(), *STANDALONE.values()], key=_name)


def _name(script: Script) -> str:
    return script.name


def _check_registry() -> None:
    files = {f.name.removesuffix(".lua") for f in _LUA.iterdir() if f.name.endswith(".lua")}
    if unknown := files - STEPS.keys() - STANDALONE.keys():
        raise ValueError(f"lua scripts neither in STEPS nor in STANDALONE: {sorted(unknown)}")
    if both := STEPS.keys() & STANDALONE.keys():
        raise ValueError(f"lua scripts both in STEPS and in STANDALONE: {sorted(both)}")


_check_registry()


# The bundle: one function running any step script by name, each reading its own share of the
# bundle's KEYS and ARGV at offsets (`KEYS[i]` becomes `KEYS[koff + i]`, `#ARGV` its own count
# `acount`: no step copies its arguments; an if-chain, not a table of functions: no closures made per
# call), then a loop calling the steps listed in ARGV[1] ("name nkeys nargs " per step, in order)
# over ARGV[2:]. Returns each step's reply (false for none).
_BUNDLE_CALLS = """
local results, koff, aoff = {}, 0, 1
for name, nk, na in string.gmatch(ARGV[1], '(%S+) (%d+) (%d+)') do
  local reply = step(name, koff, aoff, tonumber(na))
  if reply == nil then reply = false end
  results[#results + 1] = reply
  koff, aoff = koff + tonumber(nk), aoff + tonumber(na)
end
return results
"""
_ARG = re.compile(r"#ARGV|\b(KEYS|ARGV)\b(\[)?")


def _offset(script: Script) -> str:
    """`script`'s body reading its keys and args at the bundle's offsets; raises on any other use of KEYS/ARGV."""

    def shift(m: re.Match[str]) -> str:
        if m[0] == "#ARGV":
            return "acount"
        if m[2] is None:
            raise ValueError(f"{script.name}.lua uses {m[1]} as a whole: the bundle cannot run it")
        return f"{m[1]}[{'koff' if m[1] == 'KEYS' else 'aoff'} + "

    code = "\n".join(line for line in script.text.splitlines() if not line.lstrip().startswith("--"))
    if re.search(r"\b(koff|aoff|acount)\b", code):
        raise ValueError(f"{script.name}.lua uses a name the bundle's offsets need")
    return _ARG.sub(shift, code)


def _bundle(scripts: list[StepScript]) -> Script:
    branches = "else".join(f"if name == {s.name!r} then\n{_offset(s)}\n" for s in scripts)
    step = f"local function step(name, koff, aoff, acount)\n{branches}end\nend\n"
    return Script("bundle", step + _BUNDLE_CALLS)


BUNDLE = _bundle(sorted(STEPS.values(), key=_name))


@dataclass(frozen=True, slots=True)
class _Call:
    script: Script
    keys: Sequence[str]
    args: Sequence[EncodableT]


@dataclass(slots=True)
class _Sent:
    """A script command in the pipeline: one step, or a bundle of `steps` (its reply is theirs, in a list)."""

    call: _Call
    steps: int = 0


@dataclass(slots=True)
class Batch:
    """The commands of one round trip, queued by an operation's phase functions."""

    _pipe: Pipe
    publish_command: str
    _bundle: bool
    _pending: list[_Call] = field(default_factory=list)
    _sent: dict[int, _Sent] = field(default_factory=dict)  # by position, counted from `_base`
    #: Where this batch's commands start in the pipeline (operations of several callers may share one).
    _base: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._base = len(self._pipe)

    @property
    def pipe(self) -> Pipe:
        """The pipeline, for plain commands (script steps queued before them go first)."""
        self._flush()
        return self._pipe

    def close(self) -> int:
        """Queue the last pending steps; returns how many commands this batch put in the pipeline."""
        return len(self.pipe) - self._base

    def script(self, script: StepScript, keys: Sequence[str], args: Sequence[EncodableT]) -> None:
        """Queue a step: a call of `script`, every key it touches in `keys`, all in one slot."""
        call = _Call(script, keys, args)
        if self._bundle:
            self._pending.append(call)
        else:
            self._send(_Sent(call))

    def publish(self, channel: str, message: EncodableT) -> None:
        """Queue a publish on `channel`: sharded (SPUBLISH) on a Cluster of Redis 7+, classic otherwise."""
        self.pipe.execute_command(self.publish_command, channel, message)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            self._send(_Sent(pending[0]))
        elif pending:
            args: list[EncodableT] = ["".join(f"{c.script.name} {len(c.keys)} {len(c.args)} " for c in pending)]
            for call in pending:
                args += call.args
            keys = [key for call in pending for key in call.keys]
            self._send(_Sent(_Call(BUNDLE, keys, args), steps=len(pending)))

    def _send(self, sent: _Sent) -> None:
        self._sent[len(self._pipe) - self._base] = sent
        call = sent.call
        # execute_command: ClusterPipeline refuses its own evalsha() method, but routes a raw
        # EVALSHA by its first key like any other command.
        self._pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)

    def replies(self, raw: list[Any]) -> list[Any]:
        """One reply per queued step or command, in queue order (a bundle's reply spread over its steps).
        `raw`: the pipeline's replies to this batch's commands only."""
        out: list[Any] = []
        for i, reply in enumerate(raw):
            sent = self._sent.get(i)
            if sent is not None and sent.steps and not isinstance(reply, Exception):
                out += reply
            else:
                out += [reply] * (sent.steps if sent is not None and sent.steps else 1)
        return out


#: A function that queues one phase of an operation's steps.
Phase = Callable[[Batch], object]


class _SharedTrips:
    """One Redis: the operations that callers start in one turn of the event loop (the pings that
    many drivers' sockets received together) share one pipeline, so one write, one read and one
    pass through redis-py's per-execute overhead, which otherwise costs more CPU than the work.
    Each operation keeps its own scripts and its own replies; only the trip is shared."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Sequence[Phase], asyncio.Future[list[Any]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, db: Db, phases: Sequence[Phase]) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((phases, future))
        if len(self._waiting) == 1:
            # Once the loop has run every callback ready now, the other sockets' messages included.
            loop.call_soon(self._flush, db)
        elif len(self._waiting) >= _MAX_SHARED:
            self._flush(db)
        return await future

    def _flush(self, db: Db) -> None:
        waiting, self._waiting = self._waiting, []
        if waiting:
            task = asyncio.create_task(self._send(db, waiting), name="livemap-redis-trip")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, db: Db, waiting: list[tuple[Sequence[Phase], asyncio.Future[list[Any]]]]) -> None:
        outcomes: list[list[Any] | BaseException]
        client = cast(aioredis.Redis, db.client)  # shared trips are for one Redis: see Db.run
        try:
            async with client.pipeline(transaction=False) as pipe:
                batches = []
                for phases, _ in waiting:
                    batch = Batch(pipe, db.publish_command, True)
                    for phase in phases:
                        phase(batch)
                    batches.append((batch, batch.close()))
                commands = [args for args, _ in pipe.command_stack]
                if all(args[0] in _PLAIN_REPLIES for args in commands):
                    raw = await _send_plain(client, commands)
                else:
                    raw = await pipe.execute(raise_on_error=False) if commands else []
            outcomes = await db.replies(batches, list(raw))
        except Exception as exc:  # the connection failed: every operation in the trip gets the error
            outcomes = [exc] * len(waiting)
        for (_, future), outcome in zip(waiting, outcomes, strict=True):
            if future.done():  # its caller went away (a socket closed) while Redis worked
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


#: At most this many operations share one pipeline (a burst is sent in several).
_MAX_SHARED = 256
#: Commands whose replies redis-py passes through as Redis sent them (no response callback).
_PLAIN_REPLIES = frozenset({"EVALSHA", "PUBLISH"})


async def _send_plain(client: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send `commands` in one write and read their replies in order (errors as values, like a
    pipeline's `raise_on_error=False`), on one of the pool's connections.

    The hot path's trips are all EVALSHA and PUBLISH, whose replies need no conversion: this skips
    what redis-py's pipeline does per command around the same write and reads (a retry wrapper,
    response callbacks, per-command bookkeeping), a large share of a fix's CPU. A connection error is
    not retried: it reaches the callers, whose devices resend (nothing was acknowledged).
    """
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # unannotated in redis-py
    try:
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except BaseException:
        await conn.disconnect()  # replies may be left unread on it: it must not serve another caller
        raise
    finally:
        await pool.release(conn)
    return replies


@dataclass(frozen=True, slots=True)
class Db:
    """The Redis client plus what livemap must know about the deployment behind it."""

    client: Client
    #: A Redis Cluster: every script and transaction stays within one hash slot.
    cluster: bool = False
    #: Sharded pub/sub (SPUBLISH / SSUBSCRIBE): on a Cluster whose nodes all run Redis 7+.
    sharded: bool = False
    _trips: _SharedTrips = field(default_factory=_SharedTrips, compare=False, repr=False)

    @property
    def publish_command(self) -> str:
        return "SPUBLISH" if self.sharded else "PUBLISH"

    async def run(self, *phases: Phase) -> list[Any]:
        """Queue and send the phases' steps; returns every step's or command's reply, in queue order.

        One Redis: all phases in one pipeline, shared with the operations other callers start in
        the same turn of the event loop. A Cluster: one pipeline per phase, in order.
        Raises the first error a command answered with (after resending those that met NOSCRIPT).
        """
        if not self.cluster:
            return await self._trips.run(self, phases)
        replies: list[Any] = []
        for phase in phases:
            async with self.client.pipeline(transaction=False) as pipe:
                batch = Batch(pipe, self.publish_command, False)
                phase(batch)
                size = batch.close()
                raw = await pipe.execute(raise_on_error=False) if size else []
            (outcome,) = await self.replies([(batch, size)], list(raw))
            if isinstance(outcome, BaseException):
                raise outcome
            replies += outcome
        return replies

    async def replies(self, batches: list[tuple[Batch, int]], raw: list[Any]) -> list[list[Any] | BaseException]:
        """Each batch's replies (or its first error) from a pipeline's `raw` replies; batches hold
        `size` commands each, in order. Script commands that met NOSCRIPT are resent first, as EVAL."""
        missing: dict[int, _Sent] = {}
        at = 0
        for batch, size in batches:
            missing |= {at + i: sent for i, sent in batch._sent.items() if isinstance(raw[at + i], NoScriptError)}
            at += size
        if missing:
            # EVAL runs the script and caches it on that node, so the next EVALSHA finds it.
            async with self.client.pipeline(transaction=False) as again:
                for sent in missing.values():
                    call = sent.call
                    again.execute_command("EVAL", call.script.text, len(call.keys), *call.keys, *call.args)
                for i, reply in zip(missing, await again.execute(raise_on_error=False), strict=True):
                    raw[i] = reply
        outcomes: list[list[Any] | BaseException] = []
        at = 0
        for batch, size in batches:
            replies = batch.replies(raw[at : at + size])
            at += size
            error = next((r for r in replies if isinstance(r, Exception)), None)
            outcomes.append(replies if error is None else error)
        return outcomes

    async def load_scripts(self) -> None:
        """SCRIPT LOAD every script (on a Cluster: on every primary), so EVALSHA finds them."""
        for script in (*package_scripts(), BUNDLE):
            await self.client.script_load(script.text)

    async def publish(self, channel: str, message: EncodableT) -> None:
        await self.run(lambda b: b.publish(channel, message))
