"""Builds transformation URLs with the real filestack-python SDK (4.0.0, installed into
tests/sdk/.venv by setup.sh) and prints one JSON object per line:
{"sdk": "py", "case": ..., "url": ..., "expect": {apikey, chain, security, source}}.

Usage: tests/sdk/.venv/bin/python tests/sdk/gen_py.py <base>

filestack-python only knows https://cdn.<CNAME>, so URLs are built on the default host and the
https://cdn.filestackcontent.com prefix is swapped for <base>.

Methods that perform the HTTP call themselves (Client.zip -> GET, store() -> POST,
av_convert() -> GET expecting {"uuid", "timestamp"}) run against a recording stub of the SDK's
`requests` wrapper: the URL the SDK would have requested is captured, nothing leaves the process.

`expect` is what Refract's `debug` mode must answer (see tests/sdk_conformance.rs); written by
hand from the reference docs, not derived from the SDK output.
"""
import json
import os
import sys
import tempfile

import filestack
import filestack.mixins.common
import filestack.models.client
import filestack.utils
from filestack import Client, Filelink, Security

if len(sys.argv) != 2:
    sys.exit("usage: gen_py.py <base-url>")
BASE = sys.argv[1]
CDN = "https://cdn.filestackcontent.com"
KEY = "AhTgLagciQByzXpFGRI0Az"
SECRET = "refract-test-secret"
H1 = "refractHandle0000001"
H2 = "refractHandle0000002"
H3 = "refractHandle0000003"

assert filestack.__version__ == "4.0.0", filestack.__version__


# ---- recording stub for the SDK's HTTP calls ----------------------------------------------------
class _Resp:
    status_code = 200
    text = "{}"

    def json(self):
        # what av_convert reads from Filestack's first answer, and what store() reads
        return {"uuid": "0" * 32, "timestamp": "1893456000", "handle": "storedHandle00000001",
                "status": "started"}

    def iter_content(self, _size):
        return iter([b"PK\x05\x06" + b"\0" * 18])

    def raise_for_status(self):
        pass


class _Recorder:
    def __init__(self):
        self.calls = []

    def _record(self, method, url, *args, **kwargs):
        self.calls.append((method, url, kwargs.get("params")))
        return _Resp()

    def get(self, url, *a, **kw):
        return self._record("GET", url, *a, **kw)

    def post(self, url, *a, **kw):
        return self._record("POST", url, *a, **kw)

    def last(self, method):
        m, url, params = self.calls[-1]
        assert m == method, (m, method)
        assert not params, params
        return url


REC = _Recorder()
filestack.utils.requests = REC            # av_convert: utils.requests.get(...)
filestack.mixins.common.requests = REC    # store(): requests.post(...)
filestack.models.client.requests = REC    # Client.zip: requests.get(...)


# ---- expectation helpers -------------------------------------------------------------------------
def H(h):
    return {"type": "handle", "handle": h}


def U(u):
    return {"type": "url", "url": u}


def A(alias, path):
    return {"type": "alias", "alias": alias, "path": path}


def L(*items):
    return {"type": "list", "items": list(items)}


def T(name, **params):
    return {"name": name, "params": params}


def sec(s):
    return {"policy": s.policy_b64, "signature": s.signature}


_seen = set()


def rehost(url):
    assert url.startswith(CDN + "/"), url
    return BASE + url[len(CDN):]


def emit(name, url, chain, source, apikey=None, security=None):
    assert name not in _seen, name
    _seen.add(name)
    line = {"sdk": "py", "case": name, "url": rehost(url),
            "expect": {"apikey": apikey, "chain": chain, "security": security, "source": source}}
    sys.stdout.write(json.dumps(line) + "\n")


SEC = Security({"expiry": 1893456000, "call": ["read", "convert"]}, SECRET)
SEC_STORE = Security({"expiry": 1893456000, "call": ["read", "convert", "store"], "handle": H1}, SECRET)
assert SEC.policy_b64 == "eyJjYWxsIjogWyJyZWFkIiwgImNvbnZlcnQiXSwgImV4cGlyeSI6IDE4OTM0NTYwMDB9"

f = Filelink(H1)

