// Hostile input on the NATS port of the real loftd, beyond what nats_core_test.cpp's NatsHostile
// cases cover (garbage, stalls, silent sockets, a slow consumer, max_connections): a whole
// session, JetStream included, sent one byte per TCP segment; hundreds of connections at once,
// a third of them dropped, some mid-op; the payload limit before CONNECT; and JetStream request
// bodies cut at every byte, nested deep or of the wrong types. Each keeps a well-behaved pair
// working on its own subject and checks at the end that it still does.

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <memory>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "nats_bystander.hpp"
#include "nats_client.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using Kind = NatsEvent::Kind;
namespace json = boost::json;

std::string nats_config(const std::string& extra = "") {
  return "nats_listen = \"127.0.0.1:0\"\n" + extra;
}

// The JSON answer on `reply` to a request, or null if none came (or it is not JSON).
json::value request(NatsConnection& c, std::string_view subject, std::string_view payload,
                    const std::string& reply) {
  if (!c.pub(subject, payload, reply)) return nullptr;
  for (;;) {
    auto m = c.next_msg(10s);
    if (!m) return nullptr;
    if (m->subject != reply) continue;
    boost::system::error_code ec;
    auto v = json::parse(m->payload, ec);
    return ec ? json::value(nullptr) : v;
  }
}

bool is_success(const json::value& v) { return v.is_object() && !v.as_object().contains("error"); }

// ---------------------------------------------------------------------------------------------
// A session split at every byte. The same ops, sent once in one piece and once one byte per
// TCP segment (TCP_NODELAY, a send() per byte), get the same answers: the session reads ops
// split anywhere (control lines, payloads, header blocks, JSON bodies) as if they came whole.

// A session's ops: its subjects under `tag`, its stream S_<tag> (created beforehand).
std::string session_ops(const std::string& tag) {
  const std::string headers = "NATS/1.0\r\nTrace: " + tag + "\r\n\r\n";
  const std::string hpub_sizes =
      std::to_string(headers.size()) + " " + std::to_string(headers.size() + 2);
  std::string s;
  s += R"(CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true})";
  s += "\r\n";
  s += "SUB " + tag + ".> 1\r\n";
  s += "SUB " + tag + ".q workers 2\r\n";
  s += "sub\t" + tag + ".lower  3\r\n";  // names in any case, blanks of any kind
  s += "SUB bad..subject 4\r\n";         // -ERR 'Invalid Subject', the connection stays
  s += "SUB _INBOX." + tag + ".> 9\r\n";
  s += "PUB " + tag + ".a " + tag + ".reply 5\r\nhello\r\n";
  s += "HPUB " + tag + ".q " + hpub_sizes + "\r\n" + headers + "hq\r\n";
  s += "PUB " + tag + ".lower 0\r\n\r\n";
  s += "PUB " + tag + ".js.1 _INBOX." + tag + ".ack1 2\r\nj1\r\n";
  s += "HPUB " + tag + ".js.2 _INBOX." + tag + ".ack2 " + hpub_sizes + "\r\n" + headers + "j2\r\n";
  const std::string next = R"({"batch":2,"expires":10000000000})";
  s += "PUB $JS.API.CONSUMER.MSG.NEXT.S_" + tag + ".C _INBOX." + tag + ".next " +
       std::to_string(next.size()) + "\r\n" + next + "\r\n";
  s += "UNSUB 2\r\n";
  s += "PUB " + tag + ".q 1\r\nx\r\n";
  s += "PING\r\n";
  return s;
}

