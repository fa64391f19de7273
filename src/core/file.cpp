#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "core/fd.h"

namespace coffer {
namespace {

std::unexpected<Error> errno_error(std::string_view what, const std::filesystem::path& path) {
  int e = errno;
  std::string code = (e == ENOENT) ? "not_found" : (e == EACCES ? "permission_denied" : "io_error");
  return make_error(code, std::string(what) + " '" + path.string() + "': " + std::strerror(e));
}

}  // namespace

Result<Bytes> read_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.get() < 0) return errno_error("cannot open", path);
  Bytes out;
  std::uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(f.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("cannot read", path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return make_error("too_large", "file '" + path.string() + "' is larger than " +
                                         std::to_string(max_bytes) + " bytes");
    }
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

Result<std::string> read_text_file(const std::filesystem::path& path, std::size_t max_bytes) {
  auto bytes = COFFER_TRY(read_file(path, max_bytes));
  return to_string(bytes);
}

Status write_file_atomic(const std::filesystem::path& path, ByteView data, mode_t mode) {
  auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmpXXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return errno_error("cannot create temporary file in", dir);
  Fd f{fd};
  auto fail = [&](std::string_view what) {
    auto err = errno_error(what, tmpl);
    ::unlink(tmpl.c_str());
    return err;
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot chmod");
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::rename(tmpl.c_str(), path.c_str()) != 0) return fail("cannot rename");
  // Persist the rename itself.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.get() >= 0) ::fsync(d.get());
  return ok();
}

}  // namespace coffer
