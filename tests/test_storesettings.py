"""A store's settings document: RFC 7396 merge patch, secret masking, schema validation."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from livemap.domain.storesettings import MASK, StoreSettings, masked, merge_patch

STORED: dict[str, Any] = {
    "name": "Loja Azul",
    "timezone": "America/Sao_Paulo",
    "locale": "pt-BR",
    "branding": {"primary_color": "#112233"},
    "notifications": {
        "events": {"shipped": ["email", "sms"]},
        "webhook": {"url": "https://hooks.example.com/livemap", "secret": "whsec_live_1"},
        "email": {"host": "smtp.example.com", "username": "bot", "password": "hunter2", "from": "a@example.com"},
    },
    "integrations": {"shopify": {"secret": "shpss_2", "status_map": {"fulfilled": "shipped"}}},
}


# --- merge_patch -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7396 appendix A, verbatim
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7396_examples(target: Any, patch: Any, result: Any) -> None:
    """merge_patch reproduces every example of RFC 7396 appendix A."""
    assert merge_patch(target, patch) == result


def test_merge_patch_nested_settings() -> None:
    """A patch touches only the keys it names, at any depth; null deletes; lists are replaced whole."""
    patch = {
        "branding": {"accent_color": "#abcdef"},
        "notifications": {"events": {"shipped": ["webhook"]}, "email": {"username": None}},
        "returns_url": "https://example.com/returns",
    }
    out = merge_patch(STORED, patch)
    assert out["branding"] == {"primary_color": "#112233", "accent_color": "#abcdef"}
    assert out["notifications"]["events"] == {"shipped": ["webhook"]}
    assert out["notifications"]["email"] == {"host": "smtp.example.com", "password": "hunter2", "from": "a@example.com"}
    assert out["notifications"]["webhook"] == STORED["notifications"]["webhook"]
    assert out["returns_url"] == "https://example.com/returns"
    assert out["integrations"] == STORED["integrations"]


def test_merge_patch_does_not_mutate_the_target() -> None:
    """The stored document is left untouched; merge_patch returns a new one."""
    before = copy.deepcopy(STORED)
    merge_patch(STORED, {"notifications": {"webhook": {"secret": "new"}, "email": None}, "branding": None})
    assert before == STORED


def test_merge_patch_deletes_a_whole_section() -> None:
    """null on an object deletes it with everything inside."""
    out = merge_patch(STORED, {"integrations": {"shopify": None}})
    assert out["integrations"] == {}


# --- masking -----------------------------------------------------------------------------------


def test_masked_hides_secrets_and_passwords() -> None:
    """Every secret and password reads as the mask; everything else is unchanged."""
    out = masked(STORED)
    assert out["notifications"]["webhook"] == {"url": "https://hooks.example.com/livemap", "secret": MASK}
    assert out["notifications"]["email"]["password"] == MASK
    assert out["notifications"]["email"]["username"] == "bot"
    assert out["integrations"]["shopify"] == {"secret": MASK, "status_map": {"fulfilled": "shipped"}}
    assert MASK == "********"
    assert "hunter2" not in repr(out)
    assert "whsec_live_1" not in repr(out)
    assert "shpss_2" not in repr(out)
    assert STORED["notifications"]["email"]["password"] == "hunter2"  # the stored copy keeps it


def test_masked_leaves_unset_secrets_visible() -> None:
    """An empty or null secret is not masked, so a client can tell that none is set."""
    doc = {"webhook": {"secret": ""}, "email": {"password": None}, "items": [{"secret": "s"}, {"secret": ""}]}
    assert masked(doc) == {
        "webhook": {"secret": ""},
        "email": {"password": None},
        "items": [{"secret": MASK}, {"secret": ""}],
    }


def test_masked_value_sent_back_keeps_the_stored_secret() -> None:
    """A client that PATCHes back what it read, mask included, changes nothing but what it edited."""
    read = masked(STORED)
    read["notifications"]["webhook"]["url"] = "https://hooks.example.com/v2"
    out = merge_patch(STORED, read)
    assert out["notifications"]["webhook"] == {"url": "https://hooks.example.com/v2", "secret": "whsec_live_1"}
    assert out["notifications"]["email"]["password"] == "hunter2"
    assert out["integrations"]["shopify"]["secret"] == "shpss_2"
    assert merge_patch(STORED, masked(STORED)) == STORED


def test_mask_for_an_unset_secret_stores_nothing() -> None:
    """Sending the mask where no secret is stored does not store the mask as the secret."""
    out = merge_patch({"webhook": {"url": "https://a.example"}}, {"webhook": {"secret": MASK}})
    assert out == {"webhook": {"url": "https://a.example"}}


def test_new_secret_replaces_and_null_deletes() -> None:
    """A real new value replaces the stored secret; null removes it."""
    out = merge_patch(STORED, {"notifications": {"webhook": {"secret": "whsec_live_2"}, "email": {"password": None}}})
    assert out["notifications"]["webhook"]["secret"] == "whsec_live_2"
    assert "password" not in out["notifications"]["email"]


# --- StoreSettings validation ------------------------------------------------------------------


def convert(doc: dict[str, Any]) -> StoreSettings:
    return msgspec.convert(doc, StoreSettings)


def refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        convert(doc)
    return str(info.value)


def test_full_document_converts() -> None:
    """A complete, valid document converts, with renamed keys (from/to) mapped onto their fields."""
    stage = {"id": "out_for_delivery", "after": "shipped", "live": True, "labels": {"pt-BR": "Saiu para entrega"}}
    patch = {"stages": {"custom": [stage]}, "notifications": {"quiet_hours": {"from": "22:00", "to": "07:30"}}}
    doc = merge_patch(STORED, patch)
    settings = convert(doc)
    assert settings.timezone == "America/Sao_Paulo"
    assert settings.branding.primary_color == "#112233"
    assert settings.branding.accent_color == "#f2a900"  # default kept
    assert settings.notifications.email is not None
    assert settings.notifications.email.sender == "a@example.com"
    assert settings.notifications.quiet_hours is not None
    assert (settings.notifications.quiet_hours.start, settings.notifications.quiet_hours.end) == ("22:00", "07:30")
    machine = settings.machine()
    assert machine.pipeline.index("out_for_delivery") == machine.pipeline.index("shipped") + 1
    assert machine.is_live("out_for_delivery")
    assert machine.label("out_for_delivery", "pt-BR") == "Saiu para entrega"


def test_minimal_document_gets_defaults() -> None:
    """Only a name is required; the rest defaults (UTC, English, default pipeline)."""
    settings = convert({"name": "Shop"})
    assert (settings.timezone, settings.locale) == ("UTC", "en")
    assert settings.machine().pipeline == ("received", "processing", "shipped", "delivered", "completed")


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "America", "../../etc/passwd", "UTC ", "GMT+3"])
def test_bad_timezone(tz: str) -> None:
    """A name that is not an IANA zone is refused with a message quoting it."""
    assert refusal({"name": "Shop", "timezone": tz}) == f"timezone {tz!r} is not an IANA time zone"


@pytest.mark.parametrize("tz", ["Europe/Lisbon", "America/Argentina/Buenos_Aires", "Etc/GMT+3", "UTC"])
def test_good_timezone(tz: str) -> None:
    """IANA zone names are accepted."""
    assert convert({"name": "Shop", "timezone": tz}).timezone == tz


def custom(*stages: dict[str, Any]) -> dict[str, Any]:
    return {"name": "Shop", "stages": {"custom": list(stages)}}


@pytest.mark.parametrize("reused", ["shipped", "received", "completed", "cancelled", "failed_attempt"])
def test_custom_stage_reusing_a_default_id(reused: str) -> None:
    """A custom stage may not take the id of a default or exception stage."""
    message = refusal(custom({"id": reused, "after": "received"}))
    assert message == f"custom stage ids must not reuse default stages: {reused}"


def test_duplicate_custom_stage_ids() -> None:
    """Two custom stages with the same id are refused."""
    doc = custom({"id": "packed", "after": "processing"}, {"id": "packed", "after": "shipped"})
    assert refusal(doc) == "custom stage ids must be unique"


@pytest.mark.parametrize(
    ("stages", "culprit"),
    [
        ([{"id": "packed", "after": "nowhere"}], "nowhere"),
        ([{"id": "packed", "after": "returned"}], "returned"),
        ([{"id": "a", "after": "b"}, {"id": "b", "after": "a"}], "b"),
    ],
)
def test_custom_stage_after_unknown_stage(stages: list[dict[str, Any]], culprit: str) -> None:
    """A custom stage whose anchor is not in the pipeline is refused, naming the anchor."""
    assert f"follows unknown stage '{culprit}'" in refusal(custom(*stages))


def test_custom_stage_after_custom_stage_accepted() -> None:
    """A custom stage may follow another custom stage listed after it."""
    settings = convert(custom({"id": "out_for_delivery", "after": "at_hub"}, {"id": "at_hub", "after": "shipped"}))
    assert settings.machine().pipeline[2:5] == ("shipped", "at_hub", "out_for_delivery")


@pytest.mark.parametrize(
    ("stage", "path"),
    [
        ({"id": "Packed", "after": "processing"}, "$.stages.custom[0].id"),
        ({"id": "packed", "after": "processing", "labels": {"fr": "Emballé"}}, "$.stages.custom[0].labels"),
        ({"id": "packed", "after": "processing", "labels": {"en": "x" * 81}}, "$.stages.custom[0].labels"),
    ],
)
def test_custom_stage_schema(stage: dict[str, Any], path: str) -> None:
    """Custom stage ids are lowercase slugs and labels are short and in a supported language."""
    assert path in refusal(custom(stage))


@pytest.mark.parametrize("colour", ["#fff", "red", "#12345g", "112233", "#1122334", ""])
def test_bad_colour(colour: str) -> None:
    """Colours must be #rrggbb; the error names the field."""
    message = refusal({"name": "Shop", "branding": {"primary_color": colour}})
    assert message.endswith("- at `$.branding.primary_color`")


