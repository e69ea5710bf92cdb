"""JSON bodies written with orjson: the records' ``to_json`` shapes and their dataclass rows, as ``--json`` prints.

A status of a big job holds ten thousand shot rows; orjson writes the dataclasses natively instead of a
dict per row first (``farm.db.records.JobDetail.to_json`` says why the rows stay dataclasses).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FarmJSONResponse(JSONResponse):
    """A JSON response whose datetimes are ISO 8601, enums their values, anything else unknown its ``str``."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)
