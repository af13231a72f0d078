// JetStream management with nats.js: streams (create, info, update, list, names, msg get,
// purge, delete), publish with msgID (a duplicate gets the original's sequence), the
// Nats-Expected-* checks, consumers (durable, named with a filter, ephemeral: create, info,
// list, delete) and the err_codes clients branch on.
import { AckPolicy, DeliverPolicy, StorageType, nanos } from "nats";
import { check, checkEqual, connectTo, expectError, kCallTimeoutMs, run, text, within } from "./lib.mjs";

const kStream = "LOFT_MANAGE";
const kOther = "LOFT_MANAGE_OTHER";
const kStreamNotFound = 10059;
const kConsumerNotFound = 10014;
const kWrongLastSequence = 10071;

// The parts of a stream's info that do not change from run to run.
function streamView(si) {
  const c = si.config;
  return {
    config: {
      name: c.name,
      subjects: c.subjects,
      retention: c.retention,
      storage: c.storage,
      discard: c.discard,
      max_msgs: c.max_msgs,
      max_bytes: c.max_bytes,
      max_age: c.max_age,
      max_msg_size: c.max_msg_size,
      max_consumers: c.max_consumers,
      num_replicas: c.num_replicas,
      duplicate_window: c.duplicate_window,
    },
    state: {
      messages: si.state.messages,
      first_seq: si.state.first_seq,
      last_seq: si.state.last_seq,
      consumer_count: si.state.consumer_count,
    },
  };
}

function consumerView(ci) {
  const c = ci.config;
  return {
    stream_name: ci.stream_name,
    durable_name: c.durable_name ?? null,
    config: {
      ack_policy: c.ack_policy,
      deliver_policy: c.deliver_policy,
      filter_subject: c.filter_subject ?? null,
      ack_wait: c.ack_wait,
      max_deliver: c.max_deliver,
      max_ack_pending: c.max_ack_pending,
      replay_policy: c.replay_policy,
    },
    num_pending: ci.num_pending,
    num_ack_pending: ci.num_ack_pending,
    num_redelivered: ci.num_redelivered,
    delivered_stream_seq: ci.delivered.stream_seq,
    ack_floor_stream_seq: ci.ack_floor.stream_seq,
  };
}

async function collectLister(lister, what) {
  return within((async () => {
    const all = [];
    for await (const item of lister) all.push(item);
    return all;
  })(), kCallTimeoutMs, what);
}

async function deleteIfPresent(jsm, name) {
  try {
    await jsm.streams.delete(name);
  } catch (err) {
    if (err?.api_error?.err_code !== kStreamNotFound) throw err;
  }
}