// What a connection gets for session_ops: every event until its PONG and the four on the
// inbox (two PubAcks, two deliveries, which may come after the PONG), as sorted lines with the
// tag replaced by TAG.
std::vector<std::string> session_events(NatsConnection& c, const std::string& tag) {
  std::vector<std::string> out;
  bool pong = false;
  int inbox = 0;
  while (!pong || inbox < 4) {
    auto e = c.next(10s);
    if (e.kind == Kind::pong) {
      pong = true;
      continue;
    }
    if (e.kind != Kind::msg && e.kind != Kind::err) {
      ADD_FAILURE() << "unexpected: " << to_string(e.kind) << " " << e.text;
      break;
    }
    if (e.sid == "9") ++inbox;
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>:
    // the last two become N (the pending count depends on when the second publish is stored).
    std::string reply = e.reply;
    if (reply.starts_with("$JS.ACK.")) {
      reply.clear();
      int token = 0;
      for (std::size_t i = 0, end = 0; i <= e.reply.size(); i = end + 1, ++token) {
        end = std::min(e.reply.find('.', i), e.reply.size());
        reply += token >= 7 ? std::string("N") : e.reply.substr(i, end - i);
        if (end < e.reply.size()) reply += '.';
      }
    }
    std::string line = std::string(to_string(e.kind)) + " " + e.subject + " " + e.sid + " " +
                       reply + " | " + e.headers + " | " + e.payload + " | " + e.text;
    for (auto at = line.find(tag); at != std::string::npos; at = line.find(tag, at)) {
      line.replace(at, tag.size(), "TAG");
    }
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void create_stream(NatsConnection& c, const std::string& tag) {
  const auto stream = request(c, "$JS.API.STREAM.CREATE.S_" + tag,
                              R"({"name":"S_)" + tag + R"(","subjects":[")" + tag + R"(.js.>"]})",
                              "_INBOX.setup.1");
  ASSERT_TRUE(is_success(stream)) << stream;
  const auto consumer = request(
      c, "$JS.API.CONSUMER.DURABLE.CREATE.S_" + tag + ".C",
      R"({"stream_name":"S_)" + tag + R"(","config":{"durable_name":"C","ack_policy":"explicit"}})",
      "_INBOX.setup.2");
  ASSERT_TRUE(is_success(consumer)) << consumer;
}

TEST(NatsHostileInput, ASessionSentOneBytePerSegmentGetsWhatItGetsInOnePiece) {
  TestDaemon d(nats_config());
  d.start();
  Bystander bystander(d.nats_port());
  NatsConnection setup(d.nats_port());
  ASSERT_TRUE(setup.handshake());
  ASSERT_TRUE(setup.sub("_INBOX.setup.*", "1"));
  // Tags of the same length: the two sessions' bytes differ only in them.
  create_stream(setup, "whole");
  create_stream(setup, "split");

  NatsConnection whole(d.nats_port());
  ASSERT_TRUE(whole.send(session_ops("whole")));
  const auto expected = session_events(whole, "whole");

  NatsConnection split(d.nats_port());
  const std::string ops = session_ops("split");
  for (const char& byte : ops) ASSERT_TRUE(split.send(std::string_view(&byte, 1)));
  EXPECT_EQ(session_events(split, "split"), expected);

  // What came is what NATS does with these ops (checked once; the split run equals it).
  std::string all;
  for (const auto& line : expected) all += line + "\n";
  EXPECT_EQ(expected.size(), 13u) << all;
  for (const char* event : {
           "-ERR    |  |  | Invalid Subject", "MSG TAG.a 1 TAG.reply |  | hello | ",
           "MSG TAG.q 1  | NATS/1.0\r\nTrace: TAG\r\n\r\n | hq | ",
           "MSG TAG.q 2  | NATS/1.0\r\nTrace: TAG\r\n\r\n | hq | ", "MSG TAG.lower 1  |  |  | ",
           "MSG TAG.lower 3  |  |  | ", "MSG TAG.js.1 1 _INBOX.TAG.ack1 |  | j1 | ",
           R"(MSG _INBOX.TAG.ack1 9  |  | {"stream":"S_TAG","seq":1)",
           R"(MSG _INBOX.TAG.ack2 9  |  | {"stream":"S_TAG","seq":2)",
           "MSG TAG.js.1 9 $JS.ACK.S_TAG.C.1.1.1.N.N |  | j1 | ",
           "MSG TAG.js.2 9 $JS.ACK.S_TAG.C.1.2.2.N.N | NATS/1.0\r\nTrace: TAG\r\n\r\n | j2 | ",
           "MSG TAG.q 1  |  | x | ",  // after UNSUB 2: the plain subscription alone
       }) {
    EXPECT_NE(all.find(event), std::string::npos) << event << "\nin\n" << all;
  }
  EXPECT_TRUE(bystander.works());
}

// ---------------------------------------------------------------------------------------------
// Many connections at once: each gets its messages, a queue group shares them, and dropping a
// third of the connections (half of those in the middle of a PUB) holds up nobody and leaks
// no session.

TEST(NatsHostileInput, HundredsOfConnectionsAndAThirdDropped) {
  TestDaemon d(nats_config());
  d.start();
  const auto port = d.nats_port();
  Bystander bystander(port);
  constexpr int kConnections = 300;
  std::vector<std::unique_ptr<NatsConnection>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<NatsConnection>(port));
    auto& c = *clients.back();
    ASSERT_TRUE(c.handshake()) << i;
    // Even ones are plain subscribers, odd ones members of one queue group.
    ASSERT_TRUE(c.sub("many.x", "1", i % 2 == 0 ? "" : "workers")) << i;
    ASSERT_TRUE(c.flush()) << i;
  }
  NatsConnection pub(port);
  ASSERT_TRUE(pub.handshake());
  // Publishes `payload`; every plain subscriber alive must get it once; returns how many
  // times the queue group got it.
  auto round = [&](const std::string& payload, auto alive) {
    EXPECT_TRUE(pub.pub("many.x", payload));
    EXPECT_TRUE(pub.flush());
    int group_got = 0;
    for (int i = 0; i < kConnections; ++i) {
      if (!alive(i)) continue;
      auto& c = *clients[static_cast<std::size_t>(i)];
      EXPECT_TRUE(c.flush()) << i;  // what was sent to it before its PONG is read by then
      int got = 0;
      for (;;) {
        auto m = c.next_msg(0ms);
        if (!m) break;
        EXPECT_EQ(m->payload, payload);
        ++got;
      }
      if (i % 2 == 0) {
        EXPECT_EQ(got, 1) << "plain subscriber " << i;
      } else {
        group_got += got;
      }
    }
    return group_got;
  };
  EXPECT_EQ(round("first", [](int) { return true; }), 1);
  auto dropped = [](int i) { return i % 3 == 0; };
  for (int i = 0; i < kConnections; i += 3) {
    auto& c = *clients[static_cast<std::size_t>(i)];
    if (i % 2 == 0) {
      ASSERT_TRUE(c.send("PUB many.x 100\r\nhalf a pay"));
    }
    c.close();
  }
  // The server lets go of every dropped connection (a message routed to one that is going
  // away is lost, as in NATS), then the others get the next message.
  const std::string open =
      "loft_nats_connections_open " + std::to_string(kConnections - kConnections / 3 + 3) + "\n";
  EXPECT_TRUE(eventually(
      [&] { return http_get(d.http_port(), "/metrics").body.find(open) != std::string::npos; },
      20s))
      << http_get(d.http_port(), "/metrics").body;
  EXPECT_EQ(round("second", [&](int i) { return !dropped(i); }), 1);
  EXPECT_TRUE(bystander.works());
}

