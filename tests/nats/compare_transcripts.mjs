// Compares a scenario's transcript with the reference's (nats-server 2.9.10's, committed in
// tests/nats/reference), step by step, and fails on any difference that is not allowed.
//
//   node compare_transcripts.mjs REFERENCE.json ACTUAL.json [ALLOWED.json]
//
// Steps are paired by name and occurrence (the second "fetch" with the second "fetch"). A step
// the reference has and the run has not, or the other way round, is a difference. ALLOWED
// (tests/nats/loft_differences.json) lists the intended differences, each with its reason:
//   {"SCENARIO": {"STEP": {"a.b.c": "why (docs/nats.md ...)", "*": "the whole step"}}}
// A path names a field inside the step (objects only, dot-separated); "*" ignores the step's
// content (it must still be there). An allowed field that no longer differs is reported, so
// the list shrinks as loft catches up, but it does not fail the comparison.
// Exit 0: the same but for allowed differences; 1: different; 2: bad arguments or files.
import { readFileSync } from "node:fs";

function load(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    process.stderr.write(`compare_transcripts: cannot read ${path}: ${err.message}\n`);
    process.exit(2);
  }
}

// The steps keyed "name" for the first occurrence, "name#2" for the second, and so on.
function keyed(transcript) {
  const seen = new Map();
  const out = new Map();
  for (const step of transcript.steps ?? []) {
    const n = (seen.get(step.step) ?? 0) + 1;
    seen.set(step.step, n);
    out.set(n === 1 ? step.step : `${step.step}#${n}`, step);
  }
  return out;
}

function get(object, path) {
  let at = object;
  for (const part of path.split(".")) {
    if (at === null || typeof at !== "object" || !(part in at)) return undefined;
    at = at[part];
  }
  return at;
}

function remove(object, path) {
  const parts = path.split(".");
  let at = object;
  for (const part of parts.slice(0, -1)) {
    if (at === null || typeof at !== "object") return;
    at = at[part];
  }
  if (at !== null && typeof at === "object") delete at[parts[parts.length - 1]];
}

// Every leaf path where a and b differ, with both values.
function differences(a, b, path, out) {
  const bothObjects = a !== null && b !== null && typeof a === "object" && typeof b === "object";
  if (bothObjects && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) differences(a[k], b[k], path === "" ? k : `${path}.${k}`, out);
    return out;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, reference: a, actual: b });
  return out;
}

const [referencePath, actualPath, allowedPath] = process.argv.slice(2);
if (!referencePath || !actualPath) {
  process.stderr.write("usage: node compare_transcripts.mjs REFERENCE.json ACTUAL.json [ALLOWED.json]\n");
  process.exit(2);
}
const reference = load(referencePath);
const actual = load(actualPath);
const scenario = reference.scenario;
const allowed = (allowedPath ? load(allowedPath) : {})[scenario] ?? {};

const problems = [];
const notes = [];
if (actual.scenario !== scenario) problems.push(`scenario is "${actual.scenario}", the reference's "${scenario}"`);
if (actual.ok !== true) problems.push(`the run failed: ${actual.error ?? "no error given"}`);
const ref = keyed(reference);
const got = keyed(actual);
for (const key of got.keys()) {
  if (!ref.has(key)) problems.push(`step ${key}: not in the reference`);
}
for (const [key, refStep] of ref) {
  const step = got.get(key);
  if (step === undefined) {
    problems.push(`step ${key}: missing (the reference has it)`);
    continue;
  }
  const allow = allowed[key] ?? {};
  if ("*" in allow) continue;
  const r = structuredClone(refStep);
  const s = structuredClone(step);
  for (const path of Object.keys(allow)) {
    if (JSON.stringify(get(r, path)) === JSON.stringify(get(s, path))) {
      notes.push(`step ${key}: ${path} is allowed to differ but no longer does (tests/nats/loft_differences.json)`);
    }
    remove(r, path);
    remove(s, path);
  }
  for (const d of differences(r, s, "", [])) {
    problems.push(`step ${key}: ${d.path}: reference ${JSON.stringify(d.reference)}, got ${JSON.stringify(d.actual)}`);
  }
}
for (const key of Object.keys(allowed)) {
  if (!ref.has(key)) notes.push(`step ${key} is in tests/nats/loft_differences.json but not in the reference`);
}

for (const note of notes) process.stdout.write(`note: ${scenario}: ${note}\n`);
if (problems.length > 0) {
  process.stdout.write(`${scenario}: the transcript differs from ${referencePath}:\n`);
  for (const p of problems) process.stdout.write(`  ${p}\n`);
  process.exit(1);
}
