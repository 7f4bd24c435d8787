"""Point filestack-python 4.0.0 at BASE (plain http). Import and call point(BASE) before using Client."""
import filestack
import requests


def point(base):
    base = base.rstrip("/")
    # CDN_URL and MULTIPART_START_URL are read-only properties on class CFG: replace them on the class.
    filestack.CFG.CDN_URL = property(lambda self: base)
    filestack.CFG.MULTIPART_START_URL = property(lambda self: base + "/multipart/start")
    filestack.config.API_URL = base + "/api"            # plain class attribute
    # location_url is always used as 'https://{location_url}/multipart/...': undo the forced https.
    # Handles both answers a server may give: 'host:port' -> https://host:port/...  and
    # 'http://host:port' -> https://http://host:port/...
    netloc = base.split("://", 1)[1]
    orig = requests.Session.request

    def request(self, method, url, *args, **kwargs):
        if url.startswith("https://http://"):
            url = url[len("https://"):]
        elif url.startswith("https://" + netloc + "/"):
            url = "http://" + url[len("https://"):]
        return orig(self, method, url, *args, **kwargs)

    requests.Session.request = request