// ---------------------------------------------------------------------------------------------
// Before CONNECT a payload may be at most 64 KiB; after it, up to max_payload (1 MiB).

TEST(NatsHostileInput, PayloadsBeforeConnectAreBoundedToSixtyFourKiB) {
  TestDaemon d(nats_config());
  d.start();
  Bystander bystander(d.nats_port());
  NatsConnection early(d.nats_port());
  ASSERT_TRUE(early.send("PUB early 65537\r\n"));
  EXPECT_EQ(early.error_then_close(), "Maximum Payload Violation");
  NatsConnection exact(d.nats_port());
  ASSERT_TRUE(exact.send("SUB early 1\r\n"));
  ASSERT_TRUE(exact.pub("early", std::string(std::size_t{64} << 10, 'e')));
  auto m = exact.next_msg();  // served before CONNECT, as nats-server does without users
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload.size(), 64u * 1024);
  ASSERT_TRUE(exact.handshake());
  ASSERT_TRUE(exact.pub("early", std::string(std::size_t{200} << 10, 'l')));
  m = exact.next_msg();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload.size(), 200u * 1024);
  EXPECT_TRUE(bystander.works());
}

// ---------------------------------------------------------------------------------------------
// JetStream request bodies cut at every byte, nested deep, of the wrong types: each request is
// answered with an error (a JSON error, or a status for a pull request) and the connection
// stays; acks on subjects and with verbs that mean nothing are ignored; the stream and the
// consumer then work.

