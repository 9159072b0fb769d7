"""A store's settings document: schema, JSON merge-patch, secret masking."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from livemap.domain.i18n_notify import KEYS, MAX_TEXT, check_texts
from livemap.domain.stages import DEFAULT_PIPELINE, EXCEPTIONS, CustomStage, StageMachine

MASK = "********"
#: Settings fields that hold a credential: sealed at rest, masked when read. A WooCommerce consumer key is
#: one too: it is half of the HTTP Basic pair, and WooCommerce itself shows only its last digits.
_SECRET_FIELDS = ("secret", "password", "consumer_key", "consumer_secret", "access_token")

Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}\Z")]
Url = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://")]
#: Where livemap sends a shop's API credentials: over TLS only (WooCommerce takes HTTP Basic only over https).
HttpsUrl = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https://[^\s?#]+\Z")]
Credential = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*\Z")]
Clock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")]
Channel = Literal["email", "sms", "webhook"]
Lang = Literal["en", "es", "pt-BR"]


@functools.cache
def time_zones() -> frozenset[str]:
    # available_timezones() walks the tz database (tens of ms): once per process. On some systems
    # it lists the database's helper files too, which ZoneInfo() accepts but are not zone names.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules", "Factory"}


#: A web origin a store's site is served from: scheme, host and port, nothing after.
Origin = Annotated[
    str, msgspec.Meta(max_length=253, pattern=r"^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?\Z")
]


class Embed(msgspec.Struct):
    """The store's own sites that may show its tracking widget (`/embed.js`): each framing origin, exactly."""

    origins: Annotated[list[Origin], msgspec.Meta(max_length=20)] = []


class Returns(msgspec.Struct):
    """Returns the customer starts on the tracking page: how long after delivery, and the reasons offered."""

    window_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 30
    reasons: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]], msgspec.Meta(min_length=1, max_length=20)
    ] = msgspec.field(default_factory=lambda: ["Damaged", "Wrong item", "Not as described", "No longer needed"])


class Branding(msgspec.Struct):
    logo_url: Url | None = None
    primary_color: Color = "#0a7d5a"
    accent_color: Color = "#f2a900"
    template: Literal["classic", "compact", "bold"] = "classic"
    #: Map tiles for this store's pages (default: LIVEMAP_TILE_URL) and their required attribution.
    tile_url: Annotated[str, msgspec.Meta(max_length=500, pattern=r"^https?://\S*\{z\}\S*\Z")] | None = None
    tile_attribution: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class CustomStageSpec(msgspec.Struct):
    id: Slug
    after: Slug
    live: bool = False
    labels: dict[Lang, Annotated[str, msgspec.Meta(max_length=80)]] = {}


class StageSettings(msgspec.Struct):
    custom: list[CustomStageSpec] = []


class Webhook(msgspec.Struct):
    url: Url | None = None
    secret: str | None = None


#: Whether a new order's customer gets a channel's notices without asking (`on`) or only after opting in.
Consent = Literal["on", "opt_in"]


class Email(msgspec.Struct, rename={"sender": "from"}):
    #: Shipping notices are transactional messages about the customer's own order: on unless the store says not.
    default: Annotated[
        Consent,
        msgspec.Meta(description="`on` (default): email without opting in; `opt_in`: only after"),
    ] = "on"
    host: str | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str | None = None


class Sms(msgspec.Struct):
    #: SMS costs the store money and consent rules differ by country: opt-in unless the store says otherwise.
    default: Annotated[
        Consent,
        msgspec.Meta(description="`opt_in` (default): SMS only after opting in; `on`: without"),
    ] = "opt_in"
    url: Url | None = None
    #: The provider's HTTP Basic credentials (Twilio: account SID and auth token): the password is sealed at rest
    #: and masked when read, which credentials written into `url` or `body` are not.
    username: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    password: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    format: Literal["form", "json"] = "form"
    body: dict[str, str] = {}
    #: Words before the opt-out link every SMS ends with (default: the customer's language's "Stop SMS:").
    opt_out: Annotated[str, msgspec.Meta(max_length=60)] | None = None


class QuietHours(msgspec.Struct, rename={"start": "from", "end": "to"}):
    start: Clock
    end: Clock


#: The store's own wording of one of livemap's customer texts. `check_texts` holds it to these bounds, with a
#: message naming the language and key (msgspec's own would name neither).
Text = Annotated[str, msgspec.Meta(extra_json_schema={"minLength": 1, "maxLength": MAX_TEXT})]
#: One language's texts, by key (the keys of domain.i18n_notify.TEXTS).
Texts = Annotated[dict[str, Text], msgspec.Meta(extra_json_schema={"propertyNames": {"enum": list(KEYS)}})]


class Notifications(msgspec.Struct):
    events: dict[str, list[Channel]] = {}
    webhook: Webhook | None = None
    email: Email | None = None
    sms: Sms | None = None
    quiet_hours: QuietHours | None = None
    texts: Annotated[
        dict[Lang, Texts],
        msgspec.Meta(
            description="The store's own wording of livemap's customer texts, per language and key (`shipped`,"
            " `subject`, `arriving`, `return_approved`, `track`, `footer`...); a key left out keeps livemap's."
            " Placeholders: {store} {number} {name} {label} {eta} {note} {url} {unsubscribe}; {{ and }} for braces"
        ),
    ] = {}

    def __post_init__(self) -> None:
        check_texts(self.texts)


