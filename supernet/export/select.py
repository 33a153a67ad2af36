"""Which child to export: an explicit arch string, an entry of a search's Pareto front, or a latency budget.

The front is read from `RUN_DIR/search/<device>/pareto.json` (written by `supernet search`; a device is
named after its target, its table's runtime, or in a devices file), a list of entries sorted by
predicted latency, fastest first. Every arch that comes out of here has been validated
against the run's search space, so a front from another run fails with the field that does not fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.export.errors import SelectionError
from supernet.space import Arch, ArchError, SearchSpace

TARGETS = ("cpu", "gpu")
REQUIRED_ENTRY_KEYS = ("arch", "accuracy", "latency_ms")


@dataclass(frozen=True)
class Selection:
    """The chosen child and where it came from (recorded in card.json)."""

    arch: Arch
    how: str  # "arch" | "pick" | "max_latency"
    pareto_path: Path | None = None
    index: int | None = None
    entry: dict[str, Any] | None = field(default=None, compare=False)
    target: str | None = None  # the target (cpu | gpu) the front was searched for
    device: str | None = None  # the searched device's name: its folder under RUN_DIR/search/
    lut: str | None = None  # the latency table the front's predictions came from

    @property
    def predicted_latency_ms(self) -> float | None:
        value = (self.entry or {}).get("latency_ms")
        return float(value) if value is not None else None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"how": self.how}
        if self.pareto_path is not None:
            out["pareto"] = str(self.pareto_path)
            out["index"] = self.index
            out["target"] = self.target
            out["device"] = self.device
            out["lut"] = self.lut
            out["entry"] = self.entry
        return out


@dataclass(frozen=True)
class ParetoFront:
    path: Path
    target: str | None
    entries: list[dict[str, Any]]
    lut: str | None = None
    device: str | None = None


def select_arch(space: SearchSpace, run_dir: Path, *, arch: str | None = None, pick: str | None = None,
                max_latency_ms: float | None = None, target: str | None = None,
                search_dir: Path | None = None, device: str | None = None) -> Selection:
    """Resolve exactly one of `arch` / `pick` / `max_latency_ms` to a validated child of `space`, from
    the front of `device` (else of `target`)."""
    options = (("--arch", arch), ("--pick", pick), ("--max-latency-ms", max_latency_ms))
    given = [name for name, value in options if value is not None]
    if len(given) != 1:
        raise SelectionError("choose the child with exactly one of --arch STRING, --pick N|best or "
                             f"--max-latency-ms X --target cpu|gpu (got {', '.join(given) or 'none'})")
    if target is not None and target not in TARGETS:
        raise SelectionError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
    if arch is not None:
        return Selection(space.parse(arch), "arch")
    if max_latency_ms is not None and target is None and device is None and search_dir is None:
        raise SelectionError("--max-latency-ms needs --target cpu|gpu or --device NAME: latencies are per "
                             "device")
    front = load_front(run_dir, target, search_dir, device)
    index = _pick_index(pick, front) if pick is not None else _within_budget(front, float(max_latency_ms))
    return Selection(_entry_arch(space, front, index), "pick" if pick is not None else "max_latency",
                     front.path, index, front.entries[index], target=front.target, lut=front.lut,
                     device=front.device)


def find_pareto(run_dir: Path, target: str | None, search_dir: Path | None, device: str | None = None
                ) -> Path:
    """The pareto.json to read: from --search-dir, from the run's search/<device or target>/, or the run's
    only one."""
    if search_dir is not None:
        path = search_dir if search_dir.suffix == ".json" else search_dir / "pareto.json"
        if not path.is_file():
            raise SelectionError(f"no pareto.json at {path}; `supernet search` writes it into "
                                 "RUN_DIR/search/<target>/")
        return path
    if device is None and target is not None and not (run_dir / "search" / target / "pareto.json").is_file():
        # A device searched from --target is named <target>-<runtime>: one such front is the target's.
        of_target = sorted(p.parent.name for p in (run_dir / "search").glob(f"{target}-*/pareto.json"))
        if len(of_target) > 1:
            raise SelectionError(f"{run_dir} has fronts of several {target} devices "
                                 f"({', '.join(of_target)}); say which with --device NAME")
        device = of_target[0] if of_target else None
    if device is not None or target is not None:
        path = run_dir / "search" / (device or target) / "pareto.json"
        if not path.is_file():
            searched = sorted(p.parent.name for p in (run_dir / "search").glob("*/pareto.json"))
            hint = f" (searched: {', '.join(searched)})" if searched else ""
            how = f"--target {target}" if device is None else "--devices FILE (or --lut FILE)"
            raise SelectionError(f"no pareto.json at {path}{hint}: run `supernet search {run_dir} {how}` "
                                 "first, or pass --search-dir DIR")
        return path
    found = sorted((run_dir / "search").glob("*/pareto.json"))
    if not found:
        raise SelectionError(f"no pareto.json under {run_dir / 'search'}: run `supernet search {run_dir} "
                             "--target cpu|gpu` first, or pass --arch STRING")
    if len(found) > 1:
        targets = ", ".join(p.parent.name for p in found)
        raise SelectionError(f"{run_dir} has searches for several targets ({targets}); "
                             "say which with --device NAME (or --target)")
    return found[0]


def load_front(run_dir: Path, target: str | None, search_dir: Path | None = None,
               device: str | None = None) -> ParetoFront:
    path = find_pareto(run_dir, target, search_dir, device)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SelectionError(f"{path} cannot be read as JSON ({err})") from err
    entries = data.get("front") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SelectionError(f"{path} has no entries in 'front'; re-run `supernet search`")
    for i, entry in enumerate(entries):
        missing = [k for k in REQUIRED_ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise SelectionError(f"{path}: front entry {i} lacks {', '.join(missing)}")
    front_target = data.get("target")
    if target is not None and front_target is not None and front_target != target:
        raise SelectionError(f"{path} is a front for target {front_target!r}, not --target {target!r}")
    return ParetoFront(path, front_target or target, entries, data.get("lut"),
                       data.get("device") or path.parent.name)


def _pick_index(pick: str, front: ParetoFront) -> int:
    size = len(front.entries)
    if pick.strip().lower() == "best":
        # Most accurate; among equals the faster one (the front is sorted by latency, so the first).
        return max(range(size), key=lambda i: (float(front.entries[i]["accuracy"]), -i))
    try:
        index = int(pick)
    except ValueError:
        raise SelectionError(f"--pick {pick!r} is neither an index (0..{size - 1}) nor 'best'") from None
    if not 0 <= index < size:
        raise SelectionError(f"--pick {index} is out of range: the front in {front.path} has {size} entries "
                             f"(0..{size - 1})")
    return index


def _within_budget(front: ParetoFront, budget_ms: float) -> int:
    fitting = [i for i, e in enumerate(front.entries) if float(e["latency_ms"]) <= budget_ms]
    if not fitting:
        fastest = min(float(e["latency_ms"]) for e in front.entries)
        raise SelectionError(f"no child on the {front.device} front in {front.path} meets --max-latency-ms "
                             f"{budget_ms:g}: the fastest is predicted at {fastest:.4g} ms")
    # Most accurate within the budget; among equals the faster one.
    entries = front.entries
    return max(fitting, key=lambda i: (float(entries[i]["accuracy"]), -float(entries[i]["latency_ms"])))


def _entry_arch(space: SearchSpace, front: ParetoFront, index: int) -> Arch:
    text = front.entries[index]["arch"]
    if not isinstance(text, str):
        raise SelectionError(f"{front.path}: front entry {index} 'arch' is not a string")
    try:
        return space.parse(text)
    except ArchError as err:
        raise SelectionError(f"{front.path}: front entry {index} is not a child of this run's space: {err}"
                             ) from err
