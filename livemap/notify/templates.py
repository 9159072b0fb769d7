"""Customer notifications (email and SMS) worded in the customer's language.

Every message names the store and the order and carries the tracking link. Stages without a
wording of their own (the store's custom stages among them) use the stage's label, which the
store may translate in its settings. The words are `domain.i18n_notify`'s, each replaced by the
store's own wording of it in that language (`notifications.texts`) when it has one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from livemap.domain.i18n_notify import TEXTS
from livemap.notify.base import Notice

__all__ = ["TEXTS", "Message", "clock", "render", "shop_note", "words"]

#: Stages with a sentence of their own; any other stage says "is now: <label>".
_WORDED = ("shipped", "delivered", "failed_attempt", "cancelled")


@dataclass(frozen=True, slots=True)
class Message:
    """A notification as words: an email's subject and body, and the shorter SMS text."""

    subject: str
    text: str
    sms: str


def clock(epoch_ms: int, timezone: str) -> str:
    """`14:05`: a time of day in the store's time zone."""
    when = dt.datetime.fromtimestamp(epoch_ms / 1000, zoneinfo.ZoneInfo(timezone))
    return when.strftime("%H:%M")


def words(notice: Notice) -> dict[str, str]:
    """The texts of `notice.lang`: livemap's, each replaced by the store's own wording of it when it has one."""
    return TEXTS[notice.lang] | notice.store.notifications.texts.get(notice.lang, {})


def _values(notice: Notice) -> dict[str, str]:
    """What the texts' placeholders are filled with (domain.i18n_notify.PLACEHOLDERS)."""
    data = notice.data
    eta_at = data.get("eta_at")
    return {
        "store": notice.store.name,
        "number": notice.order["id"],
        "name": notice.order.customer.name,
        "url": notice.tracking_url,
        "unsubscribe": notice.unsubscribe_email,
        "label": notice.store.machine().label(notice.key, notice.lang),
        "eta": clock(int(eta_at), notice.store.timezone) if isinstance(eta_at, int | float) else "",
        "note": (data.get("note") or "").strip() if notice.kind in ("stage", "return") else "",
    }


def render(notice: Notice) -> Message:
    """The customer's message for `notice`, in `notice.lang`."""
    t, values = words(notice), _values(notice)
    if notice.kind == "arriving" and notice.order.on_return_leg:  # the driver comes to collect, not to deliver
        subject, line = t["return_subject"], t["return_arriving"]
    elif notice.kind in ("arriving", "delayed"):
        subject, line = t[f"{notice.kind}_subject"], t[notice.kind]
    elif notice.kind == "return":
        subject, line = t["return_subject"], t[f"return_{notice.data.get('status')}"]
    else:
        subject, line = t["subject"], t[notice.key if notice.key in _WORDED else "stage"]
    headline = line.format(**values)
    note = t["note"].format(**values) if values["note"] else ""
    track = t["track"].format(**values)
    body = [t["greeting"].format(**values), "", headline]
    if note:
        body.append(note)
    body += ["", track, "", "-- ", t["footer"].format(**values)]
    sms = " ".join(part for part in (headline, note, track, f"{_stop_sms(notice)} {notice.unsubscribe_sms}") if part)
    return Message(subject=subject.format(**values), text="\n".join(body) + "\n", sms=sms)


def _stop_sms(notice: Notice) -> str:
    """The words before the SMS's opt-out link: the store's wording in the customer's language, else its
    `sms.opt_out` (any language), else livemap's."""
    own = notice.store.notifications.texts.get(notice.lang, {}).get("stop_sms")
    if own:
        return own.format(**_values(notice))
    sms_config = notice.store.notifications.sms
    return (sms_config.opt_out if sms_config and sms_config.opt_out else None) or TEXTS[notice.lang]["stop_sms"]


def shop_note(notice: Notice) -> str:
    """The tracking link as a note on the shop's order, in `notice.lang` (the store's wording when it has one)."""
    return words(notice)["shop_note"].format(**_values(notice))
