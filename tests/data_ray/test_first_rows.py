"""``first_rows``: a limited run reads the same rows every time, on a real local Ray."""

import pyarrow as pa
import pyarrow.parquet as pq

from pulse.data_ray.first_rows import first_rows


def test_limit_takes_the_same_first_rows_every_run(ray_session, tmp_path):
    for part in range(6):
        pq.write_table(
            pa.table({"i": list(range(part * 10, part * 10 + 10))}), tmp_path / f"part-{part}.parquet"
        )

    def run(limit):
        ds = first_rows(ray_session.data.read_parquet(str(tmp_path)), limit)
        return sorted(row["i"] for row in ds.map(lambda row: row).take_all())

    # Without ordering, runs here kept e.g. rows up to 44, 29, 44, 49: whichever files were read first.
    assert [run(25), run(25)] == [list(range(25))] * 2


def test_no_limit_is_the_dataset_itself(ray_session):
    ds = ray_session.data.range(10)
    assert first_rows(ds, None) is ds
    assert ds.context.execution_options.preserve_order is False


def test_ordering_stays_with_the_limited_dataset(ray_session):
    assert first_rows(ray_session.data.range(10), 3).context.execution_options.preserve_order is True
    assert ray_session.data.range(10).context.execution_options.preserve_order is False
