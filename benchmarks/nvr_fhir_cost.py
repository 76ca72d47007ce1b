"""CPU cost of NVR's FHIR mapping per vaccination: build, validate, serialise, a bundle of 100.

    .venv/bin/python -m benchmarks.nvr_fhir_cost [--rounds 2000]

Figures are process CPU time (µs per vaccination, best of 5 runs), printed, never asserted.
"validate" is `Immunization.model_validate` (fhir.resources R4B, contained resources included),
"construct" is `model_construct` (no validation, what skipping it would save), "per shape" is
the worker's `ImmunizationCheck` (in full once per shape, then the varying leaves). The bundle rows
are what the worker pays per vaccination for a full bundle of 100: build + one validation (or one
construct) + entry + compact JSON of the whole bundle.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any


def cpu_us(work: Callable[[], object], rounds: int, *, per: int = 1, repeat: int = 5) -> float:
    """Best of `repeat` runs: µs of process CPU per call of `work` divided by `per`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(rounds):
            work()
        best = min(best, (time.process_time() - start) / rounds / per)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="calls per measured run")
    args = parser.parse_args()

    start = time.process_time()
    from fhir.resources.R4B.immunization import Immunization

    import_ms = (time.process_time() - start) * 1e3

    from services.nvr.fhir_check import ImmunizationCheck
    from services.nvr.mapping import build_bundle, build_immunization, create_entry
    from services.nvr.profile import NvrProfile
    from shared.contracts import EXAMPLES, parse_event
    from shared.contracts.vaccination import VaccinationEvent

    profile = NvrProfile()
    event = parse_event(json.dumps(EXAMPLES["vaccination"]).encode())
    assert isinstance(event, VaccinationEvent)
    events = [event.model_copy(update={"record_id": f"vacc-{i}"}) for i in range(100)]
    names: dict[str, Any] = {"unit_name": "Vårdcentralen Ekorren", "care_giver_name": "Region X"}
    resource = build_immunization(event, profile, **names)

    start = time.process_time()
    Immunization.model_validate(resource)
    first_ms = (time.process_time() - start) * 1e3
    model = Immunization.model_validate(resource)

    def bundle(check: Callable[[dict[str, Any]], object]) -> bytes:
        entries = []
        for each in events:
            built = build_immunization(each, profile, **names)
            check(built)
            entries.append(create_entry(each.event_id, built))
        return build_bundle(entries, profile)

    per_shape = ImmunizationCheck()
    per_shape(resource)  # the shape's one full validation
    rounds, bundles = args.rounds, max(1, args.rounds // 100)
    rows = [
        ("build dict", cpu_us(lambda: build_immunization(event, profile, **names), rounds)),
        (
            "validate (model_validate)",
            cpu_us(lambda: Immunization.model_validate(resource), rounds),
        ),
        (
            "construct (model_construct)",
            cpu_us(lambda: Immunization.model_construct(**resource), rounds),
        ),
        ("per shape (ImmunizationCheck)", cpu_us(lambda: per_shape(resource), rounds)),
        (
            "serialise dict (json.dumps)",
            cpu_us(lambda: json.dumps(resource, ensure_ascii=False), rounds),
        ),
        (
            "serialise model (model_dump_json)",
            cpu_us(lambda: model.model_dump_json(exclude_none=True), rounds),
        ),
        (
            "bundle of 100, model_validate",
            cpu_us(lambda: bundle(Immunization.model_validate), bundles, per=100),
        ),
        (
            "bundle of 100, model_construct",
            cpu_us(lambda: bundle(lambda r: Immunization.model_construct(**r)), bundles, per=100),
        ),
        (
            "bundle of 100, per shape",
            cpu_us(lambda: bundle(per_shape), bundles, per=100),
        ),
        (
            "bundle of 100, no fhir.resources",
            cpu_us(lambda: bundle(lambda r: None), bundles, per=100),
        ),
    ]
    size = len(bundle(Immunization.model_validate))
    print(f"import fhir.resources.R4B.immunization: {import_ms:.0f} ms CPU")
    print(f"first validation of the class:          {first_ms:.1f} ms CPU")
    print(f"bundle of 100: {size:,} bytes ({size // 100:,} per vaccination)")
    print(f"{'µs CPU per vaccination':<36}{'':>8}")
    for name, micros in rows:
        print(f"  {name:<34}{micros:>8.1f}")


if __name__ == "__main__":
    main()