# ---- geometry ------------------------------------------------------------------------------------
emit("py-resize", f.resize(width=800, height=600, fit="crop", align=["top", "left"]).url,
     [T("resize", width=800, height=600, fit="crop", align=["top", "left"])], H(H1))
emit("py-resize-align-word", f.resize(height=300, align="faces").url,
     [T("resize", height=300, align="faces")], H(H1))
emit("py-crop", f.crop(dim=[10, 20, 200, 250]).url, [T("crop", dim=[10, 20, 200, 250])], H(H1))
emit("py-rotate", f.rotate(deg="exif", exif=False, background="white").url,
     [T("rotate", deg="exif", exif=False, background="white")], H(H1))
emit("py-rotate-deg", f.rotate(deg=270, background="F0F0F0").url,
     [T("rotate", deg=270, background="F0F0F0")], H(H1))
emit("py-flip-flop", f.flip().flop().url, [T("flip"), T("flop")], H(H1))
emit("py-smart_crop", f.smart_crop(mode="auto", width=100, height=120, fill_color="fff", coords=False).url,
     [T("smart_crop", mode="auto", width=100, height=120, fill_color="FFFFFF", coords=False)], H(H1))
emit("py-upscale", f.upscale(upscale=True, noise="high", style="photo").url,
     [T("upscale", upscale=True, noise="high", style="photo")], H(H1))
emit("py-animate", f.animate(delay=100, loop=3, width=200, height=150, fit="crop", align="left", background="black").url,
     [T("animate", delay=100, loop=3, width=200, height=150, fit="crop", align="left", background="black")], H(H1))
emit("py-collage", f.collage(files=[H2, H3], margin=10, width=600, height=400, color="red", fit="auto", autorotate=False).url,
     [T("collage", files=[H2, H3], margin=10, width=600, height=400, color="red", fit="auto", autorotate=False)], H(H1))
emit("py-watermark", f.watermark(file=H2, size=30, position=["middle", "center"]).url,
     [T("watermark", file=H2, size=30, position=["middle", "center"])], H(H1))

# ---- faces ---------------------------------------------------------------------------------------
emit("py-detect_faces", f.detect_faces(minsize=0.25, maxsize=0.6, color="ff0000", export=True).url,
     [T("detect_faces", minsize=0.25, maxsize=0.6, color="FF0000", export=True)], H(H1))
emit("py-detect_faces-bare", f.detect_faces().url, [T("detect_faces")], H(H1))
emit("py-crop_faces", f.crop_faces(mode="thumb", width=200, height=200, faces=[1, 3], buffer=15).url,
     [T("crop_faces", mode="thumb", width=200, height=200, faces=[1, 3], buffer=15)], H(H1))
emit("py-crop_faces-int", f.crop_faces(faces=1).url, [T("crop_faces", faces=1)], H(H1))
emit("py-pixelate_faces", f.pixelate_faces(faces="all", minsize=0.2, maxsize=0.8, buffer=5, amount=20, blur=2.5, type="oval").url,
     [T("pixelate_faces", faces="all", minsize=0.2, maxsize=0.8, buffer=5, amount=20, blur=2.5, type="oval")], H(H1))

# ---- borders and effects -------------------------------------------------------------------------
emit("py-round_corners", f.round_corners(radius=20, blur=1, background="fff").url,
     [T("rounded_corners", radius=20, blur=1, background="FFFFFF")], H(H1))
emit("py-round_corners-max", f.round_corners(radius="max").url,
     [T("rounded_corners", radius="max")], H(H1))
emit("py-round_corners-bare", f.round_corners().url, [T("rounded_corners")], H(H1))
emit("py-vignette", f.vignette(amount=50, blurmode="gaussian", background="black").url,
     [T("vignette", amount=50, blurmode="gaussian", background="black")], H(H1))
emit("py-polaroid", f.polaroid(color="snow", rotate=10, background="808080").url,
     [T("polaroid", color="snow", rotate=10, background="808080")], H(H1))
emit("py-torn_edges", f.torn_edges(spread=[1, 10], background="white").url,
     [T("torn_edges", spread=[1, 10], background="white")], H(H1))
emit("py-shadow", f.shadow(blur=5, opacity=40, vector=[4, -4], color="333", background="white").url,
     [T("shadow", blur=5, opacity=40, vector=[4, -4], color="333333", background="white")], H(H1))
