// Builds transformation URLs with the real filestack-js SDK (pinned in package.json) and prints
// one JSON object per line: {"sdk":"js","case":…,"url":…,"expect":{apikey,chain,security,source}}.
//
// Usage: node tests/sdk/gen_js.mjs <base>     e.g. node gen_js.mjs http://refract.invalid
// Every URL starts with <base> (Filelink.setCustomDomain(base); client.transform() URLs, which only
// know CNAMEs, have their https://cdn.filestackcontent.com prefix swapped for <base>).
//
// `expect` is what Refract's `debug` mode must answer for that URL (see tests/sdk_conformance.rs):
// long option names, only the options given, colours upper-cased hex / lower-case names, security
// outside the chain. Expectations are written by hand from the reference docs, never derived from
// the SDK's own output.
import * as filestack from 'filestack-js';

const BASE = process.argv[2];
if (!BASE) {
  console.error('usage: node gen_js.mjs <base-url>');
  process.exit(2);
}
const CDN = 'https://cdn.filestackcontent.com';
const KEY = 'AhTgLagciQByzXpFGRI0Az';
const SECRET = 'refract-test-secret';
const H1 = 'refractHandle0000001';
const H2 = 'refractHandle0000002';
const H3 = 'refractHandle0000003';

const { Filelink, getSecurity } = filestack;
if (filestack.version !== '4.3.8') throw new Error(`filestack-js ${filestack.version} installed, 4.3.8 expected: run tests/sdk/setup.sh`);

// ---- expectation helpers -------------------------------------------------------------------
const H = (handle) => ({ type: 'handle', handle });
const U = (url) => ({ type: 'url', url });
const A = (alias, path) => ({ type: 'alias', alias, path });
const L = (...items) => ({ type: 'list', items });
const T = (name, params = {}) => ({ name, params });

const seen = new Set();
let failed = false;
function emit(name, url, { apikey = null, chain, security = null, source }) {
  if (seen.has(name)) throw new Error(`duplicate case ${name}`);
  seen.add(name);
  if (!url.startsWith(BASE + '/')) throw new Error(`${name}: url does not start with base: ${url}`);
  const line = { sdk: 'js', case: name, url, expect: { apikey, chain, security, source } };
  process.stdout.write(JSON.stringify(line) + '\n');
}
// Runs one builder; an SDK exception is reported (and makes the generator fail) instead of
// silently dropping the case.
function gen(name, build, expect) {
  let url;
  try {
    url = build();
  } catch (e) {
    failed = true;
    console.error(`gen_js: case ${name}: SDK threw: ${e.message} ${JSON.stringify(e.details || '')}`);
    return;
  }
  emit(name, url, expect);
}

const fl = (src, key) => new Filelink(src, key).setCustomDomain(BASE);
const rehost = (url) => {
  if (!url.startsWith(CDN + '/')) throw new Error(`unexpected host in ${url}`);
  return BASE + url.slice(CDN.length);
};

// Security made the way filestack-js makes it (standard base64 of compact JSON, hex HMAC-SHA256).
const SEC = getSecurity({ expiry: 1893456000, call: ['read', 'convert'] }, SECRET);
// Policies whose standard base64 contains '/' (JS then quotes the value) and '+' (must stay '+').
function findPolicy(ch) {
  // '?', '>' and '~' in the JSON text produce the 6-bit groups that encode to '/' and '+';
  // the padding before them decides the alignment.
  for (const tail of ['?', '>', '~', '?>', '>?', '~~']) {
    for (let pad = 0; pad < 3; pad++) {
      const url = `https://images\\.example\\.com/${'x'.repeat(pad)}.*${tail}`;
      const s = getSecurity({ expiry: 1893456000, call: ['read', 'convert'], url }, SECRET);
      if (s.policy.includes(ch)) return s;
    }
  }
  throw new Error(`no policy with ${ch}`);
}
const SEC_SLASH = findPolicy('/');
const SEC_PLUS = findPolicy('+');
const sec = (s) => ({ policy: s.policy, signature: s.signature });

