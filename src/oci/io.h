// Byte streams for blobs: pull readers, temporary spool files, and helpers that move data with
// a fixed-size buffer so that memory never grows with blob size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::oci {

inline constexpr std::size_t kStreamBufferSize = 1 << 20;

// A pull stream. read() returns 0 at the end; a checking reader (digest, HMAC) reports its
// verdict as an error from the read that would otherwise return 0.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual Result<std::size_t> read(std::span<std::uint8_t> buffer) = 0;
  // Restarts from the beginning when the source allows it (for retried uploads).
  virtual Status rewind() { return make_error("not_rewindable", "stream cannot be restarted"); }
  // Total length if known in advance, else -1.
  [[nodiscard]] virtual std::int64_t size() const { return -1; }
};

// Reads a whole file descriptor (owned), from offset 0.
class FileReader final : public Reader {
 public:
  static Result<std::unique_ptr<FileReader>> open(const std::filesystem::path& path);
  explicit FileReader(int fd);  // takes ownership
  ~FileReader() override;
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override;
  Status rewind() override;
  [[nodiscard]] std::int64_t size() const override;
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
};

// A reader over memory (manifests, configs, tests).
class MemoryReader final : public Reader {
 public:
  explicit MemoryReader(Bytes data) : data_(std::move(data)) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override;
  Status rewind() override {
    pos_ = 0;
    return ok();
  }
  [[nodiscard]] std::int64_t size() const override {
    return static_cast<std::int64_t>(data_.size());
  }

 private:
  Bytes data_;
  std::size_t pos_ = 0;
};

// A file created in `dir` and removed on destruction unless commit() renamed it into place.
// Anything partial (failed download, failed decryption) therefore never survives.
class TempFile {
 public:
  static Result<TempFile> create(const std::filesystem::path& dir);
  TempFile(TempFile&&) noexcept;
  TempFile& operator=(TempFile&&) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();
  Status write(ByteView data);
  // fsyncs, closes and renames to `target`.
  Status commit(const std::filesystem::path& target);
  // A reader over the content written so far (a new descriptor; the file stays owned here).
  Result<std::unique_ptr<FileReader>> reader() const;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::uint64_t written() const { return written_; }

 private:
  TempFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  void discard();
  int fd_ = -1;
  std::filesystem::path path_;
  std::uint64_t written_ = 0;
};

using ChunkSink = std::function<Status(ByteView chunk)>;

// Sees every byte of a blob while it is downloaded or spooled (a MAC over ciphertext, say).
// reset() starts it over: a retried download sends the bytes again from the first.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  virtual void reset() = 0;
  virtual void update(ByteView chunk) = 0;
};

// Pumps `reader` into `sink` with one kStreamBufferSize buffer; returns the bytes moved.
Result<std::uint64_t> pump(Reader& reader, const ChunkSink& sink);

// Reads a whole (small) stream into memory, failing with "too_large" past `max_bytes`.
Result<Bytes> read_all(Reader& reader, std::size_t max_bytes);

// The directory for spool files: $TMPDIR or /var/tmp.
std::filesystem::path default_spool_dir();

}  // namespace coffer::oci
