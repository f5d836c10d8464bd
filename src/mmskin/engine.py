"""Where a stage's parallel work runs: ``--engine local`` (processes on this machine, the default) or ``--engine
ray`` (tasks and actors on a Ray cluster; the optional extra ``mmskin[ray]``).

Ray is imported only when a command asks for it. :class:`RayEngine` is one command's connection: by default it
starts a private local Ray (and stops it at the end); ``--ray-address auto`` (or ``HOST:6379``, ``ray://HOST:10001``)
joins a running cluster, which the command leaves running. Work goes out in two shapes:

- :meth:`RayEngine.tasks`: one stateless task per item (a build chunk, a batch of curate images), one CPU each, at
  most a bounded number in flight; results come back as they finish, with the error of an item that failed. A
  worker that dies (a killed process, a lost node) is retried up to :data:`RETRIES` times; an exception raised by
  the work itself is that item's error and is never retried, so a file that always fails is reported once.
- :meth:`RayEngine.replicas`: actors that each hold one expensive object (a model: one GPU per replica) and
  :meth:`Replicas.map` that runs batches on them, results in submission order (so files written from them do not
  depend on the cluster). A dead replica is restarted and its batches retried.

Workers read their inputs from and write their outputs to paths every node sees (a shared filesystem); only small
results travel back. Ctrl-C (or any error) cancels every task in flight; a Ray started here is shut down.

    >>> with RayEngine(address=None, cpus=2) as eng:
    ...     for item, result, error in eng.tasks(process_chunk, items, root, opts):
    ...         ...
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .config import option
from .stage import StageError

ENGINES = ("local", "ray")
RETRIES = 3  # times a task (or a replica) is run again after its worker died; exceptions are not retried
POLL_S = 0.5  # ray.wait timeout, so Ctrl-C is seen while waiting
INSTALL = "pip install 'mmskin[ray]'"
# config fields that say where work runs, not what it computes: no settings record or resume key includes them
ENGINE_FIELDS = ("engine", "ray_address", "ray_replicas")
# test hook: when this file exists, the first task to finish after it appears renames it away and its worker
# process dies (os._exit) before returning its result, as a killed worker would; Ray must run the task again
KILL_ONCE_ENV = "MMSKIN_TEST_KILL_ONCE"


def engine_option(what: str) -> Any:
    """The ``--engine`` field of a stage config."""
    return option(
        "local",
        f"where {what} runs: local (processes on this machine) or ray (a Ray cluster: --ray-address; "
        f"needs {INSTALL})",
        choices=ENGINES,
    )


def ray_address_option() -> Any:
    """The ``--ray-address`` field of a stage config."""
    return option(
        None,
        "with --engine ray: the cluster to join (auto: the one this node belongs to, or HOST:6379, "
        "ray://HOST:10001); default: start a local Ray for this command and stop it at the end",
        metavar="ADDRESS",
    )


def import_ray() -> Any:
    """The ``ray`` module, or a StageError (exit 2) whose one line says how to install it."""
    try:
        import ray
    except ImportError:
        raise StageError("--engine ray", f"Ray is not installed: {INSTALL}", 2) from None
    return ray


def check_engine(engine: str) -> None:
    """Before a stage starts work: ``--engine ray`` needs Ray installed (imported here, only then)."""
    if engine == "ray":
        import_ray()


def _maybe_die() -> None:
    armed = os.environ.get(KILL_ONCE_ENV)
    if not armed:
        return
    try:
        os.rename(armed, armed + ".fired")  # atomic: exactly one task fires
    except OSError:
        return
    os._exit(1)


def _call(fn: Callable[..., Any], item: tuple, args: tuple) -> Any:
    """The body of every task: ``fn(*item, *args)``."""
    out = fn(*item, *args)
    _maybe_die()
    return out


class _Holder:
    """The actor behind a replica: builds its object once, then runs functions on it."""

    def __init__(self, factory: Callable[..., Any], args: tuple) -> None:
        self.obj = factory(*args)

    def run(self, fn: Callable[..., Any], item: Any, args: tuple) -> Any:
        out = fn(self.obj, item, *args)
        _maybe_die()
        return out


class RayEngine:
    """One command's Ray: started here (``address`` None: a private local Ray with ``cpus`` CPUs, 0 = all
    cores, stopped on exit) or joined (``auto``, ``HOST:PORT``, ``ray://…``: left running on exit). A driver that
    is already connected (a notebook, the tests) is used as it is."""

    def __init__(self, address: str | None = None, cpus: int = 0) -> None:
        self.address, self.cpus = address, cpus
        self.ray: Any = None
        self.started = False
        self._pending: dict[Any, Any] = {}  # ObjectRef -> item, across every map in flight
        self._actors: list[Any] = []
        self._sigint: Any = None  # the SIGINT handler before ours
        self.interrupted = False

    def __enter__(self) -> RayEngine:
        ray = self.ray = import_ray()
        if ray.is_initialized():
            return self
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline first: no usage report
        main = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main else None
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if self.address is None:
            kwargs.update(address="local", num_cpus=self.cpus or None)
        else:
            kwargs["address"] = self.address
        try:
            ray.init(logging_level=logging.ERROR, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as e:
            where = f"ray cluster {self.address}" if self.address else "local ray"
            raise StageError(where, f"cannot start or join: {str(e).splitlines()[0][:200]}", 2) from None
        finally:
            if main:  # ray.init replaces the SIGTERM handler; `kill PID` must still stop us like Ctrl-C
                signal.signal(signal.SIGTERM, sigterm)
        if main:  # Ctrl-C is remembered too: Ray's driver code can swallow the KeyboardInterrupt it raises
            self._sigint = signal.signal(signal.SIGINT, self._on_sigint)
        self.started = True
        return self

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        ray = self.ray
        for ref in list(self._pending):
            self._cancel(ref)
        self._pending.clear()
        for a in self._actors:
            ray.kill(a)
        self._actors.clear()
        if self.started:  # a Ray started here stops; a joined cluster is only disconnected from
            ray.shutdown()

    def _cancel(self, ref: Any) -> None:
        """Stop one task. A Ray started here is about to be shut down (which ends every worker), so nothing is
        sent; on a joined cluster the task gets an interrupt. Never ``force``: a force-cancel racing the task's
        reply can abort the driver inside Ray (2.60: "Tried to complete task that was not pending")."""
        if self.started:
            return
        try:
            self.ray.cancel(ref)
        except Exception:  # noqa: BLE001 - a task already finished or gone
            pass

    def cluster(self, resource: str) -> int:
        """How many of ``resource`` (CPU, GPU) the cluster has."""
        return int(self.ray.cluster_resources().get(resource, 0))

    def tasks(
        self, fn: Callable[..., Any], items: Iterable[Any], *args: Any, slots: int = 0
    ) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """``(item, result, error)`` for each item (a tuple) as its task finishes: ``fn(*item, *args)`` run on one
        CPU of the cluster. ``slots`` (0: the cluster's CPUs) tasks run at once, as many more wait in the queue."""
        remote = self.ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_call)
        limit = 2 * (slots or self.cluster("CPU") or 1)
        return self._drain(lambda item: remote.remote(fn, item, args), items, limit, ordered=False)

    def replicas(self, factory: Callable[..., Any], args: tuple, n: int, gpus: bool) -> Replicas:
        """``n`` actors, each holding ``factory(*args)``, with one GPU each (``gpus``) or one CPU."""
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        actor = self.ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, **resources)(_Holder)
        handles = [actor.remote(factory, args) for _ in range(max(1, n))]
        self._actors.extend(handles)
        return Replicas(self, handles)

    def _drain(
        self, submit: Callable[[Any], Any], items: Iterable[Any], limit: int, ordered: bool
    ) -> Iterator[tuple[Any, Any, BaseException | None]]:
        ray = self.ray
        queue: collections.deque = collections.deque()  # refs in submission order
        it = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(queue) < limit:
                    item = next(it, _END)
                    if item is _END:
                        exhausted = True
                        break
                    ref = submit(item)
                    self._pending[ref] = item
                    queue.append(ref)
                if not queue:
                    return
                if ordered:
                    ready, _ = ray.wait([queue[0]], timeout=POLL_S)
                else:
                    ready, _ = ray.wait(list(queue), num_returns=1, timeout=POLL_S)
                if self.interrupted:  # a Ctrl-C whose KeyboardInterrupt Ray swallowed
                    raise KeyboardInterrupt
                for ref in ready:
                    queue.remove(ref)
                    item = self._pending.pop(ref)
                    result, error = self._outcome(ref)
                    yield item, result, error
        finally:
            for ref in queue:  # the consumer stopped early (an error, Ctrl-C): this map's work is cancelled
                if self._pending.pop(ref, None) is not None:
                    self._cancel(ref)

    def _outcome(self, ref: Any) -> tuple[Any, BaseException | None]:
        ray = self.ray
        try:
            return ray.get(ref), None
        except ray.exceptions.RayTaskError as e:  # the work raised: its own exception, as a local run gives
            return None, e.cause if isinstance(e.cause, BaseException) else e
        except ray.exceptions.RayError as e:  # worker or node lost beyond its retries, cancelled, ...
            return None, e


_END = object()


class Replicas:
    """Actors made by :meth:`RayEngine.replicas`."""

    def __init__(self, engine: RayEngine, handles: list[Any]) -> None:
        self.engine, self.handles = engine, handles

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]:
        """``fn(replica's object, item, *args)`` for each item, item i on replica i mod n (two in flight on each),
        results in the order of ``items``. A replica that fails for good raises StageError."""
        n = len(self.handles)
        turn = itertools.count()

        def submit(item: Any) -> Any:
            return self.handles[next(turn) % n].run.remote(fn, item, args)

        for _, result, error in self.engine._drain(submit, items, 2 * n, ordered=True):
            if error is not None:
                raise StageError("ray replica", f"failed: {type(error).__name__}: {str(error)[:300]}")
            yield result