// ---- geometry --------------------------------------------------------------------------------
gen('handle-with-apikey', () => fl(H1, KEY).resize({ width: 300 }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 300 })], source: H(H1) });
gen('resize-full', () => fl(H1).resize({ width: 800, height: 600, fit: 'crop', align: ['top', 'left'] }).toString(),
  { chain: [T('resize', { width: 800, height: 600, fit: 'crop', align: ['top', 'left'] })], source: H(H1) });
gen('resize-align-faces', () => fl(H1).resize({ width: 200, height: 200, fit: 'crop', align: 'faces' }).toString(),
  { chain: [T('resize', { width: 200, height: 200, fit: 'crop', align: 'faces' })], source: H(H1) });
gen('resize-decimal', () => fl(H1).resize({ width: 10.5 }).toString(),
  { chain: [T('resize', { width: 10.5 })], source: H(H1) });
gen('resize-height-max', () => fl(H1).resize({ height: 400, fit: 'max', align: 'bottom' }).toString(),
  { chain: [T('resize', { height: 400, fit: 'max', align: 'bottom' })], source: H(H1) });
gen('resize-align-middle-center', () => fl(H1).resize({ width: 64, fit: 'scale', align: ['middle', 'center'] }).toString(),
  { chain: [T('resize', { width: 64, fit: 'scale', align: ['middle', 'center'] })], source: H(H1) });
gen('crop', () => fl(H1).crop({ dim: [10, 20, 200, 250] }).toString(),
  { chain: [T('crop', { dim: [10, 20, 200, 250] })], source: H(H1) });
gen('rotate-exif', () => fl(H1).rotate({ deg: 'exif', exif: true, background: 'fff' }).toString(),
  { chain: [T('rotate', { deg: 'exif', exif: true, background: 'FFFFFF' })], source: H(H1) });
gen('rotate-90', () => fl(H1).rotate({ deg: 90, exif: false, background: 'red' }).toString(),
  { chain: [T('rotate', { deg: 90, exif: false, background: 'red' })], source: H(H1) });
gen('flip-flop', () => fl(H1).flip().flop().toString(),
  { chain: [T('flip'), T('flop')], source: H(H1) });
gen('smart_crop', () => fl(H1).smartCrop({ mode: 'face', width: 300, height: 200 }).toString(),
  { chain: [T('smart_crop', { mode: 'face', width: 300, height: 200 })], source: H(H1) });
gen('upscale-opts', () => fl(H1).upscale({ upscale: false, noise: 'low', style: 'artwork' }).toString(),
  { chain: [T('upscale', { upscale: false, noise: 'low', style: 'artwork' })], source: H(H1) });
gen('upscale-bare', () => fl(H1).upscale().toString(),
  { chain: [T('upscale')], source: H(H1) });
gen('animate', () => fl([H1, H2, H3]).animate({ delay: 500, loop: 2, width: 300, height: 300, fit: 'scale', background: 'transparent', align: 'center' }).toString(),
  { chain: [T('animate', { delay: 500, loop: 2, width: 300, height: 300, fit: 'scale', background: 'transparent', align: 'center' })], source: L(H(H1), H(H2), H(H3)) });
gen('collage', () => fl(H1).collage({ files: [H2, H3], width: 800, height: 600, margin: 5, color: 'white', fit: 'crop', autorotate: true }).toString(),
  { chain: [T('collage', { files: [H2, H3], width: 800, height: 600, margin: 5, color: 'white', fit: 'crop', autorotate: true })], source: H(H1) });

// ---- watermark -------------------------------------------------------------------------------
gen('watermark', () => fl(H1).watermark({ file: H2, size: 50, position: ['bottom', 'right'] }).toString(),
  { chain: [T('watermark', { file: H2, size: 50, position: ['bottom', 'right'] })], source: H(H1) });
