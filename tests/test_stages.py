"""The order stage machine: default pipeline, exception stages, a store's custom stages, labels."""

from __future__ import annotations

import itertools

import pytest

from livemap.domain.stages import DEFAULT_PIPELINE, LABELS, CustomStage, IllegalTransition, StageMachine, UnknownStage

DEFAULT = StageMachine()
BEFORE_DELIVERED = ("received", "processing", "shipped")
FROM_DELIVERED = ("delivered", "completed")
ALL_STAGES = (*DEFAULT_PIPELINE, "failed_attempt", "cancelled", "returned")


def test_default_pipeline_order() -> None:
    """The default pipeline runs received -> processing -> shipped -> delivered -> completed."""
    assert DEFAULT.pipeline == ("received", "processing", "shipped", "delivered", "completed")
    assert DEFAULT.known == (*DEFAULT.pipeline, "failed_attempt", "cancelled", "returned")


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ("received", ["processing", "shipped", "delivered", "completed", "cancelled"]),
        ("processing", ["shipped", "delivered", "completed", "cancelled"]),
        ("shipped", ["delivered", "completed", "failed_attempt", "cancelled"]),
        ("delivered", ["completed", "returned"]),
        ("completed", ["returned"]),
        ("failed_attempt", ["shipped", "cancelled", "returned"]),
        ("cancelled", []),
        ("returned", []),
    ],
)
def test_allowed_from_each_default_stage(current: str, expected: list[str]) -> None:
    """allowed() lists exactly the legal next stages, forward ones in pipeline order, exceptions last."""
    assert DEFAULT.allowed(current) == expected


@pytest.mark.parametrize(("current", "target"), list(itertools.combinations(DEFAULT_PIPELINE, 2)))
def test_every_forward_move_is_legal(current: str, target: str) -> None:
    """Any later pipeline stage is reachable, including skips (received -> delivered)."""
    DEFAULT.check(current, target)


@pytest.mark.parametrize(("target", "current"), list(itertools.combinations(DEFAULT_PIPELINE, 2)))
def test_never_backwards(current: str, target: str) -> None:
    """Moving to an earlier pipeline stage raises IllegalTransition."""
    with pytest.raises(IllegalTransition) as info:
        DEFAULT.check(current, target)
    assert (info.value.current, info.value.target) == (current, target)


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_no_move_to_the_same_stage(stage: str) -> None:
    """A stage is not a transition to itself."""
    with pytest.raises(IllegalTransition):
        DEFAULT.check(stage, stage)


def test_failed_attempt_only_from_shipped() -> None:
    """Only a shipped order can have a failed delivery attempt."""
    DEFAULT.check("shipped", "failed_attempt")
    for current in ("received", "processing", "delivered", "completed", "cancelled", "returned"):
        with pytest.raises(IllegalTransition):
            DEFAULT.check(current, "failed_attempt")


def test_failed_attempt_goes_back_to_shipped_or_ends() -> None:
    """After a failed attempt the order ships again, is cancelled or is returned; nothing else."""
    for target in ("shipped", "cancelled", "returned"):
        DEFAULT.check("failed_attempt", target)
    for target in ("received", "processing", "delivered", "completed"):
        with pytest.raises(IllegalTransition):
            DEFAULT.check("failed_attempt", target)


@pytest.mark.parametrize("current", BEFORE_DELIVERED)
def test_cancel_before_delivery(current: str) -> None:
    """Any stage before delivered can be cancelled but not returned."""
    DEFAULT.check(current, "cancelled")
    with pytest.raises(IllegalTransition):
        DEFAULT.check(current, "returned")


@pytest.mark.parametrize("current", FROM_DELIVERED)
def test_return_after_delivery(current: str) -> None:
    """Delivered and completed orders can be returned but no longer cancelled."""
    DEFAULT.check(current, "returned")
    with pytest.raises(IllegalTransition):
        DEFAULT.check(current, "cancelled")


@pytest.mark.parametrize(("current", "target"), list(itertools.product(("cancelled", "returned"), ALL_STAGES)))
def test_cancelled_and_returned_are_dead_ends(current: str, target: str) -> None:
    """Nothing leaves cancelled or returned, and the error says so."""
    with pytest.raises(IllegalTransition) as info:
        DEFAULT.check(current, target)
    assert info.value.allowed == []
    assert str(info.value).endswith("none (final stage)")


