#
# Refract behind Varnish (7.1, VCL 4.1): an edge that stores each private derivative ONCE and
# revalidates it for every user.
#
# Run it (see README, "Private files behind a CDN", and scripts/varnish.sh):
#
#     varnishd -F -j none -n /tmp/refract-edge -a 127.0.0.1:6081 \
#              -f "$PWD/deploy/varnish/refract.vcl" -s malloc,256m
#
# after pointing the `backend refract` below at Refract (scripts/varnish.sh rewrites the .host and
# .port lines of a copy for you).
#
# What Refract says, and what this edge does with it:
#
#   * `Cache-Control: public, max-age=N` (apps without `require_signature`): an ordinary shared
#     object, served from the edge for N seconds without asking Refract.
#
#   * `Cache-Control: no-cache` + `CDN-Cache-Control: no-cache` + a strong `ETag` (an app that
#     requires signatures): a private answer. The edge stores it, keyed by URL only (never by
#     credentials), with ttl ~0, grace 0 and a long `keep`: the object is stale at once, so every
#     request is a miss that carries the stale copy along, and Varnish makes the fetch
#     conditional by itself (`If-None-Match: <stored ETag>`). The fetch forwards the user's own
#     `Authorization` header. Refract checks the credentials and answers `304` from its derivative
#     index (no source read, no transform): the edge then serves the bytes it already holds
#     (`beresp.was_304`). One stored copy, every user checked, one transform in total.
#
#   * `401` / `403` (missing or bad credentials, `Cache-Control: no-store`), or any other answer
#     that is not a `200` (or a `304` to the edge's own revalidation): passed through to that user
#     only. It is never stored, and it never evicts or replaces the stored copy: see
#     "Why a refused revalidation is abandoned" below.
#
#   * Requests that waited for a fetch of the same URL (request coalescing) never get the
#     private object as a plain hit: see vcl_hit.
#
# The stored bytes of a private answer are therefore only ever sent to a client after Refract
# said `200` or `304` to that client's own credentials.
#
# Every answer carries `X-Edge`, saying what the edge did:
#   hit          served from the edge's store without asking Refract (public answers)
#   miss         fetched from Refract in full (first request, or the file changed)
#   revalidated  Refract said 304 to this user's conditional request: the stored bytes were sent
#   pass         not cacheable here (refusals, uploads, other methods): Refract's answer as is
#
# Purging (from loopback only, see `acl purgers`):
#   curl -X PURGE http://127.0.0.1:6081/resize=width:100/HANDLE     one URL, every variant
#   curl -X BAN -H 'Surrogate-Key: HANDLE' http://127.0.0.1:6081/   everything derived from a
#                                                                  file (Refract tags each answer
#                                                                  with `Surrogate-Key`)
#
vcl 4.1;

import std;

# scripts/varnish.sh rewrites the `.host = ` and `.port = ` lines of a copy of this file.
backend refract {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 5s;
    # a first transform of a large image takes a while
    .first_byte_timeout = 120s;
    .between_bytes_timeout = 60s;
}

# Who may PURGE / BAN.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # Our own markers come from this file only, never from a client.
    if (req.restarts == 0) {
        unset req.http.X-Edge-Pass;
    }

    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        # Every object under this URL's hash: the private copy and all its Vary variants.
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        # One key per request; keys are handles or `src-<hex>`, so a plain token.
        if (req.http.Surrogate-Key !~ "^[A-Za-z0-9_-]+$") {
            return (synth(400, "BAN needs one Surrogate-Key header (a handle or src-<hex>)"));
        }
        # An "obj.*-only" ban: the ban lurker applies it in the background too.
        if (std.ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.Surrogate-Key + "(\s|$)")) {
            return (synth(200, "Banned"));
        }
        return (synth(400, std.ban_error()));
    }

    if (req.method == "GET" || req.method == "HEAD") {
        # A refused revalidation comes back here (see vcl_synth): straight to Refract and back.
        if (req.http.X-Edge-Pass) {
            return (pass);
        }
        # Refract reads no cookies: do not let a site's cookies turn every request into a pass.
        unset req.http.Cookie;
        if (req.http.Authorization) {
            # The builtin VCL would `pass` every request with credentials. Look the URL up
            # instead: private answers are stored once and revalidated per user (with this
            # user's Authorization, see vcl_backend_response); public answers are plain hits.
            # The hash is the URL and Host only (vcl_hash is the builtin one): never the
            # credentials, or every user would get (and cost) a copy of their own.
            call vcl_req_host;
            return (hash);
        }
    }
    # Everything else as the builtin VCL does it: GET/HEAD without credentials are looked up,
    # uploads, deletes and other methods go to Refract (pass / pipe).
}

sub vcl_hit {
    # ESSENTIAL for private objects. A private object is stale as soon as it is stored (ttl
    # 1ms), so a later lookup is a miss that revalidates. But requests that arrived while the
    # object was being fetched wait on the waiting list (request coalescing), and when the
    # fetch ends they are looked up again with their ORIGINAL arrival time (req.t_req), which
    # is older than the new object: to them it is fresh, whatever its ttl (even req.ttl = 0s
    # does not help), and they would get a plain hit: another user's private bytes without
    # their own credentials being checked (seen in testing: 30 concurrent requests mixing
    # valid, bad and missing credentials, every one answered 200 with the image). So a hit on
    # a private object goes to Refract as a pass: that user's own 200, 401 or 403.
    if (obj.http.X-Edge-Revalidate) {
        return (pass);
    }
}

