// Runs the conformance vectors (tests/vectors/README.md) against the component
// as `jco transpile` turned it into JS, in Node: the third host next to the
// Rust and Python ones. Usage: node run-vectors.mjs [vectors-dir]
// The build comes from scripts/js-vectors.sh (tests/js/build/pagerduty.js).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const vectorsDir = resolve(process.argv[2] ?? join(here, '..', 'vectors'));
const buildJs = join(here, 'build', 'pagerduty.js');

let incidents;
try {
  ({ incidents } = await import(pathToFileURL(buildJs).href));
} catch (e) {
  console.error(`cannot load ${buildJs} (run scripts/js-vectors.sh to transpile): ${e.message}`);
  process.exit(1);
}

// --- jco's conventions <-> the README's canonical JSON ---------------------

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// A record of the vector (snake_case, null for none) as jco takes it.
function toRecord(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) out[camel(k)] = v ?? undefined;
  return out;
}

// `{"text": s}` -> `{tag: 'text', val: s}`.
function toVariant(obj) {
  const [[tag, val]] = Object.entries(obj);
  return { tag, val };
}

const opt = (v) => v ?? undefined;
// The hot path takes JSON text; serde reads it whatever the key order.
const json = (v) => JSON.stringify(v);

const calls = {
  'check-marker': (i) =>
    incidents.checkMarker(
      i.arguments.map((a) => ({ name: a.name, value: toVariant(a.value) })),
      toRecord(i.settings),
    ),
  'check-settings': (i) => incidents.checkSettings(toRecord(i.settings)),
  'build-trigger': (i) =>
    incidents.buildTrigger(json(i.failure), json(i.options), json(i.settings), opt(i.severity)),
  'build-resolve': (i) =>
    incidents.buildResolve(i.nodeid, json(i.options), json(i.settings), opt(i.incident_id)),
  'build-aggregate': (i) =>
    incidents.buildAggregate(json(i.failures), i.suite, json(i.options), json(i.settings)),
  'aggregate-key': (i) => incidents.aggregateKey(json(i.options), json(i.settings), i.suite),
  'classify-reply': (i) => incidents.classifyReply(i.kind, i.status, i.headers, i.body),
};
const buildsRequest = new Set(['build-trigger', 'build-resolve', 'build-aggregate']);

// jco's value -> canonical JSON. No record of the WIT has exactly the fields
// `tag` and `val`, so such an object is a variant.
function canon(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 2 && 'tag' in v && 'val' in v) return { [v.tag]: canon(v.val) };
    return Object.fromEntries(keys.map((k) => [snake(k), canon(v[k])]));
  }
  return v;
}

// A request is compared with its bodies parsed; a GET has none: null (as
// tests/conformance.py, which records the vectors, writes it).
function canonRequest(text) {
  const r = JSON.parse(text);
  for (const k of ['body', 'display_body']) r[k] = r[k] ? JSON.parse(r[k]) : null;
  return r;
}

// Results: jco returns the ok value and throws a ComponentError whose
// `payload` is the err value; anything else thrown is a trap or a host bug.
function run(vector) {
  const call = calls[vector.call];
  if (!call) throw new Error(`unknown call ${JSON.stringify(vector.call)}`);
  let value;
  try {
    value = call(vector.input);
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) return { err: canon(e.payload) };
    throw e;
  }
  value = canon(value);
  return { ok: buildsRequest.has(vector.call) ? canonRequest(value) : value };
}

// `${settings.api_key}` and the like: the secret the input carries.
function substitute(v, input) {
  if (typeof v === 'string') {
    return v.replace(/\$\{(settings|options)\.([a-z_]+)\}/g, (m, rec, field) => {
      const value = input?.[rec]?.[field];
      if (typeof value !== 'string') throw new Error(`placeholder ${m} names no string in the input`);
      return value;
    });
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, input));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, input)]));
  }
  return v;
}

// The first difference as `path: expected X, got Y`, or null. Keys must match
// exactly: a none is null on both sides, never a missing key.
function diff(want, got, path = '$') {
  const show = (x) => {
    const s = x === undefined ? '(missing)' : JSON.stringify(x);
    return s.length > 160 ? `${s.slice(0, 157)}...` : s;
  };
  const kind = (x) => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
  if (kind(want) !== kind(got)) return `${path}: expected ${show(want)}, got ${show(got)}`;
  if (Array.isArray(want)) {
    for (let i = 0; i < Math.max(want.length, got.length); i++) {
      const d = diff(want[i], got[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (want && typeof want === 'object') {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
    for (const k of keys) {
      const d = diff(want[k], got[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return want === got ? null : `${path}: expected ${show(want)}, got ${show(got)}`;
}

function vectorFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return vectorFiles(p);
      return e.isFile() && e.name.endsWith('.json') ? [p] : [];
    });
}

// --- the run ----------------------------------------------------------------

if (!statSync(vectorsDir, { throwIfNoEntry: false })?.isDirectory()) {
  console.error(`no vectors directory at ${vectorsDir}`);
  process.exit(1);
}
const files = vectorFiles(vectorsDir).sort((a, b) =>
  relative(vectorsDir, a) < relative(vectorsDir, b) ? -1 : 1,
);
let passed = 0;
let failed = 0;
for (const file of files) {
  const rel = relative(process.cwd(), file);
  const name = rel.startsWith('..') ? file : rel;
  let problem;
  try {
    const vector = JSON.parse(readFileSync(file, 'utf8'));
    if (!vector.expect) throw new Error('no "expect" (record it with tests/vectors/record.py)');
    problem = diff(substitute(vector.expect, vector.input), run(vector));
  } catch (e) {
    // A trap shows here too (WebAssembly.RuntimeError): the vector fails.
    problem = `${e?.name ?? 'error'}: ${e?.message ?? e}`;
  }
  if (problem) {
    failed++;
    console.log(`FAIL ${name}\n     ${problem}`);
  } else {
    passed++;
    console.log(`ok   ${name}`);
  }
}
if (files.length === 0) console.log(`no *.json vectors under ${vectorsDir}: nothing was checked`);
console.log(`js-vectors: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
