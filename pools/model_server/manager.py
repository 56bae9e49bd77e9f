"""The served model list: reloads (TF Serving's ReloadConfig semantics) and base path polling."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from base.errors import FailedPrecondition, InvalidArgument, NotFound, TierserveError
from pools.model_server import config as configs
from pools.model_server.memory import MemoryReleaser
from pools.model_server.model import AVAILABLE, LoadObserver, ModelEntry, VersionState
from pools.model_server.sources import open_source

log = logging.getLogger(__name__)

# Models removed by a reload still answer status (END), like TF Serving; bounded.
KEEP_RETIRED = 1000


class Unknown(TierserveError):
    """TF Serving's UNKNOWN: what ReloadConfig answers when models did not become available."""

    grpc_code = grpc.StatusCode.UNKNOWN
    code_name = "UNKNOWN"


class ModelManager:
    """Owns every ModelEntry. Reloads are serialized; the models of one reload load in parallel."""

    def __init__(self, loader: Callable[[Path], Any], cache_root: Path, num_load_threads: int = 4,
                 on_load: LoadObserver | None = None,
                 release_interval_s: float = 10.0,
                 allow_labels_for_unavailable: bool = False) -> None:
        self._loader = loader
        # --allow_version_labels_for_unavailable_models
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._cache_root = cache_root
        self._on_load = on_load
        self._memory = MemoryReleaser(release_interval_s)
        self._pool = ThreadPoolExecutor(max(1, num_load_threads), thread_name_prefix="load")
        self._config_lock = threading.Lock()
        self._lock = threading.Lock()
        self._models: dict[str, ModelEntry] = {}
        self._retired: OrderedDict[str, list[VersionState]] = OrderedDict()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- reads --------------------------------------------------------------------------------

    def resolve(self, name: str, version: int | None = None,
                label: str | None = None) -> tuple[int, Any]:
        with self._lock:
            entry = self._models.get(name)
        if entry is None:
            if label is not None:  # TF Serving looks the label up first
                raise InvalidArgument(f"Unrecognized servable version label: {label}")
            what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise NotFound(f"Servable not found for request: {what}")
        return entry.resolve(version, label)

    def labelled_status(self, name: str, label: str) -> list[VersionState]:
        """Status of the version a label names (TF Serving ignores the label: all versions)."""
        with self._lock:
            entry = self._models.get(name)
        if entry is None:
            return self.status(name)
        version = entry.config.version_labels.get(label)
        if version is None:
            raise InvalidArgument(f"Unrecognized servable version label: {label}")
        return self.status(name, version)

    def status(self, name: str, version: int | None = None) -> list[VersionState]:
        with self._lock:
            entry = self._models.get(name)
            retired = self._retired.get(name)
        states = entry.states() if entry is not None else retired
        if not states:
            raise NotFound(f"Could not find any versions of model {name}")
        if version is not None:
            states = [s for s in states if s.version == version]
            if not states:
                raise NotFound(f"Could not find version {version} of model {name}")
        return states

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self._models

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def counts(self) -> tuple[int, int]:
        """(models with an AVAILABLE version, AVAILABLE versions)."""
        with self._lock:
            entries = list(self._models.values())
        per_model = [len(e.available_versions()) for e in entries]
        return sum(1 for n in per_model if n), sum(per_model)

    # -- reload -------------------------------------------------------------------------------

    def reload(self, config: Any) -> None:
        """Make `config`'s list the served one; return once each named model is AVAILABLE or failed.

        Models left out are unloaded; unchanged ones are left alone. Raises InvalidArgument
        for a bad list (nothing changes) and Unknown naming the models that failed.
        """
        models = configs.validate(config)
        with self._config_lock:
            with self._lock:
                current = dict(self._models)
            wanted = {m.name: m for m in models}
            self._check_labels(wanted, current)
            removed = [e for name, e in current.items() if name not in wanted]
            fresh: dict[str, ModelEntry] = {}   # new names: visible (LOADING) at once
            swaps: dict[str, ModelEntry] = {}   # new base path: old one serves meanwhile
            retuned: list[tuple[ModelEntry, Any]] = []  # same base path, new policy/labels
            for name, model in wanted.items():
                old = current.get(name)
                if old is not None and configs.same_model(old.config, model):
                    continue
                if old is not None and configs.same_source(old.config, model):
                    retuned.append((old, model))
                    continue
                # May raise (a bad s3:// URI): before anything has changed.
                entry = self._new_entry(model)
                (swaps if old is not None else fresh)[name] = entry
            for entry in removed:
                self._retire(entry)
            with self._lock:
                for entry in removed:
                    self._models.pop(entry.name, None)
                self._models.update(fresh)
            for entry, model in retuned:
                entry.update_config(model)
            touched = [entry for entry, _ in retuned]
            pending = [*fresh.values(), *swaps.values(), *touched]
            for future in [self._pool.submit(e.sync) for e in pending]:
                future.result()
            with self._lock:
                replaced = [self._models[n] for n in swaps if n in self._models]
                self._models.update(swaps)
            for entry in replaced:
                entry.unload_all()
            failed = [(e.name, s) for e in pending for s in e.failures()]
        if failed:
            parts = [f"{{name: {name} version: {s.version} due to error: "
                     f"{s.error.code_name if s.error else 'UNKNOWN'}: "
                     f"{s.error.message if s.error else ''}}}" for name, s in failed]
            raise Unknown(f"{len(failed)} model(s) did not become available: "
                          f"{{{', '.join(parts)}, }}")

    def _check_labels(self, wanted: dict[str, Any], current: dict[str, ModelEntry]) -> None:
        """TF Serving's rule: a label may only name a version AVAILABLE now. With
        --allow_version_labels_for_unavailable_models, also a label that is new or keeps
        its version (moving a label onto a version still loading would drop its traffic)."""
        for name, model in wanted.items():
            old = current.get(name)
            available = set(old.available_versions()) if old is not None else set()
            old_labels = dict(old.config.version_labels) if old is not None else {}
            for label, version in model.version_labels.items():
                if version in available:
                    continue
                if self._allow_unavailable_labels and old_labels.get(label, version) == version:
                    continue
                raise FailedPrecondition(
                    f"Request to assign label to version {version} of model {name}, "
                    "which is not currently available for inference")

    def _new_entry(self, model: Any) -> ModelEntry:
        source = open_source(model.name, model.base_path, self._cache_root)
        return ModelEntry(model, source, self._loader, self._on_load, self._memory.request)

    def _retire(self, entry: ModelEntry) -> None:
        entry.unload_all()
        with self._lock:
            self._retired[entry.name] = entry.states()
            self._retired.move_to_end(entry.name)
            while len(self._retired) > KEEP_RETIRED:
                self._retired.popitem(last=False)

    # -- background polling -------------------------------------------------------------------

    def poll_base_paths_once(self) -> None:
        with self._lock:
            entries = list(self._models.values())
        for future in [self._pool.submit(e.sync) for e in entries]:
            try:
                future.result()
            except Exception:
                log.exception("polling a base path failed")

    def start_polling(self, every_s: float, config_file: str | None = None,
                      config_every_s: float = 0.0) -> None:
        if every_s > 0:
            self._spawn("fs-poll", every_s, self.poll_base_paths_once)
        if config_file and config_every_s > 0:
            self._spawn("config-poll", config_every_s, ConfigFilePoller(self, config_file).check)

    def _spawn(self, name: str, every_s: float, fn: Callable[[], None]) -> None:
        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    fn()
                except Exception:
                    log.exception("%s failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        self._memory.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def is_available(states: list[VersionState]) -> bool:
    return any(s.state == AVAILABLE for s in states)


class ConfigFilePoller:
    """Re-reads --model_config_file. A changed text is applied; one refused (say, a label
    on a version still loading) is tried again at each poll, as TF Serving re-applies its
    config every poll, and logged once per distinct error."""

    def __init__(self, manager: ModelManager, path: str) -> None:
        self.manager = manager
        self.path = Path(path)
        self.applied = self.path.read_text()
        self._error: str | None = None

    def check(self) -> None:
        text = self.path.read_text()
        if text == self.applied:
            return
        try:
            self.manager.reload(configs.parse_text(text))
        except Unknown as exc:  # applied; some models did not load
            log.error("reloading %s: %s", self.path, exc.message)
        except TierserveError as exc:  # refused: nothing changed
            if exc.message != self._error:
                log.error("reloading %s: %s", self.path, exc.message)
            self._error = exc.message
            return
        self.applied, self._error = text, None
