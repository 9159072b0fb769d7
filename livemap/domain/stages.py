"""The order stage state machine: default pipeline, a store's custom stages, exception stages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    FAILED_ATTEMPT = "failed_attempt"
    CANCELLED = "cancelled"
    RETURNED = "returned"


DEFAULT_PIPELINE: tuple[str, ...] = (
    Stage.RECEIVED,
    Stage.PROCESSING,
    Stage.SHIPPED,
    Stage.DELIVERED,
    Stage.COMPLETED,
)
EXCEPTIONS: tuple[str, ...] = (Stage.FAILED_ATTEMPT, Stage.CANCELLED, Stage.RETURNED)
#: Stages after which an order is done: it leaves the dispatcher's active list.
FINAL: frozenset[str] = frozenset({Stage.COMPLETED, Stage.CANCELLED, Stage.RETURNED})

LABELS: dict[str, dict[str, str]] = {
    Stage.RECEIVED: {"en": "Order received", "es": "Pedido recibido", "pt-BR": "Pedido recebido"},
    Stage.PROCESSING: {"en": "Processing", "es": "En preparación", "pt-BR": "Em preparação"},
    Stage.SHIPPED: {"en": "Shipped", "es": "Enviado", "pt-BR": "Enviado"},
    Stage.DELIVERED: {"en": "Delivered", "es": "Entregado", "pt-BR": "Entregue"},
    Stage.COMPLETED: {"en": "Completed", "es": "Completado", "pt-BR": "Concluído"},
    Stage.FAILED_ATTEMPT: {
        "en": "Delivery attempt failed",
        "es": "Intento de entrega fallido",
        "pt-BR": "Tentativa de entrega falhou",
    },
    Stage.CANCELLED: {"en": "Cancelled", "es": "Cancelado", "pt-BR": "Cancelado"},
    Stage.RETURNED: {"en": "Returned", "es": "Devuelto", "pt-BR": "Devolvido"},
}


class UnknownStage(ValueError):
    """The stage is neither a default, an exception, nor one of the store's custom stages."""

    def __init__(self, stage: str, known: Iterable[str]) -> None:
        self.stage, self.known = stage, list(known)
        super().__init__(f"unknown stage {stage!r}; known stages: {', '.join(self.known)}")


class IllegalTransition(ValueError):
    """The order cannot move from its current stage to the requested one."""

    def __init__(self, current: str, target: str, allowed: Sequence[str]) -> None:
        self.current, self.target, self.allowed = current, target, list(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (final stage)"
        super().__init__(f"cannot move from {current!r} to {target!r}; allowed from {current!r}: {allowed_text}")


@dataclass(frozen=True, slots=True)
class CustomStage:
    """A store's own stage, placed in the pipeline right after `after`."""

    id: str
    after: str
    live: bool = False
    labels: dict[str, str] = field(default_factory=dict)


class StageMachine:
    """Legal transitions for one store: its pipeline is the default one with its custom stages inserted."""

    def __init__(self, custom: Sequence[CustomStage] = ()) -> None:
        pipeline = list(DEFAULT_PIPELINE)
        pending = list(custom)
        # Custom stages may follow other custom stages; place them as their anchor appears.
        while pending:
            placed = [c for c in pending if c.after in pipeline]
            if not placed:
                raise ValueError(f"custom stage {pending[0].id!r} follows unknown stage {pending[0].after!r}")
            for c in reversed(placed):  # reversed + insert-after keeps the store's order among siblings
                pipeline.insert(pipeline.index(c.after) + 1, c.id)
            pending = [c for c in pending if c not in placed]
        self.pipeline: tuple[str, ...] = tuple(pipeline)
        #: Stages of an order that has reached its customer: delivered, the store's stages after it, completed.
        self.delivered: tuple[str, ...] = self.pipeline[self.pipeline.index(Stage.DELIVERED) :]
        self.live: frozenset[str] = frozenset({Stage.SHIPPED, *(c.id for c in custom if c.live)})
        self.known: tuple[str, ...] = (*self.pipeline, *EXCEPTIONS)
        self._labels = {c.id: c.labels for c in custom}

    def allowed(self, current: str) -> list[str]:
        """Every stage `current` may move to, in pipeline order."""
        if current == Stage.FAILED_ATTEMPT:
            return [Stage.SHIPPED, Stage.CANCELLED, Stage.RETURNED]
        if current in (Stage.CANCELLED, Stage.RETURNED):
            return []
        if current not in self.pipeline:
            # A custom stage the store has since removed: let the order move anywhere, not get stuck.
            return [s for s in self.known if s != current]
        i = self.pipeline.index(current)
        delivered = self.pipeline.index(Stage.DELIVERED)
        out = list(self.pipeline[i + 1 :])
        if self.pipeline.index(Stage.SHIPPED) <= i < delivered:
            out.append(Stage.FAILED_ATTEMPT)
        if i < delivered:
            out.append(Stage.CANCELLED)
        else:
            out.append(Stage.RETURNED)
        return out

    def check(self, current: str, target: str) -> None:
        """Raise `UnknownStage` or `IllegalTransition` unless `current -> target` is legal."""
        if target not in self.known:
            raise UnknownStage(target, self.known)
        allowed = self.allowed(current)
        if target not in allowed:
            raise IllegalTransition(current, target, allowed)

    def is_live(self, stage: str) -> bool:
        """Whether, with a driver assigned, the customer sees the driver's location in this stage."""
        return stage in self.live

    def label(self, stage: str, lang: str) -> str:
        labels = self._labels.get(stage) or LABELS.get(stage, {})
        return labels.get(lang) or labels.get("en") or stage
