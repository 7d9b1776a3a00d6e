"""Files on storage: listing, formats, pieces and batches, and every bad file named."""

from __future__ import annotations

import itertools
import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import daskloss
from daskloss import DataError, EmptyDatasetError, NonFiniteValueError, ReadError, SchemaError
from daskloss.sources.files import plan_files
from tests.helpers import EXPECTED, EXPECTED_WEIGHTED, FRAME, write_parquet
from tests.reference import assert_bit_identical, reference_metrics


def test_parquet_directory(tmp_path):
    """A directory of Parquet files is read file by file, one partition each."""
    write_parquet(tmp_path / "ds", FRAME, 5)
    (tmp_path / "ds" / "_SUCCESS").write_text("")
    result = daskloss.evaluate(tmp_path / "ds", weight="w")
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)
    assert len(result.files) == 5 and result.npartitions == 5


def test_hive_partitioned_directory(tmp_path):
    """A hive-partitioned tree (segment=a/...) is found recursively."""
    FRAME.to_parquet(tmp_path / "hive", partition_cols=["segment"], index=False)
    result = daskloss.evaluate(str(tmp_path / "hive"))
    assert_bit_identical(result.metrics, EXPECTED)
    assert len(result.files) == 3


def test_glob_and_file_list(tmp_path):
    """A glob and an explicit list of files select exactly those files."""
    paths = write_parquet(tmp_path, FRAME, 4)
    sub = pd.concat([pd.read_parquet(p) for p in paths[:2]])
    by_glob = daskloss.evaluate(str(tmp_path / "part-000[01].parquet"))
    by_list = daskloss.evaluate([str(p) for p in paths[:2]])
    expected = reference_metrics(sub.y_true, sub.y_pred)
    assert_bit_identical(by_glob.metrics, expected)
    assert_bit_identical(by_list.metrics, expected)


def test_csv_files(tmp_path):
    """CSV files give the same bits as the float64 values they spell."""
    bounds = [0, 1000, 1001, 3000]
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        FRAME.iloc[lo:hi].to_csv(tmp_path / f"p{i}.csv", index=False, float_format="%.17g")
    result = daskloss.evaluate(tmp_path, weight="w")
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


def test_only_needed_columns_are_read(tmp_path):
    """A column daskloss does not need may hold anything, even a nested type."""
    table = pa.table(
        {
            "y_true": [1.0, 2.0],
            "y_pred": [1.5, 2.0],
            "junk": pa.array([[1, 2], [3]], type=pa.list_(pa.int64())),
        }
    )
    pq.write_table(table, tmp_path / "a.parquet")
    assert daskloss.evaluate(tmp_path).metrics["se"] == 0.25


def test_parquet_nulls_count_as_nan(tmp_path):
    """Null values in Parquet are refused like NaN, naming the file."""
    pq.write_table(pa.table({"y_true": [1.0, None], "y_pred": [1.0, 2.0]}), tmp_path / "n.parquet")
    with pytest.raises(NonFiniteValueError, match=r"n\.parquet.*1 in 'y_true'"):
        daskloss.evaluate(tmp_path)


def test_missing_column_names_file_and_columns(tmp_path):
    """A missing column is named with the file and the columns it has."""
    write_parquet(tmp_path, FRAME, 2)
    with pytest.raises(
        SchemaError, match=r"\['pred'\] not found in .*part-0000\.parquet.*'y_pred'"
    ):
        daskloss.evaluate(tmp_path, y_pred="pred")


def test_non_numeric_column(tmp_path):
    """A string column is refused with its name, file and type."""
    write_parquet(tmp_path, FRAME, 2)
    with pytest.raises(SchemaError, match=r"'segment' in .*part-0000\.parquet has type"):
        daskloss.evaluate(tmp_path, y_pred="segment")


def test_type_differs_across_files(tmp_path):
    """A file whose column type differs from the first file's is named."""
    write_parquet(tmp_path, FRAME, 3)
    odd = FRAME.iloc[:10].assign(y_true=np.arange(10, dtype=np.int32))
    odd.to_parquet(tmp_path / "part-0009.parquet", index=False)
    with pytest.raises(
        SchemaError, match=r"'y_true' in .*part-0009\.parquet has type int32.*double"
    ):
        daskloss.evaluate(tmp_path)


