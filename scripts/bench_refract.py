#!/usr/bin/env python3
"""Measurements for scripts/bench.sh that compare.sh does not make: AVIF, 304 rates, output bytes
and SSIM, peak RSS under 64 concurrent distinct misses, the cost curve, and 1 vs 2 workers.
Loopback only; every load is bounded in time and count."""
import json, os, re, statistics, subprocess, sys, tempfile, threading, time, urllib.request

PORT = int(os.environ.get("PORT", "8099"))
BASE = f"http://127.0.0.1:{PORT}"
PHOTO = os.environ["PHOTO"]
OUT = os.environ.get("OUT", "target/bench")
DUR = os.environ.get("DUR", "10s")
STATE = os.environ.get("PEERS_STATE", "/tmp/refract-peers")
PIDFILE = os.path.join(OUT, "refract.pid")


def start(workers):
    stop()
    data = tempfile.mkdtemp(prefix="refract-bench-")
    # the shared decodes stay off unless asked for: a `cache=false` miss row must decode every
    # time, as the peers do (the srcset row turns them on, as a deployment has them)
    decodes = os.environ.get("REFRACT_DECODE_CACHE_BYTES", "0")
    env = dict(os.environ, REFRACT_WORKERS=str(workers), REFRACT_QUEUE_LEN="512", RUST_LOG="warn",
               REFRACT_DECODE_CACHE_BYTES=decodes)
    p = subprocess.Popen(["target/release/refract", "serve", "--listen", f"127.0.0.1:{PORT}", "--data-dir", data],
                         env=env, stdout=subprocess.PIPE, stderr=open(os.path.join(OUT, "refract.log"), "a"), text=True)
    line = p.stdout.readline()
    assert "listening" in line, line
    open(PIDFILE, "w").write(str(p.pid))
    return p.pid


def stop():
    try:
        pid = int(open(PIDFILE).read())
        os.kill(pid, 15)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass


