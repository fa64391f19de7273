// Bounds-checked sequential reads and writes for the binary evidence formats.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::evidence {

template <std::size_t N>
using Fixed = std::array<std::uint8_t, N>;

class ByteReader {
 public:
  // `truncated_code` is the error code every short read reports (e.g. "quote_truncated").
  ByteReader(ByteView data, std::string truncated_code)
      : data_(data), truncated_code_(std::move(truncated_code)) {}

  [[nodiscard]] std::size_t offset() const { return pos_; }
  [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }

  Result<ByteView> take(std::size_t n, std::string_view what) {
    if (remaining() < n) {
      return make_error(truncated_code_, std::string(what) + " needs " + std::to_string(n) +
                                             " bytes at offset " + std::to_string(pos_) +
                                             ", only " + std::to_string(remaining()) + " left");
    }
    auto v = data_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  template <std::size_t N>
  Result<Fixed<N>> fixed(std::string_view what) {
    auto v = COFFER_TRY(take(N, what));
    Fixed<N> out;
    std::copy(v.begin(), v.end(), out.begin());
    return out;
  }
  Result<std::uint8_t> u8(std::string_view what) { return COFFER_TRY(take(1, what))[0]; }
  Result<std::uint16_t> u16(std::string_view what) {
    return load_le16(COFFER_TRY(take(2, what)).data());
  }
  Result<std::uint32_t> u32(std::string_view what) {
    return load_le32(COFFER_TRY(take(4, what)).data());
  }
  Result<std::uint64_t> u64(std::string_view what) {
    return load_le64(COFFER_TRY(take(8, what)).data());
  }

 private:
  ByteView data_;
  std::string truncated_code_;
  std::size_t pos_ = 0;
};

class ByteWriter {
 public:
  void put(ByteView v) { out_.insert(out_.end(), v.begin(), v.end()); }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    std::uint8_t b[2];
    store_le16(b, v);
    put(b);
  }
  void u32(std::uint32_t v) {
    std::uint8_t b[4];
    store_le32(b, v);
    put(b);
  }
  void u64(std::uint64_t v) {
    std::uint8_t b[8];
    store_le64(b, v);
    put(b);
  }
  Bytes take() { return std::move(out_); }

 private:
  Bytes out_;
};

}  // namespace coffer::evidence
