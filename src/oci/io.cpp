#include "oci/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "crypto/random.h"

namespace coffer::oci {
namespace {

Error errno_error(const std::string& what) {
  return Error{"io_error", what + ": " + std::strerror(errno)};
}

}  // namespace

Result<std::unique_ptr<FileReader>> FileReader::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return make_error("not_found", path.string() + " does not exist");
    return std::unexpected(errno_error("opening " + path.string()));
  }
  return std::make_unique<FileReader>(fd);
}

FileReader::FileReader(int fd) : fd_(fd) {}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> FileReader::read(std::span<std::uint8_t> buffer) {
  for (;;) {
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return std::unexpected(errno_error("reading blob"));
  }
}

Status FileReader::rewind() {
  if (::lseek(fd_, 0, SEEK_SET) < 0) return std::unexpected(errno_error("rewinding blob"));
  return ok();
}

std::int64_t FileReader::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return -1;
  return st.st_size;
}

Result<std::size_t> MemoryReader::read(std::span<std::uint8_t> buffer) {
  std::size_t n = std::min(buffer.size(), data_.size() - pos_);
  std::memcpy(buffer.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Result<TempFile> TempFile::create(const std::filesystem::path& dir) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto path = dir / (".coffer-tmp-" + crypto::random_uuid_hex());
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return TempFile(fd, path);
    if (errno != EEXIST) {
      return std::unexpected(errno_error("creating a temporary file in " + dir.string()));
    }
  }
  return make_error("io_error", "could not create a unique temporary file in " + dir.string());
}

TempFile::TempFile(TempFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), written_(o.written_) {
  o.path_.clear();
}

TempFile& TempFile::operator=(TempFile&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
    o.path_.clear();
    written_ = o.written_;
  }
  return *this;
}

TempFile::~TempFile() { discard(); }

void TempFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

Status TempFile::write(ByteView data) {
  const std::uint8_t* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(errno_error("writing " + path_.string()));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  written_ += data.size();
  return ok();
}

Status TempFile::commit(const std::filesystem::path& target) {
  if (::fsync(fd_) != 0) return std::unexpected(errno_error("syncing " + path_.string()));
  ::close(fd_);
  fd_ = -1;
  if (::rename(path_.c_str(), target.c_str()) != 0) {
    return std::unexpected(errno_error("renaming into " + target.string()));
  }
  path_.clear();
  return ok();
}

Result<std::unique_ptr<FileReader>> TempFile::reader() const { return FileReader::open(path_); }

Result<std::uint64_t> pump(Reader& reader, const ChunkSink& sink) {
  std::vector<std::uint8_t> buffer(kStreamBufferSize);
  std::uint64_t total = 0;
  for (;;) {
    std::size_t n = COFFER_TRY(reader.read(buffer));
    if (n == 0) return total;
    COFFER_TRY_STATUS(sink(ByteView(buffer.data(), n)));
    total += n;
  }
}

Result<Bytes> read_all(Reader& reader, std::size_t max_bytes) {
  Bytes out;
  std::uint8_t buffer[16384];
  for (;;) {
    std::size_t n = COFFER_TRY(reader.read(buffer));
    if (n == 0) return out;
    if (out.size() + n > max_bytes) {
      return make_error("too_large", "content exceeds " + std::to_string(max_bytes) + " bytes");
    }
    out.insert(out.end(), buffer, buffer + n);
  }
}

std::filesystem::path default_spool_dir() {
  const char* t = std::getenv("TMPDIR");
  return (t != nullptr && *t != '\0') ? std::filesystem::path(t)
                                      : std::filesystem::path("/var/tmp");
}

}  // namespace coffer::oci
