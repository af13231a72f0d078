// Advisories a client can watch on `$JS.EVENT.ADVISORY.>`: the API audit (`$JS.EVENT.ADVISORY.API`,
// one for each answered $JS.API request) and MSG_TERMINATED for a +TERM on a consumer with
// ack_policy none (whose deliveries were settled when sent: nats-server 2.9.10 still advises).
import { AckPolicy } from "nats";
import { checkEqual, connectTo, eventually, freshStream, kCallTimeoutMs, run, take } from "./lib.mjs";

const kStream = "LOFT_ADVISORY";
const kAuditSubject = "$JS.EVENT.ADVISORY.API";

function parse(data) {
  return JSON.parse(new TextDecoder().decode(data));
}

// What an audit says that does not change from run to run: the request's subject and body,
// the answer's type and error, which fields it has (the client's are in the step's
// client_fields).
function audit(a) {
  const response = JSON.parse(a.response);
  return {
    type: a.type,
    fields: Object.keys(a).sort(),
    subject: a.subject,
    request: a.request === undefined ? null : JSON.parse(a.request),
    response_type: response.type,
    response_err_code: response.error?.err_code ?? null,
  };
}

run("js_advisory", 20000, async (t, opts) => {
  const admin = await connectTo(opts);
  const { jsm, js } = await freshStream(admin, { name: kStream, subjects: ["advisory.>"] });
  await js.publish("advisory.a", "m1");
  await js.publish("advisory.a", "m2");

  // The watcher subscribes once the stream is there: the audits it sees are of the requests
  // below, made on their own connection.
  const watcher = await connectTo(opts);
  const audits = [];
  const terminated = [];
  watcher.subscribe(kAuditSubject, {
    callback: (err, m) => {
      if (!err) audits.push(parse(m.data));
    },
  });
  watcher.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", {
    callback: (err, m) => {
      if (!err) terminated.push({ subject: m.subject, body: parse(m.data) });
    },
  });
  await watcher.flush();

  const nc = await connectTo(opts);
  const jsm2 = await nc.jetstreamManager();
  await jsm2.streams.info(kStream);
  await jsm2.consumers.add(kStream, { durable_name: "none", ack_policy: AckPolicy.None });
  await jsm2.streams.getMessage(kStream, { seq: 2 });
  try {
    await jsm2.streams.info("LOFT_ADVISORY_MISSING");
  } catch (err) {
    if (err?.api_error?.err_code !== 10059) throw err;
  }
  // 5 requests audited: INFO (jetstreamManager), STREAM.INFO, CONSUMER.CREATE and the failed
  // STREAM.INFO; nats-server 2.9.10 audits no successful MSG.GET. The STREAM.INFO after them is
  // a marker: once its audit is in, every earlier one is (one connection's are in order).
  await jsm2.streams.info(kStream);
  await eventually(() => audits.length >= 5, kCallTimeoutMs, "5 API audit advisories");
  const clientFields = [...new Set(audits.flatMap((a) => Object.keys(a.client ?? {})))].sort();
  t.step("api_audits", { audits: audits.map(audit), client_fields: clientFields });
  checkEqual(audits.map((a) => a.type), Array(5).fill("io.nats.jetstream.advisory.v1.api_audit"), "audit types");
  checkEqual(audits.map((a) => a.subject), [
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${kStream}`,
    `$JS.API.CONSUMER.CREATE.${kStream}.none`,
    "$JS.API.STREAM.INFO.LOFT_ADVISORY_MISSING",
    `$JS.API.STREAM.INFO.${kStream}`,
  ], "audited subjects");

  // +TERM on ack_policy none: nothing changes in the consumer, and MSG_TERMINATED is published.
  const c = await nc.jetstream().consumers.get(kStream, "none");
  const got = await take(await c.fetch({ max_messages: 2, expires: 2000 }), 2, kCallTimeoutMs, "the fetch");
  for (const m of got) m.term();
  await nc.flush();
  await eventually(() => terminated.length >= 2, kCallTimeoutMs, "2 MSG_TERMINATED advisories");
  const ci = await jsm.consumers.info(kStream, "none");
  const shown = terminated.map((x) => ({
    subject: x.subject,
    type: x.body.type,
    stream: x.body.stream,
    consumer: x.body.consumer,
    consumer_seq: x.body.consumer_seq,
    stream_seq: x.body.stream_seq,
    deliveries: x.body.deliveries,
  }));
  shown.sort((a, b) => a.stream_seq - b.stream_seq);
  t.step("term_ack_none", {
    advisories: shown,
    consumer: { num_ack_pending: ci.num_ack_pending, num_pending: ci.num_pending, ack_floor_stream_seq: ci.ack_floor.stream_seq },
  });
  checkEqual(shown.map((a) => [a.stream_seq, a.deliveries]), [[1, 1], [2, 1]], "the terminated advisories");
  checkEqual(ci.num_ack_pending, 0, "nothing pending on an ack-none consumer");

  await jsm.streams.delete(kStream);
  await nc.close();
  await watcher.close();
  await admin.close();
});
