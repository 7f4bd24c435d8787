// Drive filestack-js 4.3.8 against a Refract server (tests/sdk_clients.rs).
// Usage: node js_client.mjs BASE FILE   -> prints one JSON object with the handles of each call.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const filestack = require('filestack-js');
const { point } = require('./fs_point.cjs');

const [BASE, FILE] = process.argv.slice(2);
// with REFRACT_SDK_SECRET set, the server's app requires signatures: the client signs every call
// (Filestack's documented way: a base64 policy and its hex HMAC-SHA256, given to `init`)
const crypto = require('node:crypto');
const secret = process.env.REFRACT_SDK_SECRET || 'an-app-secret-for-the-sdk-test';
const policy = Buffer.from(JSON.stringify({ expiry: 4102444800 })).toString('base64url');
const security = { policy, signature: crypto.createHmac('sha256', secret).update(policy).digest('hex') };
const client = filestack.init('AhTgLagciQByzXpFGRI0Az', process.env.REFRACT_SDK_SECRET ? { security } : {});
point(client, BASE);
const out = {};
try {
  out.regular = (await client.upload(FILE, {}, { filename: 'noise.png' })).handle;
  out.intelligent = (await client.upload(FILE, { intelligent: true })).handle;
  // the server fetches this URL itself: signed when its app requires it
  const signedQuery = process.env.REFRACT_SDK_SECRET ? `?policy=${policy}&signature=${security.signature}` : '';
  out.from_url = (await client.storeURL(`${BASE}/${out.regular}${signedQuery}`, { filename: 'copy.png' })).handle;
  const meta = await client.metadata(out.regular, { width: true, height: true, size: true });
  out.metadata = meta;
  const sha256 = (bytes) => crypto.createHash('sha256').update(Buffer.from(bytes)).digest('hex');
  out.download_sha256 = sha256((await client.download(out.regular)).data);
  out.retrieve_metadata = await client.retrieve(out.regular, { metadata: true });
  out.retrieve_head_length = (await client.retrieve(out.regular, { head: true }))['content-length'];
  // remove needs a policy and signature client-side even when the server is open
  out.removed = (await client.storeURL(`${BASE}/${out.regular}${signedQuery}`, { filename: 'doomed.png' })).handle;
  await client.remove(out.removed, security);
  console.log(JSON.stringify(out));
} catch (e) {
  console.error('filestack-js failed:', e && (e.status || e.message), JSON.stringify(e && e.details || e));
  process.exitCode = 1;
}