emit("py-circle", f.circle(background="transparent").url, [T("circle", background="transparent")], H(H1))
emit("py-border", f.border(width=3, color="00f", background="white").url,
     [T("border", width=3, color="0000FF", background="white")], H(H1))
emit("py-ascii", f.ascii(background="black", foreground="white", colored=False, size=30, reverse=False).url,
     [T("ascii", background="black", foreground="white", colored=False, size=30, reverse=False)], H(H1))

# ---- filters -------------------------------------------------------------------------------------
emit("py-sharpen-blur", f.sharpen(amount=3).blur(amount=10).url,
     [T("sharpen", amount=3), T("blur", amount=10)], H(H1))
emit("py-bare-filters", f.monochrome().negative().redeye().url,
     [T("monochrome"), T("negative"), T("redeye")], H(H1))
emit("py-tone-filters", f.blackwhite(threshold=60).sepia(tone=90).pixelate(amount=3).oil_paint(amount=7).url,
     [T("blackwhite", threshold=60), T("sepia", tone=90), T("pixelate", amount=3), T("oil_paint", amount=7)], H(H1))
emit("py-modulate", f.modulate(brightness=120, hue=90, saturation=50).url,
     [T("modulate", brightness=120, hue=90, saturation=50)], H(H1))
emit("py-partial_pixelate", f.partial_pixelate(amount=12, blur=3, type="rect", objects=[[1, 2, 30, 40], [50, 60, 70, 80]]).url,
     [T("partial_pixelate", amount=12, blur=3, type="rect", objects=[[1, 2, 30, 40], [50, 60, 70, 80]])], H(H1))
emit("py-partial_blur", f.partial_blur(amount=8, blur=1.5, type="oval", objects=[[5, 5, 100, 100]]).url,
     [T("partial_blur", amount=8, blur=1.5, type="oval", objects=[[5, 5, 100, 100]])], H(H1))
emit("py-enhance", f.enhance(preset="fix_dark").url, [T("enhance", preset="fix_dark")], H(H1))
emit("py-enhance-bare", f.enhance().url, [T("enhance")], H(H1))

# ---- output / compression ------------------------------------------------------------------------
emit("py-output-jpg-full",
     f.filetype_conversion(format="jpg", background="white", page=1, density=300, compress=True, quality=85,
                           strip=True, colorspace="RGB", secure=False, docinfo=False).url,
     [T("output", format="jpg", background="white", page=1, density=300, compress=True, quality=85,
        strip=True, colorspace="rgb", secure=False, docinfo=False)], H(H1))
emit("py-output-quality-input", f.filetype_conversion(format="png", quality="input", colorspace="Input").url,
     [T("output", format="png", quality="input", colorspace="input")], H(H1))
emit("py-quality", f.quality(value=80).url, [T("quality", value=80)], H(H1))
emit("py-no_metadata-auto_image", f.no_metadata().auto_image().url, [T("no_metadata"), T("auto_image")], H(H1))
emit("py-zip", f.zip().url, [T("zip")], H(H1))
emit("py-fallback", f.fallback(file=H2, cache=60).resize(width=10).url,
     [T("fallback", handle=H2, cache=60), T("resize", width=10)], H(H1))
emit("py-chain", f.resize(width=500).rotate(deg=90).sharpen(amount=2).filetype_conversion(format="webp").url,
     [T("resize", width=500), T("rotate", deg=90), T("sharpen", amount=2), T("output", format="webp")], H(H1))

# ---- security ------------------------------------------------------------------------------------
emit("py-handle-signed", Filelink(H1, security=SEC).signed_url(), [], H(H1), security=sec(SEC))
emit("py-chain-signed", f.resize(width=100).blur(amount=2).signed_url(SEC),
     [T("resize", width=100), T("blur", amount=2)], H(H1), security=sec(SEC))
emit("py-filelink-default-security", Filelink(H1, security=SEC_STORE).crop(dim=[0, 0, 50, 50]).signed_url(),
     [T("crop", dim=[0, 0, 50, 50])], H(H1), security=sec(SEC_STORE))