@pytest.mark.parametrize("colour", ["#A1b2C3", "#000000", "#ffffff"])
def test_good_colour(colour: str) -> None:
    """Six hex digits in either case are a colour."""
    assert convert({"name": "Shop", "branding": {"accent_color": colour}}).branding.accent_color == colour


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"name": ""}, "$.name"),
        ({"name": "Shop", "locale": "fr"}, "$.locale"),
        ({"name": "Shop", "returns_url": "javascript:alert(1)"}, "$.returns_url"),
        ({"name": "Shop", "notifications": {"events": {"shipped": ["pigeon"]}}}, "$.notifications.events"),
        ({"name": "Shop", "notifications": {"quiet_hours": {"from": "24:00", "to": "07:00"}}}, "quiet_hours.from"),
        ({"name": "Shop", "branding": {"template": "fancy"}}, "$.branding.template"),
        (  # shop credentials go over TLS only
            {
                "name": "Shop",
                "integrations": {"shopify": {"write_back": {"url": "http://x.myshopify.com", "access_token": "t"}}},
            },
            "$.integrations.shopify.write_back.url",
        ),
        (
            {
                "name": "Shop",
                "integrations": {"woocommerce": {"write_back": {"url": "https://shop.example", "consumer_key": "ck"}}},
            },
            "consumer_secret",
        ),
    ],
)
def test_other_schema_errors_name_the_field(doc: dict[str, Any], path: str) -> None:
    """Other invalid values are refused with the path of the field."""
    assert path in refusal(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "s", "timezone": "localtime"},
        {"name": "s", "stages": {"custom": [{"id": "shipped\n", "after": "received"}]}},
        {"name": "s", "branding": {"primary_color": "#ffffff\n"}},
        {
            "name": "s",
            "integrations": {"shopify": {"write_back": {"url": "https://x.myshopify.com\n", "access_token": "t"}}},
        },
    ],
)
def test_near_miss_values_are_refused(doc: dict[str, Any]) -> None:
    """Non-zone names and values with a trailing newline do not pass validation."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(doc, StoreSettings)
