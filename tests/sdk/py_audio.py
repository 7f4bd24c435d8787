"""Drive filestack-python 4.0.0's audio conversion (`av_convert` → `AudioVisual`) against Refract
(tests/audio.rs). Usage: .venv/bin/python py_audio.py BASE FILE
Uploads FILE, converts it to MP3 at 64 kbit/s trimmed to 1 s, polls the job as the SDK documents,
turns it into a Filelink and downloads it. Prints one JSON object for the Rust test to check."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fs_point import point  # noqa: E402

BASE, FILE = sys.argv[1], sys.argv[2]
point(BASE)
from filestack import Client  # noqa: E402

client = Client("AhTgLagciQByzXpFGRI0Az")
source = client.upload(filepath=FILE)
av = source.av_convert(preset="mp3", audio_bitrate=64, clip_offset="00:00:01", clip_length="00:00:01", title="Refract")
out = {"uuid": av.uuid, "timestamp": av.timestamp, "polls": 0}
deadline = time.time() + 60
while av.status != "completed":
    out["polls"] += 1
    if time.time() > deadline:
        raise SystemExit("conversion did not complete")
    time.sleep(0.5)
again = source.av_convert(preset="mp3", audio_bitrate=64, clip_offset="00:00:01", clip_length="00:00:01", title="Refract")
out["same_uuid"] = again.uuid == av.uuid
converted = av.to_filelink()
out["source"] = source.handle
out["handle"] = converted.handle
path = os.path.join(os.path.dirname(os.path.abspath(FILE)), "converted.mp3")
converted.download(path)
out["path"] = path
out["metadata"] = converted.metadata(attributes_list=["mimetype", "size", "filename"])
print(json.dumps(out))
