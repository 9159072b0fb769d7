"""Background tasks: started with a name, kept referenced, cancelled and awaited on shutdown."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has finished unwinding (its `finally` blocks ran)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
