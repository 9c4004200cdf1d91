"""Per-process state of a worker: its runtime and the champion models, loaded once and swapped whole.

A worker loads each champion once. Before every job it reads the registry's champion pointer (one
small file); when a new version was promoted it loads the new model completely and only then swaps
the reference, so a query is never answered by a half-loaded model and no restart is needed.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from insights.config import get_settings
from insights.ml import registry
from insights.ml.registry import LoadedModel
from insights.runtime import Runtime

_lock = threading.Lock()
_runtime: Runtime | None = None
_frozen = False  # whether this process froze its warm heap (see freeze_heap)


def set_runtime(runtime: Runtime | None) -> None:
    """Install the runtime the tasks of this process use (the worker command and tests do this)."""
    global _runtime
    with _lock:
        _runtime = runtime


def current_runtime() -> Runtime:
    """The installed runtime, or one opened from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime.open(get_settings(), migrate_db=False)
        return _runtime


class ModelCache:
    """The champion of each model name, reloaded when the registry's champion changes."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> LoadedModel | None:
        """The current champion (schema-checking wrapper with `.version`, `.predict`, `.model`), or None."""
        version = registry.champion_version(self.models_dir, name)
        if version is None:
            return None
        cached = self._models.get(name)
        if cached is not None and cached.version == version:
            return cached
        with self._lock:
            cached = self._models.get(name)
            if cached is None or cached.version != version:
                cached = registry.load_version(self.models_dir, name, version)
                self._models[name] = cached  # one assignment: readers see the old or the new model, whole
                if _frozen:
                    freeze_heap()  # the new model joins the frozen heap; the replaced one can be collected
        return cached


_caches: dict[Path, ModelCache] = {}


def model_cache(models_dir: Path) -> ModelCache:
    """The process's model cache for a registry folder."""
    with _lock:
        cache = _caches.get(models_dir)
        if cache is None:
            cache = _caches[models_dir] = ModelCache(models_dir)
        return cache



def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's view (`gc.freeze`).

    A warmed-up worker holds a few hundred thousand long-lived objects (gazetteer, classifier,
    models); without this, each full collection walks all of them (about a tenth of a second here)
    while a job waits. Called once warm and again after a new champion is loaded (unfreezing first,
    so that the replaced model can be collected).
    """
    global _frozen
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _frozen = True


def prepare_worker_process(runtime: Runtime) -> None:
    """Make this process a warm query worker: install `runtime`, load the interpreter, the champions
    and the market summary, then freeze the heap. The worker command and the benchmark both call this."""
    from insights.query.answer import AnswerContext, warm_up

    set_runtime(runtime)
    warm_up(AnswerContext(settings=runtime.settings, session_factory=runtime.session_factory,
                          models=model_cache(runtime.settings.models_dir)))
    freeze_heap()
