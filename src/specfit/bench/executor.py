"""Run independent tasks and keep each result as it finishes, so that a killed run resumes.

A :class:`Task` names a function by its import path and gives it JSON arguments. :func:`run_tasks`
runs the tasks that have no record yet in a results folder (one ``KEY.json`` per task, written
atomically by the process that collects results) and returns every record. Tasks run in this
process (``workers=1``), in local worker processes (``workers > 1``), or on a Ray cluster
(``ray_address``: ``"auto"``, ``"local"`` for a Ray instance started here, or a cluster
address; Ray is the optional extra ``specfit[ray]``). Starting the same work again skips what is
recorded, so a pre-empted suite finishes without repeating a finished task.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import json
import multiprocessing
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from specfit.errors import SpecfitError
from specfit.util.files import dumps, staged_file

KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")


@dataclass(frozen=True)
class Task:
    """One unit of work: ``function(**args)`` returning a JSON-serialisable mapping.

    Attributes:
        key: unique within a results folder; letters, digits, ``.``, ``_`` and ``-``.
        function: ``"package.module:name"``.
        args: JSON-serialisable keyword arguments.
    """

    key: str
    function: str
    args: dict = field(default_factory=dict)

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


def read_record(folder: Path, key: str) -> dict | None:
    """The recorded result of task ``key`` (``None`` when absent or unreadable, e.g. cut short)."""
    path = record_path(folder, key)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
    record was already there.
    """
    tasks = list(tasks)
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise SpecfitError("task keys must be unique")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    todo = []
    for task in tasks:
        record = read_record(folder, task.key)
        if record is None:
            todo.append(task)
        else:
            results[task.key] = record
            if on_done is not None:
                on_done(task, record, True)

    def finish(task: Task, result: dict) -> None:
        write_record(folder, task.key, result)
        results[task.key] = result
        if on_done is not None:
            on_done(task, result, False)

    if ray_address is not None:
        _run_on_ray(todo, ray_address, finish)
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


def _run_on_ray(tasks: list[Task], address: str, finish: Callable[[Task, dict], None]) -> None:
    try:
        import ray
    except ImportError:
        raise SpecfitError("a Ray address was given, but Ray is not installed: "
                           "pip install 'specfit[ray]'") from None
    if not ray.is_initialized():
        if address == "local":  # a Ray instance of this machine's cores, on the loopback interface
            ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(_run_one)
    pending = {remote.remote(task): task for task in tasks}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            finish(pending.pop(ref), ray.get(ref))