gen('watermark-url-quoted', () => fl(H1, KEY).watermark({ file: 'https://example.com/logo.png', position: 'top' }).toString(),
  { apikey: KEY, chain: [T('watermark', { file: 'https://example.com/logo.png', position: 'top' })], source: H(H1) });

// ---- faces -----------------------------------------------------------------------------------
gen('detect_faces-bare', () => fl(H1).detectFaces().toString(),
  { chain: [T('detect_faces')], source: H(H1) });
gen('detect_faces-opts', () => fl(H1).detectFaces({ minsize: 0.25, maxsize: 0.55, color: '00ff00', export: true }).toString(),
  { chain: [T('detect_faces', { minsize: 0.25, maxsize: 0.55, color: '00FF00', export: true })], source: H(H1) });
gen('crop_faces-all', () => fl(H1).cropFaces({ faces: 'all', mode: 'fill', width: 300, height: 300, buffer: 20 }).toString(),
  { chain: [T('crop_faces', { faces: 'all', mode: 'fill', width: 300, height: 300, buffer: 20 })], source: H(H1) });
gen('crop_faces-list', () => fl(H1).cropFaces({ faces: [1, 2], mode: 'crop', minsize: 0.1 }).toString(),
  { chain: [T('crop_faces', { faces: [1, 2], mode: 'crop', minsize: 0.1 })], source: H(H1) });
gen('pixelate_faces', () => fl(H1).pixelateFaces({ faces: 2, amount: 15, blur: 5, type: 'oval', minsize: 0.3, maxsize: 0.9, buffer: 10 }).toString(),
  { chain: [T('pixelate_faces', { faces: 2, amount: 15, blur: 5, type: 'oval', minsize: 0.3, maxsize: 0.9, buffer: 10 })], source: H(H1) });
gen('blur_faces', () => fl(H1).blurFaces({ faces: 'all', amount: 5, blur: 3.5, type: 'rect' }).toString(),
  { chain: [T('blur_faces', { faces: 'all', amount: 5, blur: 3.5, type: 'rect' })], source: H(H1) });

// ---- borders and effects ---------------------------------------------------------------------
gen('rounded_corners-max', () => fl(H1).roundedCorners({ radius: 'max', blur: 0.5, background: 'black' }).toString(),
  { chain: [T('rounded_corners', { radius: 'max', blur: 0.5, background: 'black' })], source: H(H1) });
gen('rounded_corners-bare', () => fl(H1).roundedCorners().toString(),
  { chain: [T('rounded_corners')], source: H(H1) });
gen('vignette', () => fl(H1).vignette({ amount: 30, blurmode: 'linear', background: 'FFF' }).toString(),
  { chain: [T('vignette', { amount: 30, blurmode: 'linear', background: 'FFFFFF' })], source: H(H1) });
gen('polaroid', () => fl(H1).polaroid({ color: 'snow', rotate: 30, background: 'transparent' }).toString(),
  { chain: [T('polaroid', { color: 'snow', rotate: 30, background: 'transparent' })], source: H(H1) });
gen('polaroid-true', () => fl(H1).polaroid(true).toString(),
  { chain: [T('polaroid')], source: H(H1) });
gen('torn_edges', () => fl(H1).tornEdges({ spread: [5, 15], background: 'white' }).toString(),
  { chain: [T('torn_edges', { spread: [5, 15], background: 'white' })], source: H(H1) });
gen('shadow', () => fl(H1).shadow({ blur: 4, opacity: 60, vector: [-10, 10], color: '000000', background: 'fff' }).toString(),
  { chain: [T('shadow', { blur: 4, opacity: 60, vector: [-10, 10], color: '000000', background: 'FFFFFF' })], source: H(H1) });
gen('circle', () => fl(H1).circle({ background: 'abcdef' }).toString(),
  { chain: [T('circle', { background: 'ABCDEF' })], source: H(H1) });
