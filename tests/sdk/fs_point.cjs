// Point filestack-js 4.3.8 (Node build) at BASE, e.g. http://127.0.0.1:PORT.
//   const { point } = require('./fs_point.cjs'); point(client, BASE);
// 1. client.session.urls is the module-global config.urls object (shared by every Client and read by
//    Filelink/getCdnHost): mutate it in place -> uploads, File API, /process, CDN all go to BASE.
// 2. filestack-js's Node HttpAdapter calls http.request({host: 'h:PORT', port, ...}) without `hostname`,
//    so any URL with an explicit port fails with ENOTFOUND 'h:PORT'. Fix by deriving `hostname`.
// 3. A location_url answered without a scheme is turned into https://location_url by the SDK; if the
//    server speaks plain http, route https requests for BASE's host:port over http instead.
const http = require('http');
const https = require('https');

function point(client, base) {
  base = base.replace(/\/+$/, '');
  Object.assign(client.session.urls, {
    uploadApiUrl: base,
    fileApiUrl: `${base}/api/file`,
    processUrl: base,
    cdnUrl: base,
    cloudApiUrl: base,
  });
  const target = new URL(base);
  const splitHost = (o) => {
    if (o && typeof o === 'object' && !(o instanceof URL) && !o.hostname && typeof o.host === 'string') {
      const m = /^([^\[\]:]+|\[[^\]]+\]):(\d+)$/.exec(o.host);
      if (m) return { ...o, hostname: m[1].replace(/^\[|\]$/g, ''), port: o.port || m[2] };
    }
    return o;
  };
  if (http.request.__fsPointed) return;
  const httpRequest = http.request;
  http.request = function (o, ...rest) { return httpRequest.call(this, splitHost(o), ...rest); };
  http.request.__fsPointed = true;
  const httpsRequest = https.request;
  https.request = function (o, ...rest) {
    o = splitHost(o);
    if (target.protocol === 'http:' && o && o.hostname === target.hostname &&
        String(o.port || 443) === String(target.port || 80)) {
      const { agent, ...plain } = o; // an https.Agent cannot carry an http request
      return httpRequest.call(http, { ...plain, protocol: 'http:' }, ...rest);
    }
    return httpsRequest.call(this, o, ...rest);
  };
}
module.exports = { point };