TEST(NatsHostileInput, BrokenJetStreamBodiesGetErrorsAndTheConnectionStays) {
  TestDaemon d(nats_config());
  d.start();
  Bystander bystander(d.nats_port());
  NatsConnection c(d.nats_port());
  ASSERT_TRUE(c.handshake());
  ASSERT_TRUE(c.sub("_INBOX.h.*", "1"));
  int n = 0;
  auto reply = [&] { return "_INBOX.h." + std::to_string(++n); };
  // Answered with an error: a JSON object with "error", or a status message (HMSG).
  auto refused = [&](const std::string& subject, const std::string& body) {
    const std::string to = reply();
    if (!c.pub(subject, body, to)) return ::testing::AssertionFailure() << "send failed";
    for (;;) {
      auto m = c.next_msg(10s);
      if (!m) {
        return ::testing::AssertionFailure()
               << "no answer: " << to_string(c.last().kind) << " " << c.last().text;
      }
      if (m->subject != to) continue;
      if (m->hmsg && m->payload.empty()) return ::testing::AssertionSuccess() << m->headers;
      boost::system::error_code ec;
      const auto v = json::parse(m->payload, ec);
      if (!ec && v.is_object() && v.as_object().contains("error")) {
        return ::testing::AssertionSuccess();
      }
      return ::testing::AssertionFailure() << "answer: " << m->headers << m->payload;
    }
  };
  const std::string stream = R"({"name":"H","subjects":["h.>"],"max_msgs":100})";
  const std::string consumer =
      R"({"stream_name":"H","config":{"durable_name":"D","ack_policy":"explicit","ack_wait":5000000000}})";
  const std::string next = R"({"batch":1,"expires":1000000000})";
  struct Case {
    std::string subject;
    std::string body;
  };
  std::vector<Case> cases;
  for (std::size_t len = 1; len < stream.size(); ++len) {
    cases.push_back({"$JS.API.STREAM.CREATE.H", stream.substr(0, len)});
  }
  for (std::size_t len = 1; len < consumer.size(); ++len) {
    cases.push_back({"$JS.API.CONSUMER.DURABLE.CREATE.H.D", consumer.substr(0, len)});
  }
  for (const std::string& body :
       {std::string(10000, '[') + std::string(10000, ']'), std::string(10000, '{'),
        std::string("\xff\xfe\x00{", 4), std::string("null"), std::string("[]"),
        std::string(R"({"name":"H","subjects":"h.>"})"),
        std::string(R"({"name":"H","max_msgs":1e400})"),
        std::string(R"({"name":"H","max_msgs":-2})")}) {
    cases.push_back({"$JS.API.STREAM.CREATE.H", body});
  }
  for (const auto& cs : cases) EXPECT_TRUE(refused(cs.subject, cs.body)) << cs.body;
  ASSERT_TRUE(c.flush());
  // The well-formed ones work; then broken pull requests. (Not sent: {"batch":-1}, which
  // nats-server 2.9.10 and loft both take as a pull request that waits.)
  const auto created = request(c, "$JS.API.STREAM.CREATE.H", stream, reply());
  ASSERT_TRUE(is_success(created)) << created;
  const auto durable = request(c, "$JS.API.CONSUMER.DURABLE.CREATE.H.D", consumer, reply());
  ASSERT_TRUE(is_success(durable)) << durable;
  for (std::size_t len = 1; len < next.size(); ++len) {
    EXPECT_TRUE(refused("$JS.API.CONSUMER.MSG.NEXT.H.D", next.substr(0, len))) << len;
  }
  for (const std::string& body :
       {std::string(R"({"batch":"1"})"), std::string(R"({"batch":1,"expires":-5})"),
        std::string(10000, '[')}) {
    EXPECT_TRUE(refused("$JS.API.CONSUMER.MSG.NEXT.H.D", body)) << body;
  }
  // Acks on subjects that name nothing, or with verbs that are none: no harm.
  for (const std::string& subject :
       {std::string("$JS.ACK.H.D.1.1.1.1.0"), std::string("$JS.ACK.H.D"),
        std::string("$JS.ACK.H.D.x.y.z.w.v"), std::string("$JS.ACK.NONE.D.1.1.1.1.0"),
        std::string("$JS.ACK.H.D.99999999999999999999999.1.1.1.0")}) {
    for (const std::string& verb :
         {std::string("+ACK"), std::string("-NAK {\"delay\":"), std::string("+TERM"),
          std::string("+WPI x"), std::string("\xff")}) {
      ASSERT_TRUE(c.pub(subject, verb));
    }
  }
  ASSERT_TRUE(c.flush());
  // The stream and the consumer work: publish, pull, ack with a reply (AckSync).
  const auto ack = request(c, "h.1", "payload", reply());
  ASSERT_TRUE(ack.is_object() && ack.as_object().contains("seq")) << ack;
  ASSERT_TRUE(c.pub("$JS.API.CONSUMER.MSG.NEXT.H.D", next, reply()));
  auto m = c.next_msg(10s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subject, "h.1");
  EXPECT_EQ(m->payload, "payload");
  EXPECT_TRUE(m->reply.starts_with("$JS.ACK.H.D.1.1.")) << m->reply;
  const std::string ack_inbox = reply();
  ASSERT_TRUE(c.pub(m->reply, "+ACK", ack_inbox));
  m = c.next_msg(10s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subject, ack_inbox);
  EXPECT_TRUE(c.flush());
  EXPECT_TRUE(bystander.works());
}

}  // namespace
}  // namespace loft::testing
