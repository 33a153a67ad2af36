"""The Python door: each command of the command line as one function, taking the same `key=value`
overrides and returning the library's result objects instead of printing them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supernet.config import compose_config, space_from_config


def train_supernet(run_dir: str | Path, overrides: Sequence[str] = (), *, resume: bool = False):
    """`supernet train`: train a supernet into `run_dir` (or continue it); returns a `TrainResult`."""
    from supernet.run.directory import config_for_resume, require_new_run_dir
    from supernet.train.loop import train as run_training

    run_dir = Path(run_dir)
    if resume:
        cfg = config_for_resume(run_dir, list(overrides))
    else:
        require_new_run_dir(run_dir)
        cfg = compose_config("train", list(overrides))
    return run_training(cfg, run_dir, resume=resume, overrides=list(overrides))


def build_table(target: str = "cpu", overrides: Sequence[str] = (), *, out: str | Path | None = None,
                runtime: str | None = None):
    """`supernet lut build`: measure a latency table on this machine; returns the `LatencyTable`."""
    from supernet.latency import (
        Measurer,
        cached_table_path,
        graph_cache,
        latency_config,
        require_target,
        restrict_resolutions,
    )
    from supernet.latency import (
        build_table as build,
    )

    require_target(target)
    extra = [f"target={target}"] + ([f"runtime={runtime}"] if runtime else [])
    cfg = compose_config("lut", [*overrides, *extra])
    settings = latency_config(cfg)
    space = restrict_resolutions(space_from_config(cfg), settings.resolutions)
    with Measurer(settings, graph_dir=graph_cache(settings)) as measurer:
        return build(space, measurer, Path(out) if out else cached_table_path(space, measurer))


def search_fronts(run_dir: str | Path, overrides: Sequence[str] = (), *, target: str | None = None,
           luts: Sequence[str | Path] = (), devices: str | Path | None = None, restart: bool = False,
           console: Any = None) -> list:
    """`supernet search`: one Pareto front per device (a target, latency tables, or a devices file);
    returns one `SearchResult` per device."""
    from supernet.run.directory import read_run_config
    from supernet.search import SearchSettings
    from supernet.search.devices import entries_from_options, read_devices_file, resolve_devices
    from supernet.search.many import search_devices

    settings = SearchSettings.from_config(compose_config("search", list(overrides)))
    entries = read_devices_file(Path(devices)) if devices is not None else \
        entries_from_options(target, [Path(p) for p in luts])
    space = space_from_config(read_run_config(Path(run_dir)))
    chosen = resolve_devices(space, entries, settings.latency)
    return search_devices(run_dir, chosen, settings, restart=restart, console=console)


def export_model(run_dir: str | Path, **request: Any):
    """`supernet export`: write one child as standalone, self-checked files; `request` takes the fields of
    `ExportRequest` (arch, pick, max_latency_ms, device, target, out, formats, fold_bn, lut, ...)."""
    from supernet.export import ExportRequest, export_child, parse_formats

    if isinstance(request.get("formats"), str):
        request["formats"] = parse_formats(request["formats"])
    return export_child(ExportRequest(run_dir=Path(run_dir), **request))
