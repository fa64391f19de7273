// Fuzz target: a hostile byte stream into the ttrpc frame decoder, fed in pieces whose sizes come
// from the input, and every whole frame parsed as the server and the client parse it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "net/ttrpc/frame.h"
#include "ttrpc/ttrpc.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using coffer::net::ttrpc::Frame;
  using coffer::net::ttrpc::FrameDecoder;
  if (size == 0) return 0;
  // the first byte picks the chunk size, so frames are split at every kind of boundary
  const std::size_t chunk = 1 + data[0] % 64;
  FrameDecoder decoder(64 * 1024);
  std::vector<Frame> frames;
  for (std::size_t at = 1; at < size; at += chunk) {
    const std::size_t n = std::min(chunk, size - at);
    decoder.feed(coffer::ByteView(data + at, n), frames);
  }
  for (const auto& frame : frames) {
    if (frame.oversized && !frame.payload.empty()) __builtin_trap();
    ::ttrpc::Request request;
    (void)request.ParseFromString(frame.payload);
    ::ttrpc::Response response;
    (void)response.ParseFromString(frame.payload);
  }
  return 0;
}
