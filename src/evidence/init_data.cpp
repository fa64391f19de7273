#include "evidence/init_data.h"

#include "core/config.h"

namespace coffer::evidence {

Result<InitData> parse_init_data(std::string_view toml_text) {
  // config::parse measures the nesting on the text before toml++ recurses over it.
  auto table = config::parse(toml_text, "init-data");
  if (!table) return make_error("bad_init_data", "init-data is not TOML: " + table.error().message);
  InitData out;
  if (const auto* a = table->get("algorithm")) {
    const auto* name = a->as_string();
    if (name == nullptr) return make_error("bad_init_data", "init-data algorithm must be a string");
    if (name->get() == "sha256") {
      out.algorithm = crypto::DigestAlg::kSha256;
    } else if (name->get() == "sha384") {
      out.algorithm = crypto::DigestAlg::kSha384;
    } else if (name->get() == "sha512") {
      out.algorithm = crypto::DigestAlg::kSha512;
    } else {
      return make_error("bad_init_data", "init-data algorithm must be sha256, sha384 or sha512");
    }
  }
  out.digest = crypto::digest(out.algorithm, as_bytes(toml_text));
  const auto* data = table->get_as<toml::table>("data");
  if (data == nullptr) {
    out.claims = Json::object();
    return out;
  }
  auto claims = config::to_json(*data);
  if (!claims) return make_error("bad_init_data", "init-data [data]: " + claims.error().message);
  out.claims = std::move(*claims);
  return out;
}

}  // namespace coffer::evidence
