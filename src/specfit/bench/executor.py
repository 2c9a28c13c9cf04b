"""Run independent tasks and keep each result as it finishes, so that a killed run resumes.

A :class:`Task` names a function by its import path and gives it JSON arguments. :func:`run_tasks`
runs the tasks that have no record yet in a results folder (one ``KEY.json`` per task, written
atomically by the process that collects results) and returns every record. Tasks run in this
process (``workers=1``), in local worker processes (``workers > 1``), or on a Ray cluster
(``ray_address``: ``"auto"``, ``"local"`` for a Ray instance started here, or a cluster
address; Ray is the optional extra ``specfit[ray]``). Starting the same work again skips what is
recorded, so a pre-empted suite finishes without repeating a finished task.

The results folder follows :mod:`specfit.runs.outputs`: it is absent, empty or holds only records
(:data:`RECORDS`), and nothing is created until the executor has started. A record that is not
what its task returns (cut short, edited, garbage: see :attr:`Task.record`) is run again; a Ray
address where nothing answers within :data:`RAY_CONNECT_SECONDS` is a one-line error.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from specfit.errors import SpecfitError
from specfit.runs.outputs import OutputFolder, check_writable
from specfit.runs.records import mismatch, read_json
from specfit.util.files import dumps, restore_infinities, staged_file

KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")
RECORDS = OutputFolder("specfit grid or bench", ("*.json",))
RECORD_MAX_BYTES = 1 << 26
RAY_CONNECT_SECONDS = 5.0  # how long a Ray address may take to answer before it counts as dead


@dataclass(frozen=True)
class Task:
    """One unit of work: ``function(**args)`` returning a JSON-serialisable mapping.

    Attributes:
        key: unique within a results folder; letters, digits, ``.``, ``_`` and ``-``.
        function: ``"package.module:name"``.
        args: JSON-serialisable keyword arguments.
        record: the shape of what ``function`` returns (see :mod:`specfit.runs.records`); a
            recorded result of another shape is run again.
    """

    key: str
    function: str
    args: dict = field(default_factory=dict)
    record: object = dict

    def __post_init__(self) -> None:
        if not KEY.fullmatch(self.key):
            raise SpecfitError(f"task key {self.key!r} must be 1-200 letters, digits, '.', '_' or '-'")


def call(function: str, args: dict) -> dict:
    """Import ``"module:name"`` and call it with ``args``."""
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)(**args)


def _run_one(task: Task) -> dict:
    """What a worker does with a task (in a fresh process, so it configures torch itself)."""
    import torch

    torch.set_num_threads(1)
    return call(task.function, task.args)


def record_path(folder: Path, key: str) -> Path:
    return Path(folder) / f"{key}.json"


def read_record(folder: Path, key: str, shape: object = dict) -> dict | None:
    """The recorded result of task ``key``; ``None`` when absent, unreadable or not of ``shape``
    (e.g. cut short or edited), so that the task runs again."""
    try:
        data = restore_infinities(read_json(record_path(folder, key), RECORD_MAX_BYTES, "a task's record"))
    except SpecfitError:
        return None
    return data if isinstance(data, dict) and mismatch(data, shape) is None else None


def write_record(folder: Path, key: str, result: dict) -> None:
    with staged_file(record_path(folder, key)) as temp:
        temp.write_text(dumps(result))


def run_tasks(
    tasks: Iterable[Task],
    folder: Path,
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[Task, dict, bool], None] | None = None,
) -> dict[str, dict]:
    """Run the tasks without a record in ``folder``; returns every task's record by key.

    ``on_done(task, result, cached)`` is called once per task, ``cached`` telling whether the
    record was already there. ``folder`` must hold records only (:data:`RECORDS`); a record
    that is not of its task's shape runs again. Nothing is created, and nothing reported, until
    the executor has started (:func:`start_ray` for ``ray_address``).
    """
    tasks = list(tasks)
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise SpecfitError("task keys must be unique")
    folder = Path(folder)
    RECORDS.check(folder)
    check_writable(folder)
    results = {task.key: record for task in tasks
               if (record := read_record(folder, task.key, task.record)) is not None}
    todo = [task for task in tasks if task.key not in results]
    if todo and ray_address is not None:
        start_ray(ray_address)
    if todo:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecfitError(f"cannot write {folder} ({exc.strerror or exc})") from exc
    if on_done is not None:
        for task in tasks:
            if task.key in results:
                on_done(task, results[task.key], True)

    def finish(task: Task, result: dict) -> None:
        write_record(folder, task.key, result)
        results[task.key] = result
        if on_done is not None:
            on_done(task, result, False)

    if ray_address is not None:
        _run_on_ray(todo, finish)
    elif workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(_run_one, task): task for task in todo}
            for future in concurrent.futures.as_completed(futures):
                finish(futures[future], future.result())
    else:
        for task in todo:
            finish(task, call(task.function, task.args))
    return {key: results[key] for key in keys}


def _ray_endpoint(address: str) -> tuple[str, int] | None:
    """The host and port that the Ray address ``address`` connects to; ``None`` when Ray finds
    them itself (``"local"`` starts Ray here; ``"auto"`` without ``RAY_ADDRESS`` looks for a Ray
    started on this machine)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or "auto"
    if address in ("auto", "local"):
        return None
    host, colon, port = address.partition("://")[2 if "://" in address else 0].rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecfitError(f"--ray {address!r} is not a Ray address: give auto, local, HOST:PORT or "
                           "ray://HOST:PORT")
    return host.strip("[]"), int(port)


def start_ray(address: str) -> None:
    """Connect to the Ray cluster at ``address`` (or start one here, ``"local"``), unless this
    process is connected already.

    A cluster address is first reached over TCP within :data:`RAY_CONNECT_SECONDS`, so that an
    address where nothing answers fails at once (Ray itself would retry for minutes); any failure
    is a one-line :class:`SpecfitError`, and nothing is written.
    """
    try:
        import ray
    except ImportError:
        raise SpecfitError("a Ray address was given, but Ray is not installed: "
                           "pip install 'specfit[ray]'") from None
    if ray.is_initialized():
        return
    endpoint = _ray_endpoint(address)
    if endpoint is not None:
        try:
            socket.create_connection(endpoint, timeout=RAY_CONNECT_SECONDS).close()
        except OSError as exc:
            reason = (f"nothing answered within {RAY_CONNECT_SECONDS:g} s" if isinstance(exc, TimeoutError)
                      else (exc.strerror or str(exc)).lower())
            raise SpecfitError(f"no Ray cluster answers at --ray {address} ({reason}); check the address, "
                               "or start a cluster with `ray start --head`") from None
    try:
        if address == "local":  # a Ray instance of this machine's cores, on the loopback interface
            ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SpecfitError(f"cannot start Ray at --ray {address} ({' '.join(str(exc).split())})") from None


def _run_on_ray(tasks: list[Task], finish: Callable[[Task, dict], None]) -> None:
    """Run ``tasks`` on the Ray cluster :func:`start_ray` connected to."""
    if not tasks:
        return
    import ray

    remote = ray.remote(_run_one)
    pending = {remote.remote(task): task for task in tasks}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            finish(pending.pop(ref), ray.get(ref))
