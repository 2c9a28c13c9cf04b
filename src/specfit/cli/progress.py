"""Progress on the terminal: :class:`~specfit.events.Event` objects as tqdm bars on stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

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