run("js_manage", 20000, async (t, opts) => {
  const nc = await connectTo(opts);
  const jsm = await within(nc.jetstreamManager(), kCallTimeoutMs, "jetstreamManager ($JS.API.INFO)");
  const js = nc.jetstream({ timeout: kCallTimeoutMs });
  // Left over by an earlier run against a server that keeps its data (a --target).
  await deleteIfPresent(jsm, kStream);
  await deleteIfPresent(jsm, kOther);

  // Streams.
  const created = await jsm.streams.add({
    name: kStream,
    subjects: ["manage.>"],
    storage: StorageType.File,
    duplicate_window: nanos(60_000),
  });
  t.step("stream_create", streamView(created));
  checkEqual(created.config.subjects, ["manage.>"], "the created stream's subjects");
  checkEqual(created.state.messages, 0, "a new stream's message count");
  await jsm.streams.add({ name: kOther, subjects: ["other.*"] });

  const updated = await jsm.streams.update(kStream, { subjects: ["manage.>", "invoices.>"], max_msgs: 1000 });
  t.step("stream_update", streamView(updated));
  checkEqual(updated.config.subjects, ["manage.>", "invoices.>"], "the updated subjects");
  checkEqual(updated.config.max_msgs, 1000, "the updated max_msgs");

  const mine = (names) => names.filter((n) => n === kStream || n === kOther).sort();
  const listed = mine((await collectLister(jsm.streams.list(), "stream list")).map((si) => si.config.name));
  const names = mine(await collectLister(jsm.streams.names(), "stream names"));
  const bySubject = await collectLister(jsm.streams.names("other.x"), "stream names for other.x");
  t.step("stream_list", { listed, names, names_for_other_x: bySubject });
  checkEqual(listed, [kStream, kOther].sort(), "streams listed");
  checkEqual(names, [kStream, kOther].sort(), "stream names");
  checkEqual(bySubject, [kOther], "the stream that captures other.x");

  // Publish, then read back by sequence and by last subject.
  const acks = [];
  for (const [subject, body] of [["manage.eu", "o1"], ["manage.us", "o2"], ["invoices.1", "i1"], ["manage.eu", "o3"]]) {
    const ack = await js.publish(subject, body);
    acks.push({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate });
  }
  t.step("publish", { acks });
  checkEqual(acks.map((a) => a.seq), [1, 2, 3, 4], "sequences of the published messages");

  const bySeq = await jsm.streams.getMessage(kStream, { seq: 2 });
  const lastEu = await jsm.streams.getMessage(kStream, { last_by_subj: "manage.eu" });
  t.step("msg_get", {
    by_seq: { seq: bySeq.seq, subject: bySeq.subject, data: text(bySeq.data) },
    last_by_subject: { seq: lastEu.seq, subject: lastEu.subject, data: text(lastEu.data) },
  });
  checkEqual([bySeq.seq, bySeq.subject, text(bySeq.data)], [2, "manage.us", "o2"], "message 2");
  checkEqual([lastEu.seq, text(lastEu.data)], [4, "o3"], "the last message on manage.eu");
  const missing = await expectError(jsm.streams.getMessage(kStream, { seq: 99 }), "msg get of sequence 99");
  t.step("msg_get_missing", missing);
  checkEqual(missing.api_code, 404, "msg get of a missing sequence");

  // Deduplication: the same msgID twice gives one message; the second PubAck is a duplicate
  // carrying the original sequence.
  const first = await js.publish("manage.eu", "d1", { msgID: "order-42" });
  const again = await js.publish("manage.eu", "d1 again", { msgID: "order-42" });
  const dedup = {
    first: { seq: first.seq, duplicate: first.duplicate },
    second: { seq: again.seq, duplicate: again.duplicate },
  };
  t.step("publish_msg_id", dedup);
  checkEqual(dedup, { first: { seq: 5, duplicate: false }, second: { seq: 5, duplicate: true } }, "msgID deduplication");

  // Nats-Expected-Last-Sequence: honoured when right, refused with the NATS error when wrong.
  const expectedOk = await js.publish("manage.us", "e1", { expect: { lastSequence: 5 } });
  const expectedBad = await expectError(js.publish("manage.us", "e2", { expect: { lastSequence: 1 } }), "a publish expecting last sequence 1");
  t.step("publish_expected_last_seq", { ok_seq: expectedOk.seq, wrong: expectedBad });
  checkEqual(expectedOk.seq, 6, "the publish expecting the right last sequence");
  checkEqual(expectedBad.err_code, kWrongLastSequence, "err_code of a wrong expected last sequence");

  const info = await jsm.streams.info(kStream);
  t.step("stream_info", streamView(info));
  checkEqual([info.state.messages, info.state.first_seq, info.state.last_seq], [6, 1, 6], "stream state");

  // Consumers: a durable, a named one with a filter, an ephemeral one.
  const durable = await jsm.consumers.add(kStream, {
    durable_name: "billing",
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(10_000),
  });
  t.step("consumer_create_durable", consumerView(durable));
  checkEqual(durable.num_pending, 6, "the durable's pending count");

  const filtered = await jsm.consumers.add(kStream, {
    name: "eu-only",
    durable_name: "eu-only",
    ack_policy: AckPolicy.Explicit,
    filter_subject: "manage.eu",
    deliver_policy: DeliverPolicy.All,
  });
  t.step("consumer_create_filtered", consumerView(filtered));
  checkEqual(filtered.config.filter_subject, "manage.eu", "the filter subject");
  checkEqual(filtered.num_pending, 3, "messages pending on manage.eu");

  const ephemeral = await jsm.consumers.add(kStream, { ack_policy: AckPolicy.Explicit, inactive_threshold: nanos(30_000) });
  const ephemeralView = consumerView(ephemeral);
  t.step("consumer_create_ephemeral", { has_name: typeof ephemeral.name === "string" && ephemeral.name.length > 0, ...ephemeralView });
  check(typeof ephemeral.name === "string" && ephemeral.name.length > 0, "the server names an ephemeral consumer");
  checkEqual(ephemeral.config.durable_name ?? null, null, "an ephemeral consumer's durable_name");

  const billing = await jsm.consumers.info(kStream, "billing");
  t.step("consumer_info", consumerView(billing));
  checkEqual(billing.name, "billing", "the consumer's name");

  const consumers = await collectLister(jsm.consumers.list(kStream), "consumer list");
  const durables = consumers.filter((c) => c.config.durable_name).map((c) => c.name).sort();
  t.step("consumer_list", { count: consumers.length, durables });
  checkEqual(consumers.length, 3, "consumers listed");
  checkEqual(durables, ["billing", "eu-only"], "durable consumers listed");

  const deleted = await jsm.consumers.delete(kStream, "billing");
  const gone = await expectError(jsm.consumers.info(kStream, "billing"), "info of a deleted consumer");
  t.step("consumer_delete", { deleted, info_after: gone });
  checkEqual(deleted, true, "consumer delete");
  checkEqual(gone.err_code, kConsumerNotFound, "err_code of a deleted consumer's info");

  // The err_codes clients branch on.
  const noStream = await expectError(jsm.streams.info("LOFT_NO_SUCH_STREAM"), "info of a missing stream");
  const noStreamConsumer = await expectError(jsm.consumers.info("LOFT_NO_SUCH_STREAM", "x"), "consumer info on a missing stream");
  const noConsumer = await expectError(jsm.consumers.info(kStream, "no-such-consumer"), "info of a missing consumer");
  const noConsumerDelete = await expectError(jsm.consumers.delete(kStream, "no-such-consumer"), "delete of a missing consumer");
  t.step("errors", {
    stream_info_missing: noStream,
    consumer_info_missing_stream: noStreamConsumer,
    consumer_info_missing: noConsumer,
    consumer_delete_missing: noConsumerDelete,
  });
  checkEqual(noStream.err_code, kStreamNotFound, "err_code of a missing stream");
  checkEqual(noStream.api_code, 404, "status code of a missing stream");
  checkEqual(noStreamConsumer.err_code, kStreamNotFound, "err_code of a consumer on a missing stream");
  checkEqual(noConsumer.err_code, kConsumerNotFound, "err_code of a missing consumer");
  checkEqual(noConsumer.api_code, 404, "status code of a missing consumer");
  checkEqual(noConsumerDelete.err_code, kConsumerNotFound, "err_code of deleting a missing consumer");

  // Purge: first one subject, then the rest; sequences go on after a purge.
  const purgedUs = await jsm.streams.purge(kStream, { filter: "manage.us" });
  const purgedAll = await jsm.streams.purge(kStream);
  const afterPurge = await jsm.streams.info(kStream);
  const next = await js.publish("manage.eu", "after purge");
  t.step("purge", {
    filtered: { success: purgedUs.success, purged: purgedUs.purged },
    all: { success: purgedAll.success, purged: purgedAll.purged },
    state: streamView(afterPurge).state,
    next_seq: next.seq,
  });
  checkEqual(purgedUs.purged, 2, "messages purged on manage.us");
  checkEqual(purgedAll.purged, 4, "messages purged in all");
  checkEqual([afterPurge.state.messages, afterPurge.state.first_seq], [0, 7], "state after the purge");
  checkEqual(next.seq, 7, "the first sequence after the purge");

  // Delete.
  const deletedOther = await jsm.streams.delete(kOther);
  const namesAfter = mine(await collectLister(jsm.streams.names(), "stream names after delete"));
  const deleteAgain = await expectError(jsm.streams.delete(kOther), "delete of a deleted stream");
  t.step("stream_delete", { deleted: deletedOther, names_after: namesAfter, delete_again: deleteAgain });
  checkEqual(deletedOther, true, "stream delete");
  checkEqual(namesAfter, [kStream], "stream names after the delete");
  checkEqual(deleteAgain.err_code, kStreamNotFound, "err_code of deleting a missing stream");

  await jsm.streams.delete(kStream);
  await nc.close();
});
