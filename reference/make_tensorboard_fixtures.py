"""Reads stepwise's TensorBoard event files back with the `tensorboard` package (pip install tensorboard; 2.21.0
wrote the committed fixture) and writes what it read to src/train/fixtures/tensorboard/read.json.

The event files are written by reference/tensorboard_events.mjs with stepwise's own writer (build first:
`npm run build`), committed beside the JSON; src/train/tensorboard.test.ts checks that the writer still writes those
exact bytes and that the values TensorBoard read are the ones written. TensorBoard's record reader checks both masked
CRC-32Cs of every record (a corrupted copy is read here too, and must fail), and its EventAccumulator applies the
SessionLog START of the resumed run (the steps at and after it from the first file are dropped).
"""

import json
import os
import shutil
import subprocess
import tempfile

import tensorboard
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "train", "fixtures", "tensorboard")


def event_dict(e):
    d = {"wall_time": e.wall_time, "step": e.step}
    if e.HasField("file_version"):
        d["file_version"] = e.file_version
    if e.HasField("session_log"):
        d["session_log"] = int(e.session_log.status)
    if e.HasField("summary"):
        d["values"] = [[v.tag, v.simple_value] for v in e.summary.value]
    return d


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.startswith("events.out.tfevents."):
            os.remove(os.path.join(OUT, f))
    subprocess.run(["node", os.path.join(ROOT, "reference", "tensorboard_events.mjs"), OUT], check=True)
    names = sorted(f for f in os.listdir(OUT) if f.startswith("events.out.tfevents."))
    # The raw records, parsed as Event protos here (EventFileLoader would migrate simple_value into a tensor).
    files = {
        n: [event_dict(event_pb2.Event.FromString(r)) for r in RawEventFileLoader(os.path.join(OUT, n)).Load()]
        for n in names
    }

    # A flipped byte in the first scalar event's data must be refused by the CRC check.
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, names[0])
        shutil.copy(os.path.join(OUT, names[0]), bad)
        raw = bytearray(open(bad, "rb").read())
        first_len = int.from_bytes(raw[0:8], "little")
        at = 12 + first_len + 4 + 12 + 3  # inside the second record's data
        raw[at] ^= 0xFF
        open(bad, "wb").write(bytes(raw))
        try:
            from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

            r = PyRecordReader_New(bad.encode())
            r.GetNext()
            r.GetNext()
            corrupt = "read without error"
        except errors.DataLossError as e:
            corrupt = "DataLossError: " + str(e.message if hasattr(e, "message") else e).replace(tmp, "TMP")

    acc = event_accumulator.EventAccumulator(OUT)
    acc.Reload()
    scalars = {
        tag: [[s.step, s.value] for s in acc.Scalars(tag)] for tag in sorted(acc.Tags()["scalars"])
    }
    out = {
        "tensorboard": tensorboard.__version__,
        "files": files,
        "corrupted_copy": corrupt,
        "accumulator": scalars,
    }
    with open(os.path.join(OUT, "read.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({"files": names, "corrupted_copy": corrupt, "tags": list(scalars)}, indent=1))


if __name__ == "__main__":
    main()
