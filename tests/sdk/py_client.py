"""Drive filestack-python 4.0.0 against a Refract server (tests/sdk_clients.rs).
Usage: .venv/bin/python py_client.py BASE FILE
Prints one JSON object: the handles and answers of each call, for the Rust test to check by content."""
import hashlib
import json
import os
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
from fs_point import point  # noqa: E402

BASE, FILE = sys.argv[1], sys.argv[2]
point(BASE)
from filestack import Client, Filelink, Security  # noqa: E402

APIKEY = "AhTgLagciQByzXpFGRI0Az"
client = Client(APIKEY)
out = {}
regular = client.upload(filepath=FILE, store_params={"filename": "noise.png", "path": "/sdk/"})
out["regular"] = regular.handle
out["intelligent"] = client.upload(filepath=FILE, intelligent=True).handle
out["metadata"] = regular.metadata(attributes_list=["size", "width", "height", "mimetype", "filename", "md5"])
out["download_sha256"] = hashlib.sha256(regular.get_content()).hexdigest()
out["from_url"] = client.upload_url(BASE + "/" + regular.handle, store_params={"filename": "copy.png"}).handle
# zip of two files, read back with the standard library: entry names and the sha256 of each
archive = os.path.join(tempfile.mkdtemp(), "files.zip")
client.zip(archive, [regular.handle, out["from_url"]])
with zipfile.ZipFile(archive) as z:
    out["zip"] = {i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}
out["stored"] = regular.resize(width=64).store(filename="small.png").handle
# delete needs a security object client-side; an open server accepts any
security = Security({"expiry": 4102444800, "call": ["remove"]}, "an-app-secret-for-the-sdk-test")
doomed = Filelink(out["intelligent"], apikey=APIKEY, security=security)
doomed.delete()
out["deleted"] = out["intelligent"]
print(json.dumps(out))
