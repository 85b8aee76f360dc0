"""enrich: a Weir transform written in Python (built with componentize-py).

Config (the `config` table of the pipeline step):
    add        a table of fields merged into every JSON object record (required)
    drop_when  a field name; records where it is true are dropped (optional)

A record that is not a JSON object fails with processing-failed, so it reaches the error output.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

ADD: dict = {}
DROP_WHEN = None


class WitWorld(wit_world.WitWorld):
    def init(self) -> None:
        global ADD, DROP_WHEN
        try:
            config = json.loads(host.config())
        except ValueError as e:
            raise Err(f"enrich: config is not JSON: {e}")
        unknown = set(config) - {"add", "drop_when"}
        if unknown:
            raise Err(f"enrich: unknown config keys: {', '.join(sorted(unknown))}")
        if not isinstance(config.get("add"), dict):
            raise Err("enrich: config needs an `add` table of fields to add")
        ADD = config["add"]
        DROP_WHEN = config.get("drop_when")
        host.log(types.Level.INFO, "enrich ready", [("fields", ",".join(sorted(ADD)))])

    def transform(self, batch: types.Batch) -> types.Transformed:
        outcomes = []
        data = bytearray()
        ends = []
        start = 0
        for end in batch.data_ends:
            raw = batch.data[start:end]
            start = end
            try:
                record = json.loads(raw)
            except ValueError as e:
                outcomes.append(types.Outcome_ProcessingFailed(f"record is not JSON: {e}"))
                continue
            if not isinstance(record, dict):
                outcomes.append(types.Outcome_ProcessingFailed("record is not a JSON object"))
                continue
            if DROP_WHEN is not None and record.get(DROP_WHEN) is True:
                outcomes.append(types.Outcome_Dropped())
                continue
            record.update(ADD)
            data += json.dumps(record, separators=(",", ":")).encode()
            ends.append(len(data))
            outcomes.append(types.Outcome_Ok(1))
        return types.Transformed(outcomes, bytes(data), ends, [], [])
