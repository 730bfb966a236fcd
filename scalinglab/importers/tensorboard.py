"""Runs from TensorBoard event files, read with TensorBoard's own ``EventAccumulator``.

Each folder holding ``events.out.tfevents.*`` files is one run, named by its
path below the folder given. A sub-folder that holds hyperparameters (the
layout of ``SummaryWriter.add_hparams``) belongs to its parent run. Fields:
every scalar tag (its value at the last step; ``train/loss``, ``val/loss``
...) and ``hparams.<name>``. Scalars written as tensors (TF2's
``tf.summary.scalar``) are read too. Every scalar tag has a history, so a
training-loss tag becomes the run's curve (x = the logged step).
"""

from __future__ import annotations

from pathlib import Path

from scalinglab.errors import DataError
from scalinglab.importers.common import ImportMapping, Records, SourceRun, build_records, require_library

EVENT_GLOB = "events.out.tfevents*"


def read_tensorboard(path: str | Path, *, mapping: ImportMapping | None = None) -> Records:
    """``(config, result)`` records of the runs under a TensorBoard log folder (or one event file)."""
    require_library("tensorboard", "TensorBoard event files")
    root = Path(path)
    if not root.exists():
        raise DataError(f"no TensorBoard log at {root}; pass the folder given to SummaryWriter(log_dir=...)")
    if root.is_file():
        if not root.name.startswith("events.out.tfevents"):
            raise DataError(f"{root} is not a TensorBoard event file (events.out.tfevents.*); pass its folder")
        folders, root = {root.parent: _load(root)}, root.parent
    else:
        dirs = sorted({p.parent for p in root.rglob(EVENT_GLOB) if p.is_file()})
        if not dirs:
            raise DataError(f"no TensorBoard event files (events.out.tfevents.*) under {root}; pass the log folder")
        folders = {d: _load(d) for d in dirs}
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):   # hparams sub-folders join their parent
        scalars, hparams, times = folders[d]
        if hparams and d.parent in folders and d != root:
            parent = folders[d.parent]
            parent[1].update(hparams)
            for tag, points in scalars.items():
                parent[0].setdefault(tag, points)
            parent[2].extend(times)
            del folders[d]
    runs = []
    for d, (scalars, hparams, times) in folders.items():
        name = d.relative_to(root).as_posix() if d != root else d.name
        fields = {f"hparams.{k}": v for k, v in hparams.items()}
        fields.update({tag: points[-1][1] for tag, points in scalars.items() if points})
        runs.append(SourceRun(source_id=str(d.resolve()), name=name, fields=fields, series=set(scalars),
                              history=lambda tag, s=scalars: s.get(tag, []),
                              wall_s=max(times) - min(times) if times else None))
    return build_records(runs, mapping, source="tensorboard", description=f"TensorBoard log {root}")


def _load(path: Path) -> tuple[dict[str, list[tuple[float, float]]], dict, list[float]]:
    """(scalar histories by tag, hyperparameters, event wall times) of one folder or event file."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(path), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    try:
        acc.Reload()
    except Exception as exc:  # a truncated or foreign file: TensorBoard raises its own error types
        raise DataError(f"cannot read TensorBoard events in {path} ({type(exc).__name__}: {exc})") from None
    tags = acc.Tags()
    scalars, times = {}, []
    for tag in tags.get(ea.SCALARS, []):
        events = acc.Scalars(tag)
        scalars[tag] = _by_step((e.step, e.value) for e in events)
        times += [e.wall_time for e in events]
    for tag in tags.get(ea.TENSORS, []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        events = acc.Tensors(tag)
        scalars[tag] = _by_step((e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events)
        times += [e.wall_time for e in events]
    hparams = {}
    try:
        content = acc.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    except KeyError:        # no hyperparameters in this folder
        content = {}
    if hp_metadata.SESSION_START_INFO_TAG in content:
        info = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
        for key, value in info.hparams.items():
            kind = value.WhichOneof("kind")
            if kind is not None:
                hparams[key] = getattr(value, kind)
    return scalars, hparams, times


def _by_step(points) -> list[tuple[float, float]]:
    """Points sorted by step; a step logged twice (a resumed run) keeps its last value."""
    return sorted(dict(points).items())