def _spoil_missing_column(path):
    FRAME.iloc[:10].drop(columns="y_pred").to_parquet(path, index=False)


def _spoil_type(path):
    FRAME.iloc[:10].assign(y_true=np.arange(10, dtype=np.int32)).to_parquet(path, index=False)


def _spoil_truncate(path):
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize(
    ("spoil", "error", "message"),
    [
        (_spoil_missing_column, SchemaError, r"\['y_pred'\] not found in .*part-0005\.parquet"),
        (_spoil_type, SchemaError, r"'y_true' in .*part-0005\.parquet has type int32.*double"),
        (_spoil_truncate, ReadError, r"part-0005\.parquet.*truncated or corrupt"),
    ],
)
def test_bad_file_among_batched_small_files_is_named(tmp_path, monkeypatch, spoil, error, message):
    """Small files read together in one task still name the bad one."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 2)
    paths = write_parquet(tmp_path, FRAME, 8)
    assert len(plan_files(tmp_path, ["y_true", "y_pred"]).units) == 2
    spoil(paths[5])
    with pytest.raises(error, match=message):
        daskloss.evaluate(tmp_path)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("y_true,y_pred\n1,2\n3,oops\n", r"b\.csv.*not a number"),
        ("y_true,y_pred,y_pred\n1,2,1\n", r"b\.csv has more than one column named \['y_pred'\]"),
    ],
    ids=["word-in-a-number-column", "needed-column-twice"],
)
def test_bad_csv_is_a_schema_error_naming_it(tmp_path, bad, message):
    """A word in a number column, or a needed column named twice, is a SchemaError naming it."""
    (tmp_path / "a.csv").write_text("y_true,y_pred\n1,2\n3,4\n")
    (tmp_path / "b.csv").write_text(bad)
    with pytest.raises(SchemaError, match=message):
        daskloss.evaluate(tmp_path)


def test_truncated_parquet_file(tmp_path):
    """A truncated file in the middle of a dataset is a ReadError naming it."""
    paths = write_parquet(tmp_path, FRAME, 3)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError, match=r"part-0001\.parquet.*truncated or corrupt"):
        daskloss.evaluate(tmp_path)


def test_garbage_file(tmp_path):
    """A file that is not Parquet at all is a ReadError naming it."""
    write_parquet(tmp_path, FRAME, 2)
    (tmp_path / "part-0005.parquet").write_bytes(b"not parquet at all" * 10)
    with pytest.raises(ReadError, match=r"part-0005\.parquet"):
        daskloss.evaluate(tmp_path)


def test_empty_directory(tmp_path):
    """A directory without data files is an EmptyDatasetError."""
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(EmptyDatasetError, match="no data files"):
        daskloss.evaluate(tmp_path)


def test_missing_path(tmp_path):
    """A path that does not exist is an EmptyDatasetError naming it."""
    with pytest.raises(EmptyDatasetError, match="nowhere"):
        daskloss.evaluate(tmp_path / "nowhere")


def test_zero_row_files(tmp_path):
    """Files that hold no rows at all give an EmptyDatasetError."""
    write_parquet(tmp_path, FRAME.iloc[:0], 2)
    with pytest.raises(EmptyDatasetError, match="no rows"):
        daskloss.evaluate(tmp_path)


def test_zero_row_file_among_others(tmp_path):
    """A zero-row file among others contributes nothing."""
    write_parquet(tmp_path, FRAME, 2)
    FRAME.iloc[:0].to_parquet(tmp_path / "part-0003.parquet", index=False)
    assert_bit_identical(daskloss.evaluate(tmp_path).metrics, EXPECTED)


def test_large_file_is_split_between_row_groups(tmp_path, monkeypatch):
    """A file larger than a piece becomes several partitions, same bits."""
    monkeypatch.setattr("daskloss.sources.files.PIECE_BYTES", 16_000)
    FRAME.to_parquet(tmp_path / "big.parquet", index=False, row_group_size=250)
    result = daskloss.evaluate(tmp_path, weight="w")
    assert result.npartitions > 1 and len(result.files) == 1
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


def test_piece_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    """A partition larger than a worker thread's memory is a clear error, not an OOM kill."""
    monkeypatch.setattr("daskloss.sources.reader.memory_budget", lambda: 10_000)
    FRAME.to_parquet(tmp_path / "one-group.parquet", index=False)
    with pytest.raises(DataError, match=r"one-group\.parquet needs about .* repartition"):
        daskloss.evaluate(tmp_path)


