"""enrich: a Weir transform written in Python (built with componentize-py).

Config (the `config` table of the pipeline step):
    add             a table of fields merged into every JSON object record (required)
    drop_when       a field name; records where it is true are dropped (optional)
    partition_keys  a table of dynamic-partitioning key names to top-level field names: each
                    record's value of the field becomes the key, for a sink prefix's
                    !{partitionKeyFromLambda:name} (optional; records without the field get none)

A record that is not a JSON object fails with processing-failed, so it reaches the error output.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

ADD: dict = {}
DROP_WHEN = None
PARTITION_KEYS: dict = {}


class WitWorld(wit_world.WitWorld):
    def init(self) -> None:
        global ADD, DROP_WHEN, PARTITION_KEYS
        try:
            config = json.loads(host.config())
        except ValueError as e:
            raise Err(f"enrich: config is not JSON: {e}")
        unknown = set(config) - {"add", "drop_when", "partition_keys"}
        if unknown:
            raise Err(f"enrich: unknown config keys: {', '.join(sorted(unknown))}")
        if not isinstance(config.get("add"), dict):
            raise Err("enrich: config needs an `add` table of fields to add")
        ADD = config["add"]
        DROP_WHEN = config.get("drop_when")
        PARTITION_KEYS = config.get("partition_keys", {})
        if not isinstance(PARTITION_KEYS, dict):
            raise Err("enrich: partition_keys must be a table of key names to field names")
        host.log(types.Level.INFO, "enrich ready", [("fields", ",".join(sorted(ADD)))])

    def transform(self, batch: types.Batch) -> types.Transformed:
        outcomes = []
        data = bytearray()
        ends = []
        partition_keys = []
        start = 0
        for index, end in enumerate(batch.data_ends):
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
            for name, field in PARTITION_KEYS.items():
                value = record.get(field)
                if value is not None and not isinstance(value, (dict, list)):
                    text = value if isinstance(value, str) else json.dumps(value)
                    partition_keys.append(types.PartitionKey(index, name, text))
            record.update(ADD)
            data += json.dumps(record, separators=(",", ":")).encode()
            ends.append(len(data))
            outcomes.append(types.Outcome_Ok(1))
        return types.Transformed(outcomes, bytes(data), ends, [], partition_keys)