class Integration(msgspec.Struct):
    secret: str | None = None
    status_map: dict[str, str] = {}


class WooCommerceWriteBack(msgspec.Struct):
    """A REST API key of the shop (read/write), to add the tracking link to its orders as a customer note."""

    url: Annotated[HttpsUrl, msgspec.Meta(description="the shop's site, e.g. `https://shop.example`")]
    consumer_key: Credential
    consumer_secret: Credential


class ShopifyWriteBack(msgspec.Struct):
    """An Admin API access token of the shop (scopes `read_orders`, `write_merchant_managed_fulfillment_orders`),
    to put the tracking link on the order's fulfillment."""

    url: Annotated[HttpsUrl, msgspec.Meta(description="the shop's admin domain, e.g. `https://x.myshopify.com`")]
    access_token: Credential


class WooCommerceIntegration(Integration):
    write_back: WooCommerceWriteBack | None = None


class ShopifyIntegration(Integration):
    write_back: ShopifyWriteBack | None = None


class Integrations(msgspec.Struct):
    woocommerce: WooCommerceIntegration | None = None
    shopify: ShopifyIntegration | None = None

    def write_back(self, platform: str) -> WooCommerceWriteBack | ShopifyWriteBack | None:
        """Where the tracking link of an order from `platform` (its `source`) is written back; None: nowhere."""
        integration = {"woocommerce": self.woocommerce, "shopify": self.shopify}.get(platform)
        return integration.write_back if integration is not None else None


class StoreSettings(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    timezone: str = "UTC"
    locale: Lang = "en"
    returns_url: Url | None = None
    #: Days a final order (and its history, events, proof) is kept; then it and its tracking link go.
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    branding: Branding = msgspec.field(default_factory=Branding)
    embed: Embed = msgspec.field(default_factory=Embed)
    returns: Returns = msgspec.field(default_factory=Returns)
    stages: StageSettings = msgspec.field(default_factory=StageSettings)
    notifications: Notifications = msgspec.field(default_factory=Notifications)
    integrations: Integrations = msgspec.field(default_factory=Integrations)

    def __post_init__(self) -> None:
        if self.timezone not in time_zones():
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone")
        reserved = {*DEFAULT_PIPELINE, *EXCEPTIONS}
        ids = [c.id for c in self.stages.custom]
        if clash := reserved.intersection(ids):
            raise ValueError(f"custom stage ids must not reuse default stages: {', '.join(sorted(clash))}")
        if len(set(ids)) != len(ids):
            raise ValueError("custom stage ids must be unique")
        machine = self.machine()  # raises ValueError when a custom stage follows an unknown one
        shops = (("woocommerce", self.integrations.woocommerce), ("shopify", self.integrations.shopify))
        for platform, integration in shops:
            for status, stage in (integration.status_map if integration else {}).items():
                if stage != "ignore" and stage not in machine.known:  # "ignore": the status changes nothing
                    raise ValueError(f"integrations.{platform}.status_map: {status!r} maps to unknown stage {stage!r}")

    def subscribed_by_default(self, channel: Literal["email", "sms"]) -> bool:
        """Whether a new order's customer gets `channel` without opting in (the store's `default` for it)."""
        notifications = self.notifications
        config = notifications.email if channel == "email" else notifications.sms
        default = config.default if config else ("on" if channel == "email" else "opt_in")
        return default == "on"

    def machine(self) -> StageMachine:
        """The store's stage state machine."""
        return StageMachine(
            [CustomStage(c.id, c.after, c.live, {str(k): v for k, v in c.labels.items()}) for c in self.stages.custom]
        )


#: The settings document nests five levels (notifications.sms.body.<field>); a deeper patch is
#: refused before `merge_patch` recurses into it.
MAX_PATCH_DEPTH = 8


def too_deep(doc: Any, limit: int = MAX_PATCH_DEPTH) -> bool:
    """Whether decoded JSON nests more than `limit` objects/arrays deep (walked without recursion)."""
    level: list[Any] = [doc]
    for _ in range(limit + 1):
        level = [
            v
            for node in level
            if isinstance(node, dict | list)
            for v in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch; a masked secret sent back unchanged keeps the stored one."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key in _SECRET_FIELDS and value == MASK:
            continue
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def map_secrets(doc: Any, change: Callable[[str], str]) -> Any:
    """The document with every non-empty secret passed through `change` (sealing or opening it)."""
    if isinstance(doc, dict):
        return {k: change(v) if k in _SECRET_FIELDS and v else map_secrets(v, change) for k, v in doc.items()}
    if isinstance(doc, list):
        return [map_secrets(v, change) for v in doc]
    return doc


def masked(doc: Any) -> Any:
    """The settings document as a client may read it: secrets replaced by a mask."""
    if isinstance(doc, dict):
        return {k: (MASK if k in _SECRET_FIELDS and v else masked(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [masked(v) for v in doc]
    return doc