def test_small_files_read_together_must_fit_together(tmp_path, monkeypatch):
    """Small files joined in one task are held at once: their sum is checked, not each alone."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    write_parquet(tmp_path, FRAME, 8)
    one_file = len(FRAME) // 8 * 8 * 2 + 64
    monkeypatch.setattr("daskloss.sources.reader.memory_budget", lambda: 3 * one_file)
    with pytest.raises(DataError, match=r"part-000[3-7]\.parquet needs about .* repartition"):
        daskloss.evaluate(tmp_path)
    monkeypatch.setattr("daskloss.sources.reader.memory_budget", lambda: 100 * one_file)
    assert_bit_identical(daskloss.evaluate(tmp_path).metrics, EXPECTED)


def test_memory_budget_follows_the_worker_limit(tmp_path):
    """On a Dask worker the budget comes from its memory_limit."""
    distributed = pytest.importorskip("distributed")
    import dask

    FRAME.to_parquet(tmp_path / "one-group.parquet", index=False)
    no_pausing = {
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    }
    with (
        dask.config.set(no_pausing),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            memory_limit=40_000,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
        pytest.raises(DataError, match="MiB a worker thread can spare"),
    ):
        daskloss.evaluate(tmp_path)


def test_small_files_are_batched_with_the_same_bits(tmp_path, monkeypatch):
    """Many small files read a few per task give the same bits; bad values still name the file."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 4)
    write_parquet(tmp_path, FRAME, 40)
    result = daskloss.evaluate(tmp_path, weight="w")
    assert result.npartitions == 4 and len(result.files) == 40
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)
    FRAME.iloc[:5].assign(y_pred=np.nan).to_parquet(tmp_path / "part-0017.parquet", index=False)
    with pytest.raises(NonFiniteValueError, match=r"part-0017\.parquet: 5 in 'y_pred'"):
        daskloss.evaluate(tmp_path, weight="w")


def test_dataset_read_by_dask_gives_the_same_bits(tmp_path):
    """The files read by dask.dataframe.read_parquet, evaluated as a Dask DataFrame: same bits."""
    write_parquet(tmp_path, FRAME, 3)
    frame = dd.read_parquet(tmp_path, columns=["y_true", "y_pred", "w"])
    assert_bit_identical(daskloss.evaluate(frame, weight="w").metrics, EXPECTED_WEIGHTED)


def test_page_checksums_are_verified(tmp_path):
    """A flipped bit in a Parquet page written with a checksum is a ReadError, not a number."""
    frame = pd.DataFrame({"y_true": np.arange(100) + 0.5, "y_pred": np.zeros(100)})
    path = tmp_path / "a.parquet"
    frame.to_parquet(
        path, index=False, compression="none", use_dictionary=False, write_page_checksum=True
    )
    data = bytearray(path.read_bytes())
    at = bytes(data).index(np.float64(50.5).tobytes())  # in the page, not its min/max
    data[at + 5] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ReadError, match=r"a\.parquet.*CRC checksum"):
        daskloss.evaluate(path)


@pytest.mark.parametrize("prefix", ["a", "z"], ids=["first-file", "later-file"])
@pytest.mark.parametrize(
    "suffix, content",
    [
        (".csv", b""),
        (".csv", b"y_true,y_pred\n1,2\n3\n"),
        (".csv", b"y_true,y_pr\xe9d,y_pred\n1,2,3\n"),
        (".csv.gz", b"not gzip"),
    ],
    ids=["empty", "ragged", "not-utf8", "bad-gzip"],
)
def test_unreadable_csv_is_a_read_error_naming_it(tmp_path, prefix, suffix, content):
    """A CSV file that cannot be parsed, first or later in the dataset, is a ReadError."""
    (tmp_path / "m-good.csv").write_text("y_true,y_pred\n1,2\n")
    (tmp_path / f"{prefix}-bad{suffix}").write_bytes(content)
    with pytest.raises(ReadError, match=rf"{prefix}-bad{suffix}.*truncated or corrupt"):
        daskloss.evaluate(tmp_path)


