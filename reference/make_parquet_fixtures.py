"""Writes the parquet fixtures that src/data/rows.test.ts and src/train/data.test.ts read.

Run by hand from the repository root (the outputs are committed; tests never run Python):

    pip install pyarrow==26.0.1
    python3 reference/make_parquet_fixtures.py

Each file holds records in one of TRL's dataset formats, written the way a Hugging Face dataset's parquet files
are (pyarrow: strings, lists of {role, content} structs, int64 and float columns), small row groups so a reader
must cross them, and a different codec each:

  sft-messages.snappy.parquet     {"messages": [{role, content}]}, 3 rows in row groups of 2, snappy
  pairs-implicit.zstd.parquet     {"prompt": str, "chosen": [msg], "rejected": [msg], "id": int64, "score": float}
                                  as HuggingFaceH4/ultrafeedback_binarized has them (the string prompt repeats
                                  the conversations' first message), one id past 2**53, zstd
  pairs-standard.gzip.parquet     {"prompt", "chosen", "rejected"} strings; row 2's "rejected" is null, gzip

expected.json holds every row as pyarrow reads it back (to_pylist), integers past 2**53 as decimal strings, the
convention of src/data/rows.ts.
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

OUT = os.path.join("src", "data", "fixtures")
MSG = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


def files():
    sft = pa.table({"messages": pa.array([
        msgs(("user", "2+3?"), ("assistant", "5")),
        msgs(("system", "Be brief."), ("user", "7*6?"), ("assistant", "42")),
        msgs(("user", "9-4?"), ("assistant", "5")),
    ], type=MSG)})
    implicit = pa.table({
        "prompt": pa.array(["2+3?", "7*6?"], type=pa.string()),
        "chosen": pa.array([msgs(("user", "2+3?"), ("assistant", "5")),
                            msgs(("user", "7*6?"), ("assistant", "42"))], type=MSG),
        "rejected": pa.array([msgs(("user", "2+3?"), ("assistant", "6")),
                              msgs(("user", "7*6?"), ("assistant", "48"))], type=MSG),
        "id": pa.array([7, 2**53 + 1], type=pa.int64()),
        "score": pa.array([8.5, 0.25], type=pa.float64()),
    })
    standard = pa.table({
        "prompt": pa.array(["2+3=", "7*6=", "9-4="], type=pa.string()),
        "chosen": pa.array(["5", "42", "5"], type=pa.string()),
        "rejected": pa.array(["6", "48", None], type=pa.string()),
    })
    return [
        ("sft-messages.snappy.parquet", sft, "snappy", 2),
        ("pairs-implicit.zstd.parquet", implicit, "zstd", 1),
        ("pairs-standard.gzip.parquet", standard, "gzip", 2),
    ]


def jsonable(v):
    if isinstance(v, int) and abs(v) > 2**53:
        return str(v)
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {"pyarrow": pa.__version__, "files": {}}
    for name, table, codec, group in files():
        path = os.path.join(OUT, name)
        pq.write_table(table, path, compression=codec, row_group_size=group)
        back = pq.read_table(path)
        meta = pq.ParquetFile(path).metadata
        expected["files"][name] = {
            "codec": meta.row_group(0).column(0).compression,
            "row_groups": meta.num_row_groups,
            "rows": jsonable(back.to_pylist()),
        }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