def http(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def upload(path):
    _, _, body = http(f"{BASE}/api/store/S3?key=bench&filename={os.path.basename(path)}", open(path, "rb").read())
    return json.loads(body)["handle"]


def wrk(url, conns, header=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{DUR}", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def rss_peak(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) // 1024


def server_ms(url):
    _, headers, _ = http(url)
    m = re.search(r"transform;dur=([\d.]+)", headers.get("server-timing", ""))
    return float(m.group(1))


def extra():
    rows = []
    pid = start(0)
    h = upload(PHOTO)
    name = os.path.basename(PHOTO)
    # single-request latency, no load: cold miss (a derivative never made) and hit
    def timed(url):
        t = time.perf_counter()
        http(url)
        return (time.perf_counter() - t) * 1000
    miss = statistics.median(timed(f"{BASE}/resize=width:{800 + i}/output=format:jpg/{h}") for i in range(7))
    hit_url = f"{BASE}/resize=width:800/output=format:jpg/{h}"
    http(hit_url)
    hit = statistics.median(timed(hit_url) for _ in range(50))
    print(f"latency {name} resize=w:800/output=f:jpg: cold miss {miss:.1f} ms, hit {hit:.2f} ms (median, one client)")
    # AVIF miss path
    r = wrk(f"{BASE}/cache=false/resize=width:800/output=format:avif,quality:80/{h}", 8)
    s = wrk(f"http://127.0.0.1:9101/?src={name}&w=800&fmt=avif&q=80", 8)
    rows.append(("miss 800w avif (8 conns)", r, s))
    print(f"avif miss: refract {r[0]:.1f} req/s p99 {r[1]} | sharp {s[0]:.1f} req/s p99 {s[1]} | ratio {r[0]/s[0]:.2f}")
    # 304 revalidation vs nginx
    url = f"{BASE}/resize=width:800/output=format:jpg,quality:80/{h}"
    _, hd, body = http(url)
    open(os.path.join(STATE, "static", "hit.jpg"), "wb").write(body)
    _, nhd, _ = http("http://127.0.0.1:9103/hit.jpg")
    r = wrk(url, 64, f"If-None-Match: {hd['etag']}")
    n = wrk("http://127.0.0.1:9103/hit.jpg", 64, f"If-None-Match: {nhd['etag']}")
    print(f"304 revalidation (64 conns): refract {r[0]:.0f} req/s p99 {r[1]} | nginx {n[0]:.0f} req/s p99 {n[1]} | ratio {r[0]/n[0]:.2f}")
    # bytes and SSIM against a reference resize of the full-size decode
    files = []
    for fmt, sfmt in (("jpg", "jpeg"), ("webp", "webp"), ("avif", "avif")):
        for who, u in (("refract", f"{BASE}/cache=false/resize=width:800/output=format:{fmt},quality:80/{h}"),
                       ("sharp", f"http://127.0.0.1:9101/?src={name}&w=800&fmt={sfmt}&q=80")):
            path = os.path.join(OUT, f"{who}-800.{fmt}")
            open(path, "wb").write(http(u)[2])
            files.append(path)
    for fmt, filt in (("jpg", ""), ("webp", "filters:format(webp):quality(80)/")):
        path = os.path.join(OUT, f"thumbor-800.{fmt}")
        open(path, "wb").write(http(f"http://127.0.0.1:9102/unsafe/800x0/{filt}{name}")[2])
        files.append(path)
    decodable = [f for f in files if not f.endswith(".avif")]
    q = subprocess.run(["target/release/examples/quality", PHOTO, "800", *decodable], capture_output=True, text=True).stdout
    for line in q.strip().splitlines():
        f, size, ssim = line.split("\t")
        print(f"quality {os.path.basename(f)}: {int(size)} bytes, SSIM {float(ssim):.4f}")
    for f in files:
        if f.endswith(".avif"):
            print(f"quality {os.path.basename(f)}: {os.path.getsize(f)} bytes, SSIM n/a (no AVIF decoder here)")
    stop()
    # peak RSS: 64 concurrent distinct misses on 20 MP photos
    pid = start(0)
    handles = [upload(p) for p in [PHOTO] + [os.path.join(os.path.dirname(PHOTO), f) for f in ("painting-6000x4000-icc.jpg", "string-3640x2400-icc.jpg")] if os.path.exists(p)]
    base_rss = rss_peak(pid)
    codes = []
    def one(i):
        hh = handles[i % len(handles)]
        try:
            codes.append(http(f"{BASE}/resize=width:{700 + i}/output=format:webp/{hh}")[0])
        except urllib.error.HTTPError as e:
            codes.append(e.code)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(f"peak RSS: {rss_peak(pid)} MiB after 64 concurrent distinct misses (idle {base_rss} MiB; answers {sorted(set(codes))})")
    # cost curve: 1, 5, 20, 50 MP inputs -> 800 px; 20 MP -> 200/800/2000 px (server-side transform time, median of 5)
    inputs = {}
    for mp, width in ((1, 1333), (5, 2981), (50, 9430)):
        body = http(f"{BASE}/cache=false/resize=width:{width}/output=format:jpg,quality:90/{handles[0]}")[2]
        path = os.path.join(OUT, f"input-{mp}mp.jpg")
        open(path, "wb").write(body)
        inputs[mp] = upload(path)
    inputs[20] = handles[0]
    for mp in (1, 5, 20, 50):
        ms = statistics.median(server_ms(f"{BASE}/cache=false/resize=width:800/output=format:jpg/{inputs[mp]}") for _ in range(5))
        print(f"cost {mp} MP -> 800 px jpg: {ms:.1f} ms")
    for w in (200, 800, 2000):
        ms = statistics.median(server_ms(f"{BASE}/cache=false/resize=width:{w}/output=format:jpg/{handles[0]}") for _ in range(5))
        print(f"cost 20 MP -> {w} px jpg: {ms:.1f} ms")
    stop()
    for workers in (1, 2):
        start(workers)
        hh = upload(PHOTO)
        r = wrk(f"{BASE}/cache=false/resize=width:800/output=format:jpg,quality:80/{hh}", 8)
        print(f"workers {workers}: {r[0]:.1f} req/s p99 {r[1]} (miss 800w jpg, 8 conns)")
        stop()


def table(compare_path, extra_path):
    compare = open(compare_path).read()
    extra = open(extra_path).read()
    print(f"# Refract vs peers, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, wrk {DUR} per row\n")
    print("```")
    print(compare.strip())
    print(extra.strip())
    print("```")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "start":
        start(int(sys.argv[2]))
    elif cmd == "extra":
        extra()
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3])
