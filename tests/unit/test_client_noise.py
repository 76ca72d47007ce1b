"""The Kafka client's lines in an outage: the first of a kind, then a summary a window later."""

from __future__ import annotations

import logging

from shared.client_noise import ClientNoise


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_are_held_back_and_summed_a_window_later() -> None:
    clock = Clock()
    noise = ClientNoise(window=60, clock=clock)
    unable = "Unable connect to node with id %s: %s"

    passed = [noise.filter(record("aiokafka.conn", logging.ERROR, unable, 1, "refused"))]
    for second in range(1, 60):  # a retry a second for a minute
        clock.now = second
        passed.append(noise.filter(record("aiokafka.conn", logging.ERROR, unable, 1, "refused")))
    clock.now = 61
    summary = record("aiokafka.conn", logging.ERROR, unable, 1, "refused")
    passed.append(noise.filter(summary))

    assert passed.count(True) == 2
    assert summary.getMessage() == (
        "Unable connect to node with id 1: refused (and 59 more like it in the last 60 s)"
    )


def test_kinds_are_counted_apart_and_other_loggers_pass_untouched() -> None:
    noise = ClientNoise(window=60, clock=Clock())

    first = noise.filter(record("aiokafka.conn", logging.ERROR, "Unable connect to node %s", 1))
    other_kind = noise.filter(record("aiokafka.consumer", logging.ERROR, "Fetch error %s", "x"))
    ours = [noise.filter(record("shared.delivery.runtime", logging.ERROR, "worker_paused"))] * 3
    info = noise.filter(record("aiokafka.conn", logging.INFO, "Unable connect to node %s", 1))

    assert (first, other_kind, info) == (True, True, True)
    assert all(ours)


def test_a_condition_the_client_retries_by_itself_is_a_warning() -> None:
    noise = ClientNoise(window=60, clock=Clock())
    retriable = record(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        "Group Coordinator Request failed: %s",
        "[Error 15] GroupCoordinatorNotAvailableError",
    )
    real = record("aiokafka.conn", logging.ERROR, "Unable connect to node %s", 1)

    assert noise.filter(retriable)
    assert noise.filter(real)
    assert (retriable.levelname, real.levelname) == ("WARNING", "ERROR")
