#include "loft/protocol/frames.hpp"

#include <array>
#include <type_traits>
#include <utility>

namespace loft::protocol {

namespace {

template <class T>
constexpr FrameType frame_type_of() {
  if constexpr (std::is_same_v<T, Hello>)
    return FrameType::hello;
  else if constexpr (std::is_same_v<T, HelloOk>)
    return FrameType::hello_ok;
  else if constexpr (std::is_same_v<T, ErrorReply>)
    return FrameType::error;
  else if constexpr (std::is_same_v<T, CreateTopic>)
    return FrameType::create_topic;
  else if constexpr (std::is_same_v<T, CreateTopicOk>)
    return FrameType::create_topic_ok;
  else if constexpr (std::is_same_v<T, DeleteTopic>)
    return FrameType::delete_topic;
  else if constexpr (std::is_same_v<T, DeleteTopicOk>)
    return FrameType::delete_topic_ok;
  else if constexpr (std::is_same_v<T, ListTopics>)
    return FrameType::list_topics;
  else if constexpr (std::is_same_v<T, ListTopicsOk>)
    return FrameType::list_topics_ok;
  else if constexpr (std::is_same_v<T, DescribeTopic>)
    return FrameType::describe_topic;
  else if constexpr (std::is_same_v<T, DescribeTopicOk>)
    return FrameType::describe_topic_ok;
  else if constexpr (std::is_same_v<T, Publish>)
    return FrameType::publish;
  else if constexpr (std::is_same_v<T, PublishOk>)
    return FrameType::publish_ok;
  else if constexpr (std::is_same_v<T, Fetch>)
    return FrameType::fetch;
  else if constexpr (std::is_same_v<T, FetchOk>)
    return FrameType::fetch_ok;
  else if constexpr (std::is_same_v<T, Ping>)
    return FrameType::ping;
  else if constexpr (std::is_same_v<T, Pong>)
    return FrameType::pong;
  else if constexpr (std::is_same_v<T, Subscribe>)
    return FrameType::subscribe;
  else if constexpr (std::is_same_v<T, SubscribeOk>)
    return FrameType::subscribe_ok;
  else if constexpr (std::is_same_v<T, Deliver>)
    return FrameType::deliver;
  else if constexpr (std::is_same_v<T, Settle>)
    return FrameType::settle;
  else if constexpr (std::is_same_v<T, SettleOk>)
    return FrameType::settle_ok;
  else if constexpr (std::is_same_v<T, Unsubscribe>)
    return FrameType::unsubscribe;
  else if constexpr (std::is_same_v<T, UnsubscribeOk>)
    return FrameType::unsubscribe_ok;
  else if constexpr (std::is_same_v<T, CreateGroup>)
    return FrameType::create_group;
  else if constexpr (std::is_same_v<T, CreateGroupOk>)
    return FrameType::create_group_ok;
  else if constexpr (std::is_same_v<T, ListGroups>)
    return FrameType::list_groups;
  else if constexpr (std::is_same_v<T, ListGroupsOk>)
    return FrameType::list_groups_ok;
  else if constexpr (std::is_same_v<T, DescribeGroup>)
    return FrameType::describe_group;
  else if constexpr (std::is_same_v<T, DescribeGroupOk>)
    return FrameType::describe_group_ok;
  else if constexpr (std::is_same_v<T, DeleteGroup>)
    return FrameType::delete_group;
  else if constexpr (std::is_same_v<T, DeleteGroupOk>)
    return FrameType::delete_group_ok;
  else if constexpr (std::is_same_v<T, ResetGroup>)
    return FrameType::reset_group;
  else if constexpr (std::is_same_v<T, ResetGroupOk>)
    return FrameType::reset_group_ok;
  else if constexpr (std::is_same_v<T, AlterTopic>)
    return FrameType::alter_topic;
  else if constexpr (std::is_same_v<T, AlterTopicOk>)
    return FrameType::alter_topic_ok;
  else if constexpr (std::is_same_v<T, Backup>)
    return FrameType::backup;
  else if constexpr (std::is_same_v<T, BackupOk>)
    return FrameType::backup_ok;
  else
    static_assert(sizeof(T) == 0, "type_of: a Body alternative has no FrameType");
}

// The frame type of each Body alternative, by variant index.
template <std::size_t... I>
constexpr std::array<FrameType, sizeof...(I)> make_type_table(std::index_sequence<I...>) {
  return {frame_type_of<std::variant_alternative_t<I, Body>>()...};
}
constexpr auto kTypeOfIndex =
    make_type_table(std::make_index_sequence<std::variant_size_v<Body>>{});

}  // namespace

FrameType type_of(const Body& body) noexcept {
  // A valueless Body (an exception during assignment) has no type; call it an error frame.
  const auto i = body.index();
  return i < kTypeOfIndex.size() ? kTypeOfIndex[i] : FrameType::error;
}

bool is_fatal(Errc code) noexcept {
  switch (code) {
    case Errc::malformed_frame:
    case Errc::frame_too_large:
    case Errc::unsupported_version:
    case Errc::handshake_required:
    case Errc::unknown_frame_type:
    case Errc::too_many_connections:
    case Errc::handshake_timeout:
    case Errc::frame_timeout:
      return true;
    default:
      return false;
  }
}

}  // namespace loft::protocol
