"""Statistics artifacts: exact round trips of every slice key type, versions, refused merges."""

from __future__ import annotations

import datetime
import gzip
import json
import logging
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings

from daskloss import DataError, ErrorStats, ReadError
from daskloss.artifacts import (
    ARTIFACT_VERSION,
    PAIR_FIELDS,
    PREDICTION_FIELDS,
    SLICE_FIELDS,
    StatisticsArtifact,
    _key_of,
    _key_value,
    read_artifact,
    write_artifact,
)
from daskloss.chunks import Chunk
from daskloss.roles import EvaluationSpec
from daskloss.shape import ShapeAccumulator, ShapeSpec, ShapeStats
from daskloss.sources.plan import FileEntry
from daskloss.stats import EvaluationStats, PairStats
from tests.strategies import rows

SPEC = EvaluationSpec.of("y", ["p", "q"], "w", group_by="k")


def _stats(keys: pa.Array, spec: EvaluationSpec = SPEC, seed: int = 0) -> EvaluationStats:
    rng = np.random.default_rng(seed)
    n = len(keys)
    values = {name: rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n) for name in "ypq"}
    values["w"] = rng.random(n)
    chunk = Chunk(values, (("", n),), keys={"k": keys})
    return EvaluationStats.from_chunks([chunk], spec)


def _artifact(
    evaluation: EvaluationStats,
    *paths: str,
    nan_policy: str = "error",
    shape: ShapeStats | None = None,
):
    files = tuple(FileEntry(path, 100, "v1") for path in paths)
    return StatisticsArtifact(evaluation, nan_policy, files=files, datasets=("/d",), shape=shape)


#: Id columns of several types shown with the worst rows.
def _ids(n: int, offset: int = 0) -> dict[str, pa.Array]:
    rows = range(offset, offset + n)
    return {
        "name": pa.array([f"r{i}" if i % 7 else None for i in rows]),
        "day": pa.array([datetime.date(2026, 1, 1 + i % 28) for i in rows]),
        "number": pa.array(list(rows), pa.int64()),
        "at": pa.array(list(rows), pa.timestamp("ns", tz="UTC")),
    }


def _shaped(
    lo: int, hi: int, shape: ShapeSpec | None = None, seed: int = 4
) -> tuple[EvaluationStats, ShapeStats]:
    """The statistics and shape of rows ``lo:hi`` of one sliced, weighted, two-model dataset."""
    rng = np.random.default_rng(seed)
    n = 300
    values = {name: rng.normal(size=n) * 10.0 ** rng.integers(-5, 5, n) for name in "ypq"}
    values["w"] = rng.exponential(size=n) * 2.0 ** rng.integers(-40, 40, n)
    keys = pa.array(list("abcab") * 60)
    part = {name: column[lo:hi] for name, column in values.items()}
    ids = {name: column[lo:hi] for name, column in _ids(n).items()}
    chunk = Chunk(part, (("", hi - lo),), {"k": keys[lo:hi]}, ids)
    shape = shape or ShapeSpec.of(SPEC, histogram=True, worst_k=4, id_columns=list(ids))
    gathered = ShapeAccumulator(SPEC, shape)
    stats = EvaluationStats.from_chunks([chunk], SPEC, observe=gathered.add)
    return stats, gathered.result()


def _same_shape(found: ShapeStats, expected: ShapeStats) -> None:
    """Histograms (weights included) and worst rows (every value, of the same types) are equal."""
    assert found.predictions == expected.predictions
    for mine, theirs in zip(found.predictions, expected.predictions, strict=True):
        assert mine.histogram.weights == theirs.histogram.weights
        assert mine.worst.table.schema.equals(theirs.worst.table.schema)


def test_fields_cover_the_statistics():
    """The artifact's fields are exactly those of ErrorStats and PairStats: nothing is lost."""
    assert set(SLICE_FIELDS) | set(PREDICTION_FIELDS) == {f.name for f in fields(ErrorStats)}
    assert set(PAIR_FIELDS) == {f.name for f in fields(PairStats)}


