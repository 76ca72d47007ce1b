"""Field checks that collect every problem of a call (never stop at the first) as `Fel` rows."""

# The en dash of ranges ("1–3") is meant: messages quote the handbook.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from services.sandboxes.gvr.codes import CodeState, CodeTable
from services.sandboxes.gvr.kombika import KombikaRegistry, KombikaState
from services.sandboxes.gvr.schema import Enhet, Fel, FelKod
from shared.identifiers import InvalidIdentifierError, Kombika, validate_hsa_id

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_INR = re.compile(r"[0-9]{5}")
_KLIN = re.compile(r"[0-9]{3}")
_AVD = re.compile(r"[A-Za-z0-9]{1,3}")
_MISSING = object()


class Checker:
    """Reads one JSON object (a body or a sub-object) and records what is wrong with it."""

    def __init__(self, found: list[Fel], data: dict[str, Any], prefix: str = "") -> None:
        self.found = found
        self.data = data
        self.prefix = prefix

    def at(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, kod: FelKod, meddelande: str) -> None:
        self.found.append(Fel(falt=self.at(name), kod=kod, meddelande=meddelande))

    def fields_of(self, model: type[BaseModel]) -> None:
        """Unknown fields are errors; required fields of `model` must be present and not null."""
        for name in self.data:
            if name not in model.model_fields:
                self.fail(name, FelKod.OKANT_FALT, f"okänt fält för {model.__name__.lower()}")
        for name, field in model.model_fields.items():
            if field.is_required() and self.data.get(name) is None:
                self.fail(name, FelKod.SAKNAS, "obligatoriskt fält saknas")

    def raw(self, name: str) -> Any:
        """The value, or `_MISSING` when absent or null (missing required ones are reported)."""
        value = self.data.get(name)
        return _MISSING if value is None else value

    def text(self, name: str, pattern: str | None = None, rule: str = "") -> str | None:
        value = self.raw(name)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.fail(name, FelKod.FORMAT, "måste vara en sträng")
            return None
        if pattern is not None and not re.fullmatch(pattern, value):
            self.fail(name, FelKod.FORMAT, rule or f"måste matcha {pattern}")
            return None
        return value

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        if _DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(name, FelKod.FORMAT, f"måste vara ett verkligt datum ÅÅÅÅ-MM-DD, fick {value!r}")
        return None

    def clock(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not _TIME.fullmatch(value):
            self.fail(name, FelKod.FORMAT, f"måste vara en tid TT:MM (00:00–23:59), fick {value!r}")
            return None
        return value

    def moment(self, name: str) -> datetime | None:
        """ISO 8601 date and time with a zone (Z or ±hh:mm)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None or "T" not in value:
            self.fail(name, FelKod.FORMAT, "måste vara tidpunkt enligt ISO 8601 med tidszon")
            return None
        return parsed

    def boolean(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.fail(name, FelKod.FORMAT, "måste vara true eller false")
            return None
        return value

    def whole_number(self, name: str, minimum: int = 1) -> int | None:
        value = self.raw(name)
        if value is _MISSING:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(name, FelKod.FORMAT, f"måste vara ett heltal ≥ {minimum}")
            return None
        return value

    def objects(self, name: str) -> list[tuple[Checker, dict[str, Any]]]:
        """A list of objects: a Checker for each (prefix ``name[i].``); not-objects reported."""
        value = self.raw(name)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.fail(name, FelKod.FORMAT, "måste vara en lista")
            return []
        found: list[tuple[Checker, dict[str, Any]]] = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                found.append((Checker(self.found, item, f"{self.at(name)}[{index}]."), item))
            else:
                self.fail(f"{name}[{index}]", FelKod.FORMAT, "måste vara ett objekt")
        return found

    def objects_one(self, name: str) -> list[tuple[Checker, dict[str, Any]]]:
        """One object (prefix ``name.``), as a list of none or one; a not-object is reported."""
        value = self.raw(name)
        if value is _MISSING:
            return []
        if not isinstance(value, dict):
            self.fail(name, FelKod.FORMAT, "måste vara ett objekt")
            return []
        return [(Checker(self.found, value, f"{self.at(name)}."), value)]

    def code(self, name: str, table: CodeTable, day: date | None) -> str | None:
        """A code of `table`, valid on `day` (the event date; None when that date is bad)."""
        value = self.text(name)
        if value is not None:
            self.code_value(name, value, table, day)
        return value

    def code_value(self, name: str, value: str, table: CodeTable, day: date | None) -> bool:
        state = table.state(value, day)
        if state is CodeState.UNKNOWN:
            self.fail(name, FelKod.KOD_OKAND, f"{value!r} finns inte i kodverket {table.name}")
        elif state is CodeState.NOT_VALID_ON_DATE:
            known = table.get(value)
            period = known.period() if known else "?"
            self.fail(
                name,
                FelKod.KOD_EJ_GILTIG,
                f"{table.name}-koden {value!r} gäller {period}, inte {day}",
            )
        return state is CodeState.VALID

    def structured_code(
        self,
        name: str,
        table: CodeTable,
        day: date | None,
        structure: Callable[[str], str],
    ) -> str | None:
        """A code whose structure is checked first (ICD-10-SE, KVÅ, ATC), then the table."""
        value = self.text(name)
        if value is None:
            return None
        try:
            structure(value)
        except InvalidIdentifierError as error:
            self.fail(name, FelKod.KOD_FORMAT, f"{error.kind}-koden {value!r}: {error.rule}")
            return None
        return value if self.code_value(name, value, table, day) else None

    def kombika(
        self, name: str, registry: KombikaRegistry, day: date | None, role: str
    ) -> Kombika | str | None:
        """A unit object: a kombika {inr, klin, avd} (its format, then its existence and state on
        `day`), or {hsaId} (its format only: the sandbox's registry knows kombikas).

        Returns the kombika whenever its format is right, known and open or not; an HSA-id as str.
        """
        value = self.raw(name)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.fail(name, FelKod.FORMAT, "måste vara ett objekt {inr, klin, avd} eller {hsaId}")
            return None
        parts = Checker(self.found, value, f"{self.at(name)}.")
        parts.fields_of(Enhet)
        if "hsaId" in value:
            if set(value) != {"hsaId"}:
                self.fail(name, FelKod.FORMAT, "ange antingen hsaId eller inr, klin och avd")
                return None
            hsa_id = parts.text("hsaId")
            try:
                return validate_hsa_id(hsa_id) if hsa_id is not None else None
            except InvalidIdentifierError as error:
                parts.fail("hsaId", FelKod.KOMBIKA_FORMAT, f"inte ett HSA-id: {error.rule}")
                return None
        for part in ("inr", "klin", "avd"):
            if value.get(part) is None:
                parts.fail(part, FelKod.SAKNAS, "obligatoriskt fält saknas")
        rules = (
            ("inr", _INR, "inrättning måste vara 5 siffror"),
            ("klin", _KLIN, "klinik måste vara 3 siffror"),
            ("avd", _AVD, "avdelning måste vara 1–3 bokstäver eller siffror"),
        )
        text: dict[str, str] = {}
        for part, pattern, rule in rules:
            found = parts.text(part)
            if found is not None and not pattern.fullmatch(found):
                parts.fail(part, FelKod.KOMBIKA_FORMAT, f"{rule}, fick {found!r}")
            elif found is not None:
                text[part] = found
        if len(text) < 3:
            return None
        kombika = Kombika(text["inr"], text["klin"], text["avd"])
        state = registry.state(str(kombika), day)
        if state is KombikaState.UNKNOWN:
            self.fail(name, FelKod.KOMBIKA_OKAND, f"{role} {kombika} finns inte i kombikaregistret")
        elif state is KombikaState.CLOSED:
            periods = ", ".join(p.describe() for p in registry.periods(str(kombika)))
            message = (
                f"{role} {kombika} är inte öppen {day} (öppen {periods}); hela anropet avvisas"
            )
            self.fail(name, FelKod.KOMBIKA_STANGD, message)
        return kombika
