// ttrpc framing (containerd's ttrpc wire format), shared by the server and the client.
//
// A connection is one byte stream (a Unix socket, or a character device such as a virtio-serial
// port) carrying frames in both directions:
//   length    u32 big endian  payload bytes after this header
//   stream id u32 big endian  the call; clients use odd ids
//   type      u8              1 request, 2 response (3 data: streaming, not used by coffer)
//   flags     u8              0 for unary calls
//   payload   `length` bytes  a protobuf ttrpc.Request or ttrpc.Response (proto/ttrpc/ttrpc.proto)
// A frame over kMaxMessageBytes is never buffered: its payload is skipped and the call answered
// with RESOURCE_EXHAUSTED, and the connection goes on.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"

namespace coffer::net::ttrpc {

inline constexpr std::size_t kHeaderBytes = 10;
inline constexpr std::uint32_t kMaxMessageBytes = 4U << 20U;

enum class FrameType : std::uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;  // raw: unknown types are skipped, not rejected
  std::uint8_t flags = 0;
};

void encode_header(const FrameHeader& header, std::uint8_t out[kHeaderBytes]);
FrameHeader decode_header(const std::uint8_t in[kHeaderBytes]);

// google.rpc.Code, the status codes a ttrpc Response carries.
enum class Code : std::int32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc.; "UNKNOWN" for values outside the table.
std::string_view code_name(Code code);

struct RpcStatus {
  Code code = Code::kUnknown;
  std::string message;

  [[nodiscard]] std::string to_string() const;
  bool operator==(const RpcStatus&) const = default;
};

// What a call answers: the response payload, or a non-OK status.
using CallResult = std::expected<std::string, RpcStatus>;

inline std::unexpected<RpcStatus> status_error(Code code, std::string message) {
  return std::unexpected<RpcStatus>(RpcStatus{code, std::move(message)});
}

// One decoded frame: the header and, unless it was over the limit, its payload.
struct Frame {
  FrameHeader header;
  std::string payload;
  bool oversized = false;  // payload over the limit: skipped, `payload` is empty
};

// Incremental decoder: bytes in, whole frames out, in bounded memory. An oversized frame's
// payload is counted down and dropped as it arrives, never buffered. There is no invalid byte
// sequence at this level: every header is a header; what it announces is checked by the caller.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_message_bytes = kMaxMessageBytes)
      : max_(max_message_bytes) {}

  // Consumes `data`; appends every frame completed by it to `out`.
  void feed(ByteView data, std::vector<Frame>& out);
  // True when no frame is partly received (a clean point for the stream to end).
  [[nodiscard]] bool idle() const { return state_ == State::kHeader && have_ == 0; }

 private:
  enum class State { kHeader, kPayload, kSkip };
  std::uint32_t max_;
  State state_ = State::kHeader;
  std::uint8_t header_[kHeaderBytes] = {};
  std::size_t have_ = 0;  // header bytes so far
  Frame current_;
  std::uint32_t remaining_ = 0;  // payload bytes still to come (kPayload, kSkip)
};

// Encodes a whole frame (header + payload).
std::string encode_frame(std::uint32_t stream_id, FrameType type, std::string_view payload);

}  // namespace coffer::net::ttrpc
