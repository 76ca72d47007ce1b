"""Waits as SKR counts them: the guarantee's start, PVV days subtracted, MOV flagged."""

from __future__ import annotations

from datetime import date

from services.cvr.waits import guarantee_start, overlap_days, wait_figures

REFERRAL, DECISION = date(2027, 1, 10), date(2027, 2, 1)


def test_a_first_visit_counts_from_the_referral_a_treatment_from_the_decision() -> None:
    assert guarantee_start("first_visit", REFERRAL, DECISION) == REFERRAL
    assert guarantee_start("examination", REFERRAL, DECISION) == REFERRAL
    assert guarantee_start("treatment", REFERRAL, DECISION) == DECISION
    assert guarantee_start("operation", REFERRAL, None) == REFERRAL


def test_days_after_the_start_up_to_and_including_the_end() -> None:
    figures = wait_figures("first_visit", REFERRAL, None, [], date(2027, 4, 10))

    assert figures == {"garanti_start": "2027-01-10", "pvv_dagar": 0, "mov": "N", "vantedagar": 90}


def test_patient_chosen_days_inside_the_wait_are_not_counted() -> None:
    pvv = [{"kind": "patient_chosen", "start": "2027-01-20", "end": "2027-01-29"}]  # 10 days

    figures = wait_figures("first_visit", REFERRAL, None, pvv, date(2027, 4, 10))

    assert (figures["pvv_dagar"], figures["vantedagar"]) == (10, 80)


def test_an_open_period_runs_to_the_end_and_the_start_day_is_not_counted() -> None:
    assert overlap_days(REFERRAL, date(2027, 1, 31), date(2027, 1, 25), None) == 7
    assert overlap_days(REFERRAL, date(2027, 1, 31), REFERRAL, REFERRAL) == 0
    assert overlap_days(REFERRAL, date(2027, 1, 31), date(2027, 2, 5), None) == 0


def test_a_medically_caused_wait_is_flagged_and_its_days_still_count() -> None:
    mov = [{"kind": "medically_caused", "start": "2027-02-01", "end": "2027-02-28"}]

    figures = wait_figures("treatment", REFERRAL, DECISION, mov, date(2027, 3, 3))

    assert figures == {"garanti_start": "2027-02-01", "pvv_dagar": 0, "mov": "J", "vantedagar": 30}
