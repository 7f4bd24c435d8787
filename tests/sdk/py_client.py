"""Drive filestack-python 4.0.0 against a Refract server (tests/sdk_clients.rs).
Usage: .venv/bin/python py_client.py BASE FILE
Prints one JSON object: the handles and answers of each call, for the Rust test to check by content."""
import hashlib
import json
import os
import sys
import tempfile
import zipfile

import requests

sys.path.insert(0, os.path.dirname(__file__))
from fs_point import point  # noqa: E402

BASE, FILE = sys.argv[1], sys.argv[2]
point(BASE)
from filestack import Client, Filelink, Security  # noqa: E402

APIKEY = "AhTgLagciQByzXpFGRI0Az"
# with REFRACT_SDK_SECRET set, the server's app requires signatures: the SDK signs every call
SECRET = os.environ.get("REFRACT_SDK_SECRET")
ALL_CALLS = ["read", "convert", "stat", "store", "pick", "write", "writeUrl", "remove"]
signing = Security({"expiry": 4102444800, "call": ALL_CALLS}, SECRET) if SECRET else None
client = Client(APIKEY, security=signing)
out = {}
regular = client.upload(filepath=FILE, store_params={"filename": "noise.png", "path": "/sdk/"})
out["regular"] = regular.handle
out["intelligent"] = client.upload(filepath=FILE, intelligent=True).handle
out["metadata"] = regular.metadata(attributes_list=["size", "width", "height", "mimetype", "filename", "md5"])
out["download_sha256"] = hashlib.sha256(regular.get_content()).hexdigest()
# the server fetches this URL itself: signed when its app requires it
signed_query = f"?policy={signing.policy_b64}&signature={signing.signature}" if signing else ""
from_url = BASE + "/" + regular.handle + signed_query
out["from_url"] = client.upload_url(from_url, store_params={"filename": "copy.png"}).handle
# zip of two files, read back with the standard library: entry names and the sha256 of each
archive = os.path.join(tempfile.mkdtemp(), "files.zip")
client.zip(archive, [regular.handle, out["from_url"]])
with zipfile.ZipFile(archive) as z:
    out["zip"] = {i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}
if signing:
    # filestack-python's Transformation.store() posts the URL unsigned even when the client has a
    # Security object (mixins/common.py: `requests.post(instance.url)`): refused by an app that
    # requires signatures. Record that, then post the same chain signed the way the SDK signs.
    unsigned = regular.resize(width=64)._add_transform_task("store", {"self": None, "filename": "small.png"})
    out["unsigned_store_status"] = requests.post(unsigned.url).status_code
    chain = regular.resize(width=64)._add_transform_task("store", {"self": None, "filename": "small.png"})
    out["stored"] = requests.post(chain.signed_url(security=signing)).json()["handle"]
else:
    out["stored"] = regular.resize(width=64).store(filename="small.png").handle
# delete needs a security object client-side; an open server accepts any
security = signing or Security({"expiry": 4102444800, "call": ["remove"]}, "an-app-secret-for-the-sdk-test")
doomed = Filelink(out["intelligent"], apikey=APIKEY, security=security)
doomed.delete()
out["deleted"] = out["intelligent"]
# a third copy, overwritten with another file (multipart form, as the SDK sends it)
replacement = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "hopper.jpg")
out["overwritten"] = client.upload_url(from_url, store_params={"filename": "twice.png"}).handle
Filelink(out["overwritten"], apikey=APIKEY, security=security).overwrite(filepath=replacement)
print(json.dumps(out))
