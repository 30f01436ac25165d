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
const { Pager } = incidents;

// --- jco's conventions <-> the README's canonical JSON ---------------------
// jco: records are camelCase objects, options `undefined`, enums strings,
// variants `{tag, val}`, u64 BigInt, resources classes (`Pager.open` static,
// methods on instances); a function or method returning `result` returns the
// ok value and throws a `ComponentError` whose `payload` is the err value, and
// a `result` inside a value is `{tag: 'ok' | 'err', val}`.

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// A record of the vector (snake_case, null for none, records nested and in
// lists) as jco takes it. Only for records without variants inside.
function toRecord(v) {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(toRecord);
  if (typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), toRecord(x)]));
  }
  return v;
}

// `{"text": s}` -> `{tag: 'text', val: s}`; a `number` (s64) as a BigInt.
function toVariant(obj) {
  const [[tag, val]] = Object.entries(obj);
  return { tag, val: tag === 'number' ? BigInt(val) : val };
}

// A `test-failure`: its `failed_at_ms` (u64) as a BigInt.
function toFailure(v) {
  const failure = toRecord(v);
  if (failure.failedAtMs !== undefined) failure.failedAtMs = BigInt(failure.failedAtMs);
  return failure;
}

const toArguments = (args) => args.map((a) => ({ name: a.name, value: toVariant(a.value) }));
const opt = (v) => v ?? undefined;

// jco's value -> canonical JSON. No record of the WIT has exactly the fields
// `tag` and `val`, so such an object is a variant (or a nested result). An
// `alert-request` (the one record with `display_body`) has its bodies parsed;
// a GET has none: null (as tests/conformance.py, which records the vectors,
// writes it).
function canon(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return Number(v);
  // A list of numbers (`members`) comes as a typed array.
  if (ArrayBuffer.isView(v)) return Array.from(v, canon);
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length <= 2 && 'tag' in v && keys.every((k) => k === 'tag' || k === 'val')) {
      return { [v.tag]: canon(v.val) };
    }
    const out = Object.fromEntries(keys.map((k) => [snake(k), canon(v[k])]));
    if ('display_body' in out) {
      for (const k of ['body', 'display_body']) out[k] = out[k] ? JSON.parse(out[k]) : null;
    }
    return out;
  }
  return v;
}

// An err of a call the vector does not test (opening the pager, checking
// the marker, the triggers before the one tested) fails the vector.
function must(what, f) {
  try {
    return f();
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      throw new Error(`${what} refused: ${JSON.stringify(canon(e.payload))}`);
    }
    throw e;
  }
}

const openPager = (i) => must('pager.open', () => Pager.open(toRecord(i.settings)));
const checkMarker = (pager, args) =>
  must('pager.check-marker', () => pager.checkMarker(toArguments(args)));

// `pager.repeat` with a `repeat` input or a `deliver`'s `build.repeat`.
const repeat = (pager, marker, r) =>
  pager.repeat(toFailure(r.failure), marker, opt(r.incident_id), opt(r.dedup_key), r.notes);

// The request a `deliver` vector starts from.
function buildRequest(pager, marker, build) {
  if (build.trigger) {
    const t = build.trigger;
    const planned = must('pager.trigger', () =>
      pager.trigger(toFailure(t.failure), marker, opt(t.severity), t.failed_runs ?? 1),
    );
    if (planned.tag !== 'page') throw new Error(`the trigger planned ${planned.tag}, not a page`);
    return planned.val;
  }
  if (build.repeat) {
    const answer = must('pager.repeat', () => repeat(pager, marker, build.repeat));
    if (answer.tag !== 'note') throw new Error(`the repeat was skipped, not a note: ${answer.val}`);
    return answer.val;
  }
  if (build.resolve) {
    const r = build.resolve;
    return must('pager.resolve', () =>
      pager.resolve(r.nodeid, marker, opt(r.incident_id), opt(r.dedup_key)),
    );
  }
  throw new Error(`unknown build ${JSON.stringify(Object.keys(build))}`);
}

