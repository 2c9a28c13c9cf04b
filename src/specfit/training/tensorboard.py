"""TensorBoard logs of a fit (the ``tensorboard`` extra: ``pip install specfit[tensorboard]``).

:class:`TensorBoardLog` is a progress callback: give it to :func:`specfit.fit` (or
``specfit fit --tensorboard DIR``) and it writes every evaluation's loss and scores as scalars
(the command line writes one folder per run under ``DIR``).
"""

from __future__ import annotations

from pathlib import Path

from specfit.errors import SpecfitError
from specfit.events import Event, Phase


def require_tensorboard() -> None:
    """Raise :class:`SpecfitError` (before any work) when the tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise SpecfitError("TensorBoard logging needs the tensorboard package: "
                           "pip install 'specfit[tensorboard]'") from None


class TensorBoardLog:
    """Writes a fit's :class:`~specfit.events.Event` records as TensorBoard scalars in ``folder``.

    Scalars: ``train/loss`` and ``train/SCORE``, ``train/SCORE_train``, ``train/SCORE_test``
    (``SCORE`` is ``psnr``, or ``iou`` for shapes) at each evaluation step; compaction's records
    under ``compact/``.
    """

    def __init__(self, folder: str | Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def __call__(self, event: Event) -> None:
        if not event.record or event.phase not in (Phase.TRAIN, Phase.COMPACT):
            return
        self.record(event.record, "compact" if event.phase is Phase.COMPACT else "train")

    def record(self, record: dict, group: str = "train") -> None:
        """Write one evaluation record (``step`` and its scores) under ``group/``."""
        step = int(record["step"])
        for name, value in record.items():
            if name != "step" and isinstance(value, int | float):
                self.writer.add_scalar(f"{group}/{name}", value, step)

    def close(self) -> None:
        self.writer.close()
