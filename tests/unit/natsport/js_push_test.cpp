// JetStream push consumers' pure pieces (src/natsport/js_push.hpp, js_consumer_config.hpp):
// flow control and idle heartbeats on a fake clock, the status blocks sent to the deliver
// subject, and the push fields of a consumer config. No sockets.

#include "natsport/js_push.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "natsport/js_consumer_config.hpp"

namespace loft::natsport::js {
namespace {

using namespace std::chrono_literals;
using Clock = PushFlow::Clock;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;

TEST(PushFlow, WithoutFlowControlEverythingMayBePushed) {
  const Clock::time_point t0{};
  PushFlow f(false, 0s, t0);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(f.pushed(kMiB, t0));
  EXPECT_TRUE(f.may_push());
  EXPECT_EQ(f.pending_bytes(), 0u);
  EXPECT_FALSE(f.next_heartbeat());
}

TEST(PushFlow, WithoutRateLimitNeverPaced) {
  const Clock::time_point t0{};
  PushFlow f(false, 0s, t0);
  for (int i = 0; i < 100; ++i) f.pushed(kMiB, t0);
  EXPECT_FALSE(f.paced_until(t0));
  EXPECT_EQ(f.rate_limit_bps(), 0u);
}

TEST(PushFlow, RateLimitLetsABurstGoThenPacesAtTheRate) {
  const Clock::time_point t0{};
  // 8 Mbit/s: 1,000,000 bytes a second; the bucket holds kRateBurst (1 MiB) at first.
  PushFlow f(false, 0s, t0, 8'000'000);
  EXPECT_FALSE(f.paced_until(t0));
  f.pushed(PushFlow::kRateBurst, t0);  // the whole burst at once: empty, not in debt
  EXPECT_FALSE(f.paced_until(t0));
  f.pushed(500'000, t0);  // 500,000 bytes in debt: half a second to pay back
  const auto until = f.paced_until(t0);
  ASSERT_TRUE(until);
  EXPECT_NEAR(std::chrono::duration<double>(*until - t0).count(), 0.5, 1e-6);
  EXPECT_TRUE(f.paced_until(t0 + 499ms));
  EXPECT_FALSE(f.paced_until(t0 + 500ms));
  // At the rate from there: 100,000 bytes every 100 ms.
  Clock::time_point t = t0 + 500ms;
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(f.paced_until(t)) << i;
    f.pushed(100'000, t);
    const auto next = f.paced_until(t);
    ASSERT_TRUE(next) << i;
    EXPECT_NEAR(std::chrono::duration<double>(*next - t).count(), 0.1, 1e-6) << i;
    t = *next;
  }
}

TEST(PushFlow, RateLimitBucketHoldsNoMoreThanItsBurst) {
  const Clock::time_point t0{};
  PushFlow f(false, 0s, t0, 8'000);  // 1,000 bytes a second
  // An hour idle fills the bucket only to kRateBurst: pushing that much plus 1,000 bytes
  // waits a second.
  const auto t1 = t0 + 1h;
  f.pushed(PushFlow::kRateBurst + 1000, t1);
  const auto until = f.paced_until(t1);
  ASSERT_TRUE(until);
  EXPECT_NEAR(std::chrono::duration<double>(*until - t1).count(), 1.0, 1e-6);
}

TEST(PushFlow, RequestsPastHalfTheWindowAndPausesPastIt) {
  const Clock::time_point t0{};
  PushFlow f(true, 1s, t0);
  EXPECT_EQ(f.window(), 2 * kMiB);
  // 1 MiB exactly is not past half: no request yet.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(f.pushed(256 * kKiB, t0));
  EXPECT_TRUE(f.pushed(1, t0));
  f.request_sent("$JS.FC.S.c.1");
  EXPECT_EQ(f.outstanding(), "$JS.FC.S.c.1");
  // Still pushing until past the whole window, with no second request.
  EXPECT_FALSE(f.pushed(kMiB - 1, t0));
  EXPECT_TRUE(f.may_push());  // exactly the window
  EXPECT_FALSE(f.pushed(1, t0));
  EXPECT_FALSE(f.may_push());
  // Only the outstanding request's answer resumes, and it doubles the window.
  EXPECT_FALSE(f.answered("$JS.FC.S.c.0"));
  EXPECT_FALSE(f.may_push());
  EXPECT_TRUE(f.answered("$JS.FC.S.c.1"));
  EXPECT_TRUE(f.may_push());
  EXPECT_EQ(f.window(), 4 * kMiB);
  EXPECT_EQ(f.pending_bytes(), kMiB);  // what was pushed after the request
  EXPECT_EQ(f.outstanding(), "");
  EXPECT_FALSE(f.answered("$JS.FC.S.c.1"));  // answered once
}

TEST(PushFlow, TheWindowGrowsToItsMaximum) {
  const Clock::time_point t0{};
  PushFlow f(true, 1s, t0);
  for (int round = 0; round < 10; ++round) {
    while (!f.pushed(64 * kKiB, t0)) {
    }
    f.request_sent("r" + std::to_string(round));
    EXPECT_TRUE(f.answered("r" + std::to_string(round)));
  }
  EXPECT_EQ(f.window(), PushFlow::kWindowMax);
}

TEST(PushFlow, HeartbeatsAreDueAfterIdleTime) {
  const Clock::time_point t0{};
  PushFlow f(false, 500ms, t0);
  EXPECT_EQ(f.next_heartbeat(), t0 + 500ms);
  f.pushed(10, t0 + 300ms);  // a push restarts the idle time
  EXPECT_EQ(f.next_heartbeat(), t0 + 800ms);
  f.idle_from(t0 + 800ms);  // a heartbeat was sent
  EXPECT_EQ(f.next_heartbeat(), t0 + 1300ms);
}

TEST(PushStatus, BlocksAsNatsServerSendsThem) {
  EXPECT_EQ(idle_heartbeat_headers(3, 7, ""),
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nNats-Last-Stream: 7\r\n\r\n");
  EXPECT_EQ(idle_heartbeat_headers(3, 7, "$JS.FC.S.c.2"),
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nNats-Last-Stream: 7\r\n"
            "Nats-Consumer-Stalled: $JS.FC.S.c.2\r\n\r\n");
  EXPECT_EQ(flow_control_headers(), "NATS/1.0 100 FlowControl Request\r\n\r\n");
}

tl::expected<ConsumerConfig, ApiError> parse(std::string_view json) {
  return parse_consumer_config(boost::json::parse(json));
}

TEST(PushConfig, ReadAndEchoedAsNatsServerDoes) {
  auto c = parse(R"({"durable_name":"d","deliver_subject":"out","deliver_group":"crew",)"
                 R"("flow_control":true,"idle_heartbeat":500000000})");
  ASSERT_TRUE(c) << c.error().description;
  EXPECT_TRUE(c->push());
  EXPECT_EQ(c->deliver_group, "crew");
  EXPECT_TRUE(c->flow_control);
  EXPECT_EQ(c->idle_heartbeat_ns, 500'000'000);
  const auto o = consumer_config_json(*c);
  EXPECT_EQ(o.at("deliver_subject"), "out");
  EXPECT_EQ(o.at("deliver_group"), "crew");
  EXPECT_EQ(o.at("flow_control"), true);
  EXPECT_EQ(o.at("idle_heartbeat"), 500'000'000);
  EXPECT_EQ(o.at("max_ack_pending"), 1000);
  EXPECT_FALSE(o.contains("max_waiting"));  // pull requests only
  // max_waiting 0 is "not set".
  EXPECT_TRUE(parse(R"({"deliver_subject":"out","max_waiting":0})"));
}

TEST(PushConfig, RateLimitIsEchoed) {
  auto c = parse(R"({"deliver_subject":"out","rate_limit_bps":8000})");
  ASSERT_TRUE(c) << c.error().description;
  EXPECT_EQ(c->rate_limit_bps, 8000u);
  EXPECT_EQ(consumer_config_json(*c).at("rate_limit_bps"), 8000);
}

TEST(PushConfig, RefusedWithNatsServersErrCodes) {
  const auto code = [](std::string_view json) {
    auto c = parse(json);
    return c ? 0 : c.error().err_code;
  };
  EXPECT_EQ(code(R"({"deliver_subject":"out.*"})"), 10079);
  EXPECT_EQ(code(R"({"deliver_subject":"out.>"})"), 10079);
  EXPECT_EQ(code(R"({"deliver_subject":"out","max_waiting":5})"), 10080);
  EXPECT_EQ(code(R"({"deliver_subject":"out","flow_control":true})"), 10108);
  EXPECT_EQ(code(R"({"deliver_subject":"a b"})"), 10112);
  EXPECT_EQ(code(R"({"deliver_subject":"a..b"})"), 10112);
  // nats-server's bound: a heartbeat under 100 ms is 10083; a negative one is kept (none sent).
  EXPECT_EQ(code(R"({"deliver_subject":"out","idle_heartbeat":1000})"), 10083);
  EXPECT_EQ(code(R"({"deliver_subject":"out","idle_heartbeat":99999999})"), 10083);
  EXPECT_EQ(code(R"({"deliver_subject":"out","idle_heartbeat":100000000})"), 0);
  EXPECT_EQ(code(R"({"deliver_subject":"out","idle_heartbeat":-5})"), 0);
  EXPECT_EQ(code(R"({"deliver_subject":"out","rate_limit_bps":-1})"), 10025);
  EXPECT_EQ(code(R"({"deliver_subject":"out","deliver_group":"a b"})"), 10012);
  // Push-only settings on a pull consumer.
  EXPECT_EQ(code(R"({"idle_heartbeat":1000000000})"), 10088);
  EXPECT_EQ(code(R"({"flow_control":true})"), 10089);
}

}  // namespace
}  // namespace loft::natsport::js