sub vcl_backend_fetch {
    unset bereq.http.X-Edge-Pass;
    # On a cache miss, Varnish removes the client's own If-None-Match / If-Modified-Since and,
    # when it holds a stale copy (within `keep`), adds its own from that copy: a conditional
    # header on a cacheable fetch means "revalidating the stored copy". The client's
    # Authorization header is forwarded as is: Refract checks it on every revalidation.
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        # pass: Refract's answer for this client only
        set beresp.http.X-Edge = "pass";
        return (deliver);
    }

    # Why a refused revalidation is abandoned: when a fetch that carried a stale copy along
    # completes, Varnish 7.1 retires that copy (vbf_stp_fetchend -> HSH_Replace), whatever the
    # new answer is, even an uncacheable 403. One user with a bad signature would evict the
    # object every user shares. So when the revalidation is answered with anything but a 200
    # or a 304, drop this fetch instead: the stale copy stays, and the client side (vcl_synth)
    # restarts the request as a `pass`, which fetches Refract's refusal for this user alone.
    if (!beresp.was_304 && beresp.status != 200 &&
        (bereq.http.If-None-Match || bereq.http.If-Modified-Since)) {
        return (abandon);
    }

    # Refusals (and any non-200 answer to credentials) are for this client only. ttl 0, not the
    # builtin's 120s hit-for-miss: a hit-for-miss object in front of the stored copy would make
    # the next lookups plain misses (no conditional fetch, no 304) for two minutes.
    if (beresp.status == 401 || beresp.status == 403 ||
        (bereq.http.Authorization && beresp.status != 200)) {
        set beresp.http.X-Edge = "pass";
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    if (beresp.was_304) {
        set beresp.http.X-Edge = "revalidated";
    } else {
        set beresp.http.X-Edge = "miss";
    }

    # What Refract says to CDNs (CDN-Cache-Control, RFC 9213) wins over Cache-Control.
    if (beresp.http.CDN-Cache-Control) {
        set beresp.http.X-Edge-Cc = beresp.http.CDN-Cache-Control;
    } else {
        set beresp.http.X-Edge-Cc = beresp.http.Cache-Control;
    }

    # A private answer: store once, revalidate for every request.
    if (beresp.status == 200 &&
        beresp.http.X-Edge-Cc ~ "(?i)(^|[ ,])no-cache($|[ ,=])" &&
        beresp.http.X-Edge-Cc !~ "(?i)(^|[ ,])(no-store|private)($|[ ,=])" &&
        (beresp.http.ETag || beresp.http.Last-Modified) &&
        !beresp.http.Set-Cookie && beresp.http.Vary != "*") {
        unset beresp.http.X-Edge-Cc;
        # Stale at once, no grace (a grace hit would serve the copy without asking Refract),
        # kept for revalidation. Not `ttl = 0s`: Varnish 7.1's lookup skips objects whose ttl is
        # 0 (HSH_Lookup: `if (oc->ttl <= 0.) continue;`), so such an object is never found as
        # a stale copy and every request would be a full fetch (seen in testing). A millisecond
        # is enough to be found; a lookup that still sees the object fresh is passed by vcl_hit.
        set beresp.ttl = 1ms;
        set beresp.grace = 0s;
        # how long the copy is kept for revalidation after its last 200/304 (the storage's
        # LRU evicts earlier what does not fit)
        set beresp.keep = 7d;
        set beresp.http.X-Edge-Revalidate = "1";
        return (deliver);
    }
    unset beresp.http.X-Edge-Revalidate;

    # `CDN-Cache-Control: no-store` (an app with `private_caching = "private"`: only the user's
    # browser may keep it) or `private`: hit-for-miss, as the builtin VCL does for Cache-Control.
    if (beresp.http.X-Edge-Cc ~ "(?i)(^|[ ,])(no-store|private)($|[ ,=])") {
        unset beresp.http.X-Edge-Cc;
        set beresp.http.X-Edge = "pass";
        call vcl_beresp_hitmiss;
    }

    # A public answer: the CDN's own max-age when there is one; otherwise Varnish's TTL from
    # Cache-Control / Expires (done before this sub runs). The builtin VCL then turns no-store,
    # private, Set-Cookie or `Vary: *` into hit-for-miss.
    if (beresp.http.X-Edge-Cc ~ "(?i)(^|[ ,])max-age=[0-9]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.X-Edge-Cc, "(?i)^(.*[ ,])?max-age=([0-9]+).*$", "\2s"), beresp.ttl);
    }
    unset beresp.http.X-Edge-Cc;
    # falls through to the builtin vcl_backend_response
}

sub vcl_synth {
    # A revalidation that Refract refused (or failed) was abandoned (see vcl_backend_response):
    # ask again as a pass, so that this client gets Refract's own answer (status, headers, body)
    # and the stored copy stays.
    if (resp.status == 503 && req.restarts == 0 && !req.http.X-Edge-Pass &&
        (req.method == "GET" || req.method == "HEAD")) {
        set req.http.X-Edge-Pass = "1";
        return (restart);
    }
}

sub vcl_deliver {
    if (obj.hits > 0 && !req.http.X-Edge-Pass) {
        set resp.http.X-Edge = "hit";
    } else if (!resp.http.X-Edge) {
        set resp.http.X-Edge = "pass";
    }
    unset resp.http.X-Edge-Revalidate;
}