def test_zstd_csv_without_the_zstandard_package(tmp_path):
    """A .csv.zst file gives the bits of the same CSV uncompressed."""
    text = FRAME.to_csv(index=False, float_format="%.17g").encode()
    (tmp_path / "a.csv.zst").write_bytes(pa.compress(text, codec="zstd", asbytes=True))
    result = daskloss.evaluate(tmp_path / "a.csv.zst", weight="w")
    assert_bit_identical(result.metrics, EXPECTED_WEIGHTED)


def test_glob_skips_hidden_files(tmp_path):
    """A glob such as dir/* leaves out _SUCCESS and .crc files, like a directory listing."""
    write_parquet(tmp_path, FRAME, 2)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-0000.parquet.crc").write_bytes(b"crc")
    result = daskloss.evaluate(str(tmp_path / "*"))
    assert_bit_identical(result.metrics, EXPECTED)
    assert len(result.files) == 2


def test_mixed_csv_and_parquet_is_refused(tmp_path):
    """A directory mixing CSV and Parquet files says so, instead of a corrupt-file error."""
    write_parquet(tmp_path, FRAME, 1)
    FRAME.to_csv(tmp_path / "extra.csv", index=False)
    with pytest.raises(SchemaError, match=r"mixes CSV files .*extra\.csv.*dataset\.format"):
        daskloss.evaluate(tmp_path)


def test_one_column_in_two_roles(tmp_path):
    """A column may serve two roles (the target as the weight): read once, same bits."""
    frame = FRAME.assign(y_true=FRAME.y_true.abs())
    expected = reference_metrics(frame.y_true, frame.y_pred, frame.y_true)
    write_parquet(tmp_path, frame, 3)
    assert_bit_identical(daskloss.evaluate(tmp_path, weight="y_true").metrics, expected)
    lazy = dd.from_pandas(frame, npartitions=3)
    assert_bit_identical(daskloss.evaluate(lazy, weight="y_true").metrics, expected)


def test_csv_without_a_csv_name_hints_at_the_format(tmp_path):
    """A CSV file not named .csv is read as Parquet; the error says to set the format."""
    (tmp_path / "predictions.txt").write_text("y_true,y_pred\n1,2\n")
    with pytest.raises(
        ReadError, match=r'predictions\.txt.*not a Parquet file.*dataset\.format = "csv"'
    ):
        daskloss.evaluate(tmp_path)
    assert daskloss.evaluate(tmp_path, format="csv").metrics["se"] == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        "y_true,y_pred\n1,2\n3,the-content-of-a-cell\n",
        "y_true,y_pred\n1,2\n3,4,the-content-of-a-row\n",
    ],
    ids=["cell", "row"],
)
def test_csv_errors_do_not_quote_the_file(tmp_path, bad):
    """A CSV parse error names the file and the column or row shape, never the content."""
    (tmp_path / "b.csv").write_text(bad)
    with pytest.raises((SchemaError, ReadError), match=r"b\.csv") as caught:
        daskloss.evaluate(tmp_path)
    assert "the-content-of-a" not in str(caught.value)


def _footer(path) -> tuple[bytearray, int]:
    """A Parquet file's bytes and where its footer starts."""
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[-8:-4], "little")
    return data, len(data) - 8 - length


def test_corrupt_column_name_in_the_footer_is_a_read_error_naming_the_file(tmp_path):
    """A footer whose column name is not UTF-8 (a UnicodeDecodeError) is a ReadError naming it."""
    write_parquet(tmp_path, FRAME, 2)
    path = tmp_path / "part-0001.parquet"
    data, start = _footer(path)
    data[data.index(b"y_true", start)] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ReadError, match=r"part-0001\.parquet.*codec can't decode"):
        daskloss.evaluate(tmp_path)


