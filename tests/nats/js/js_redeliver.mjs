// A consumer that disconnects without acking: its messages go to the next client that pulls,
// once ack_wait has passed, with attempt (num_delivered) 2 and the redelivered flag.
import { AckPolicy, nanos } from "nats";
import { checkEqual, connectTo, eventually, kCallTimeoutMs, run, take, text, within } from "./lib.mjs";

const kStream = "LOFT_REDELIVER";

function delivery(m) {
  return { seq: m.seq, data: text(m.data), attempt: m.info.deliveryCount, redelivered: m.redelivered };
}

run("js_redeliver", 20000, async (t, opts) => {
  const admin = await connectTo(opts);
  const jsm = await within(admin.jetstreamManager(), kCallTimeoutMs, "jetstreamManager");
  try {
    await jsm.streams.delete(kStream);
  } catch (err) {
    if (err?.api_error?.err_code !== 10059) throw err;
  }
  await jsm.streams.add({ name: kStream, subjects: ["redeliver.>"] });
  await jsm.consumers.add(kStream, { durable_name: "orders", ack_policy: AckPolicy.Explicit, ack_wait: nanos(1000), max_deliver: 5 });
  const js = admin.jetstream({ timeout: kCallTimeoutMs });
  for (const body of ["r1", "r2", "r3"]) {
    await js.publish("redeliver.order", body);
  }

  // The first client takes all three and goes away without a word.
  const first = await connectTo(opts);
  const c1 = await first.jetstream().consumers.get(kStream, "orders");
  const got1 = await take(await c1.fetch({ max_messages: 3, expires: 2000 }), 3, kCallTimeoutMs, "the first client's fetch");
  await first.close();
  const pendingAfterClose = (await jsm.consumers.info(kStream, "orders")).num_ack_pending;
  t.step("first_client", { delivered: got1.map(delivery), ack_pending_after_close: pendingAfterClose });
  checkEqual(got1.map((m) => [m.seq, m.info.deliveryCount]), [[1, 1], [2, 1], [3, 1]], "the first delivery");
  checkEqual(pendingAfterClose, 3, "acks pending once the first client is gone");

  // The second client gets the same three again, as attempt 2, and acks them.
  const second = await connectTo(opts);
  const c2 = await second.jetstream().consumers.get(kStream, "orders");
  const got2 = await take(await c2.fetch({ max_messages: 3, expires: 4000 }), 3, kCallTimeoutMs, "the redelivery to the second client");
  const acks = [];
  for (const m of got2) {
    acks.push(await m.ackAck({ timeout: kCallTimeoutMs }));
  }
  await eventually(async () => (await jsm.consumers.info(kStream, "orders")).num_ack_pending === 0, kCallTimeoutMs, "no acks pending");
  const ci = await jsm.consumers.info(kStream, "orders");
  t.step("second_client", {
    delivered: got2.map(delivery),
    ack_sync: acks,
    consumer: { num_ack_pending: ci.num_ack_pending, num_pending: ci.num_pending, ack_floor_stream_seq: ci.ack_floor.stream_seq },
  });
  checkEqual(got2.map((m) => [m.seq, m.info.deliveryCount, m.redelivered]), [[1, 2, true], [2, 2, true], [3, 2, true]],
    "sequence, attempt and redelivered flag of the redelivery");
  checkEqual(got2.map((m) => m.info.redeliveryCount), [2, 2, 2], "info.redeliveryCount (the $JS.ACK attempt number)");
  checkEqual(acks, [true, true, true], "AckSync answers");
  checkEqual(ci.ack_floor.stream_seq, 3, "the ack floor");
  await second.close();

  await jsm.streams.delete(kStream);
  await admin.close();
});
