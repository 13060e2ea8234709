"""One Arrow type per column name, whichever stage's table the column is in."""

import pyarrow as pa
import pytest

from pulse.data_ray.instruct.rows import ROW_SCHEMA as INSTRUCT_ROW_SCHEMA
from pulse.data_ray.llava_format.reader import error_row, validate_record
from pulse.data_ray.readers.ecgqa import ECGQA_SCHEMA
from pulse.schema import COLUMN_TYPES, IMAGE_SCHEMA, INSTRUCTION_SCHEMA, RECORD_SCHEMA, table_schema
from pulse.train_ray.data import ERROR_SCHEMA
from pulse.train_ray.mixture import ROW_SCHEMA as MIXTURE_ROW_SCHEMA

TABLES = {
    "records": RECORD_SCHEMA,
    "images": IMAGE_SCHEMA,
    "instructions": INSTRUCTION_SCHEMA,
    "instruct rows": INSTRUCT_ROW_SCHEMA,
    "mixture rows": MIXTURE_ROW_SCHEMA,
    "train errors": ERROR_SCHEMA,
    "ecg-qa": ECGQA_SCHEMA,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_column_has_the_one_registered_type(table):
    for field in TABLES[table]:
        assert field.type == COLUMN_TYPES[field.name], (table, field.name)


def test_a_column_shared_by_two_stages_means_the_same_in_both():
    # The build's working rows once held judge_score as float64 while the published shard said float32.
    shared = set(INSTRUCT_ROW_SCHEMA.names) & set(INSTRUCTION_SCHEMA.names)
    assert {"judge_score", "conversations", "error"} <= shared
    for name in shared:
        assert INSTRUCT_ROW_SCHEMA.field(name).type == INSTRUCTION_SCHEMA.field(name).type
    assert INSTRUCTION_SCHEMA.field("judge_score").type == pa.float32()


def test_every_table_has_an_error_column_and_keeps_the_order_given():
    for name, schema in TABLES.items():
        assert "error" in schema.names, name
    assert table_schema(("error", "id")).names == ["error", "id"]


def test_an_unregistered_column_is_refused_by_name():
    with pytest.raises(KeyError, match="no_such_column"):
        table_schema(("id", "no_such_column"))


def test_llava_reader_rows_carry_exactly_the_instruction_columns():
    good = validate_record(
        {
            "id": "a",
            "image": "x.png",
            "conversations": [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}],
        },
        0,
        "ecginstruct",
    )
    bad = error_row(7, "malformed_row: broken", {"image": "y.png", "source": "s"})
    assert list(good) == list(bad) == INSTRUCTION_SCHEMA.names
    assert (good["id"], good["image_path"], good["source"], good["error"]) == (
        "a",
        "x.png",
        "ecginstruct",
        None,
    )
    assert (bad["id"], bad["record_id"], bad["source"], bad["conversations"]) == ("row-7", "y.png", "s", None)
    assert pa.Table.from_pylist([good, bad], schema=INSTRUCTION_SCHEMA).num_rows == 2
