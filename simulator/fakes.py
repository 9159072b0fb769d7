"""Made-up but plausible people and parcels for demo orders (Paraguayan flavour).

Emails use the reserved example.com/.org/.net domains, so a store that turns notifications on
while the demo runs mails nobody real.
"""

from __future__ import annotations

import random
import unicodedata

from .client import Customer

# fmt: off
_FIRST = (
    "María", "José", "Juan", "Ana", "Carlos", "Luis", "Rosa", "Sofía", "Diego", "Lucía", "Fernando", "Mónica",
    "Ramón", "Teresa", "Hugo", "Gabriela", "Andrés", "Natalia", "Víctor", "Celeste", "Rodrigo", "Liz",
    "Óscar", "Patricia", "Marcelo", "Fátima", "Derlis", "Nilda", "Cristian", "Belén",
)
_LAST = (
    "González", "Benítez", "Martínez", "López", "Giménez", "Vera", "Duarte", "Ramírez", "Rojas", "Báez",
    "Acosta", "Ortiz", "Villalba", "Fernández", "Cáceres", "Aquino", "Sosa", "Franco", "Núñez", "Ayala",
    "Riveros", "Galeano", "Cabrera", "Insfrán",
)
# fmt: on
_DOMAINS = ("example.com", "example.org", "example.net")


def fake_person_name(rng: random.Random) -> str:
    """A first name and surname, e.g. "Lucía Benítez"."""
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def fake_customer(rng: random.Random) -> Customer:
    """A customer with a name, a reserved-domain email and a Paraguayan mobile number."""
    name = fake_person_name(rng)
    local = ".".join(_ascii(part).lower() for part in name.split())
    email = f"{local}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"
    phone = f"+595 9{rng.choice('6789')}{rng.randint(1, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    return Customer(name=name, email=email, phone=phone)


def fake_tracking_number(rng: random.Random) -> str:
    """A carrier-style tracking number: "PY" and ten digits."""
    return "PY" + "".join(rng.choice("0123456789") for _ in range(10))


def _ascii(text: str) -> str:
    # "Fátima" -> "Fatima", "O'Leary" -> "OLeary": what people actually type into email addresses.
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())
