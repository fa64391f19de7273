#include "net/ttrpc/frame.h"

#include <algorithm>
#include <array>

namespace coffer::net::ttrpc {
namespace {

constexpr std::array<std::string_view, 17> kCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

std::uint32_t load_be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24U) | (static_cast<std::uint32_t>(p[1]) << 16U) |
         (static_cast<std::uint32_t>(p[2]) << 8U) | static_cast<std::uint32_t>(p[3]);
}

void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24U);
  p[1] = static_cast<std::uint8_t>(v >> 16U);
  p[2] = static_cast<std::uint8_t>(v >> 8U);
  p[3] = static_cast<std::uint8_t>(v);
}

}  // namespace

void encode_header(const FrameHeader& header, std::uint8_t out[kHeaderBytes]) {
  store_be32(out, header.length);
  store_be32(out + 4, header.stream_id);
  out[8] = header.type;
  out[9] = header.flags;
}

FrameHeader decode_header(const std::uint8_t in[kHeaderBytes]) {
  return FrameHeader{load_be32(in), load_be32(in + 4), in[8], in[9]};
}

std::string_view code_name(Code code) {
  const auto i = static_cast<std::int32_t>(code);
  if (i < 0 || static_cast<std::size_t>(i) >= kCodeNames.size()) return "UNKNOWN";
  return kCodeNames[static_cast<std::size_t>(i)];
}

std::string RpcStatus::to_string() const { return std::string(code_name(code)) + ": " + message; }

void FrameDecoder::feed(ByteView data, std::vector<Frame>& out) {
  while (!data.empty()) {
    switch (state_) {
      case State::kHeader: {
        const std::size_t take = std::min(kHeaderBytes - have_, data.size());
        std::copy_n(data.begin(), take, header_ + have_);
        have_ += take;
        data = data.subspan(take);
        if (have_ < kHeaderBytes) return;
        have_ = 0;
        current_ = Frame{decode_header(header_), {}, false};
        remaining_ = current_.header.length;
        if (remaining_ > max_) {
          current_.oversized = true;
          state_ = State::kSkip;
        } else {
          current_.payload.reserve(remaining_);
          state_ = State::kPayload;
        }
        break;
      }
      case State::kPayload:
      case State::kSkip: {
        const std::size_t take = std::min<std::size_t>(remaining_, data.size());
        if (state_ == State::kPayload) {
          current_.payload.append(reinterpret_cast<const char*>(data.data()), take);
        }
        remaining_ -= static_cast<std::uint32_t>(take);
        data = data.subspan(take);
        break;
      }
    }
    // a frame is complete when its payload is (at once for a zero-length frame)
    if (state_ != State::kHeader && remaining_ == 0) {
      out.push_back(std::move(current_));
      current_ = Frame{};
      state_ = State::kHeader;
    }
  }
}

std::string encode_frame(std::uint32_t stream_id, FrameType type, std::string_view payload) {
  std::string out(kHeaderBytes + payload.size(), '\0');
  encode_header(FrameHeader{static_cast<std::uint32_t>(payload.size()), stream_id,
                            static_cast<std::uint8_t>(type), 0},
                reinterpret_cast<std::uint8_t*>(out.data()));
  std::copy(payload.begin(), payload.end(), out.begin() + kHeaderBytes);
  return out;
}

}  // namespace coffer::net::ttrpc
