"""Where a command may write: one policy for every output, checked before any work.

Every command that writes (``fit`` and its batches, ``grid``, ``bench``, ``render``) asks here
first, and creates nothing until every check has passed:

* a folder it writes is described by an :class:`OutputFolder`; :meth:`OutputFolder.check` accepts
  it when it is absent, empty, or provably of its kind (it holds only what that kind writes, and
  the kind recognises it), and refuses anything else with a one-line :class:`SpecfitError` naming
  the option that picks another folder. What happens to an existing folder of its kind is the
  command's choice: a run is replaced only with ``--overwrite`` or continued with ``--resume``
  (:func:`specfit.runs.folder.refuse_existing`); grid records and suites resume where they stopped;
* :func:`check_writable` probes that a path can be created, leaving nothing behind;
* a file it writes (a render, a results page, a summary table) passes :func:`check_output_file`:
  it is not a folder, its folder exists (or may be created) and can be written, and an existing
  file there is a regular file that its writer recognises; a name given as text that ends in a
  slash names a folder and is refused (:func:`file_path`), never written as a file;
* everything is written staged and renamed into place, so nothing is ever half-written:
  :func:`specfit.runs.folder.staged_directory` for run folders and
  :func:`specfit.util.files.staged_file` for files (a folder may always hold the leftovers of a
  killed staged write, :data:`specfit.util.files.STAGED_FILE_PATTERN`).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from specfit.errors import SpecfitError
from specfit.util.files import STAGED_FILE_PATTERN


@dataclass(frozen=True)
class OutputFolder:
    """A kind of folder a command writes: what it may hold and how one is recognised.

    Attributes:
        what: the kind as users read it, e.g. ``"a specfit run"``.
        entries: names it may hold, as shell patterns; a pattern ending in ``/`` names a folder,
            the others regular files. Links and other special files are never its own.
        option: the command-line option that chooses another folder (named in refusals).
        recognise: whether a non-empty folder is one of this kind (``None``: any folder holding
            only ``entries`` is).
    """

    what: str
    entries: tuple[str, ...]
    option: str = "--out"
    recognise: Callable[[Path], bool] | None = None

    def _holds(self, entry: Path) -> bool:
        if entry.is_symlink():
            return False
        if entry.is_dir():
            patterns = [p[:-1] for p in self.entries if p.endswith("/")]
        elif entry.is_file():
            patterns = [p for p in self.entries if not p.endswith("/")] + [STAGED_FILE_PATTERN]
        else:
            return False
        return any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in patterns)

    def check(self, folder: Path) -> None:
        """Raise a one-line :class:`SpecfitError` unless ``folder`` is absent, empty or one of this
        kind; reads the folder only."""
        folder = Path(folder)
        if not folder.exists():
            return
        if not folder.is_dir():
            raise SpecfitError(f"{folder} exists and is not a folder; choose another {self.option}")
        try:
            entries = list(folder.iterdir())
        except OSError as exc:
            raise SpecfitError(f"cannot read the folder {folder} ({exc.strerror or exc})") from exc
        if not entries:
            return
        if self.recognise is not None and not self.recognise(folder):
            raise SpecfitError(f"{folder} exists and is not {self.what}; choose another {self.option}")
        stray = sorted(e.name + ("/" if e.is_dir() else "") for e in entries if not self._holds(e))
        if stray:
            shown = ", ".join(stray[:3]) + (", ..." if len(stray) > 3 else "")
            raise SpecfitError(
                f"{folder} holds files {self.what} does not write ({shown}); choose another {self.option}")


def check_writable(path: Path) -> Path:
    """Fail unless ``path`` (a file or folder, existing or not) can be created or replaced: its
    nearest existing ancestor folder must be writable. Returns ``path`` resolved; leaves nothing."""
    path = Path(path).resolve()
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SpecfitError(f"cannot write {path} ({probe} is not a folder)")
    try:
        Path(tempfile.mkdtemp(prefix=".specfit-probe-", dir=probe)).rmdir()
    except OSError as exc:
        raise SpecfitError(f"cannot write {path} ({exc.strerror or exc})") from exc
    return path


def file_path(text: str | Path, option: str) -> Path:
    """``text`` as the path of a file to write, refused when it ends in a slash: that names a
    folder, and is never written as a file. Give it as text: :class:`~pathlib.Path` drops a
    trailing slash."""
    text = os.fspath(text)
    if text.endswith("/") or text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep)):
        raise SpecfitError(f"{option} {text} ends in a slash, so it names a folder; give a file name")
    return Path(text)


def check_output_file(
    path: Path,
    option: str,
    ours: Callable[[Path], bool] | None = None,
    writer: str = "specfit",
    create_folder: bool = False,
) -> Path:
    """Check, before any work, that the file ``path`` may be written; returns it resolved.

    ``path`` is refused when it is a folder; when it exists and is not a regular file, or
    ``ours`` (if given) does not recognise it as written by ``writer``; when its folder is missing
    (unless ``create_folder``: the writer creates it once every check has passed) or cannot be
    written. ``option`` names the setting in the one-line errors.
    """
    path = Path(path)
    if path.is_dir():
        raise SpecfitError(f"{option} {path} is a folder; give a file name")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise SpecfitError(f"{option} {path} exists and is not a regular file")
        if ours is not None and not ours(path):
            raise SpecfitError(f"{path} exists and was not written by {writer}; choose another {option}")
    if not create_folder and not path.parent.is_dir():
        raise SpecfitError(f"{option} {path}: the folder {path.parent} does not exist")
    return check_writable(path)
