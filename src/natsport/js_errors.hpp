#pragma once
// JetStream API errors (module-private): the error object of an API response,
// `{"type":"io.nats.jetstream.api.v1.<x>_response","error":{"code":..,"err_code":..,
// "description":..}}`, and the table of err_codes NATS clients compare and branch on. The
// numbers and texts are nats-server's (its documented errors; docs/nats.md lists the ones loft
// sends). A `{...}` in nats-server's text is a placeholder: loft fills it in and passes the
// whole text as the description.

#include <cstdint>
#include <string>
#include <string_view>

namespace loft::natsport::js {

// One kind of JetStream API error: the HTTP-like status, nats-server's err_code and its text.
struct ErrorKind {
  std::uint16_t code;
  std::uint16_t err_code;
  std::string_view description;
};

// What a response carries: a kind, its description possibly filled in.
struct ApiError {
  std::uint16_t code = 500;
  std::uint16_t err_code = 0;
  std::string description;
};

ApiError api_error(const ErrorKind& kind);
ApiError api_error(const ErrorKind& kind, std::string description);

// "io.nats.jetstream.api.v1.<name>_response" (name: "stream_create", "account_info", ...).
std::string response_type(std::string_view name);
// The whole response JSON of an error.
std::string error_response(std::string_view name, const ApiError& error);

// `text` with every byte that does not begin a well-formed UTF-8 sequence replaced by U+FFFD
// (overlong forms, surrogates and code points above U+10FFFF are not well-formed): what a JSON
// answer may carry of the bytes a client sent (a subject, a name). Valid UTF-8 is kept as is.
std::string valid_utf8(std::string_view text);

// The table. Streams and the account (wt-jsstreams); consumers append theirs below.
namespace err {
inline constexpr ErrorKind kBadRequest{400, 10003, "bad request"};
inline constexpr ErrorKind kClusterRequired{503, 10010, "JetStream clustering support required"};
inline constexpr ErrorKind kInsufficientResources{503, 10023, "insufficient resources"};
inline constexpr ErrorKind kInvalidJson{400, 10025, "invalid JSON"};  // "invalid JSON: {err}"
inline constexpr ErrorKind kMaximumStreamsLimit{400, 10027, "maximum number of streams reached"};
inline constexpr ErrorKind kNoMessageFound{404, 10037, "no message found"};
inline constexpr ErrorKind kNotEmptyRequest{400, 10038, "expected an empty request payload"};
inline constexpr ErrorKind kNotEnabledForAccount{503, 10039, "JetStream not enabled for account"};
inline constexpr ErrorKind kSequenceNotFound{400, 10043,
                                             "sequence not found"};  // "sequence {seq} not found"
inline constexpr ErrorKind kStorageResourcesExceeded{500, 10047,
                                                     "insufficient storage resources available"};
inline constexpr ErrorKind kStreamCreate{500, 10049, "stream create failed"};          // "{err}"
inline constexpr ErrorKind kStreamDelete{500, 10050, "stream delete failed"};          // "{err}"
inline constexpr ErrorKind kStreamGeneral{500, 10051, "stream failure"};               // "{err}"
inline constexpr ErrorKind kStreamInvalidConfig{500, 10052, "invalid stream config"};  // "{err}"
inline constexpr ErrorKind kStreamMessageExceedsMaximum{400, 10054,
                                                        "message size exceeds maximum allowed"};
inline constexpr ErrorKind kStreamMismatch{400, 10056,
                                           "stream name in subject does not match request"};
inline constexpr ErrorKind kStreamMsgDeleteFailed{500, 10057, "message delete failed"};  // "{err}"
inline constexpr ErrorKind kStreamNameExist{400, 10058, "stream name already in use"};
inline constexpr ErrorKind kStreamNotFound{404, 10059, "stream not found"};
inline constexpr ErrorKind kStreamNotMatch{400, 10060, "expected stream does not match"};
inline constexpr ErrorKind kStreamReplicasNotUpdatable{400, 10061,
                                                       "Replicas configuration can not be updated"};
inline constexpr ErrorKind kStreamSubjectOverlap{400, 10065,
                                                 "subjects overlap with an existing stream"};
inline constexpr ErrorKind kStreamUpdate{500, 10069, "stream update failed"};       // "{err}"
inline constexpr ErrorKind kStreamWrongLastMsgId{400, 10070, "wrong last msg ID"};  // ": {id}"
inline constexpr ErrorKind kStreamWrongLastSequence{400, 10071,
                                                    "wrong last sequence"};  // ": {seq}"
inline constexpr ErrorKind kStreamReplicasNotSupported{
    500, 10074, "replicas > 1 not supported in non-clustered mode"};
inline constexpr ErrorKind kNotEnabled{503, 10076, "JetStream not enabled"};
inline constexpr ErrorKind kStreamStoreFailed{503, 10077, "store failed"};  // "{err}"
inline constexpr ErrorKind kStreamHeaderExceedsMaximum{
    400, 10097, "header size exceeds maximum allowed of 64k"};
inline constexpr ErrorKind kStreamPurgeFailed{500, 10110, "purge failed"};  // "{err}"
inline constexpr ErrorKind kStreamNameContainsPathSeparators{
    400, 10128, "Stream name can not contain path separators"};
// Consumers (wt-jsconsumers appends here).
inline constexpr ErrorKind kConsumerNotFound{404, 10014, "consumer not found"};
inline constexpr ErrorKind kConsumerCreate{500, 10012, "consumer create failed"};  // "{err}"
inline constexpr ErrorKind kConsumerNameExist{400, 10013, "consumer name already in use"};
inline constexpr ErrorKind kConsumerDurableNameNotInSubject{
    400, 10016, "consumer expected to be durable but no durable name set in subject"};
inline constexpr ErrorKind kConsumerDurableNameNotMatchSubject{
    400, 10017, "consumer name in subject does not match durable name in request"};
inline constexpr ErrorKind kConsumerEphemeralWithDurableName{
    400, 10020, "consumer expected to be ephemeral but a durable name was set in request"};
inline constexpr ErrorKind kConsumerConfigRequired{400, 10078, "consumer config required"};
inline constexpr ErrorKind kConsumerDeliverToWildcards{400, 10079,
                                                       "consumer deliver subject has wildcards"};
inline constexpr ErrorKind kConsumerPushMaxWaiting{400, 10080,
                                                   "consumer in push mode can not set max waiting"};
inline constexpr ErrorKind kConsumerDeliverCycle{400, 10081,
                                                 "consumer deliver subject forms a cycle"};
inline constexpr ErrorKind kConsumerSmallHeartbeat{400, 10083,
                                                   "consumer idle heartbeat needs to be >= 100ms"};
inline constexpr ErrorKind kConsumerPullWithRateLimit{
    400, 10086, "consumer in pull mode can not have rate limit set"};
inline constexpr ErrorKind kConsumerMaxWaitingNegative{400, 10087,
                                                       "consumer max waiting needs to be positive"};
inline constexpr ErrorKind kConsumerHbRequiresPush{
    400, 10088, "consumer idle heartbeat requires a push based consumer"};
inline constexpr ErrorKind kConsumerFcRequiresPush{
    400, 10089, "consumer flow control requires a push based consumer"};
inline constexpr ErrorKind kConsumerInvalidPolicy{400, 10094,
                                                  "invalid consumer policy"};  // "{err}"
inline constexpr ErrorKind kConsumerDescriptionTooLong{
    400, 10107, "consumer description is too long"};  // ", maximum allowed is {max}"
inline constexpr ErrorKind kConsumerBadDurableName{400, 10103,
                                                   "durable name can not contain '.', '*', '>'"};
inline constexpr ErrorKind kConsumerWithFlowControlNeedsHeartbeats{
    400, 10108, "consumer with flow control also needs heartbeats"};
inline constexpr ErrorKind kConsumerInvalidDeliverSubject{400, 10112,
                                                          "invalid push consumer deliver subject"};
inline constexpr ErrorKind kConsumerMaxRequestBatchNegative{
    400, 10114, "consumer max request batch needs to be > 0"};
inline constexpr ErrorKind kConsumerMaxDeliverBackoff{
    400, 10116, "max deliver is required to be > length of backoff values"};
inline constexpr ErrorKind kConsumerMaxPendingAckExcess{
    400, 10121, "consumer max ack pending exceeds system limit"};  // "... of {limit}"
inline constexpr ErrorKind kConsumerNameContainsPathSeparators{
    400, 10127, "Consumer name can not contain path separators"};
inline constexpr ErrorKind kConsumerCreateFilterSubjectMismatch{
    400, 10131, "Consumer create request did not match filtered subject from create subject"};
inline constexpr ErrorKind kConsumerCreateDurableAndNameMismatch{
    400, 10132, "Consumer Durable and Name have to be equal if both are provided"};
}  // namespace err

}  // namespace loft::natsport::js