// Each returns the ok value (jco's), or throws the err as ComponentError.
// `deliver` and `aggregate` return their list as it is (no ok/err).
const calls = {
  open: (i) => {
    Pager.open(toRecord(i.settings));
    return null;
  },
  'check-marker': (i) => {
    const pager = openPager(i);
    return pager.checkMarker(toArguments(i.arguments)).options();
  },
  preflight: (i) => {
    const pager = openPager(i);
    return pager.preflight(checkMarker(pager, i.arguments)) ?? null;
  },
  trigger: (i) => {
    const pager = openPager(i);
    const marker = checkMarker(pager, i.arguments);
    const failure = toFailure(i.failure);
    for (let n = 0; n < (i.paged_before ?? 0); n++) {
      must(`trigger ${n + 1} of paged_before`, () => pager.trigger(failure, marker, undefined, 1));
    }
    return pager.trigger(failure, marker, opt(i.severity), i.failed_runs ?? 1);
  },
  repeat: (i) => {
    const pager = openPager(i);
    const marker = checkMarker(pager, i.arguments);
    // The same repeat made first, to show what a run remembers.
    for (let n = 0; n < (i.noted_before ?? 0); n++) {
      must(`repeat ${n + 1} of noted_before`, () => repeat(pager, marker, i));
    }
    return repeat(pager, marker, i);
  },
  resolve: (i) => {
    const pager = openPager(i);
    const marker = checkMarker(pager, i.arguments);
    return pager.resolve(i.nodeid, marker, opt(i.incident_id), opt(i.dedup_key));
  },
  aggregate: (i) => {
    const pager = openPager(i);
    const held = i.held.map((h) => ({
      failure: toFailure(h.failure),
      marker: checkMarker(pager, h.arguments),
    }));
    return pager.aggregate(held, i.suite);
  },
  fallback: (i) => openPager(i).fallback(toFailure(i.failure), i.reason, i.fix),
  'classify-reply': (i) => incidents.classifyReply(i.kind, i.status, i.headers, i.body),
  // README, "deliver": reply by reply, the component's steps.
  deliver: (i) => {
    const pager = openPager(i);
    const marker = checkMarker(pager, i.arguments);
    let request = buildRequest(pager, marker, i.build);
    let progress;
    let pending = [];
    const steps = [];
    for (const reply of i.replies) {
      const step = pager.decide(request, progress, reply.status, reply.headers, reply.body);
      steps.push(step);
      progress = undefined;
      if (step.tag === 'retry') {
        progress = step.val.next;
      } else if (step.tag === 'follow-up') {
        pending = [...step.val];
        request = pending.shift() ?? request;
      } else if (pending.length > 0) {
        request = pending.shift();
      }
    }
    return steps;
  },
};
const listed = new Set(['aggregate', 'deliver']);

function run(vector) {
  const call = calls[vector.call];
  if (!call) throw new Error(`unknown call ${JSON.stringify(vector.call)}`);
  let value;
  try {
    value = call(vector.input);
  } catch (e) {
    if (!listed.has(vector.call) && e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      return { err: canon(e.payload) };
    }
    throw e;
  }
  return listed.has(vector.call) ? canon(value) : { ok: canon(value) };
}

// `${settings.api_key}` and the like: the secret the input carries;
// `${options.<name>}` is the marker's argument of that name.
function placeholderValue(input, rec, field) {
  if (rec === 'settings') return input?.settings?.[field];
  const argumentLists = [input?.arguments ?? [], ...(input?.held ?? []).map((h) => h.arguments)];
  for (const args of argumentLists) {
    const found = args.find((a) => a.name === field);
    if (found) return found.value.text;
  }
  return undefined;
}

function substitute(v, input) {
  if (typeof v === 'string') {
    return v.replace(/\$\{(settings|options)\.([a-z_]+)\}/g, (m, rec, field) => {
      const value = placeholderValue(input, rec, field);
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
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
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
const seen = new Set();
for (const file of files) {
  const rel = relative(process.cwd(), file);
  const name = rel.startsWith('..') ? file : rel;
  let problem;
  try {
    const vector = JSON.parse(readFileSync(file, 'utf8'));
    seen.add(vector.call);
    if (!('expect' in vector)) throw new Error('no "expect" (record it with tests/vectors/record.py)');
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
// The default folder must exercise every call this runner knows.
const unexercised = Object.keys(calls).filter((c) => !seen.has(c));
if (process.argv[2] === undefined && unexercised.length > 0) {
  failed++;
  console.log(`FAIL no vector of ${unexercised.join(', ')}`);
}
console.log(`js-vectors: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
