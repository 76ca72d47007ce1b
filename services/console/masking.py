"""Text with its identity numbers masked as the logs mask them, each numbered for a reveal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.identifiers import mask_personal_ids, personal_id_spans


@dataclass(frozen=True)
class Segment:
    """Plain text, or an identity number (`number` counts them through a page, from 1)."""

    text: str  # already masked when `number` is set
    number: int | None = None
    revealed: bool = False


class Masker:
    """Masks the texts of one page in order, so the n-th number means the same on every view."""

    def __init__(self, reveal: int | None = None) -> None:
        self.count = 0
        self.reveal = reveal  # the one number shown in full (an operator's audited reveal)
        self.revealed_value: str | None = None

    def __call__(self, text: str | None) -> list[Segment]:
        if not text:
            return [Segment(text or "")]
        segments: list[Segment] = []
        at = 0
        for start, end in personal_id_spans(text):
            self.count += 1
            if start > at:
                segments.append(Segment(text[at:start]))
            value = text[start:end]
            if self.count == self.reveal:
                self.revealed_value = value
                segments.append(Segment(value, self.count, revealed=True))
            else:
                segments.append(Segment(mask_personal_ids(value), self.count))
            at = end
        if at < len(text):
            segments.append(Segment(text[at:]))
        return segments


def masked_text(segments: Iterable[Segment]) -> str:
    """The segments as one text (what a viewer reads)."""
    return "".join(segment.text for segment in segments)
