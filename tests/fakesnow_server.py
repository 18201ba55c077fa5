"""`fakesnow -s` with two of its bugs fixed, so that the emulator answers as Snowflake documents.

Runs with the fakesnow virtualenv's Python (tests/servers.ensure_venv("fakesnow")), not ours:
    python tests/fakesnow_server.py -s --host 127.0.0.1 -p PORT

1. fakesnow wraps every SUM/AVG/... argument in TRY_CAST(... AS DOUBLE) (so that a VARCHAR column
   sums as Snowflake's implicit cast would), which turns every money total into a binary float:
   Snowflake's SUM of NUMBER(p, s) is NUMBER(38, s), exact. OpenMRR never aggregates text, so the
   transform is switched off.
2. A NULL TIMESTAMP_NTZ in a result travels as 1970-01-01 00:00:00 (the Arrow struct it builds for
   the connector drops the null mask); the struct keeps it here.
Both only change what fakesnow emulates, never OpenMRR's SQL.
"""

from __future__ import annotations

import sys

import pyarrow as pa
from fakesnow import arrow, cli, transforms

_timestamp_to_sf_struct = arrow.timestamp_to_sf_struct


def _timestamp_struct_with_nulls(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    struct = _timestamp_to_sf_struct(ts.fill_null(0))
    if not ts.null_count:
        return struct
    fields = [struct.type.field(i) for i in range(struct.type.num_fields)]
    return pa.StructArray.from_arrays(struct.flatten(), fields=fields, mask=ts.is_null())


def _keep_aggregate_types(expression):  # type: ignore[no-untyped-def]
    return expression


transforms.numeric_agg_implicit_cast = _keep_aggregate_types
arrow.timestamp_to_sf_struct = _timestamp_struct_with_nulls

if __name__ == "__main__":
    sys.exit(cli.main())