@pytest.mark.parametrize(
    "keys",
    [
        pa.array(["a", "b", None, "a", "é"]),
        pa.array([3, -1, 3, None, 2**40]),
        pa.array([True, False, None, True, True]),
        pa.array([datetime.date(2026, 1, d) for d in (1, 2, 3, 1, 2)]),
        pa.array([datetime.datetime(2026, 1, 1, 0, 0, s, 7) for s in range(5)], pa.timestamp("us")),
        pa.array([1_000_000_000_000_000_001 + i for i in range(5)], pa.timestamp("ns")),
        pa.array([datetime.datetime(2026, 1, 1, h) for h in range(5)], pa.timestamp("s", "UTC")),
    ],
    ids=["string", "integer", "boolean", "date", "datetime", "timestamp-ns", "utc"],
)
def test_round_trip_is_exact_for_every_key_type(keys, tmp_path):
    """Written and read back, the statistics are equal, key types and order included."""
    evaluation = _stats(keys)
    path = str(tmp_path / "stats.json")
    write_artifact(_artifact(evaluation, "/d/a.parquet"), path)
    back = read_artifact(path).evaluation
    assert back.rows == evaluation.rows
    assert back.sorted_keys() == evaluation.sorted_keys()
    assert [type(v) for key in back.sorted_keys() for v in key] == [
        type(v) for key in evaluation.sorted_keys() for v in key
    ]


@settings(max_examples=40, deadline=None)
@given(rows(max_size=30))
def test_round_trip_is_exact_for_any_values(data):
    """Any sums (subnormal, huge, cancelling) come back to the last bit."""
    y_true, y_pred, weight = data
    spec = EvaluationSpec.of("y", "p", None if weight is None else "w")
    values = {"y": y_true, "p": y_pred} | ({} if weight is None else {"w": weight})
    evaluation = EvaluationStats.from_chunks([Chunk(values, (("", len(y_true)),))], spec)
    artifact = StatisticsArtifact(evaluation, "error")
    assert StatisticsArtifact.from_bytes(artifact.to_bytes(), "x").evaluation.rows == (
        evaluation.rows
    )


def test_gzip_by_name_and_bytes_reproducible(tmp_path):
    """A name ending in .gz writes gzip (the same bytes every time); both read back."""
    artifact = _artifact(_stats(pa.array(["a", "b"] * 50)), "/d/a.parquet")
    write_artifact(artifact, str(tmp_path / "a.json.gz"))
    write_artifact(artifact, str(tmp_path / "b.json.gz"))
    first = (tmp_path / "a.json.gz").read_bytes()
    assert first[:2] == b"\x1f\x8b" and first == (tmp_path / "b.json.gz").read_bytes()
    text = gzip.decompress(first)
    assert json.loads(text)["format"] == "daskloss-statistics"
    assert read_artifact(str(tmp_path / "a.json.gz")).evaluation.rows == artifact.evaluation.rows


def test_merge_equals_the_statistics_of_all_rows():
    """Merging artifacts of disjoint rows gives exactly the statistics of all of them."""
    rng = np.random.default_rng(3)
    values = {name: rng.normal(size=200) for name in ("y", "p", "q")}
    values["w"] = rng.random(200)
    keys = pa.array(list("abcab") * 40)
    whole = EvaluationStats.from_chunks([Chunk(values, (("", 200),), {"k": keys})], SPEC)
    parts = [
        EvaluationStats.from_chunks(
            [Chunk({n: v[lo:hi] for n, v in values.items()}, (("", hi - lo),), {"k": keys[lo:hi]})],
            SPEC,
        )
        for lo, hi in [(0, 90), (90, 200)]
    ]
    merged = StatisticsArtifact.merge_all(
        [_artifact(parts[1], "/d/b"), _artifact(parts[0], "/d/a")], ["B", "A"]
    )
    assert merged.evaluation.rows == whole.rows
    assert [e.path for e in merged.files] == ["/d/a", "/d/b"]


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (EvaluationSpec.of("y", ["p", "q"], None, group_by="k"), "different column roles"),
        (EvaluationSpec.of("y", ["p", "q"], "w", group_by="j"), "different slices"),
        (
            EvaluationSpec.of("y", ["p", "q"], "w", group_by="k", baseline="q"),
            "different baselines",
        ),
    ],
)
def test_merge_refuses_different_evaluations(other, message):
    """Artifacts of other column roles, slices or baselines are refused, naming both."""
    renamed = {"j": pa.array(["a", "b"])} if other.group_by == ("j",) else None
    keys = pa.array(["a", "b"])
    mine = _artifact(_stats(keys), "/d/a")
    n = len(keys)
    values = {name: np.ones(n) for name in ("y", "p", "q", "w")}
    chunk = Chunk(values, (("", n),), keys=renamed or {"k": keys})
    theirs = _artifact(EvaluationStats.from_chunks([chunk], other), "/d/b")
    with pytest.raises(DataError, match=f"A and B have {message}"):
        StatisticsArtifact.merge_all([mine, theirs], ["A", "B"])


