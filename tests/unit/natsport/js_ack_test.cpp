// The JetStream ack reply subject (both forms) and the ack verbs, without sockets.

#include "natsport/js_ack.hpp"

#include <gtest/gtest.h>

namespace loft::natsport::js {
namespace {

using namespace std::chrono_literals;

TEST(AckReply, EncodesTheNineTokenForm) {
  const AckReply r{"ORDERS", "worker", 2, 17, 40, 1700000000123456789, 5, {}};
  EXPECT_EQ(ack_reply_subject(r), "$JS.ACK.ORDERS.worker.2.17.40.1700000000123456789.5");
}

TEST(AckReply, RoundTrips) {
  const AckReply r{"S", "c-1", 1, 1, 1, 0, 0, {}};
  EXPECT_EQ(parse_ack_reply_subject(ack_reply_subject(r)), r);
}

TEST(AckReply, ParsesTheNewerFormWithDomainAndAccount) {
  const auto twelve =
      parse_ack_reply_subject("$JS.ACK.hub.ACCHASH.ORDERS.worker.3.9.12.1700000000000000000.0.rnd");
  ASSERT_TRUE(twelve);
  EXPECT_EQ(twelve->domain, "hub");
  EXPECT_EQ(twelve->stream, "ORDERS");
  EXPECT_EQ(twelve->consumer, "worker");
  EXPECT_EQ(twelve->delivered, 3u);
  EXPECT_EQ(twelve->stream_seq, 9u);
  EXPECT_EQ(twelve->consumer_seq, 12u);
  const auto eleven = parse_ack_reply_subject("$JS.ACK._.ACC.S.c.1.2.3.4.5");
  ASSERT_TRUE(eleven);
  EXPECT_EQ(eleven->domain, "");
  EXPECT_EQ(eleven->stream, "S");
  EXPECT_EQ(eleven->pending, 5u);
}

TEST(AckReply, RefusesWhatIsNotAnAckSubject) {
  for (const char* s : {"", "$JS.ACK", "$JS.ACK.S.c.1.2.3.4", "$JS.ACK.S.c.1.2.3.4.5.6",
                        "$JS.ACK.S.c.x.2.3.4.5", "$JS.ACK.S..1.2.3.4.5", "$JS.API.S.c.1.2.3.4.5",
                        "$JS.ACK.S.c.1.2.3.4.-5", "$JS.ACK.a.b.S.c.1.2.3.4.5.6.7"}) {
    EXPECT_FALSE(parse_ack_reply_subject(s)) << s;
  }
}

TEST(AckPayload, ReadsEveryVerb) {
  EXPECT_EQ(parse_ack_payload(""), (AckCommand{AckVerb::ack, {}, {}}));
  EXPECT_EQ(parse_ack_payload("+ACK"), (AckCommand{AckVerb::ack, {}, {}}));
  EXPECT_EQ(parse_ack_payload("-NAK"), (AckCommand{AckVerb::nak, {}, {}}));
  EXPECT_EQ(parse_ack_payload("+WPI"), (AckCommand{AckVerb::progress, {}, {}}));
  EXPECT_EQ(parse_ack_payload("+TERM"), (AckCommand{AckVerb::term, {}, {}}));
  EXPECT_EQ(parse_ack_payload("+TERM not for me"), (AckCommand{AckVerb::term, {}, {}}));
  EXPECT_EQ(parse_ack_payload("+NXT"), (AckCommand{AckVerb::next, {}, ""}));
  EXPECT_EQ(parse_ack_payload("+NXT {\"batch\":2}"),
            (AckCommand{AckVerb::next, {}, "{\"batch\":2}"}));
}

TEST(AckPayload, ReadsANakDelayAsJsonOrDuration) {
  EXPECT_EQ(parse_ack_payload("-NAK {\"delay\": 5000000000}")->delay, 5s);
  EXPECT_EQ(parse_ack_payload("-NAK {\"delay\":1}")->delay, 1ns);
  EXPECT_EQ(parse_ack_payload("-NAK 250ms")->delay, 250ms);
  EXPECT_EQ(parse_ack_payload("-NAK 2s")->delay, 2s);
  // A delay that does not parse is a nak without one, as nats-server does it.
  EXPECT_EQ(parse_ack_payload("-NAK {\"delay\":\"x\"}"), (AckCommand{AckVerb::nak, {}, {}}));
  EXPECT_EQ(parse_ack_payload("-NAK {oops"), (AckCommand{AckVerb::nak, {}, {}}));
  EXPECT_EQ(parse_ack_payload("-NAK {\"delay\":-5}"), (AckCommand{AckVerb::nak, {}, {}}));
}

TEST(AckPayload, RefusesOtherPayloads) {
  for (const char* p : {"ACK", "+ACKX", "+ack", "-NAKED", "hello", " +ACK"}) {
    EXPECT_FALSE(parse_ack_payload(p)) << p;
  }
}

TEST(AckPayload, MapsVerbsOntoSettleActions) {
  EXPECT_EQ(settle_action(AckVerb::ack), SettleAction::ack);
  EXPECT_EQ(settle_action(AckVerb::next), SettleAction::ack);
  EXPECT_EQ(settle_action(AckVerb::nak), SettleAction::nack);
  EXPECT_EQ(settle_action(AckVerb::progress), SettleAction::extend);
  EXPECT_EQ(settle_action(AckVerb::term), SettleAction::reject);
}

TEST(AckPayload, DelayIsRoundedUpToMilliseconds) {
  EXPECT_EQ(delay_ms(0ns), 0u);
  EXPECT_EQ(delay_ms(1ns), 1u);
  EXPECT_EQ(delay_ms(1ms), 1u);
  EXPECT_EQ(delay_ms(1001us), 2u);
  EXPECT_EQ(delay_ms(std::chrono::hours(48)), 3'600'000u);  // loft's largest delay
}

TEST(AckRuns, AppendOffsetMakesRuns) {
  std::vector<OffsetRun> runs;
  for (const std::uint64_t o : {4, 5, 6, 9, 10, 2}) append_offset(runs, o);
  EXPECT_EQ(runs, (std::vector<OffsetRun>{{4, 3}, {9, 2}, {2, 1}}));
}

// ack_policy all: an ack of stream sequence 10 (offset 9) settles offsets floor..9.
TEST(AckRuns, AckAllCoversTheFloorToTheMessage) {
  EXPECT_EQ(ack_all_runs(3, 10, 4096), (std::vector<OffsetRun>{{3, 7}}));
  // Chunked, the last run ending with the acked message.
  EXPECT_EQ(ack_all_runs(0, 10, 4), (std::vector<OffsetRun>{{0, 4}, {4, 4}, {8, 2}}));
  EXPECT_EQ(ack_all_runs(0, 8, 4), (std::vector<OffsetRun>{{0, 4}, {4, 4}}));
  // The floor at or past the message: the message alone (the settle ignores it if done).
  EXPECT_EQ(ack_all_runs(9, 10, 4096), (std::vector<OffsetRun>{{9, 1}}));
  EXPECT_EQ(ack_all_runs(50, 10, 4096), (std::vector<OffsetRun>{{9, 1}}));
}

}  // namespace
}  // namespace loft::natsport::js
