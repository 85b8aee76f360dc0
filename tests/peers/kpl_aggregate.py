"""Makes KPL aggregated records with aws-kinesis-agg, the reference aggregator, for the tests.

stdin: a JSON list of aggregates, each a list of [partition_key, data, explicit_hash_key|null].
stdout: one line per aggregate, "<partition key> <hex of the aggregated record's data>".
"""
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator

for users in json.load(sys.stdin):
    agg = RecordAggregator()
    for key, data, ehk in users:
        # add_user_record returns a full record only when the 1 MB limit is hit.
        assert agg.add_user_record(key, data.encode(), ehk) is None
    key, _ehk, data = agg.clear_and_get().get_contents()
    print(key, data.hex())
