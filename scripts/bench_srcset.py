#!/usr/bin/env python3
"""The srcset burst of issue 12: one 20 MP photo at 8 ladder widths x JPEG and WebP, all 16
requested at once, cold, against Refract (shared decodes on, as deployed) and the sharp peer
(`../shared/bench/peers.sh start` must be running it on :9101). Each round uses a fresh copy of
the photo in Refract (a new handle: no derivative and no decode cached), so every round is a
cold burst; sharp never caches. Prints derivatives per second for both and the ratio.
Loopback only; ROUNDS bursts (default 8), each bounded by the request timeout."""
import concurrent.futures, json, os, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("REFRACT_DECODE_CACHE_BYTES", str(256 << 20))
import bench_refract as br  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "8"))
WIDTHS = [320, 480, 640, 768, 960, 1280, 1600, 1920]
FORMATS = [("jpg", "jpeg"), ("webp", "webp")]
SHARP = "http://127.0.0.1:9101"


def get(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        r.read()
        return r.status


def burst(urls):
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        statuses = list(pool.map(get, urls))
    assert all(s == 200 for s in statuses), statuses
    return time.monotonic() - started


def main():
    br.start(0)
    name = os.path.basename(br.PHOTO)
    handles = [br.upload(br.PHOTO) for _ in range(ROUNDS + 1)]
    refract = lambda h: [f"{br.BASE}/resize=width:{w}/output=format:{f},quality:80/{h}" for w in WIDTHS for f, _ in FORMATS]
    sharp = [f"{SHARP}/?src={name}&w={w}&fmt={f}&q=80" for w in WIDTHS for _, f in FORMATS]
    burst(refract(handles[-1]))  # warm-up: connections, code paths
    burst(sharp)
    t_refract = sum(burst(refract(h)) for h in handles[:ROUNDS])
    t_sharp = sum(burst(sharp) for _ in range(ROUNDS))
    n = ROUNDS * len(WIDTHS) * len(FORMATS)
    shared = urllib.request.urlopen(f"{br.BASE}/metrics", timeout=10).read().decode()
    shared = sum(float(l.split()[-1]) for l in shared.splitlines() if l.startswith("refract_decodes_shared_total"))
    br.stop()
    result = {
        "rounds": ROUNDS,
        "derivatives": n,
        "refract_per_s": round(n / t_refract, 2),
        "sharp_per_s": round(n / t_sharp, 2),
        "ratio": round(t_sharp / t_refract, 2),
        "refract_burst_s": round(t_refract / ROUNDS, 3),
        "sharp_burst_s": round(t_sharp / ROUNDS, 3),
        "refract_decodes_shared": int(shared),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
