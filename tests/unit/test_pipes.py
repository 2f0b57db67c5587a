"""A connector's stdout in blocks of whole lines: the same lines, however the writer paces them."""

from __future__ import annotations

import subprocess
import sys

from dativo_ingest.engines.common.pipes import line_blocks

SLOW_WRITER = (
    "import sys, time\n"
    "for i in range(200):\n"
    "    sys.stdout.write(f'line {i}\\n'); sys.stdout.flush()\n"
    "    if i % 50 == 0: time.sleep(0.01)\n"
    "sys.stdout.write('no newline at the end'); sys.stdout.flush()\n"
)


def test_a_line_by_line_writer_gives_whole_lines_in_order() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    blocks = list(line_blocks(proc.stdout))
    proc.wait()
    assert all(b.endswith(b"\n") for b in blocks[:-1])
    assert b"".join(blocks).split(b"\n") == [f"line {i}".encode() for i in range(200)] + [b"no newline at the end"]
    assert len(blocks) < 200  # lines written one by one still come in blocks


def test_a_file_reads_the_same_without_waiting(tmp_path) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"a\nb\n" * 1000)
    with open(path, "rb") as fh:
        assert b"".join(line_blocks(fh, size=7)) == b"a\nb\n" * 1000