gen('border', () => fl(H1).border({ width: 5, color: '123', background: 'white' }).toString(),
  { chain: [T('border', { width: 5, color: '112233', background: 'white' })], source: H(H1) });
gen('ascii', () => fl(H1).ascii({ foreground: 'black', background: 'white', colored: true, size: 50, reverse: true }).toString(),
  { chain: [T('ascii', { foreground: 'black', background: 'white', colored: true, size: 50, reverse: true })], source: H(H1) });

// ---- filters ---------------------------------------------------------------------------------
gen('sharpen-blur', () => fl(H1).sharpen({ amount: 5 }).blur({ amount: 3 }).toString(),
  { chain: [T('sharpen', { amount: 5 }), T('blur', { amount: 3 })], source: H(H1) });
gen('bare-filters', () => fl(H1).monochrome().negative().redeye().toString(),
  { chain: [T('monochrome'), T('negative'), T('redeye')], source: H(H1) });
gen('tone-filters', () => fl(H1).blackwhite({ threshold: 40 }).sepia({ tone: 70 }).pixelate({ amount: 10 }).oilPaint({ amount: 4 }).toString(),
  { chain: [T('blackwhite', { threshold: 40 }), T('sepia', { tone: 70 }), T('pixelate', { amount: 10 }), T('oil_paint', { amount: 4 })], source: H(H1) });
gen('filters-true', () => fl(H1).sharpen(true).blur(true).sepia(true).toString(),
  { chain: [T('sharpen'), T('blur'), T('sepia')], source: H(H1) });
gen('modulate', () => fl(H1).modulate({ brightness: 150, saturation: 80, hue: 180 }).toString(),
  { chain: [T('modulate', { brightness: 150, saturation: 80, hue: 180 })], source: H(H1) });
gen('partial_pixelate', () => fl(H1).partialPixelate({ objects: [[10, 20, 200, 250], [275, 91, 500, 557]], amount: 10, blur: 4, type: 'oval' }).toString(),
  { chain: [T('partial_pixelate', { objects: [[10, 20, 200, 250], [275, 91, 500, 557]], amount: 10, blur: 4, type: 'oval' })], source: H(H1) });
gen('partial_blur', () => fl(H1).partialBlur({ objects: [[10, 20, 30, 40]], amount: 5, blur: 2.5, type: 'rect' }).toString(),
  { chain: [T('partial_blur', { objects: [[10, 20, 30, 40]], amount: 5, blur: 2.5, type: 'rect' })], source: H(H1) });
gen('enhance-bare', () => fl(H1).enhance().toString(),
  { chain: [T('enhance')], source: H(H1) });
gen('enhance-preset', () => fl(H1).enhance({ preset: 'beautify_plus' }).toString(),
  { chain: [T('enhance', { preset: 'beautify_plus' })], source: H(H1) });

// ---- output / compression --------------------------------------------------------------------
gen('output-webp', () => fl(H1).output({ format: 'webp', quality: 80, strip: true, compress: true, background: 'white' }).toString(),
  { chain: [T('output', { format: 'webp', quality: 80, strip: true, compress: true, background: 'white' })], source: H(H1) });
gen('output-jpg-q', () => fl(H1).output({ format: 'jpg', quality: 'input', colorspace: 'cmyk', page: 2, density: 150 }).toString(),
  { chain: [T('output', { format: 'jpg', quality: 'input', colorspace: 'cmyk', page: 2, density: 150 })], source: H(H1) });
gen('output-gif-novalidator', () => fl(H1).setUseValidator(false).output({ format: 'gif' }).toString(),
  { chain: [T('output', { format: 'gif' })], source: H(H1) });
gen('compress-bare', () => fl(H1).compress().toString(),
  { chain: [T('compress')], source: H(H1) });
gen('compress-metadata', () => fl(H1).setUseValidator(false).compress({ metadata: true }).toString(),
  { chain: [T('compress', { metadata: true })], source: H(H1) });
