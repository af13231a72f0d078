// Messages taken out of the middle of a stream: `jsm.streams.deleteMessage` (STREAM.MSG.DELETE,
// with and without erase) and `jsm.streams.purge(name, {filter, keep | seq})`, their answers and
// errors, what STREAM.INFO then counts (messages, first_seq, num_deleted), MSG.GET of a deleted
// sequence, and a consumer that never gets a deleted message.
import { AckPolicy } from "nats";
import { checkEqual, connectTo, expectError, freshStream, kCallTimeoutMs, run, take } from "./lib.mjs";

const kStream = "LOFT_HOLES";

// What STREAM.INFO's state says that does not depend on timing or on how a server counts
// bytes.
async function state(jsm) {
  const s = (await jsm.streams.info(kStream)).state;
  return { messages: s.messages, first_seq: s.first_seq, last_seq: s.last_seq, num_deleted: s.num_deleted ?? 0 };
}

run("js_holes", 20000, async (t, opts) => {
  const nc = await connectTo(opts);
  const { jsm, js } = await freshStream(nc, { name: kStream, subjects: ["holes.>"] });
  // Sequences 1..10: holes.b at odd ones, holes.a at even ones.
  for (let i = 0; i < 10; i++) {
    await js.publish(i % 2 ? "holes.a" : "holes.b", `m${i + 1}`);
  }
  // A consumer made before the deletes, and one after them: neither gets a deleted message.
  await jsm.consumers.add(kStream, { durable_name: "early", ack_policy: AckPolicy.Explicit });

  const deleted = await jsm.streams.deleteMessage(kStream, 3);
  const again = await expectError(jsm.streams.deleteMessage(kStream, 3), "deleting seq 3 again");
  const beyond = await expectError(jsm.streams.deleteMessage(kStream, 100), "deleting seq 100");
  const zero = await expectError(jsm.streams.deleteMessage(kStream, 0), "deleting seq 0");
  const noErase = await jsm.streams.deleteMessage(kStream, 4, false);
  const get = await expectError(jsm.streams.getMessage(kStream, { seq: 3 }), "getting deleted seq 3");
  t.step("delete", { deleted, again, beyond, zero, no_erase: noErase, get_deleted: get, state: await state(jsm) });
  checkEqual(deleted, true, "deleteMessage's answer");
  checkEqual(again.err_code, 10043, "deleting a deleted sequence");
  checkEqual(get.err_code, 10037, "MSG.GET of a deleted sequence");

  await jsm.consumers.add(kStream, { durable_name: "late", ack_policy: AckPolicy.Explicit });
  const seen = {};
  for (const name of ["early", "late"]) {
    const c = await js.consumers.get(kStream, name);
    const got = await take(await c.fetch({ max_messages: 8, expires: 3000 }), 8, kCallTimeoutMs, `${name}'s fetch`);
    for (const m of got) m.ack();
    seen[name] = got.map((m) => m.seq);
  }
  t.step("consumers", seen);
  checkEqual(seen.early, [1, 2, 5, 6, 7, 8, 9, 10], "what a consumer gets after the deletes");

  // holes.a at 2, 6, 8, 10 (4 deleted): keep the newest one.
  const keep = await jsm.streams.purge(kStream, { filter: "holes.a", keep: 1 });
  const afterKeep = await state(jsm);
  // holes.b at 1, 5, 7, 9: those below 9.
  const below = await jsm.streams.purge(kStream, { filter: "holes.b", seq: 9 });
  const afterBelow = await state(jsm);
  const all = await jsm.streams.purge(kStream, { filter: "holes.b" });
  const afterAll = await state(jsm);
  const purgedSeq = await expectError(jsm.streams.deleteMessage(kStream, 1), "deleting purged seq 1");
  t.step("purge_by_subject", {
    keep: { purged: keep.purged, success: keep.success, state: afterKeep },
    seq: { purged: below.purged, state: afterBelow },
    all: { purged: all.purged, state: afterAll },
    delete_purged: purgedSeq,
  });
  checkEqual([keep.purged, below.purged, all.purged], [3, 3, 1], "messages purged by subject");
  checkEqual(afterAll.messages, 1, "one message left");

  await jsm.streams.delete(kStream);
  await nc.close();
});