def test_merge_refuses_other_nan_policy_key_types_and_shared_files():
    """Another NaN policy, slice keys of another type, or a shared file is refused."""
    strings = _artifact(_stats(pa.array(["1", "2"])), "/d/a")
    with pytest.raises(DataError, match="different NaN policies"):
        StatisticsArtifact.merge_all(
            [strings, _artifact(_stats(pa.array(["3"])), "/d/b", nan_policy="skip")], ["A", "B"]
        )
    with pytest.raises(DataError, match="'k' holds string values in A but integer values in B"):
        StatisticsArtifact.merge_all(
            [strings, _artifact(_stats(pa.array([1])), "/d/b")], ["A", "B"]
        )
    with pytest.raises(DataError, match=r"both hold the statistics of /d/a; .* rows twice"):
        StatisticsArtifact.merge_all([strings, strings], ["A", "B"])


def test_reading_refuses_other_versions_and_other_files(tmp_path):
    """Another version, another kind of JSON, garbage or a missing file is a clear error."""
    data = _artifact(_stats(pa.array(["a"])), "/d/a").to_json()
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "version": ARTIFACT_VERSION + 1}))
    with pytest.raises(
        DataError,
        match=rf"version {ARTIFACT_VERSION + 1}; this daskloss .* reads versions 1 and 2 only",
    ):
        read_artifact(str(newer))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"report_version": 3}))
    with pytest.raises(DataError, match="is not a daskloss statistics artifact"):
        read_artifact(str(report))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**data, "slices": [[[], ["x"], [], []]]}))
    with pytest.raises(DataError, match="does not hold readable statistics"):
        read_artifact(str(broken))
    (tmp_path / "cut.json.gz").write_bytes(gzip.compress(b"{}" * 100)[:20])
    with pytest.raises(DataError, match="truncated"):
        read_artifact(str(tmp_path / "cut.json.gz"))
    with pytest.raises(ReadError, match="cannot read statistics"):
        read_artifact(str(tmp_path / "missing.json"))


def test_timestamps_keep_their_type_for_the_report_order():
    """A pandas Timestamp key is read back as one, a datetime as a datetime."""
    stamp, moment = pd.Timestamp("2026-01-01 00:00:00.000000001"), datetime.datetime(2026, 1, 1)

    assert type(_key_of(_key_value(stamp))) is pd.Timestamp
    assert _key_of(_key_value(stamp)) == stamp
    assert type(_key_of(_key_value(moment))) is datetime.datetime
    with pytest.raises(DataError, match="cannot save a slice key of type"):
        _key_value(object())


def test_round_trip_keeps_the_shape_of_the_errors(tmp_path):
    """Histograms and worst rows (ids of several types, slices, two weighted predictions)
    and their settings are read back exactly, compressed or not."""
    evaluation, shape = _shaped(0, 300)
    artifact = _artifact(evaluation, "/d/a", shape=shape)
    data = artifact.to_json()
    assert data["version"] == ARTIFACT_VERSION == 2
    assert {key: data["shape"][key] for key in ("histogram", "worst_k", "id_columns")} == {
        "histogram": True,
        "worst_k": 4,
        "id_columns": ["name", "day", "number", "at"],
    }
    for name in ("s.json", "s.json.gz"):
        write_artifact(artifact, str(tmp_path / name))
        back = read_artifact(str(tmp_path / name))
        assert back.evaluation.rows == evaluation.rows
        _same_shape(back.shape, shape)
        for mine, theirs in zip(back.shape.predictions, shape.predictions, strict=True):
            assert mine.worst.table.equals(theirs.worst.table)
        assert back.shape.settings() == shape.settings()
        assert (
            back.shape.predictions[0].worst.rows(("a",))[0]["day"]
            == (shape.predictions[0].worst.rows(("a",))[0]["day"])
        )
    assert _artifact(evaluation, "/d/a").to_json()["shape"] is None