gen('quality', () => fl(H1).quality({ value: 75 }).toString(),
  { chain: [T('quality', { value: 75 })], source: H(H1) });
gen('pjpg', () => fl(H1).pjpg({ quality: 80, metadata: true }).toString(),
  { chain: [T('pjpg', { quality: 80, metadata: true })], source: H(H1) });
gen('no_metadata-auto_image', () => fl(H1).noMetadata().autoImage().toString(),
  { chain: [T('no_metadata'), T('auto_image')], source: H(H1) });
gen('imagesize', () => fl(H1).imagesize().toString(),
  { chain: [T('imagesize')], source: H(H1) });

// ---- control tasks ---------------------------------------------------------------------------
gen('cache-false', () => fl(H1).cache(false).resize({ width: 100 }).toString(),
  { chain: [T('cache', { enabled: false }), T('resize', { width: 100 })], source: H(H1) });
gen('cache-true', () => fl(H1).resize({ width: 100 }).cache(true).toString(),
  { chain: [T('resize', { width: 100 }), T('cache')], source: H(H1) });
gen('cache-expiry', () => fl(H1, KEY).cache({ expiry: 3600 }).resize({ width: 100 }).toString(),
  { apikey: KEY, chain: [T('cache', { expiry: 3600 }), T('resize', { width: 100 })], source: H(H1) });
gen('store-opts', () => fl(H1, KEY).resize({ width: 200 }).store({ filename: 'out.png', location: 's3', path: '/thumbs/200/', container: 'my-bucket', region: 'us-east-1', access: 'public', base64decode: false }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 200 }), T('store', { filename: 'out.png', location: 's3', path: '/thumbs/200/', container: 'my-bucket', region: 'us-east-1', access: 'public', base64decode: false })], source: H(H1) });
// The JS validator rejects every `workflows` value (workflowsDef does not resolve), so build with it off.
gen('store-workflows-novalidator', () => fl(H1, KEY).setUseValidator(false).store({ location: 'gcs', workflows: ['wf-one', 'wf-two'] }).toString(),
  { apikey: KEY, chain: [T('store', { location: 'gcs', workflows: ['wf-one', 'wf-two'] })], source: H(H1) });
gen('store-bare', () => fl(H1, KEY).store(true).toString(),
  { apikey: KEY, chain: [T('store')], source: H(H1) });
gen('fallback', () => fl(H1).fallback({ handle: H2, cache: 3600 }).resize({ width: 50 }).toString(),
  { chain: [T('fallback', { handle: H2, cache: 3600 }), T('resize', { width: 50 })], source: H(H1) });
gen('chain-long', () => fl(H1, KEY).resize({ width: 1024, fit: 'clip' }).rotate({ deg: 180 }).watermark({ file: H2 }).sharpen({ amount: 1 }).resize({ width: 512 }).output({ format: 'png' }).cache({ expiry: 600 }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 1024, fit: 'clip' }), T('rotate', { deg: 180 }), T('watermark', { file: H2 }), T('sharpen', { amount: 1 }), T('resize', { width: 512 }), T('output', { format: 'png' }), T('cache', { expiry: 600 })], source: H(H1) });

// ---- security --------------------------------------------------------------------------------
gen('security-filelink', () => fl(H1).security(sec(SEC)).resize({ width: 300 }).toString(),
  { chain: [T('resize', { width: 300 })], security: sec(SEC), source: H(H1) });
gen('security-filelink-middle', () => fl(H1, KEY).resize({ width: 300 }).security(sec(SEC)).flip().toString(),
  { apikey: KEY, chain: [T('resize', { width: 300 }), T('flip')], security: sec(SEC), source: H(H1) });
gen('security-policy-with-slash', () => fl(H1).security(sec(SEC_SLASH)).resize({ width: 100 }).toString(),
  { chain: [T('resize', { width: 100 })], security: sec(SEC_SLASH), source: H(H1) });
