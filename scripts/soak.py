"""The soak test behind scripts/soak: see there. Everything runs on 127.0.0.1 and is stopped
at the end, whatever happens."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

WEIR, CYCLES, GAP = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


procs = []


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    procs.append(p)
    return p


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()


try:
    work = tempfile.mkdtemp(prefix="weir-soak-")
    kport, mport = free_port(), free_port()
    spawn(["node", os.path.join(ROOT, "tests/peers/kinesalite.js"), str(kport)], stdout=subprocess.DEVNULL)
    spawn([os.path.join(ROOT, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(mport)],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(kport)
    wait_port(mport)
    kinesis = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{kport}", region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x",
                           config=Config(retries={"max_attempts": 0}))
    kinesis.create_stream(StreamName="soak", ShardCount=4)
    while kinesis.describe_stream_summary(StreamName="soak")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.1)

    def pipeline(name):
        d = os.path.join(work, name)
        os.makedirs(d)
        with open(os.path.join(d, "p.toml"), "w") as f:
            f.write(f"""
[pipeline]
name = "soak"
batch = {{ linger = "50ms" }}
[source]
type = "kinesis"
stream = "soak"
endpoint = "http://127.0.0.1:{kport}"
start = "trim_horizon"
idle_interval = "100ms"
discovery_interval = "2s"
checkpoints = {{ store = "dynamodb", table = "soak-leases", endpoint = "http://127.0.0.1:{mport}", worker_id = "{name}", lease_timeout = "2s" }}
[sink]
type = "file"
path = "out"
buffer = {{ interval = "1s" }}
""")
        return d

    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1",
               RUST_LOG="error")

    def start(d):
        log = open(os.path.join(d, "weir.log"), "a")
        return spawn([WEIR, "run", "--progress", "0s", "--state-dir", os.path.join(d, "state"),
                      os.path.join(d, "p.toml")], env=env, stdout=subprocess.DEVNULL, stderr=log)

    a, b = pipeline("a"), pipeline("b")
    pa, pb = start(a), start(b)

    acked, failed_puts = set(), [0]
    stop_load = threading.Event()

    def load():
        n = 0
        while not stop_load.is_set():
            batch = [{"Data": json.dumps({"id": n + i}).encode(), "PartitionKey": f"k{(n + i) % 64}"}
                     for i in range(50)]
            try:
                out = kinesis.put_records(StreamName="soak", Records=batch)
                for i, r in enumerate(out["Records"]):
                    if "ErrorCode" not in r:
                        acked.add(n + i)
                    else:
                        failed_puts[0] += 1
            except Exception:  # not acknowledged: not owed
                failed_puts[0] += 50
            n += 50
            time.sleep(0.1)

    loader = threading.Thread(target=load)
    loader.start()
    started = time.time()
    for cycle in range(CYCLES):
        time.sleep(GAP * random.uniform(0.7, 1.3))
        pb.send_signal(signal.SIGKILL)
        pb.wait()
        time.sleep(random.uniform(0.1, 1.0))
        pb = start(b)
        print(f"cycle {cycle + 1}/{CYCLES}: killed and restarted b ({len(acked)} records acknowledged so far)",
              flush=True)
    stop_load.set()
    loader.join()
    load_s = time.time() - started

    def delivered():
        seen, total = set(), 0
        for d in (a, b):
            for dirpath, _, files in os.walk(os.path.join(d, "out")):
                for name in files:
                    if name.startswith("."):
                        continue
                    with open(os.path.join(dirpath, name)) as f:
                        for line in f:
                            seen.add(json.loads(line)["id"])
                            total += 1
        return seen, total

    caught_up = time.time()
    while True:
        seen, total = delivered()
        if acked <= seen or time.time() - caught_up > 180:
            break
        time.sleep(1)
    catch_up_s = time.time() - caught_up
    for p in (pa, pb):
        p.send_signal(signal.SIGTERM)
    for p in (pa, pb):
        p.wait(timeout=60)
    seen, total = delivered()
    missing = acked - seen
    print()
    print(f"load: {load_s:.0f} s, {len(acked)} records acknowledged by PutRecords ({failed_puts[0]} refused, not owed)")
    print(f"kill -9 cycles of one process: {CYCLES}, about {GAP:.1f} s apart")
    print(f"delivered: {len(seen)} distinct records in {total} lines ({total - len(seen)} duplicates, the at-least-once replay)")
    print(f"caught up {catch_up_s:.1f} s after the load stopped")
    print(f"missing acknowledged records: {len(missing)}")
    if missing:
        print("first missing:", sorted(missing)[:20])
        sys.exit(1)
finally:
    cleanup()
