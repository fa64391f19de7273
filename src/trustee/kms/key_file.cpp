#include "trustee/kms/key_file.h"

#include <sys/stat.h>

#include "core/file.h"
#include "crypto/random.h"

namespace coffer::trustee::kms {

Result<Bytes> load_or_create_kek(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    Bytes kek = crypto::random_bytes(32);
    auto written = write_file_atomic(path, kek, 0600);
    if (!written) return wrap_error(written.error(), "creating key-encryption key");
    return kek;
  }
  // A KEK others can read protects nothing.
  if ((st.st_mode & 077) != 0) {
    return make_error("insecure_key_file", "key file '" + path.string() +
                                               "' is accessible by group or others: chmod 600 it");
  }
  auto kek = read_file(path, 1024);
  if (!kek) return wrap_error(kek.error(), "reading key-encryption key");
  if (kek->size() != 32) {
    return make_error("bad_key_file",
                      "key file '" + path.string() + "' must hold exactly 32 bytes");
  }
  return kek;
}

}  // namespace coffer::trustee::kms