gen('security-policy-with-plus', () => fl(H1).resize({ width: 100 }).security(sec(SEC_PLUS)).toString(),
  { chain: [T('resize', { width: 100 })], security: sec(SEC_PLUS), source: H(H1) });
{
  const client = filestack.init(KEY, { security: sec(SEC) });
  gen('security-client-last', () => rehost(client.transform(H1, { resize: { width: 100 }, flip: true, blur: false })),
    { apikey: KEY, chain: [T('resize', { width: 100 }), T('flip')], security: sec(SEC), source: H(H1) });
  gen('security-client-external', () => rehost(client.transform('https://images.example.com/cat.jpg', { crop: { dim: [0, 0, 100, 100] } })),
    { apikey: KEY, chain: [T('crop', { dim: [0, 0, 100, 100] })], security: sec(SEC), source: U('https://images.example.com/cat.jpg') });
  gen('b64-mode-client-security', () => rehost(client.transform(H1, { resize: { width: 120, height: 80 }, monochrome: true }, true)),
    { apikey: KEY, chain: [T('resize', { width: 120, height: 80 }), T('monochrome')], security: sec(SEC), source: H(H1) });
}
{
  const client = filestack.init(KEY);
  gen('client-transform-camelcase', () => rehost(client.transform(H1, { roundedCorners: { radius: 20 }, noMetadata: true, cache: false })),
    { apikey: KEY, chain: [T('rounded_corners', { radius: 20 }), T('no_metadata'), T('cache', { enabled: false })], source: H(H1) });
}

// ---- sources ---------------------------------------------------------------------------------
gen('external-url', () => fl('https://images.example.com/cat.jpg', KEY).resize({ width: 100 }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 100 })], source: U('https://images.example.com/cat.jpg') });
gen('external-url-deep-path', () => fl('https://images.example.com/a/b/c/photo.final.png', KEY).flip().toString(),
  { apikey: KEY, chain: [T('flip')], source: U('https://images.example.com/a/b/c/photo.final.png') });
gen('external-url-http', () => fl('http://images.example.com:8080/cat.jpg', KEY).flop().toString(),
  { apikey: KEY, chain: [T('flop')], source: U('http://images.example.com:8080/cat.jpg') });
gen('external-url-query', () => fl('https://images.example.com/get?id=42&size=large', KEY).resize({ width: 100 }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 100 })], source: U('https://images.example.com/get?id=42&size=large') });
gen('storage-alias', () => fl('src://my-alias/dir/x.jpg', KEY).resize({ width: 100 }).toString(),
  { apikey: KEY, chain: [T('resize', { width: 100 })], source: A('my-alias', 'dir/x.jpg') });
gen('multi-aliases', () => fl(['src://my-alias/a.jpg', 'src://my-alias/sub/b.jpg'], KEY).zip().toString(),
  { apikey: KEY, chain: [T('zip')], source: L(A('my-alias', 'a.jpg'), A('my-alias', 'sub/b.jpg')) });
gen('multi-handles', () => fl([H1, H2], KEY).zip().toString(),
  { apikey: KEY, chain: [T('zip')], source: L(H(H1), H(H2)) });
gen('zip-multi-mixed', () => fl([H1, 'https://images.example.com/a.jpg', 'src://my-alias/c.png'], KEY).zip().toString(),
  { apikey: KEY, chain: [T('zip')], source: L(H(H1), U('https://images.example.com/a.jpg'), A('my-alias', 'c.png')) });
gen('zip-single', () => fl(H1).zip().toString(),
  { chain: [T('zip')], source: H(H1) });
gen('filestack-url-as-source', () => fl(`${CDN}/${H1}`).resize({ width: 100 }).toString(),
  { chain: [T('resize', { width: 100 })], source: H(H1) });

// ---- b64 mode --------------------------------------------------------------------------------
gen('b64-mode', () => fl(H1, KEY).setBase64(true).resize({ width: 300, fit: 'crop', align: ['top', 'left'] }).flip().toString(),
  { apikey: KEY, chain: [T('resize', { width: 300, fit: 'crop', align: ['top', 'left'] }), T('flip')], source: H(H1) });
