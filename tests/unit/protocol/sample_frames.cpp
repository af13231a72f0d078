#include "sample_frames.hpp"

#include <cctype>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace loft::protocol::testing {
namespace {

using namespace std::string_literals;

Message rich_message() {
  Message m;
  m.id = "id-\0-1"s;
  m.key = "\x00\xff\x01key"s;
  m.headers = {{"content-type", "application/octet-stream"},
               {"empty", ""},
               {"", "value with empty name"},
               {"bin", "\0\0\x7f\x80"s}};
  m.payload = "\0payload\0with NULs\0"s;
  m.subject = "orders.eu.new";
  m.deliver_at_ms = 1'700'000'060'000;
  return m;
}

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TopicInfo topic(std::string name, std::uint64_t base) {
  std::vector<std::string> subjects{name + ".*", "shared.>"};
  return TopicInfo{.name = std::move(name),
                   .created_at_ms = 1'700'000'000'123,
                   .first_offset = Offset{base},
                   .next_offset = Offset{base + 17},
                   .messages = 17,
                   .bytes = 4096,
                   .dedup_window_ms = 7'200'000,
                   .dedup_conflict = DedupConflict::duplicate,
                   .max_age_ms = 86'400'000,
                   .max_bytes = 1ULL << 30,
                   .max_messages = 0xFFFFFFFFFFFFFFFF,
                   .subjects = std::move(subjects),
                   .scheduled = base + 3};
}

GroupConfig rich_config() {
  return GroupConfig{30'000, 5, 1'000, 60'000, {100, 200, 0xFFFFFFFF}, "orders.dlq", "orders.*.>"};
}

GroupInfo group_info(std::string group) {
  GroupInfo g;
  g.topic = "orders";
  g.group = std::move(group);
  g.ack_floor = 10;
  g.end = 1ULL << 40;
  g.lag = 7;
  g.in_flight = 3;
  g.scheduled = 2;
  g.dead_lettered = 1;
  g.redelivered = 0xFFFFFFFFFFFFFFFF;
  g.config = rich_config();
  g.consumers = {{1, "worker-a", 1000, 3, StallReason::none},
                 {2, "", 1, 1, StallReason::at_max_in_flight},
                 {3, "w\0c"s, 0, 0, StallReason::waiting_for_backoff},
                 {0xFFFFFFFFFFFFFFFF, "slow", 0xFFFFFFFF, 0xFFFFFFFF, StallReason::slow_socket}};
  g.skipped = 1ULL << 33;
  return g;
}

}  // namespace

std::vector<Frame> sample_frames() {
  std::vector<Frame> f;
  f.push_back({1, Hello{1, 3, "loft-cli 0.1.0"}});
  f.push_back({0, Hello{0, 0, ""}});
  f.push_back({2, HelloOk{1, Limits{}, "loftd 0.1.0"}});
  f.push_back({0xFFFFFFFF, HelloOk{1, Limits{0xFFFFFFFF, 0, 0xFFFF, 1, 7}, "", Durability::os}});
  f.push_back({3, ErrorReply{Errc::topic_not_found, "topic 'x' does not exist"}});
  f.push_back({4, ErrorReply{Errc::malformed_frame, ""}});
  f.push_back({5, ErrorReply{Errc::ok, "\0"s}});
  f.push_back({6, CreateTopic{"orders.v1_eu-west", 0, DedupConflict::duplicate, {}}});
  f.push_back({6, CreateTopic{std::string(249, 'a'), 0, DedupConflict::duplicate, {}}});
  f.push_back({6, CreateTopic{"strict", 1'000, DedupConflict::error, {}}});
  f.push_back({6, CreateTopic{"t", 0xFFFFFFFFFFFFFFFF, DedupConflict::duplicate, {}}});
  f.push_back({7, CreateTopicOk{topic("orders", 0)}});
  f.push_back({8, DeleteTopic{"orders"}});
  f.push_back({8, DeleteTopic{""}});
  f.push_back({9, DeleteTopicOk{}});
  f.push_back({10, ListTopics{}});
  f.push_back({11, ListTopicsOk{}});
  f.push_back({11, ListTopicsOk{{topic("a", 0), topic("b", 1ULL << 40),
                                 TopicInfo{.name = "",
                                           .created_at_ms = -1,
                                           .first_offset = Offset{0xFFFFFFFFFFFFFFFF},
                                           .dedup_window_ms = 1'000,
                                           .dedup_conflict = DedupConflict::error}}}});
  f.push_back({12, DescribeTopic{"orders"}});
  f.push_back({13, DescribeTopicOk{topic("orders", 5)}});
  f.push_back({14, Publish{"orders", {rich_message()}}});
  f.push_back(
      {14, Publish{"orders", {Message{}, rich_message(), Message{"", "", {}, all_bytes()}}}});
  {
    Message big;
    big.id = std::string(0xFFFF, 'i');
    big.key = std::string(0xFFFF, 'k');
    big.headers = {{std::string(0xFFFF, 'n'), std::string(70'000, 'v')}};
    big.payload = std::string(1 << 20, '\0');
    f.push_back({15, Publish{"big", {big}}});
  }
  f.push_back({16, Publish{"", {}}});  // structurally valid; the broker refuses it
  // Version 4: a relative delay for the whole frame (any i64 decodes; the session judges it).
  f.push_back({16, Publish{"orders", {Message{}, Message{"", "", {}, "p"}}, 10'000}});
  f.push_back({16, Publish{"orders", {Message{}}, -1}});
  f.push_back({17, PublishOk{{{Errc::ok, false, 0},
                              {Errc::ok, true, 1},
                              {Errc::message_too_large, false, 0xFFFFFFFFFFFFFFFF}}}});
  f.push_back({17, PublishOk{}});
  f.push_back({18, Fetch{"orders", 42, 100, 1 << 20}});
  f.push_back({18, Fetch{"", 0xFFFFFFFFFFFFFFFF, 0, 0}});
  f.push_back({19, FetchOk{}});
  f.push_back({19, FetchOk{3,
                           10,
                           {StoredMessage{Offset{3}, 1'700'000'000'000, rich_message()},
                            StoredMessage{Offset{4}, -5, Message{}},
                            StoredMessage{Offset{5}, 7, Message{"", "", {}, "later", "", -9}},
                            StoredMessage{Offset{9}, 0, Message{"x", "y", {}, all_bytes()}}}}});
  f.push_back({20, Ping{}});
  f.push_back({20, Pong{}});
  // Consumer groups.
  f.push_back({21, Subscribe{"orders", "billing", {StartKind::earliest, 0}, 0, GroupConfig{}}});
  f.push_back({21, Subscribe{"orders", "billing", {StartKind::offset, 42}, 500, rich_config()}});
  f.push_back({21, Subscribe{"",
                             "",
                             {StartKind::timestamp, 0xFFFFFFFFFFFFFFFF},
                             0xFFFFFFFF,
                             GroupConfig{0xFFFFFFFF, 0xFFFFFFFF, 0, 0, {}, ""}}});
  f.push_back({22, SubscribeOk{7, true, 0}});
  f.push_back({22, SubscribeOk{0xFFFFFFFFFFFFFFFF, false, 1ULL << 50}});
  f.push_back({0x12345678, Deliver{7, "orders", "billing", {}}});
  f.push_back({0x12345678, Deliver{7,
                                   "orders",
                                   "billing",
                                   {DeliveredMessage{5, 1, 1'700'000'000'000, rich_message()},
                                    DeliveredMessage{6, 0xFFFFFFFF, -1, Message{}},
                                    DeliveredMessage{0xFFFFFFFFFFFFFFFF, 2, 0,
                                                     Message{"x", "", {}, all_bytes()}}}}});
  f.push_back({23, Settle{7, SettleAction::ack, false, 0, {{5, 5}}}});
  f.push_back({23, Settle{7, SettleAction::nack, true, kBackoffDelay, {{1, 1}, {3, 0}, {9, 2}}}});
  f.push_back({23, Settle{0, SettleAction::extend, false, 250, {}}});
  f.push_back(
      {23,
       Settle{
           0xFFFFFFFFFFFFFFFF, SettleAction::reject, true, 0, {{0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF}}}});
  f.push_back({24, SettleOk{5, 0}});
  f.push_back({24, SettleOk{0xFFFFFFFF, 0xFFFFFFFF}});
  f.push_back({25, Unsubscribe{7}});
  f.push_back({25, UnsubscribeOk{}});
  f.push_back({26, CreateGroup{"orders", "billing", {StartKind::latest, 0}, rich_config()}});
  f.push_back({26, CreateGroupOk{group_info("billing")}});
  f.push_back({26, CreateGroupOk{GroupInfo{}}});
  f.push_back({27, ListGroups{"orders"}});
  f.push_back({27, ListGroupsOk{}});
  f.push_back({27, ListGroupsOk{{group_info("a"), GroupInfo{}, group_info("b")}}});
  f.push_back({28, DescribeGroup{"orders", "billing"}});
  f.push_back({28, DescribeGroupOk{group_info("billing")}});
  f.push_back({29, DeleteGroup{"orders", "billing"}});
  f.push_back({29, DeleteGroupOk{}});
  f.push_back({30, ResetGroup{"orders", "billing", {StartKind::timestamp, 1'700'000'000'000}}});
  f.push_back({30, ResetGroupOk{group_info("billing")}});
  f.push_back({6, CreateTopic{"kept", 0, DedupConflict::duplicate, {3'600'000, 0, 1'000}}});
  f.push_back({6, CreateTopic{"some", 0, DedupConflict::error, {std::nullopt, 1ULL << 40, {}}}});
  f.push_back({31, AlterTopic{"orders", {0, std::nullopt, 0xFFFFFFFFFFFFFFFF}}});
  f.push_back({31, AlterTopic{"", {}}});
  f.push_back({31, AlterTopicOk{topic("orders", 9)}});
  f.push_back({32, Backup{"/var/backups/loft-2026-11-26"}});
  f.push_back({32, Backup{""}});
  f.push_back({32, BackupOk{"/var/backups/loft-2026-11-26"}});
  f.push_back({33, Authenticate{"PLAIN", std::string("\0billing\0s3cret", 15)}});
  f.push_back({33, Authenticate{"", ""}});
  f.push_back({33, AuthenticateOk{"billing"}});
  return f;
}

namespace {
void clear_subject(Message& m) { m.subject.clear(); }
void clear_filter(GroupInfo& g) { g.config.filter.clear(); }
void clear_subjects(TopicInfo& t) { t.subjects.clear(); }
}  // namespace

Frame as_version_3(Frame frame) {
  std::visit(
      [](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Publish>) {
          b.delay_ms = 0;
          for (auto& m : b.messages) m.deliver_at_ms = 0;
        } else if constexpr (std::is_same_v<T, FetchOk> || std::is_same_v<T, Deliver>) {
          for (auto& m : b.messages) m.message.deliver_at_ms = 0;
        } else if constexpr (std::is_same_v<T, CreateTopicOk> ||
                             std::is_same_v<T, DescribeTopicOk> ||
                             std::is_same_v<T, AlterTopicOk>) {
          b.topic.scheduled = 0;
        } else if constexpr (std::is_same_v<T, ListTopicsOk>) {
          for (auto& t : b.topics) t.scheduled = 0;
        }
      },
      frame.body);
  return frame;
}

Frame as_version_1(Frame frame) {
  frame = as_version_3(std::move(frame));
  std::visit(
      [](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Publish>) {
          for (auto& m : b.messages) clear_subject(m);
        } else if constexpr (std::is_same_v<T, FetchOk>) {
          for (auto& m : b.messages) clear_subject(m.message);
        } else if constexpr (std::is_same_v<T, Deliver>) {
          for (auto& m : b.messages) clear_subject(m.message);
        } else if constexpr (std::is_same_v<T, Subscribe> || std::is_same_v<T, CreateGroup>) {
          b.config.filter.clear();
        } else if constexpr (std::is_same_v<T, CreateGroupOk> ||
                             std::is_same_v<T, DescribeGroupOk> ||
                             std::is_same_v<T, ResetGroupOk>) {
          clear_filter(b.group);
        } else if constexpr (std::is_same_v<T, ListGroupsOk>) {
          for (auto& g : b.groups) clear_filter(g);
        } else if constexpr (std::is_same_v<T, CreateTopicOk> ||
                             std::is_same_v<T, DescribeTopicOk> ||
                             std::is_same_v<T, AlterTopicOk>) {
          clear_subjects(b.topic);
        } else if constexpr (std::is_same_v<T, ListTopicsOk>) {
          for (auto& t : b.topics) clear_subjects(t);
        }
      },
      frame.body);
  return frame;
}

std::string from_hex(std::string_view hex) {
  std::string out;
  int hi = -1;
  for (const char c : hex) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    int v = 0;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      throw std::invalid_argument("from_hex: bad character");
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<char>(hi * 16 + v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("from_hex: odd number of digits");
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out.push_back(' ');
    const auto b = static_cast<unsigned char>(bytes[i]);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

}  // namespace loft::protocol::testing
