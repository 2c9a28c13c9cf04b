"""Keep Ctrl-C and SIGTERM from cutting short the few seconds in which a finished run is written."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Hold back SIGINT and SIGTERM for the block: the first of them is recorded in the yielded
    list instead of interrupting; a second one interrupts at once (``KeyboardInterrupt``), for a
    user who insists. Outside the main thread (where Python delivers signals) it does nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def hold(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {number: signal.signal(number, hold) for number in SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
