"""Where ``placement compare`` runs its tasks: in this process, a local process pool, or Ray.

Each executor takes the tasks and a picklable ``run(task) -> row`` function and yields
``(task, row)`` as rows finish. ``error_row(task, message)`` makes the row of a task whose
worker died (Ray), so that a study goes on.

- ``local`` (``--workers 1``, the default): one solve at a time in this process, so that a time
  limit measures the method and not a neighbour.
- ``pool`` (``--workers N``): a local ``ProcessPoolExecutor``.
- ``ray`` (``--executor ray --address auto|local|ray://host:port``): the ``cluster`` extra;
  Ray is imported only on that path.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence, TypeVar

from .errors import InputError

T = TypeVar("T")
Run = Callable[[T], dict]


def iter_local(tasks: Sequence[T], run: Run) -> Iterator[tuple[T, dict]]:
    for t in tasks:
        yield t, run(t)


def iter_pool(tasks: Sequence[T], run: Run, workers: int) -> Iterator[tuple[T, dict]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, t): t for t in tasks}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:
            for f in futures:
                f.cancel()


def iter_ray(tasks: Sequence[T], run: Run, address: str | None,
             error_row: Callable[[T, str], dict]) -> Iterator[tuple[T, dict]]:
    try:
        import ray  # the ``cluster`` extra; imported only here
    except ImportError as exc:
        raise InputError(f"--executor ray: Ray is not installed ({exc}); install the cluster extra: "
                         "pip install 'placement[cluster]'") from None
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address in (None, "", "local"):
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run)
        pending = {remote.remote(t): t for t in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                t = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:  # a worker died: an error row, the study goes on
                    row = error_row(t, f"ray: {type(exc).__name__}: {exc}"[:300])
                yield t, row
    finally:
        if started_here:
            ray.shutdown()


def stream(tasks: Sequence[T], run: Run, *, executor: str, workers: int, address: str | None,
           error_row: Callable[[T, str], dict]) -> Iterator[tuple[T, dict]]:
    """The executor chosen by ``executor`` ("local" or "ray") and ``workers``."""
    if executor == "ray":
        return iter_ray(tasks, run, address, error_row)
    if workers > 1:
        return iter_pool(tasks, run, workers)
    return iter_local(tasks, run)
