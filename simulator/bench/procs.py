"""The processes a bench run starts: Redis, livemap servers, the bare server, load generators.

Each child runs in its own session, so a Ctrl-C reaches only the harness, which then stops its
children itself, in order, by their own pids (never by name); and each asks the kernel for
SIGTERM should the harness die without cleaning up. Output goes to one log file per child.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_PR_SET_PDEATHSIG = 1
#: The repository root: `-m livemap` and `-m simulator...` resolve there even when not installed.
CHECKOUT = Path(__file__).resolve().parents[2]
_ERROR_MARKS = ("Traceback", "ERROR", "Error")


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the harness is killed outright, so is the child.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildError(Exception):
    """A child did not start, or died under us."""


class Child:
    """A started process: ``async with`` stops it (`stop_signal`, then SIGKILL after `stop_timeout_s`)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name, self.proc, self.log_path = name, proc, log_path
        self.stop_signal = signal.SIGTERM
        self.stop_timeout_s = 15.0
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(
        cls,
        name: str,
        argv: list[str],
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = CHECKOUT,
        banner: re.Pattern[str] | None = None,
        echo: Callable[[str], None] | None = None,
        pipes: bool = False,
        timeout_s: float = 60.0,
    ) -> tuple[Child, str]:
        """Start `argv`; with `banner`, wait for a stdout line matching it and return its first group.

        With `echo`, each stdout line is also handed to it. With `pipes`, stdin and stdout stay
        connected to the harness (load generators) and only stderr goes to the log.
        """
        log_path = log_dir / f"{name}.log"
        log = log_path.open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes or banner or echo else log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                limit=64 * 1024 * 1024,  # a load generator's one-line result can be large
            )
        finally:
            log.close()  # the child holds its own descriptor
        child = cls(name, proc, log_path)
        found = ""
        if banner is not None:
            try:
                found = await asyncio.wait_for(child._banner(banner), timeout_s)
            except BaseException:
                await child.stop()
                raise
        if banner is not None or echo is not None:
            child._drain = asyncio.create_task(child._copy_to_log(echo), name=f"{name} stdout")
        return child, found

    async def _banner(self, banner: re.Pattern[str]) -> str:
        assert self.proc.stdout is not None
        with self.log_path.open("a") as log:
            while raw := await self.proc.stdout.readline():
                line = raw.decode(errors="replace")
                log.write(line)
                if match := banner.search(line):
                    return match.group(1)
        raise ChildError(f"{self.name} exited with status {await self.proc.wait()}: see {self.log_path}")

    async def _copy_to_log(self, echo: Callable[[str], None] | None) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("ab") as log:
            while raw := await self.proc.stdout.readline():
                log.write(raw)
                log.flush()
                if echo is not None:
                    echo(raw.decode(errors="replace").rstrip("\n"))

    def alive(self) -> bool:
        return self.proc.returncode is None

    def errors(self) -> list[str]:
        """Log lines that look like errors (a server that logged errors casts doubt on its figure)."""
        with contextlib.suppress(OSError), self.log_path.open(errors="replace") as log:
            return [line.strip() for line in log if any(mark in line for mark in _ERROR_MARKS)]
        return []

    def _signal(self, sig: signal.Signals) -> None:
        # The child leads its own process group (its own session): whatever it started goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self) -> None:
        """Stop the child and its process group, by its pid; safe to call twice."""
        if self.proc.returncode is None:
            self._signal(self.stop_signal)
            try:
                await asyncio.wait_for(self.proc.wait(), self.stop_timeout_s)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await self.proc.wait()
        if self._drain is not None:
            await asyncio.wait([self._drain], timeout=5)
            self._drain.cancel()
            self._drain = None

    async def __aenter__(self) -> Child:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def wait_port(port: int, child: Child, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise ChildError(f"{child.name} exited early: see {child.log_path}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise ChildError(f"{child.name} is not listening on {port} after {timeout_s:g} s")


_LIVEMAP_BANNER = re.compile(r"livemap listening on (http://\S+)")
_BARE_BANNER = re.compile(r"bare listening on (http://\S+)")


async def start_livemap(
    log_dir: Path, data_dir: Path, redis_url: str, prefix: str, env: dict[str, str], name: str = "livemap"
) -> tuple[Child, str, str]:
    """``python -m livemap serve`` on a free port: (child, its URL, its admin token)."""
    token = secrets.token_urlsafe(24)
    # Only our settings: a LIVEMAP_* variable from the caller's shell must not leak in.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")} | {
        "LIVEMAP_REDIS_URL": redis_url,
        "LIVEMAP_KEY_PREFIX": prefix,
        "LIVEMAP_DATA_DIR": str(data_dir),  # livemap creates it
        "LIVEMAP_ADMIN_TOKEN": token,
        **env,
    }
    argv = [sys.executable, "-m", "livemap", "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
    child, url = await Child.start(name, argv, log_dir, env=child_env, banner=_LIVEMAP_BANNER)
    return child, url, token


async def start_bare(log_dir: Path, loop: str = "auto") -> tuple[Child, str]:
    argv = [sys.executable, "-m", "simulator.bench.bare", "--loop", loop]
    return await Child.start(f"bare-{loop}", argv, log_dir, banner=_BARE_BANNER)


def uses_uvloop(pid: int) -> bool:
    """Whether uvloop's extension is loaded in process `pid` (which event loop a server runs on)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
        return any("uvloop" in line for line in maps)
    return False
