"""Signed one-click unsubscribe links: the worker puts them in every message, the unsubscribe page checks them.

The signature covers one order and one channel, so a link cannot be made up for another.
"""

from __future__ import annotations

from typing import Literal

from livemap.storage.secretbox import SecretBox

Channel = Literal["email", "sms"]


def _message(tid: str, channel: str) -> str:
    return f"unsubscribe:{tid}:{channel}"


def link(base_url: str, box: SecretBox, tid: str, channel: Channel) -> str:
    """The signed one-click unsubscribe link of order `tid`'s `channel` updates."""
    return f"{base_url.rstrip('/')}/unsubscribe/{tid}/{channel}?sig={box.sign(_message(tid, channel))}"


def verify(box: SecretBox, tid: str, channel: str, signature: str) -> bool:
    """Whether `signature` is this order's and channel's (constant-time, see SecretBox.verify)."""
    return box.verify(_message(tid, channel), signature)