def test_version_1_is_read_without_a_shape(tmp_path):
    """An artifact of version 1 (no ``shape`` key) is read: its statistics, no shape."""
    evaluation = _stats(pa.array(["a", "b", "a"]))
    data = _artifact(evaluation, "/d/a").to_json()
    del data["shape"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**data, "version": 1}))
    back = read_artifact(str(older))
    assert back.evaluation.rows == evaluation.rows and back.shape is None


def test_reading_refuses_a_malformed_shape(tmp_path):
    """A shape that is not what was written for the spec is one clear error."""
    evaluation, shape = _shaped(0, 50)
    data = _artifact(evaluation, "/d/a", shape=shape).to_json()
    for broken in (
        {**data["shape"], "worst_k": 5},
        {**data["shape"], "histogram": "yes"},
        {**data["shape"], "predictions": data["shape"]["predictions"][:1]},
        [],
    ):
        path = tmp_path / "broken.json"
        path.write_text(json.dumps({**data, "shape": broken}))
        with pytest.raises(DataError, match="does not hold a readable shape of the errors"):
            read_artifact(str(path))
    del data["shape"]
    (tmp_path / "missing.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="is not a readable statistics artifact"):
        read_artifact(str(tmp_path / "missing.json"))


def test_merge_merges_shapes_exactly():
    """Shapes of disjoint rows merge to the shape of all of them, in any order."""
    whole, whole_shape = _shaped(0, 300)
    parts = [_shaped(lo, hi) for lo, hi in [(0, 120), (120, 130), (130, 300)]]
    artifacts = [_artifact(stats, f"/d/{i}", shape=shape) for i, (stats, shape) in enumerate(parts)]
    for order in ([0, 1, 2], [2, 0, 1]):
        merged = StatisticsArtifact.merge_all(
            [artifacts[i] for i in order], [str(i) for i in order]
        )
        assert merged.evaluation.rows == whole.rows
        _same_shape(merged.shape, whole_shape)


def _text_numbers(shape: ShapeStats) -> ShapeStats:
    """The shape with its worst rows' ``number`` ids as text (an id of another type)."""
    sides = []
    for side in shape.predictions:
        table = side.worst.table
        index = table.schema.get_field_index("id:number")
        table = table.set_column(index, "id:number", pc.cast(table["id:number"], pa.string()))
        sides.append(replace(side, worst=replace(side.worst, table=table)))
    return ShapeStats(tuple(sides))


def test_merge_without_a_common_shape_keeps_the_metrics(caplog):
    """Shapes of other settings, a part without one, or worst rows whose ids are of other
    types: merged without a shape, said at INFO."""
    (a, shape_a), (b, shape_b) = _shaped(0, 150), _shaped(150, 300)
    other = ShapeSpec.of(SPEC, histogram=True, worst_k=3, id_columns=["number"])
    _, shape_other = _shaped(150, 300, other)
    whole, _ = _shaped(0, 300)
    first = _artifact(a, "/d/a", shape=shape_a)
    cases = [
        (_artifact(b, "/d/b", shape=shape_other), "gathered with other settings"),
        (_artifact(b, "/d/b"), "B gathered none"),
        (_artifact(b, "/d/b", shape=_text_numbers(shape_b)), "their worst rows do not merge"),
    ]
    for second, reason in cases:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="daskloss.artifacts"):
            merged = StatisticsArtifact.merge_all([first, second], ["A", "B"])
        assert merged.shape is None and merged.evaluation.rows == whole.rows
        (record,) = caplog.records
        assert record.levelno == logging.INFO and reason in record.getMessage()
        assert "merged exactly all the same" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="daskloss.artifacts"):
        both = StatisticsArtifact.merge_all([first, _artifact(b, "/d/b", shape=shape_b)], "AB")
    assert both.shape is not None and not caplog.records
