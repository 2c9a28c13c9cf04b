"""The ``specfit`` command line: parses, calls the library, prints. See ``specfit --help``.

Each command is a module of :mod:`specfit.cli`; this one runs them: errors become one ``error:``
line and exit code 2, warnings are printed after a command that succeeds, SIGTERM stops like
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from specfit.cli import bench, example, fit, grid, models, ntk, render, select, spectrum
from specfit.cli.parser import HelpFormatter, Parser, check_model, examples
from specfit.errors import SpecfitError
from specfit.version import __version__

# In the order of `specfit --help`.
COMMANDS = (fit, grid, bench, select, spectrum, ntk, render, models, example)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``args.run(args)`` carries out the one parsed."""
    parser = Parser(prog="specfit", formatter_class=HelpFormatter,
                    description="Fit implicit neural representations; choose the embedding frequency by "
                    "FreSh.",
                    epilog=examples("specfit fit photo.png", "specfit example astronaut  # a photo to try",
                                    "specfit select photo.png --model finer",
                                    "specfit render runs/photo-siren --size 2x", "specfit models",
                                    "specfit COMMAND --help    # options and examples of a command"))
    parser.add_argument("--version", action="version", version=f"specfit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():  # so that an unknown option is checked against its own
        command_parser.set_defaults(parser=command_parser)
    return parser


@contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """Collect library warnings and log records instead of letting them reach stderr.

    They are printed as ``warning:`` lines after a command that succeeds, and dropped when it
    fails, so that an error stands alone on its line.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    root = logging.getLogger()
    handler = Collect(logging.WARNING)
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield messages
        messages.extend(str(w.message) for w in caught)
    finally:
        root.removeHandler(handler)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's stop) behaves like Ctrl-C: training stops and the run is written."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (Python's, or torch's on CPU or GPU)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate" in text


def _flag_of(setting: str) -> str | None:
    """The command-line flag of a setting named in an error (``None``: it has none)."""
    from specfit.config.settings import FitSettings
    from specfit.config.tree import leaves
    from specfit.kinds.kind import LoadOptions

    declared = {**leaves(LoadOptions), **leaves(FitSettings)}
    if setting in declared:
        return declared[setting].flag
    return "--" + setting.replace("_", "-")


def _run(argv: list[str] | None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:
            getattr(args, "parser", parser).refuse_unknown(extras)
        if args.command is None:  # bare `specfit`: what it can do
            parser.print_help()
            return 0
        if isinstance(getattr(args, "model", None), str):
            check_model(args.model)
        args.argv = argv
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except SpecfitError as exc:
        message = str(exc)
        flag = _flag_of(exc.setting) if exc.setting and message.startswith(exc.setting + " ") else None
        if flag is not None:  # name the option the user typed
            message = flag + message[len(exc.setting):]
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `specfit models | head`: the reader is gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        message = "out of memory; try a smaller --resize, --batch-size or model"
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for user errors, 130 when interrupted)."""
    from specfit.util.runtime import tune_allocator

    tune_allocator()
    with _captured_warnings() as messages, _sigterm_as_interrupt():
        code = _run(argv)
    if code == 130:  # interrupted: a second Ctrl-C must not print a traceback while Python exits
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(number, signal.SIG_IGN)
    if code == 0:
        for message in dict.fromkeys(messages):
            print(f"warning: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
