"""
The pinned moto S3 emulator, started with one bucket that already holds many objects (see
seeded-s3.ts). The objects go in through moto's own backend, in this process, so tens of thousands
take about a second instead of minutes of PUTs; once "ready" is printed they are ordinary emulator
objects, listed, read and deleted over the S3 API like any other.

usage: python seeded-s3.py PORT BUCKET OBJECTS_FILE  (one JSON object {"key", "size"} a line)
"""
import json
import sys
import time

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

port, bucket, objects_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
backend.create_bucket(bucket, "us-east-1")
count = 0
with open(objects_file) as f:
    for line in f:
        o = json.loads(line)
        backend.put_object(bucket, o["key"], b"x" * o["size"])
        count += 1
print(f"ready {count}", flush=True)
while True:
    time.sleep(3600)