def test_custom_stage_inserted_after_its_anchor() -> None:
    """A custom stage sits right after its anchor; failed_attempt and cancel are allowed from it before delivery."""
    machine = StageMachine([CustomStage("out_for_delivery", after="shipped", live=True)])
    assert machine.pipeline == ("received", "processing", "shipped", "out_for_delivery", "delivered", "completed")
    assert "out_for_delivery" in machine.known
    assert machine.allowed("shipped") == ["out_for_delivery", "delivered", "completed", "failed_attempt", "cancelled"]
    assert machine.allowed("out_for_delivery") == ["delivered", "completed", "failed_attempt", "cancelled"]
    with pytest.raises(IllegalTransition):
        machine.check("out_for_delivery", "shipped")
    with pytest.raises(IllegalTransition):
        machine.check("delivered", "out_for_delivery")


def test_custom_stage_before_shipped_has_no_failed_attempt() -> None:
    """A custom stage before shipped can be cancelled but has no delivery attempt to fail."""
    machine = StageMachine([CustomStage("packed", after="processing")])
    assert machine.pipeline == ("received", "processing", "packed", "shipped", "delivered", "completed")
    assert machine.allowed("packed") == ["shipped", "delivered", "completed", "cancelled"]
    assert machine.allowed("processing") == ["packed", "shipped", "delivered", "completed", "cancelled"]


def test_custom_stage_after_delivered_is_returnable_not_cancellable() -> None:
    """A custom stage after delivered behaves like delivered: returned yes, cancelled and failed_attempt no."""
    machine = StageMachine([CustomStage("signed", after="delivered")])
    assert machine.pipeline == ("received", "processing", "shipped", "delivered", "signed", "completed")
    assert machine.allowed("signed") == ["completed", "returned"]
    for target in ("cancelled", "failed_attempt"):
        with pytest.raises(IllegalTransition):
            machine.check("signed", target)


def test_custom_stage_after_completed() -> None:
    """A custom stage may follow completed, the last default stage."""
    machine = StageMachine([CustomStage("reviewed", after="completed")])
    assert machine.pipeline[-2:] == ("completed", "reviewed")
    assert machine.allowed("completed") == ["reviewed", "returned"]
    assert machine.allowed("reviewed") == ["returned"]


@pytest.mark.parametrize(
    "custom",
    [
        [CustomStage("at_hub", "shipped"), CustomStage("out_for_delivery", "at_hub")],
        [CustomStage("out_for_delivery", "at_hub"), CustomStage("at_hub", "shipped")],
    ],
    ids=["anchor-first", "anchor-last"],
)
def test_custom_stage_after_custom_stage(custom: list[CustomStage]) -> None:
    """A custom stage anchored on another custom stage follows it, whatever order the store lists them in."""
    machine = StageMachine(custom)
    assert machine.pipeline == (
        "received",
        "processing",
        "shipped",
        "at_hub",
        "out_for_delivery",
        "delivered",
        "completed",
    )
    assert machine.allowed("at_hub") == ["out_for_delivery", "delivered", "completed", "failed_attempt", "cancelled"]


def test_siblings_keep_the_store_order() -> None:
    """Several custom stages after the same anchor appear in the order the store listed them."""
    machine = StageMachine([CustomStage("a", "shipped"), CustomStage("b", "shipped"), CustomStage("c", "shipped")])
    assert machine.pipeline == ("received", "processing", "shipped", "a", "b", "c", "delivered", "completed")


def test_siblings_and_chains_mixed() -> None:
    """Siblings keep their order and each chained stage follows its own anchor immediately."""
    machine = StageMachine(
        [CustomStage("b", "shipped"), CustomStage("c", "shipped"), CustomStage("b2", "b"), CustomStage("p", "received")]
    )
    assert machine.pipeline == ("received", "p", "processing", "shipped", "b", "b2", "c", "delivered", "completed")


@pytest.mark.parametrize(
    ("custom", "culprit"),
    [
        ([CustomStage("a", "nowhere")], "nowhere"),
        ([CustomStage("a", "cancelled")], "cancelled"),  # exception stages are not in the pipeline
        ([CustomStage("a", "b"), CustomStage("b", "a")], "b"),  # a cycle never finds an anchor
    ],
)
def test_custom_stage_after_unknown_stage_rejected(custom: list[CustomStage], culprit: str) -> None:
    """A custom stage whose anchor never appears in the pipeline is a ValueError naming that anchor."""
    with pytest.raises(ValueError, match=f"follows unknown stage '{culprit}'"):
        StageMachine(custom)


