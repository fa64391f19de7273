#include "oci/sign/gpg.h"

#include <gpgme.h>
#include <stdlib.h>

#include <memory>
#include <mutex>
#include <set>
#include <system_error>

#include "core/file.h"

namespace coffer::oci::sign {
namespace {

namespace fs = std::filesystem;

struct CtxDeleter {
  void operator()(gpgme_ctx_t c) const { gpgme_release(c); }
};
struct DataDeleter {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
using Ctx = std::unique_ptr<gpgme_context, CtxDeleter>;
using Data = std::unique_ptr<gpgme_data, DataDeleter>;

std::unexpected<Error> gpg_error(const std::string& what, gpgme_error_t err) {
  return make_error("gpg_error", what + ": " + gpgme_strerror(err));
}

// A private keyring directory removed afterwards, so verification never sees the user's keys.
class TempHome {
 public:
  TempHome() {
    std::string tmpl = (fs::temp_directory_path() / "coffer-gpg-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempHome() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempHome(const TempHome&) = delete;
  TempHome& operator=(const TempHome&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Data data_from(ByteView b) {
  gpgme_data_t d = nullptr;
  gpgme_data_new_from_mem(&d, reinterpret_cast<const char*>(b.data()), b.size(), 1);
  return Data(d);
}

}  // namespace

Result<GpgVerified> verify_gpg_signature(ByteView signature,
                                         const std::vector<Bytes>& trusted_keys) {
  static std::once_flag once;
  std::call_once(once, [] { gpgme_check_version(nullptr); });
  TempHome home;
  if (home.path().empty()) return make_error("gpg_error", "cannot create a keyring directory");
  gpgme_ctx_t raw = nullptr;
  if (auto err = gpgme_new(&raw); err != 0) return gpg_error("gpgme_new", err);
  Ctx ctx(raw);
  if (auto err = gpgme_ctx_set_engine_info(ctx.get(), GPGME_PROTOCOL_OpenPGP, nullptr,
                                           home.path().c_str());
      err != 0) {
    return gpg_error("configuring the keyring", err);
  }
  std::set<std::string> trusted;
  for (const auto& key : trusted_keys) {
    Data kd = data_from(key);
    if (auto err = gpgme_op_import(ctx.get(), kd.get()); err != 0) {
      return make_error("bad_key", std::string("cannot import GPG key: ") + gpgme_strerror(err));
    }
    gpgme_import_result_t r = gpgme_op_import_result(ctx.get());
    for (auto* i = r != nullptr ? r->imports : nullptr; i != nullptr; i = i->next) {
      if (i->result == 0 && i->fpr != nullptr) trusted.insert(i->fpr);
    }
  }
  if (trusted.empty()) return make_error("bad_key", "no usable GPG public key was given");
  Data sig = data_from(signature);
  gpgme_data_t plain_raw = nullptr;
  gpgme_data_new(&plain_raw);
  Data plain(plain_raw);
  if (auto err = gpgme_op_verify(ctx.get(), sig.get(), nullptr, plain.get()); err != 0) {
    return make_error("signature_invalid",
                      std::string("not a valid OpenPGP signed message: ") + gpgme_strerror(err));
  }
  gpgme_verify_result_t vr = gpgme_op_verify_result(ctx.get());
  if (vr == nullptr || vr->signatures == nullptr || vr->signatures->next != nullptr) {
    return make_error("signature_invalid", "expected exactly one OpenPGP signature");
  }
  gpgme_signature_t s = vr->signatures;
  if (gpgme_err_code(s->status) != GPG_ERR_NO_ERROR) {
    return make_error("signature_invalid",
                      std::string("GPG signature does not verify: ") + gpgme_strerror(s->status));
  }
  // The signing (sub)key must belong to an imported key: compare the primary fingerprint.
  std::string fpr = s->fpr != nullptr ? s->fpr : "";
  gpgme_key_t key = nullptr;
  if (gpgme_get_key(ctx.get(), fpr.c_str(), &key, 0) == 0 && key != nullptr) {
    if (key->fpr != nullptr) fpr = key->fpr;
    gpgme_key_unref(key);
  }
  if (!trusted.contains(fpr)) {
    return make_error("signature_invalid", "signed by " + fpr + ", which is not a trusted key");
  }
  std::size_t len = 0;
  char* buf = gpgme_data_release_and_get_mem(plain.release(), &len);
  GpgVerified out{Bytes(buf, buf + len), fpr};
  gpgme_free(buf);
  return out;
}

Result<std::vector<Bytes>> read_lookaside_signatures(const fs::path& lookaside,
                                                     const std::string& repository_path,
                                                     const std::string& manifest_digest) {
  auto colon = manifest_digest.find(':');
  fs::path dir = lookaside / (repository_path + "@" + manifest_digest.substr(0, colon) + "=" +
                              manifest_digest.substr(colon + 1));
  std::vector<Bytes> out;
  for (int i = 1; i <= 64; ++i) {
    auto sig = read_file(dir / ("signature-" + std::to_string(i)), 1 << 20);
    if (!sig) {
      if (sig.error().code == "not_found") break;
      return std::unexpected(sig.error());
    }
    out.push_back(std::move(*sig));
  }
  return out;
}

}  // namespace coffer::oci::sign