gen('b64-mode-external', () => fl('https://images.example.com/get?id=7', KEY).setBase64(true).rotate({ deg: 90 }).output({ format: 'png' }).toString(),
  { apikey: KEY, chain: [T('rotate', { deg: 90 }), T('output', { format: 'png' })], source: U('https://images.example.com/get?id=7') });
gen('b64-mode-list', () => fl([H1, 'src://my-alias/x.jpg'], KEY).setBase64(true).animate({ delay: 200, loop: 0 }).toString(),
  { apikey: KEY, chain: [T('animate', { delay: 200, loop: 0 })], source: L(H(H1), A('my-alias', 'x.jpg')) });
gen('b64-mode-security', () => fl(H1).setBase64(true).security(sec(SEC_SLASH)).blur({ amount: 4 }).cache(false).toString(),
  { chain: [T('blur', { amount: 4 }), T('cache', { enabled: false })], security: sec(SEC_SLASH), source: H(H1) });

// filestack-js passes cache's boolean straight into the b64 JSON: {"name":"cache","params":true|false}
gen('b64-mode-cache-true', () => fl(H1).setBase64(true).cache(true).resize({ width: 10 }).toString(),
  { chain: [T('cache'), T('resize', { width: 10 })], source: H(H1) });

// ---- audio / video ---------------------------------------------------------------------------
gen('audio-clip', () => fl(H1).videoConvert({ preset: 'mp3', audio_bitrate: 128, audio_sample_rate: 44100, audio_channels: 2, clip_offset: '00:00:10', clip_length: '00:00:30', title: 'Voice memo', extname: '.mp3' }).toString(),
  { chain: [T('video_convert', { preset: 'mp3', audio_bitrate: 128, audio_sample_rate: 44100, audio_channels: 2, clip_offset: '00:00:10', clip_length: '00:00:30', title: 'Voice memo', extname: '.mp3' })], source: H(H1) });
gen('audio-aac-store', () => fl(H1, KEY).videoConvert({ preset: 'aac', path: '/audio/', location: 's3', container: 'media', access: 'private', force: true, filename: 'memo.aac', audio_codec: 'libfdk_aac' }).toString(),
  { apikey: KEY, chain: [T('video_convert', { preset: 'aac', path: '/audio/', location: 's3', container: 'media', access: 'private', force: true, filename: 'memo.aac', audio_codec: 'libfdk_aac' })], source: H(H1) });
gen('audio-title-comma', () => fl(H1).videoConvert({ preset: 'oga', title: 'Hello, world' }).toString(),
  { chain: [T('video_convert', { preset: 'oga', title: 'Hello, world' })], source: H(H1) });
gen('audio-hls', () => fl('https://media.example.com/in/talk.wav', KEY).videoConvert({ preset: 'hls.variant.audio', clip_length: '1:30' }).toString(),
  { apikey: KEY, chain: [T('video_convert', { preset: 'hls.variant.audio', clip_length: '1:30' })], source: U('https://media.example.com/in/talk.wav') });
gen('video-convert-full', () => fl(H1).videoConvert({ preset: 'h264', width: 1280, height: 720, aspect_mode: 'letterbox', upscale: false, two_pass: true, video_bitrate: 1000, fps: 30, keyframe_interval: 250, watermark_url: 'https://example.com/wm.png', watermark_top: 10, watermark_left: 20, frame_count: 1 }).toString(),
  { chain: [T('video_convert', { preset: 'h264', width: 1280, height: 720, aspect_mode: 'letterbox', upscale: false, two_pass: true, video_bitrate: 1000, fps: 30, keyframe_interval: 250, watermark_url: 'https://example.com/wm.png', watermark_top: 10, watermark_left: 20, frame_count: 1 })], source: H(H1) });

if (failed) process.exit(1);
