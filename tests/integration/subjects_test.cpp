// Subjects and group filters against the real loftd: published with `loft pub --subject` and
// over HTTP, read back with their subjects, a group filtered by the CLI that receives only the
// matching messages, and a client of protocol version 1 that is served as before.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "loft/protocol/codec.hpp"
#include "test_daemon.hpp"

namespace loft::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace json = boost::json;

std::vector<json::object> json_lines(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
  return out;
}

std::string subject_of(const json::object& o) { return std::string(o.at("subject").as_string()); }

TEST(Subjects, PublishedWithLoftPubAndHttpTheyAreStoredAndShownWithEachMessage) {
  TestDaemon d;
  d.start();
  ASSERT_EQ(d.loft({"topic", "create", "orders"}).exit_code, 0);
  auto r = d.loft({"pub", "orders", "from the cli", "--subject", "orders.eu.new"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(d.loft({"pub", "orders", "--subject", "orders.us.new"}, "line 1\nline 2\n").exit_code,
            0);
  HttpClient http(d.http_port());
  auto h = http.post("/v1/topics/orders/messages",
                     R"([{"subject":"orders.eu.paid","payload":"from http"},{"payload":"none"}])");
  ASSERT_EQ(h.status, 200u) << h.body;

  // Refused alike by every front end, and nothing of the request is stored.
  r = d.loft({"pub", "orders", "x", "--subject", "orders..eu"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("invalid subject"));
  r = d.loft({"pub", "orders", "x", "--subject", "orders.*"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("invalid subject"));
  h = http.post("/v1/topics/orders/messages",
                R"([{"payload":"fine"},{"subject":"a b","payload":"bad"}])");
  EXPECT_EQ(h.status, 400u) << h.body;
  EXPECT_THAT(h.body, HasSubstr("invalid subject"));
  EXPECT_THAT(h.body, HasSubstr("message 1 subject 'a b'"));

  auto c = d.client();
  const auto all = fetch_all(*c, "orders");
  ASSERT_TRUE(all) << all.error().to_string();
  std::vector<std::string> subjects;
  for (const auto& m : *all) subjects.push_back(m.message.subject);
  EXPECT_THAT(subjects,
              ElementsAre("orders.eu.new", "orders.us.new", "orders.us.new", "orders.eu.paid", ""));
  // The subject counts in the topic's bytes: payloads 12+6+6+9+4, subjects 13+13+13+14.
  EXPECT_EQ(c->describe_topic("orders")->bytes, 37u + 53u);

  // fetch --json shows every message's subject, its topic's name for one without.
  r = d.loft({"fetch", "orders", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto fetched = json_lines(r.out);
  ASSERT_EQ(fetched.size(), 5u);
  EXPECT_EQ(subject_of(fetched[0]), "orders.eu.new");
  EXPECT_EQ(subject_of(fetched[3]), "orders.eu.paid");
  EXPECT_EQ(subject_of(fetched[4]), "orders");
  EXPECT_EQ(fetched[3].at("payload").as_string(), "from http");
}

// The loft side of a JetStream consumer's filter_subject: a group created with --filter gets
// only the matching messages, the others count as done, and its lag reaches 0.
TEST(Subjects, AGroupFilteredByTheCliReceivesOnlyMatchingMessagesAndItsLagReachesZero) {
  TestDaemon d;
  d.start();
  ASSERT_EQ(d.loft({"topic", "create", "orders"}).exit_code, 0);
  auto r = d.loft({"group", "create", "orders", "eu", "--filter", "orders.eu.*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = d.loft({"group", "create", "orders", "bad", "--filter", "orders.>.eu"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("invalid subject"));
  std::string input;
  for (int i = 0; i < 300; ++i) input += "message " + std::to_string(i) + "\n";
  ASSERT_EQ(d.loft({"pub", "orders", "--subject", "orders.us.new"}, input).exit_code, 0);
  ASSERT_EQ(d.loft({"pub", "orders", "eu 1", "--subject", "orders.eu.new"}).exit_code, 0);
  ASSERT_EQ(d.loft({"pub", "orders", "none"}).exit_code, 0);  // "orders": no match
  ASSERT_EQ(d.loft({"pub", "orders", "eu 2", "--subject", "orders.eu.paid"}).exit_code, 0);
  ASSERT_EQ(d.loft({"pub", "orders", "--subject", "orders.us.paid"}, input).exit_code, 0);

  r = d.loft({"sub", "orders", "--group", "eu", "--json", "--idle-exit", "1s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = json_lines(r.out);
  ASSERT_EQ(got.size(), 2u) << r.out;
  EXPECT_EQ(got[0].at("offset").to_number<std::uint64_t>(), 300u);
  EXPECT_EQ(subject_of(got[0]), "orders.eu.new");
  EXPECT_EQ(got[1].at("payload").as_string(), "eu 2");
  EXPECT_EQ(subject_of(got[1]), "orders.eu.paid");

  // The 300 messages after the last match are done too once the group has looked at them.
  json::object info;
  EXPECT_TRUE(eventually([&] {
    r = d.loft({"group", "describe", "orders", "eu", "--json"});
    if (r.exit_code != 0) return false;
    info = json::parse(r.out).as_object();
    return info.at("lag").to_number<std::uint64_t>() == 0;
  })) << r.out;
  EXPECT_EQ(info.at("filter").as_string(), "orders.eu.*");
  EXPECT_EQ(info.at("ack_floor").to_number<std::uint64_t>(), 603u);
  r = d.loft({"group", "describe", "orders", "eu"});
  EXPECT_THAT(r.out, HasSubstr("filter:            orders.eu.*"));

  // sub --filter creates the group with it; an unfiltered group gets everything. HTTP shows
  // each group's filter.
  r = d.loft({"sub", "orders", "--group", "none", "--filter", "orders", "--json", "--count", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(json_lines(r.out).size(), 1u);
  EXPECT_EQ(json_lines(r.out)[0].at("offset").to_number<std::uint64_t>(), 301u);
  EXPECT_EQ(subject_of(json_lines(r.out)[0]), "orders");
  HttpClient http(d.http_port());
  const auto groups = http.get("/v1/topics/orders/groups");
  ASSERT_EQ(groups.status, 200u);
  std::vector<std::string> filters;
  const auto listed = json::parse(groups.body);
  for (const auto& g : listed.as_array()) {
    filters.emplace_back(g.at("filter").as_string());
  }
  EXPECT_THAT(filters, ElementsAre("orders.eu.*", "orders"));
  EXPECT_TRUE(eventually([&] {
    const auto none = d.client()->describe_group("orders", "none");
    return none && none->lag == 0;
  }));
}

// A blocking connection that speaks protocol version 1 frame by frame, as a client built
// before version 2 does.
class Version1Connection {
 public:
  explicit Version1Connection(std::uint16_t port) : decoder_(16u << 20) {
    decoder_.set_version(1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Version1Connection() { ::close(fd_); }
  Version1Connection(const Version1Connection&) = delete;
  Version1Connection& operator=(const Version1Connection&) = delete;

  // Sends `body` in version 1's layout and returns the reply with the same correlation id
  // (DELIVER frames that arrive first are kept for deliveries()).
  std::optional<protocol::Body> request(protocol::Body body) {
    const auto cid = next_cid_++;
    const auto bytes = protocol::encode(protocol::Frame{cid, std::move(body)}, 1);
    if (!connected_ || ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
                           static_cast<ssize_t>(bytes.size())) {
      return std::nullopt;
    }
    for (;;) {
      auto frame = read_frame();
      if (!frame) return std::nullopt;
      if (const auto* d = std::get_if<protocol::Deliver>(&frame->body)) {
        delivered_.push_back(*d);
        continue;
      }
      if (frame->correlation_id == cid) return std::move(frame->body);
    }
  }

  // Deliveries received so far, and more that arrive within `timeout`.
  const std::vector<protocol::Deliver>& deliveries(std::size_t at_least,
                                                   std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count() < at_least && std::chrono::steady_clock::now() < deadline) {
      auto frame = read_frame(100ms);
      if (!frame) continue;
      if (const auto* d = std::get_if<protocol::Deliver>(&frame->body)) delivered_.push_back(*d);
    }
    return delivered_;
  }

 private:
  std::size_t count() const {
    std::size_t n = 0;
    for (const auto& d : delivered_) n += d.messages.size();
    return n;
  }

  // The next frame, decoded in version 1's layouts: any byte more or less than version 1 has
  // makes it malformed, which fails the test.
  std::optional<protocol::Frame> read_frame(std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto next = decoder_.next();
      if (!next) {
        ADD_FAILURE() << "not a version 1 frame: " << next.error().to_string();
        return std::nullopt;
      }
      if (*next) return std::move(**next);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::array<char, 65536> buf{};
      const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) return std::nullopt;
      decoder_.feed({buf.data(), static_cast<std::size_t>(n)});
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  std::uint32_t next_cid_ = 1;
  protocol::Decoder decoder_;
  std::vector<protocol::Deliver> delivered_;
};

TEST(Subjects, AVersion1ClientIsServedAsBeforeWithoutSubjectsOrFilters) {
  TestDaemon d;
  d.start();
  auto c = d.client();
  EXPECT_EQ(c->server().version, protocol::kProtocolVersion)
      << "the C++ client speaks the newest version with this loftd";
  ASSERT_TRUE(c->create_topic("t"));
  Message with;
  with.subject = "t.eu";
  with.payload = "with a subject";
  ASSERT_TRUE(c->publish("t", with));
  GroupConfig filtered;
  filtered.filter = "t.eu";
  ASSERT_TRUE(c->create_group("t", "eu", {}, filtered));

  Version1Connection v1(d.port());
  auto reply = v1.request(protocol::Hello{1, 1, "old client"});
  ASSERT_TRUE(reply);
  const auto* hello = std::get_if<protocol::HelloOk>(&*reply);
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->version, 1);

  // Publish and fetch in version 1's layout: the stored subject is not sent.
  Message plain;
  plain.id = "old-1";
  plain.payload = "from version 1";
  reply = v1.request(protocol::Publish{"t", {plain}});
  ASSERT_TRUE(reply);
  const auto* published = std::get_if<protocol::PublishOk>(&*reply);
  ASSERT_NE(published, nullptr);
  EXPECT_EQ(published->results.at(0).offset, 1u);
  reply = v1.request(protocol::Fetch{"t", 0, 10, 0});
  ASSERT_TRUE(reply);
  const auto* fetched = std::get_if<protocol::FetchOk>(&*reply);
  ASSERT_NE(fetched, nullptr);
  ASSERT_EQ(fetched->messages.size(), 2u);
  EXPECT_EQ(fetched->messages[0].message.payload, "with a subject");
  EXPECT_EQ(fetched->messages[0].message.subject, "");
  EXPECT_EQ(fetched->messages[1].message, plain);

  // Group replies in version 1's layout: no filter field.
  reply = v1.request(protocol::DescribeGroup{"t", "eu"});
  ASSERT_TRUE(reply);
  const auto* described = std::get_if<protocol::DescribeGroupOk>(&*reply);
  ASSERT_NE(described, nullptr);
  EXPECT_EQ(described->group.config.filter, "");
  EXPECT_EQ(described->group.config.dead_letter_topic, "t.dlq");
  reply = v1.request(protocol::CreateGroup{"t", "old", {}, {}});
  ASSERT_TRUE(reply);
  ASSERT_TRUE(std::holds_alternative<protocol::CreateGroupOk>(*reply));
  EXPECT_EQ(c->describe_group("t", "old")->config.filter, "") << "a version 1 group has none";

  // A version 1 consumer of the filtered group gets the matching message, without its subject.
  reply = v1.request(protocol::Subscribe{"t", "eu", {}, 10, {}});
  ASSERT_TRUE(reply);
  ASSERT_TRUE(std::holds_alternative<protocol::SubscribeOk>(*reply));
  const auto& deliveries = v1.deliveries(1);
  ASSERT_EQ(deliveries.size(), 1u);
  ASSERT_EQ(deliveries[0].messages.size(), 1u);
  EXPECT_EQ(deliveries[0].messages[0].offset, 0u);
  EXPECT_EQ(deliveries[0].messages[0].message.payload, "with a subject");
  reply = v1.request(protocol::Ping{});
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::holds_alternative<protocol::Pong>(*reply));
}

// A server that knows only protocol version 1, as a loftd from before version 2: it answers
// HELLO with version 1 and each PUBLISH, read in version 1's layout, with PUBLISH_OK.
class Version1Server {
 public:
  Version1Server() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    EXPECT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Version1Server() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  Version1Server(const Version1Server&) = delete;
  Version1Server& operator=(const Version1Server&) = delete;

  std::uint16_t port() const { return port_; }
  // Every message published to it so far (read on its thread; call after the confirm).
  std::vector<Message> published() {
    std::lock_guard lock(mutex_);
    return published_;
  }

 private:
  void serve() {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    protocol::Decoder decoder{16u << 20};
    decoder.set_version(1);
    std::array<char, 65536> buf{};
    for (;;) {
      const auto n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      decoder.feed({buf.data(), static_cast<std::size_t>(n)});
      for (;;) {
        auto frame = decoder.next();
        if (!frame) {
          ADD_FAILURE() << "the client sent a frame that is not version 1: "
                        << frame.error().to_string();
          ::close(fd);
          return;
        }
        if (!*frame) break;
        protocol::Body reply = protocol::Pong{};
        if (std::holds_alternative<protocol::Hello>((*frame)->body)) {
          reply = protocol::HelloOk{1, protocol::Limits{}, "loftd before version 2"};
        } else if (auto* p = std::get_if<protocol::Publish>(&(*frame)->body)) {
          protocol::PublishOk ok;
          std::lock_guard lock(mutex_);
          for (auto& m : p->messages) {
            ok.results.push_back({Errc::ok, false, published_.size()});
            published_.push_back(std::move(m));
          }
          reply = std::move(ok);
        }
        const auto bytes = protocol::encode(protocol::Frame{(*frame)->correlation_id, reply}, 1);
        if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) break;
      }
    }
    ::close(fd);
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Message> published_;
};

// The C++ client offers versions 1 and 2: with a server that knows only 1 it works as before,
// and refuses what version 1 cannot carry instead of dropping it.
TEST(Subjects, TheClientWorksWithAServerOfVersion1AndRefusesSubjectsThere) {
  Version1Server server;
  client::Options options;
  options.port = server.port();
  auto c = client::Client::connect(options);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ((*c)->server().version, 1);
  Message plain;
  plain.id = "i";
  plain.payload = "plain";
  const auto ok = (*c)->publish("t", plain);
  ASSERT_TRUE(ok) << ok.error().to_string();
  Message with = plain;
  with.subject = "t.eu";
  const auto refused = (*c)->publish("t", std::vector<Message>{plain, with});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_request);
  EXPECT_THAT(refused.error().detail, HasSubstr("protocol version 1"));
  GroupConfig filtered;
  filtered.filter = "t.*";
  const auto group = (*c)->create_group("t", "g", {}, filtered);
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().code, Errc::invalid_request);
  EXPECT_TRUE((*c)->ping());
  EXPECT_THAT(server.published(), ElementsAre(plain)) << "nothing of the refused requests";
}

}  // namespace
}  // namespace loft::testing
