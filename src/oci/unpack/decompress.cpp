#include "oci/unpack/decompress.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <vector>

namespace coffer::oci::unpack {
namespace {

constexpr std::size_t kInputBuffer = 256 * 1024;

class PassThrough final : public Reader {
 public:
  explicit PassThrough(Reader& in) : in_(in) {}
  Result<std::size_t> read(std::span<std::uint8_t> b) override { return in_.read(b); }

 private:
  Reader& in_;
};

// gzip members (possibly concatenated) through isa-l, which checks each member's CRC32.
class GzipReader final : public Reader {
 public:
  explicit GzipReader(Reader& in) : in_(in), buffer_(kInputBuffer) {
    state_ = std::make_unique<inflate_state>();
    state_->next_in = nullptr;
    state_->avail_in = 0;
    start_member();
  }

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    while (true) {
      if (member_done_) {
        if (state_->avail_in == 0 && !COFFER_TRY(refill())) return std::size_t{0};
        start_member();
      }
      if (state_->avail_in == 0 && !eof_) COFFER_TRY(refill());
      state_->next_out = out.data();
      state_->avail_out = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), 1u << 30));
      int rc = isal_inflate(state_.get());
      if (rc != ISAL_DECOMP_OK) {
        return make_error("corrupt_layer",
                          "gzip stream is corrupt (isa-l error " + std::to_string(rc) + ")");
      }
      std::size_t produced = out.size() - state_->avail_out;
      if (state_->block_state == ISAL_BLOCK_FINISH) member_done_ = true;
      if (produced > 0) return produced;
      if (member_done_) continue;
      if (eof_ && state_->avail_in == 0) {
        return make_error("truncated_layer", "gzip stream ends before its last block");
      }
    }
  }

 private:
  void start_member() {
    auto* next = state_->next_in;
    auto avail = state_->avail_in;
    isal_inflate_init(state_.get());
    state_->next_in = next;
    state_->avail_in = avail;
    state_->crc_flag = ISAL_GZIP;
    member_done_ = false;
  }

  // false at end of input.
  Result<bool> refill() {
    if (eof_) return false;
    std::size_t n = COFFER_TRY(in_.read(buffer_));
    if (n == 0) {
      eof_ = true;
      return false;
    }
    // isal_inflate keeps next_in/avail_in of any unconsumed bytes: none are left here.
    state_->next_in = buffer_.data();
    state_->avail_in = static_cast<std::uint32_t>(n);
    return true;
  }

  Reader& in_;
  std::vector<std::uint8_t> buffer_;
  std::unique_ptr<inflate_state> state_;
  bool eof_ = false;
  bool member_done_ = false;
};

class ZstdReader final : public Reader {
 public:
  explicit ZstdReader(Reader& in)
      : in_(in), buffer_(ZSTD_DStreamInSize()), ctx_(ZSTD_createDCtx()) {
    // Bounded window: a hostile frame cannot make us allocate more than 128 MiB.
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, 27);
  }
  ~ZstdReader() override { ZSTD_freeDCtx(ctx_); }
  ZstdReader(const ZstdReader&) = delete;
  ZstdReader& operator=(const ZstdReader&) = delete;

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    while (o.pos == 0) {
      if (in_buf_.pos == in_buf_.size) {
        std::size_t n = COFFER_TRY(in_.read(buffer_));
        if (n == 0) {
          if (last_ != 0) return make_error("truncated_layer", "zstd stream ends inside a frame");
          return std::size_t{0};
        }
        in_buf_ = ZSTD_inBuffer{buffer_.data(), n, 0};
      }
      last_ = ZSTD_decompressStream(ctx_, &o, &in_buf_);
      if (ZSTD_isError(last_)) {
        return make_error("corrupt_layer",
                          std::string("zstd stream is corrupt: ") + ZSTD_getErrorName(last_));
      }
    }
    return o.pos;
  }

 private:
  Reader& in_;
  std::vector<std::uint8_t> buffer_;
  ZSTD_DCtx* ctx_;
  ZSTD_inBuffer in_buf_{nullptr, 0, 0};
  std::size_t last_ = 0;
};

}  // namespace

std::unique_ptr<Reader> decompress_reader(Compression compression, Reader& compressed) {
  switch (compression) {
    case Compression::kGzip:
      return std::make_unique<GzipReader>(compressed);
    case Compression::kZstd:
      return std::make_unique<ZstdReader>(compressed);
    case Compression::kNone:
      break;
  }
  return std::make_unique<PassThrough>(compressed);
}

}  // namespace coffer::oci::unpack
