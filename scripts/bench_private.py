#!/usr/bin/env python3
"""Private files behind an edge: what one user's revalidation costs the origin.

Starts Refract (target/release/refract) with one app that requires signatures, uploads PHOTO,
then times, sequentially over one keep-alive connection with `Authorization: Bearer`:
  - a full transform (a distinct width each time, so every request is a miss),
  - a cache hit that sends the bytes (200),
  - a conditional request answered 304 from the cache index (the edge's revalidation),
  - a refusal with a matching ETag (403),
and, when varnishd is installed, the same private derivative through deploy/varnish/refract.vcl
(the second user's request: Varnish revalidates with Refract and serves its stored bytes).
Loopback only; bounded counts. Usage: scripts/bench_private.py [PHOTO]  (release build first)."""
import base64, hashlib, hmac, http.client, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "../shared/corpus/images/photos/kleiber-6028x3391.jpg")
SECRET, KEY = "bench-private-secret-0123456789", "BENCHAPP"


def bearer(secret, policy):
    p = base64.urlsafe_b64encode(json.dumps(policy).encode()).decode()
    return f"Bearer {p}.{hmac.new(secret.encode(), p.encode(), hashlib.sha256).hexdigest()}"


def start(data):
    config = os.path.join(data, "refract.toml")
    open(config, "w").write(f'[[apps]]\napi_key = "{KEY}"\nsecrets = ["{SECRET}"]\n')
    proc = subprocess.Popen([os.path.join(ROOT, "target/release/refract"), "serve", "--listen", "127.0.0.1:0",
                             "--data-dir", data, "--config", config], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, RUST_LOG="error"))
    line = proc.stdout.readline()
    port = int(line.rsplit(":", 1)[1].split()[0].strip("/"))
    return proc, port


def timed(conn, path, headers, n, expect):
    samples = []
    for i in range(n):
        p = path(i) if callable(path) else path
        t = time.perf_counter()
        conn.request("GET", p, headers=headers)
        r = conn.getresponse()
        body = r.read()
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status == expect, (p, r.status, body[:200])
    return samples


def row(name, samples):
    q = statistics.quantiles(samples, n=10)
    return f"| {name} | {len(samples)} | {statistics.median(samples):.2f} | {q[8]:.2f} |"


def main():
    data = tempfile.mkdtemp(prefix="refract-bench-private-")
    proc, port = start(data)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        policy = {"expiry": int(time.time()) + 3600}
        auth = {"Authorization": bearer(SECRET, policy)}
        upload = bearer(SECRET, dict(policy, call=["store"]))
        conn.request("POST", f"/api/store/S3?key={KEY}", body=open(PHOTO, "rb").read(), headers={"Authorization": upload})
        handle = json.loads(conn.getresponse().read())["handle"]
        url = f"/resize=width:800/{handle}"
        miss = timed(conn, lambda i: f"/resize=width:{801 + i}/{handle}", auth, 15, 200)
        conn.request("GET", url, headers=auth)
        r = conn.getresponse()
        r.read()
        etag = r.getheader("ETag")
        hit = timed(conn, url, auth, 300, 200)
        revalidated = timed(conn, url, dict(auth, **{"If-None-Match": etag}), 1000, 304)
        forged = {"Authorization": bearer("another-secret-0123456789", policy), "If-None-Match": etag}
        refused = timed(conn, url, forged, 300, 403)
        rows = [row("full transform (miss, 800 px from the photo)", miss), row("cache hit, bytes sent (200)", hit),
                row("revalidation from the index (304)", revalidated), row("bad credentials, matching ETag (403)", refused)]
        rows += edge(port, url, auth, etag)
        print(f"photo: {os.path.basename(PHOTO)}\n")
        print("| request | n | median ms | p90 ms |\n|---|---|---|---|")
        print("\n".join(rows))
        print(f"\nfull transform / 304 revalidation (medians): {statistics.median(miss) / statistics.median(revalidated):.0f}x")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def edge(port, url, auth, etag):
    """The second user's request through Varnish: the edge revalidates with Refract (304) and
    serves the bytes it stored. Empty when varnishd is not installed."""
    if not shutil.which("varnishd") and not os.path.exists("/usr/sbin/varnishd"):
        return []
    pidfile = tempfile.mktemp()
    out = subprocess.run([os.path.join(ROOT, "scripts/varnish.sh"), f"127.0.0.1:{port}", "0", pidfile],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    try:
        host, vport = out.replace("http://", "").split(":")
        conn = http.client.HTTPConnection(host, int(vport))
        timed(conn, url, auth, 1, 200)  # the first user: a miss at the edge, stored
        other = {"Authorization": bearer(SECRET, {"expiry": int(time.time()) + 600, "call": ["convert"]})}
        through = timed(conn, url, other, 500, 200)
        return [row("through Varnish, revalidated (200 from the edge's copy)", through)]
    finally:
        pid = int(open(pidfile).read())
        os.kill(pid, 15)


if __name__ == "__main__":
    main()
