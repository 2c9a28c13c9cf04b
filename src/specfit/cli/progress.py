"""Progress on the terminal: :class:`~specfit.events.Event` objects as tqdm bars on stderr; and
the run folder's ``log.txt`` of what the terminal showed (:func:`terminal_log`)."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TextIO

# Phases shown as a bar: (label, unit).
BARS = {"select": ("FreSh", "init"), "probe": ("probes", "step"), "train": ("fit", "step"),
        "compact": ("compact", "step")}


class Bar:
    """A tqdm bar on stderr, or nothing when disabled.

    Its speed and time left are measured from the first unit done on, so that one-time costs
    (building, compiling, the first kernels) do not inflate the first estimates: the bar shown
    while the first unit runs gives way to one that starts counting there.
    """

    def __init__(self, enabled: bool, desc: str = "", unit: str = "", total: int | None = None) -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = self._open(total, 0, leave=False) if enabled else None
        self.started = False

    def _open(self, total: int | None, initial: int, leave: bool) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=self.desc, unit=self.unit, file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.5, smoothing=0, leave=leave)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def update_to(self, done: int, total: int | None = None) -> None:
        if self.bar is None:
            return
        if not self.started and done > 0:  # time from here: the rate excludes the start-up
            self.started = True
            total = total if total is not None else self.bar.total
            self.bar.close()
            self.bar = self._open(total, done, leave=True)
            return
        if total is not None and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def postfix(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def score_text(record: dict) -> str:
    """An evaluation record as a bar's postfix: the training (and held-out) PSNR, or IoU."""
    name = "iou" if "iou" in record else "psnr"
    unit, digits = ("", 4) if name == "iou" else (" dB", 2)
    test = record[f"{name}_test"]
    return (f"{name.upper()} train {record[f'{name}_train']:.{digits}f}{unit}"
            + (f", held-out {test:.{digits}f}{unit}" if test is not None else ""))


class ProgressBars:
    """Shows :class:`~specfit.events.Event` objects as progress bars on stderr (nothing when quiet)."""

    MESSAGES: ClassVar[tuple[str, ...]] = ("select", "probe", "train", "compact")

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.phase: object = None
        self.bar = Bar(False)

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if event.phase is not self.phase:
            self.close()
            self.phase = event.phase
            if event.message and event.phase.value in self.MESSAGES:
                print(event.message, file=sys.stderr)
            if event.phase.value == "evaluate":
                print("evaluating the trained model (scores, reconstruction, report figures)",
                      file=sys.stderr)
        if not self.bar.shown and event.phase.value in BARS and event.total is not None:
            self.bar = Bar(True, *BARS[event.phase.value], event.total)  # once its size is known
        if event.record:
            self.bar.postfix(score_text(event.record))
        else:
            self.bar.update_to(event.done, event.total)

    def status(self, text: str) -> None:
        """A line saying what runs now, for work without a bar (e.g. writing the report)."""
        self.close()
        if not self.quiet:
            print(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
        self.bar = Bar(False)


class Both:
    """Progress shown on the terminal and logged for TensorBoard."""

    def __init__(self, bars: ProgressBars, log: Any) -> None:
        self.bars, self.log = bars, log

    def __call__(self, event: Any) -> None:
        self.bars(event)
        self.log(event)

    def status(self, text: str) -> None:
        self.bars.status(text)

    def close(self) -> None:
        self.bars.close()
        self.log.close()


def progress_for(quiet: bool, tensorboard: str | None, name: str) -> ProgressBars | Both:
    """Progress bars on stderr (none when ``quiet``), and TensorBoard logs under
    ``tensorboard/name`` when ``tensorboard`` is set."""
    bars = ProgressBars(quiet)
    if tensorboard is None:
        return bars
    from specfit.training.tensorboard import TensorBoardLog

    return Both(bars, TensorBoardLog(Path(tensorboard) / name))


_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Tee(io.TextIOBase):
    """A text stream that writes to ``stream`` and keeps a copy of the text in ``kept``."""

    def __init__(self, stream: TextIO, kept: list[str]) -> None:
        self.stream, self.kept = stream, kept

    def write(self, text: str) -> int:
        self.kept.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def as_shown(text: str) -> str:
    """Terminal output as it is left on the screen: each line's last redraw (the text after its
    last carriage return), without escape sequences."""
    lines = (_ESCAPE.sub("", line.rsplit("\r", 1)[-1]).rstrip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line) + "\n"


@contextmanager
def terminal_log(out: Path, continued: bool = False) -> Iterator[None]:
    """Keep what the command prints (stdout and stderr) while the block runs, and write it, as
    :func:`as_shown` leaves it, to the run folder ``out``'s ``log.txt`` when the block leaves a
    run there; ``continued``: after the log the run had (``--resume``). Nothing is written for a
    block that leaves no run (it failed before saving one)."""
    from specfit.runs.format import CONFIG, LOG
    from specfit.util.files import staged_file

    earlier = (out / LOG).read_text(errors="replace") if continued and (out / LOG).is_file() else ""
    kept: list[str] = []
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(streams[0], kept), _Tee(streams[1], kept)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        if (out / CONFIG).is_file() and kept:
            with staged_file(out / LOG) as path:
                path.write_text(earlier + as_shown("".join(kept)))