def test_live_stages() -> None:
    """Shipped and the store's live custom stages show the driver; nothing else does."""
    machine = StageMachine([CustomStage("out_for_delivery", "shipped", live=True), CustomStage("packed", "processing")])
    assert {s for s in machine.known if machine.is_live(s)} == {"shipped", "out_for_delivery"}
    assert {s for s in DEFAULT.known if DEFAULT.is_live(s)} == {"shipped"}


def test_unknown_stage_names_the_known_ones() -> None:
    """An unknown target raises UnknownStage whose message lists every known stage, custom ones included."""
    machine = StageMachine([CustomStage("packed", "processing")])
    with pytest.raises(UnknownStage) as info:
        machine.check("received", "teleported")
    assert info.value.stage == "teleported"
    assert info.value.known == [
        "received",
        "processing",
        "packed",
        "shipped",
        "delivered",
        "completed",
        "failed_attempt",
        "cancelled",
        "returned",
    ]
    assert str(info.value) == (
        "unknown stage 'teleported'; known stages: received, processing, packed, shipped, delivered, completed, "
        "failed_attempt, cancelled, returned"
    )


def test_unknown_stage_wins_over_final_stage() -> None:
    """A typo from a final stage is reported as unknown, not as illegal."""
    with pytest.raises(UnknownStage):
        DEFAULT.check("cancelled", "shiped")


def test_custom_stage_unknown_to_another_store() -> None:
    """A stage that is custom elsewhere is unknown to the default machine."""
    with pytest.raises(UnknownStage):
        DEFAULT.check("shipped", "out_for_delivery")


def test_illegal_transition_names_the_allowed_stages() -> None:
    """IllegalTransition's message and attributes give the current stage and what it may move to."""
    with pytest.raises(IllegalTransition) as info:
        DEFAULT.check("delivered", "shipped")
    assert info.value.allowed == ["completed", "returned"]
    assert str(info.value) == "cannot move from 'delivered' to 'shipped'; allowed from 'delivered': completed, returned"


def test_illegal_transition_from_custom_stage_lists_custom_stages() -> None:
    """The allowed list in the message includes the store's custom stages."""
    machine = StageMachine([CustomStage("out_for_delivery", "shipped")])
    with pytest.raises(IllegalTransition, match=r"allowed from 'processing': shipped, out_for_delivery, delivered"):
        machine.check("processing", "returned")


@pytest.mark.parametrize(
    ("stage", "lang", "label"),
    [
        ("received", "en", "Order received"),
        ("received", "es", "Pedido recibido"),
        ("received", "pt-BR", "Pedido recebido"),
        ("delivered", "es", "Entregado"),
        ("delivered", "pt-BR", "Entregue"),
        ("failed_attempt", "pt-BR", "Tentativa de entrega falhou"),
        ("returned", "es", "Devuelto"),
        ("completed", "fr", "Completed"),  # unknown language: English
        ("completed", "pt", "Completed"),  # only pt-BR is translated
    ],
)
def test_default_labels(stage: str, lang: str, label: str) -> None:
    """Default stages are labelled in en, es and pt-BR, falling back to English."""
    assert DEFAULT.label(stage, lang) == label


def test_every_default_stage_has_every_language() -> None:
    """No default stage is missing a translation."""
    for stage in ALL_STAGES:
        assert set(LABELS[stage]) == {"en", "es", "pt-BR"}, stage


def test_custom_labels_and_fallback() -> None:
    """Custom labels are used per language, fall back to English, then to the stage id."""
    machine = StageMachine(
        [
            CustomStage("out_for_delivery", "shipped", labels={"en": "Out for delivery", "es": "En reparto"}),
            CustomStage("at_hub", "shipped"),
        ]
    )
    assert machine.label("out_for_delivery", "es") == "En reparto"
    assert machine.label("out_for_delivery", "pt-BR") == "Out for delivery"
    assert machine.label("at_hub", "es") == "at_hub"
    assert machine.label("shipped", "pt-BR") == "Enviado"  # custom stages leave default labels alone


def test_order_in_a_removed_custom_stage_can_still_move() -> None:
    """An order left in a custom stage the store removed is not stuck: it may move to any known stage."""
    machine = StageMachine()
    assert "cancelled" in machine.allowed("packed") and "delivered" in machine.allowed("packed")
    machine.check("packed", "cancelled")
