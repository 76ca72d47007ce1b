"""`rendered`: a register's synchronous render driven by rows read a page at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime

import pytest

from shared.files.delivery import rendered
from shared.files.register import FileHeader, FileKey, FileRow
from shared.schedule import Period

HEADER = FileHeader(
    FileKey(Period(2027, 1), "u"), "f", 1, None, datetime(2027, 2, 1, tzinfo=UTC), 0
)


async def pages(count: int, size: int = 7) -> AsyncIterator[list[FileRow]]:
    for start in range(0, count, size):
        await asyncio.sleep(0)
        yield [
            FileRow(n + 1, f"r{n}", 1, f"e{n}", "row", {})
            for n in range(start, min(count, start + size))
        ]


def lines(header: FileHeader, rows: Iterable[FileRow]) -> Iterator[bytes]:
    yield b"H\n"
    for row in rows:
        yield f"{row.number};{row.record_id}\n".encode()
    yield b"T\n"


async def test_every_row_in_order_between_header_and_trailer() -> None:
    pieces = [piece async for piece in rendered(lines, HEADER, pages(100))]

    text = b"".join(pieces).decode().splitlines()
    assert text[0] == "H"
    assert text[-1] == "T"
    assert text[1:-1] == [f"{n + 1};r{n}" for n in range(100)]


async def test_a_render_that_fails_raises_in_the_reader() -> None:
    def broken(header: FileHeader, rows: Iterable[FileRow]) -> Iterator[bytes]:
        for row in rows:
            if row.number == 20:
                raise ValueError("row 20 cannot be written")
            yield b"x"

    async def drain() -> None:
        async for _ in rendered(broken, HEADER, pages(100)):
            pass

    with pytest.raises(ValueError, match="row 20"):
        await asyncio.wait_for(drain(), 10)


async def test_a_reader_that_stops_early_leaves_no_thread_behind() -> None:
    reader = rendered(lines, HEADER, pages(10_000), depth=2)
    async with asyncio.timeout(10):
        assert await anext(reader) == b"H\n"
        await reader.aclose()  # the upload failed after the first piece
