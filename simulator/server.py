"""A private livemap server for one benchmark run: ``python -m livemap serve`` as a child process.

The simulator starts the server the way a person would, on a free port with a fresh data
directory (so an embedded Redis with nothing in it) and a random admin token, reads the address
from the server's banner, and stops it however the run ends. The caller's own ``LIVEMAP_*``
environment never reaches it; ``settings`` are the only ones it gets besides those.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

_BANNER = re.compile(r"livemap listening on (http://\S+)")
# The repository root when the simulator runs from a checkout: `-m livemap` resolves there even
# when livemap is not installed in this interpreter.
_CHECKOUT = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """livemap did not start, or stopped under us."""


class LocalLivemap:
    """``async with LocalLivemap() as server:`` gives ``server.url`` and ``server.admin_token``.

    ``settings`` are ``LIVEMAP_*`` variables for the server (``{"LIVEMAP_OSM_PBF": ...}``); the data
    dir and admin token are its own.
    """

    def __init__(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 15.0,
        log_level: str = "warning",
    ) -> None:
        unknown = [k for k in settings or {} if not k.startswith("LIVEMAP_")]
        if unknown:
            raise ValueError(f"not livemap settings: {', '.join(unknown)}")
        self.settings = dict(settings or {})
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_level = log_level
        self.url = ""
        self.admin_token = secrets.token_urlsafe(24)
        self._data_dir: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LocalLivemap:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        self._data_dir = tempfile.mkdtemp(prefix="livemap-eta-")
        # Only our settings: a LIVEMAP_REDIS_URL or key prefix from the caller's shell must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")}
        env.update(self.settings)
        env["LIVEMAP_DATA_DIR"] = self._data_dir
        env["LIVEMAP_ADMIN_TOKEN"] = self.admin_token
        cwd = _CHECKOUT if (_CHECKOUT / "livemap" / "__init__.py").is_file() else None
        command = [sys.executable, "-m", "livemap", "serve", "--host", "127.0.0.1", "--port", "0"]
        self._proc = await asyncio.create_subprocess_exec(
            *command,
            "--log-level",
            self.log_level,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            self.url = await asyncio.wait_for(self._banner(), self.startup_timeout_s)
        except TimeoutError:
            raise ServerError(f"livemap did not start within {self.startup_timeout_s:g} s") from None
        # Keep reading its stdout, or a chatty server would block on a full pipe.
        self._drain = asyncio.create_task(self._pass_through(), name="livemap stdout")

    async def _banner(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        seen: list[str] = []
        while True:
            raw = await self._proc.stdout.readline()
            if not raw:
                code = await self._proc.wait()
                tail = "".join(seen[-20:])
                raise ServerError(f"livemap exited with status {code} before listening:\n{tail}")
            line = raw.decode(errors="replace")
            match = _BANNER.search(line)
            if match:
                return match.group(1)
            seen.append(line)

    async def _pass_through(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while raw := await self._proc.stdout.readline():
            sys.stderr.write("livemap: " + raw.decode(errors="replace"))

    async def exited(self) -> int:
        """Wait for the server to exit on its own; its exit status."""
        assert self._proc is not None
        return await self._proc.wait()

    async def stop(self) -> None:
        """SIGINT, then SIGKILL after ``stop_timeout_s``; removes the data directory. Safe to call twice."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.wait([self._drain])
            self._drain = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