# ---- external sources ----------------------------------------------------------------------------
client = Client(KEY)
emit("py-external", client.transform_external("https://images.example.com/cat.jpg").resize(width=200).url,
     [T("resize", width=200)], U("https://images.example.com/cat.jpg"), apikey=KEY)
emit("py-external-deep", client.transform_external("https://images.example.com/a/b/photo.final.png").flip().url,
     [T("flip")], U("https://images.example.com/a/b/photo.final.png"), apikey=KEY)
emit("py-external-query", client.transform_external("https://images.example.com/get?id=42&size=large").resize(width=100).url,
     [T("resize", width=100)], U("https://images.example.com/get?id=42&size=large"), apikey=KEY)
emit("py-alias", client.transform_external("src://my-alias/dir/x.jpg").crop(dim=[1, 2, 3, 4]).url,
     [T("crop", dim=[1, 2, 3, 4])], A("my-alias", "dir/x.jpg"), apikey=KEY)
signed_client = Client(KEY, security=SEC)
emit("py-external-signed",
     signed_client.transform_external("https://images.example.com/cat.jpg").resize(width=50).monochrome().signed_url(),
     [T("resize", width=50), T("monochrome")], U("https://images.example.com/cat.jpg"), apikey=KEY, security=sec(SEC))

# ---- methods that perform the request: capture the URL -------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "out.zip")
    client.zip(dest, [H1, H2])
    emit("py-zip-client", REC.last("GET"), [T("zip")], L(H(H1), H(H2)), apikey=KEY)
    signed_client.zip(dest, [H1, "https://images.example.com/a.jpg"])
    emit("py-zip-client-signed", REC.last("GET"), [T("zip")],
         L(H(H1), U("https://images.example.com/a.jpg")), apikey=KEY, security=sec(SEC))

f.resize(width=100).store(filename="x.png", location="s3", path="/thumbs/", container="bucket-1",
                          region="us-east-1", access="public", base64decode=True, workflows=["wf1", "wf2"])
emit("py-store", REC.last("POST"),
     [T("resize", width=100), T("store", filename="x.png", location="s3", path="/thumbs/", container="bucket-1",
                                region="us-east-1", access="public", base64decode=True, workflows=["wf1", "wf2"])],
     H(H1))
Filelink(H1).store()
emit("py-store-bare", REC.last("POST"), [T("store")], H(H1))

# av_convert GETs the URL and reads uuid/timestamp; the stub answers that.
f.av_convert(preset="mp3", clip_offset="00:00:10", clip_length="00:00:30", audio_bitrate=128,
             audio_sample_rate=44100, audio_channels=1, title="Voice memo")
emit("py-av_convert-clip", REC.last("GET"),
     [T("video_convert", preset="mp3", clip_offset="00:00:10", clip_length="00:00:30", audio_bitrate=128,
        audio_sample_rate=44100, audio_channels=1, title="Voice memo")], H(H1))
# Python's av_convert drops the Filelink's security (documented SDK quirk) -> no security expected.
Filelink(H1, security=SEC).av_convert(preset="oga", force=True, extname=".oga", access="private")
emit("py-av_convert-oga-signed", REC.last("GET"),
     [T("video_convert", preset="oga", force=True, extname=".oga", access="private")], H(H1))
f.av_convert(preset="h264", width=640, height=360, upscale=False, aspect_mode="pad", two_pass=True,
             video_bitrate=800, fps=25, keyframe_interval=250, watermark_top=5, watermark_right=6,
             watermark_width=100, watermark_height=50, location="s3", container="media", filename="clip.mp4")
emit("py-av_convert-video", REC.last("GET"),
     [T("video_convert", preset="h264", width=640, height=360, upscale=False, aspect_mode="pad", two_pass=True,
        video_bitrate=800, fps=25, keyframe_interval=250, watermark_top=5, watermark_right=6,
        watermark_width=100, watermark_height=50, location="s3", container="media", filename="clip.mp4")], H(H1))
client.transform_external("https://media.example.com/talk.wav").av_convert(preset="aac", audio_channels=2)
emit("py-av_convert-external", REC.last("GET"),
     [T("video_convert", preset="aac", audio_channels=2)], U("https://media.example.com/talk.wav"), apikey=KEY)
