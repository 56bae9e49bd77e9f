"""An in-memory runtime, a settable clock and a policy file writer for loop unit tests."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from base.errors import FailedPrecondition, Internal, NotFound
from orchestrator.runtime import Instance, InstanceSpec, Runtime

POLICY = """
store: /srv/models
interval: 1s
hot:
  max_models: {max_models}
  promote: {{min_rate: 5, window: 10s}}
  demote: {{max_rate: 1, window: 30s}}
  cooldown: {cooldown}s
  pinned: {pinned}
  drain: 2s
  start_timeout: 20s
  restart_backoff: {{initial: 4s, max: 30s}}
  container: {{image: {image}}}
"""


def policy_text(max_models: int = 2, cooldown: int = 60, pinned: str = "[]",
                image: str = "img:1") -> str:
    return POLICY.format(max_models=max_models, cooldown=cooldown, pinned=pinned, image=image)


def write_policy(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    # Each write gets a new mtime even on coarse-mtime filesystems.
    bump = getattr(write_policy, "_n", 0) + 1
    write_policy._n = bump  # type: ignore[attr-defined]
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeRuntime(Runtime):
    name: str = "fake"
    instances: dict[str, Instance] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)  # instance ids whose probe answers
    started: list[str] = field(default_factory=list)  # models, in start order
    stopped: list[str] = field(default_factory=list)
    fail_start: bool = False
    preparing: dict[str, int] = field(default_factory=dict)  # model -> passes until prepared
    fail_prepare: bool = False
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def list_instances(self) -> list[Instance]:
        return sorted(self.instances.values(), key=lambda i: i.id)

    def prepare(self, spec: InstanceSpec) -> bool:
        if self.fail_prepare:
            raise NotFound(f"{spec.model} is not in the store")
        left = self.preparing.get(spec.model, 0)
        if left:
            self.preparing[spec.model] = left - 1
        return left == 0

    def start(self, spec: InstanceSpec) -> Instance:
        if self.fail_start:
            raise Internal("image not found")
        n = next(self._ids)
        inst = Instance(spec.model, f"c{n}", f"http://127.0.0.1:{20000 + n}", True,
                        spec.hot_since, spec.policy_hash, "running")
        self.instances[inst.id] = inst
        self.started.append(spec.model)
        return inst

    def stop(self, instance: Instance, timeout: float = 10.0) -> None:
        if self.instances.pop(instance.id, None) is not None:
            self.stopped.append(instance.model)

    def crash(self, model: str) -> None:
        inst = self.of(model)
        self.instances[inst.id] = replace(inst, running=False, detail="exited (137)")
        self.ready.discard(inst.id)

    def of(self, model: str) -> Instance:
        (inst,) = [i for i in self.instances.values() if i.model == model]
        return inst

    def make_ready(self) -> None:
        self.ready |= {i.id for i in self.instances.values() if i.running}

    def probe(self, inst: Instance) -> bool:
        return inst.id in self.ready


@dataclass
class RollingRuntime(FakeRuntime):
    """Rolls a settings change in place as Swarm does: the old instance serves on until the
    replacement (same service, new task and endpoint) is up; `refuse_roll` as Swarm refusing
    the new spec."""

    rolled: list[str] = field(default_factory=list)
    refuse_roll: bool = False

    def roll(self, instance: Instance, spec: InstanceSpec) -> Instance | None:
        if self.refuse_roll:
            raise FailedPrecondition("Swarm refused the service: network nosuchnet not found")
        n = next(self._ids)
        new = Instance(spec.model, f"c{n}", f"http://127.0.0.1:{20000 + n}", True,
                       instance.hot_since, spec.policy_hash, "running")
        del self.instances[instance.id]
        self.instances[new.id] = new
        self.rolled.append(spec.model)
        return new
