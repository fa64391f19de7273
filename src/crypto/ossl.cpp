#include "crypto/ossl.h"

#include <openssl/err.h>

namespace coffer::crypto::ossl {

std::string last_error() {
  unsigned long e = ERR_get_error();
  std::string text;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text = buf;
  }
  ERR_clear_error();
  return text.empty() ? "unknown OpenSSL error" : text;
}

std::unexpected<Error> error(std::string code, const std::string& message) {
  return make_error(std::move(code), message + " (" + last_error() + ")");
}

}  // namespace coffer::crypto::ossl
