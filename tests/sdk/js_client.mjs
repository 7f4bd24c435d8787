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
const client = filestack.init('AhTgLagciQByzXpFGRI0Az');
point(client, BASE);
const out = {};
try {
  out.regular = (await client.upload(FILE, {}, { filename: 'noise.png' })).handle;
  out.intelligent = (await client.upload(FILE, { intelligent: true })).handle;
  out.from_url = (await client.storeURL(`${BASE}/${out.regular}`, { filename: 'copy.png' })).handle;
  const meta = await client.metadata(out.regular, { width: true, height: true, size: true });
  out.metadata = meta;
  console.log(JSON.stringify(out));
} catch (e) {
  console.error('filestack-js failed:', e && (e.status || e.message), JSON.stringify(e && e.details || e));
  process.exitCode = 1;
}