def test_row_count_edited_in_the_footer_is_a_read_error(tmp_path):
    """A row group's num_rows edited (12345 -> 12344) disagrees with its columns': refused."""
    values = np.arange(12345.0)
    pq.write_table(pa.table({"y_true": values, "y_pred": values + 1}), tmp_path / "a.parquet")
    data, start = _footer(tmp_path / "a.parquet")
    encoded = bytes([0xF2, 0xC0, 0x01])  # 12345 as the footer's zigzag varint
    last = data.rindex(encoded, start)  # the row group's num_rows, after its columns'
    data[last] = 0xF0  # 12344
    (tmp_path / "a.parquet").write_bytes(bytes(data))
    assert pq.read_metadata(tmp_path / "a.parquet").row_group(0).num_rows == 12344
    with pytest.raises(ReadError, match=r"a\.parquet.*row group 0 has 12344 rows but column"):
        daskloss.evaluate(tmp_path)


def test_a_fifo_matched_by_a_glob_is_refused_before_it_is_opened(tmp_path):
    """A FIFO among the files a glob names is refused at once (opening it would block)."""
    write_parquet(tmp_path, FRAME, 2)
    os.mkfifo(tmp_path / "part-0009.parquet")
    with pytest.raises(ReadError, match=r"part-0009\.parquet is not a regular file"):
        daskloss.evaluate(str(tmp_path / "part-*.parquet"))
    assert len(daskloss.evaluate(tmp_path).files) == 2  # a directory listing skips it


def test_small_files_are_joined_by_decoded_size(tmp_path, monkeypatch):
    """Files batched by their size on storage are read by their decoded size, same bits.

    Files of constants compress a thousandfold: the unit learns their decoded
    size from the footers; one of a record batch or more is streamed a batch
    at a time, smaller ones are joined up to JOIN_BYTES.
    """
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    monkeypatch.setattr("daskloss.sources.reader.JOIN_BYTES", 40_000)
    monkeypatch.setattr("daskloss.sources.reader.BATCH_ROWS", 2000)
    frame = pd.DataFrame({"y_true": np.repeat([1.0, 2.0, 3.0], 1500)})
    frame["y_pred"] = frame.y_true + 0.5
    write_parquet(tmp_path, frame.iloc[:1500], 1)  # 24,000 bytes decoded: joined
    frame.iloc[1500:].to_parquet(tmp_path / "part-0001.parquet", index=False)  # streamed
    frame.iloc[:300].to_parquet(tmp_path / "part-0002.parquet", index=False)  # joined
    plan = plan_files(tmp_path, ["y_true", "y_pred"])
    assert len(plan.units) == 1 and len(plan.units[0].pieces) == 3
    chunks = list(plan.units[0].chunks())
    assert [chunk.rows for chunk in chunks] == [1500, 2000, 1000 + 300]
    assert [len(chunk.origins) for chunk in chunks] == [1, 1, 2]
    expected = pd.concat([frame, frame.iloc[:300]])
    assert_bit_identical(
        daskloss.evaluate(tmp_path).metrics, reference_metrics(expected.y_true, expected.y_pred)
    )


def test_a_cluster_gets_units_for_every_thread(tmp_path, monkeypatch):
    """Given a cluster's thread count, small files make at least four units per thread."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    monkeypatch.setattr("daskloss.sources.files.MIN_UNIT_BYTES", 1)
    write_parquet(tmp_path, FRAME, 40)
    assert len(plan_files(tmp_path, ["y_true", "y_pred"]).units) == 1
    assert len(plan_files(tmp_path, ["y_true", "y_pred"], threads=5).units) >= 20


def test_units_keep_a_minimum_size_on_a_big_cluster(tmp_path, monkeypatch):
    """Too few bytes for four units per thread: units stay at least MIN_UNIT_BYTES."""
    monkeypatch.setattr("daskloss.sources.files.MIN_BATCHES", 1)
    paths = write_parquet(tmp_path, FRAME, 40)
    total = sum(path.stat().st_size for path in paths)
    monkeypatch.setattr("daskloss.sources.files.MIN_UNIT_BYTES", total // 4)
    assert 4 <= len(plan_files(tmp_path, ["y_true", "y_pred"], threads=1000).units) <= 5
