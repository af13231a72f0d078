// Shared helpers of the nats.js scenarios: options, bounded waits, checks and the JSON transcript.
//
// Every scenario is `node <scenario>.mjs [--server URL] [--user U --pass P]` (or NATS_URL,
// NATS_USER, NATS_PASS in the environment). It prints one JSON object on stdout:
//   {"scenario": NAME, "ok": true|false, "steps": [{"step": ..., ...observed}], "error": ...}
// and exits 0 when every check held, 1 otherwise (the failure is also written to stderr).
// Steps record only what a client observes and that does not change from run to run (no
// timestamps, inbox names or generated consumer names), so two runs of a scenario, against
// nats-server or against loft, can be compared with a plain diff.
import { connect } from "nats";

export const kCallTimeoutMs = 5000;

export function options(argv = process.argv.slice(2)) {
  const opts = {
    server: process.env.NATS_URL || "nats://127.0.0.1:4222",
    user: process.env.NATS_USER || undefined,
    pass: process.env.NATS_PASS || undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (!["--server", "--user", "--pass"].includes(flag) || value === undefined) {
      throw new Error(`usage: node SCENARIO.mjs [--server URL] [--user USER --pass PASSWORD]; bad argument '${flag}'`);
    }
    opts[flag.slice(2)] = value;
    i++;
  }
  return opts;
}

// Connects with the scenario's credentials; `extra` overrides any connect option.
export function connectTo(opts, extra = {}) {
  const base = { servers: opts.server, timeout: kCallTimeoutMs, reconnect: false };
  if (opts.user !== undefined) {
    base.user = opts.user;
    base.pass = opts.pass;
  }
  return within(connect({ ...base, ...extra }), kCallTimeoutMs + 1000, `connect to ${opts.server}`);
}

// Resolves as `promise` does, or rejects once `ms` have passed, naming what was awaited.
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

export function checkEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`check failed: ${what}: expected ${e}, got ${a}`);
  }
}

// What a client can branch on in an error: nats.js's code, and for JetStream API errors the
// API's status code and err_code.
export function describeError(err) {
  const out = { code: err?.code ?? null, message: String(err?.message ?? err) };
  const api = err?.api_error;
  if (api) {
    out.api_code = api.code;
    out.err_code = api.err_code ?? null;
  }
  return out;
}

// Awaits `promise` (bounded) and returns the error it fails with; a success is a failed check.
export async function expectError(promise, what, ms = kCallTimeoutMs) {
  try {
    const value = await within(promise, ms, what);
    throw new Error(`check failed: ${what}: expected an error, got ${JSON.stringify(value)}`);
  } catch (err) {
    if (String(err?.message).startsWith("check failed") || String(err?.message).startsWith("timed out")) {
      throw err;
    }
    return describeError(err);
  }
}

// Takes `count` items from an async iterable, failing if they do not all arrive within `ms`.
export async function take(iterable, count, ms, what) {
  const items = [];
  if (count === 0) {
    return items;
  }
  const it = iterable[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (items.length < count) {
    const left = deadline - Date.now();
    const r = await within(it.next(), Math.max(left, 1), `${what} (${items.length} of ${count} received)`);
    if (r.done) {
      throw new Error(`check failed: ${what}: the iterator ended after ${items.length} of ${count}`);
    }
    items.push(r.value);
  }
  return items;
}

// Polls `condition` (which may be async) until it is true, or fails after `ms`.
export async function eventually(condition, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await delay(20);
  }
}

export const text = (data) => new TextDecoder().decode(data);

// A JetStream scenario's start: the manager and client of a connection (calls bounded), and a
// stream made afresh (one an earlier run against a --target left is deleted first).
export async function freshStream(nc, config) {
  const jsm = await within(nc.jetstreamManager(), kCallTimeoutMs, "jetstreamManager");
  const js = nc.jetstream({ timeout: kCallTimeoutMs });
  try {
    await jsm.streams.delete(config.name);
  } catch (err) {
    if (err?.api_error?.err_code !== 10059) throw err;
  }
  await jsm.streams.add(config);
  return { jsm, js };
}

// An error as one line: its message, the client's code and API error if any, and where in the
// scenario it was thrown (a bare "503" says little on its own).
function failureText(err) {
  let out = String(err?.message ?? err);
  if (err?.code !== undefined && err.code !== err.message) out += ` (code ${err.code})`;
  if (err?.api_error) out += ` (api error ${JSON.stringify(err.api_error)})`;
  if (err?.code === "503" && !err?.api_error) out += " (no responders: is JetStream enabled on the server?)";
  const where = String(err?.stack ?? "").match(/\/tests\/nats\/js\/((?!node_modules|lib\.mjs)[^/]+\.mjs:\d+)/);
  if (where) out += ` (${where[1]})`;
  return out;
}

// Runs a scenario: body(transcript, opts). A scenario that has not finished after `limitMs` is
// reported as failed (every wait inside is bounded too; this is the backstop).
export async function run(name, limitMs, body) {
  const steps = [];
  const transcript = {
    step(step, observed = {}) {
      steps.push({ step, ...observed });
    },
  };
  const finish = (error) => {
    const out = { scenario: name, ok: error === undefined, steps };
    if (error !== undefined) {
      out.error = error;
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    if (error !== undefined) {
      process.stderr.write(`${name}: FAILED: ${error}\n`);
    }
    process.exit(error === undefined ? 0 : 1);
  };
  const backstop = setTimeout(() => finish(`scenario did not finish within ${limitMs} ms`), limitMs);
  let opts;
  try {
    opts = options();
    await body(transcript, opts);
  } catch (err) {
    clearTimeout(backstop);
    finish(failureText(err));
    return;
  }
  clearTimeout(backstop);
  finish(undefined);
}
