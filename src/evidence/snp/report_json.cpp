#include "evidence/snp/report_json.h"

#include <limits>

namespace coffer::evidence::snp {
namespace {

constexpr const char* kCode = "report_json_invalid";

std::unexpected<Error> bad(const std::string& what) {
  return make_error(kCode, "SNP report JSON: " + what);
}

Result<const Json*> field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return make_error(kCode, std::string("SNP report JSON lacks '") + key + "'");
  return &*it;
}

template <typename T>
Result<T> number(const Json& j, const char* key) {
  const Json* v = COFFER_TRY(field(j, key));
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<std::int64_t>() >= 0)) {
    return make_error(kCode, std::string("'") + key + "' is not an unsigned integer");
  }
  auto n = v->get<std::uint64_t>();
  if (n > std::numeric_limits<T>::max()) {
    return make_error(kCode, std::string("'") + key + "' is out of range");
  }
  return static_cast<T>(n);
}

template <typename T>
Result<T> number_or(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return number<T>(j, key);
}

// A byte array: an array of numbers (serde's encoding of [u8; N]) or a hex string.
template <std::size_t N>
Result<Fixed<N>> bytes(const Json& j, const char* key) {
  const Json* v = COFFER_TRY(field(j, key));
  Fixed<N> out{};
  if (v->is_string()) {
    auto b = hex_decode(v->get<std::string>());
    if (!b || b->size() != N) {
      return make_error(kCode, std::string("'") + key + "' is not " + std::to_string(N) + " bytes");
    }
    std::copy(b->begin(), b->end(), out.begin());
    return out;
  }
  if (!v->is_array() || v->size() != N) {
    return make_error(kCode, std::string("'") + key + "' is not an array of " + std::to_string(N));
  }
  for (std::size_t i = 0; i < N; ++i) {
    const Json& e = (*v)[i];
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() > 0xff) {
      return make_error(kCode, std::string("'") + key + "' holds a non-byte value");
    }
    out[i] = static_cast<std::uint8_t>(e.get<std::int64_t>());
  }
  return out;
}

template <std::size_t N>
Result<Fixed<N>> bytes_or_zero(const Json& j, const char* key) {
  if (!j.contains(key)) return Fixed<N>{};
  return bytes<N>(j, key);
}

// TcbVersion: the Turin layout when it has a non-null "fmc" (or the product says so), the
// legacy layout (with its reserved bytes, if given) otherwise.
Result<std::uint64_t> tcb(const Json& j, const char* key, Product product) {
  const Json* t = COFFER_TRY(field(j, key));
  if (!t->is_object()) return make_error(kCode, std::string("'") + key + "' is not an object");
  TcbVersion v;
  v.bootloader = COFFER_TRY(number<std::uint8_t>(*t, "bootloader"));
  v.tee = COFFER_TRY(number<std::uint8_t>(*t, "tee"));
  v.snp = COFFER_TRY(number<std::uint8_t>(*t, "snp"));
  v.microcode = COFFER_TRY(number<std::uint8_t>(*t, "microcode"));
  bool turin = product == Product::kTurin || (t->contains("fmc") && !(*t)["fmc"].is_null());
  if (turin) {
    v.fmc = COFFER_TRY(number<std::uint8_t>(*t, "fmc"));
    return encode_tcb(v, Product::kTurin);
  }
  std::uint64_t raw = encode_tcb(v, Product::kMilan);
  if (t->contains("_reserved")) {
    auto reserved = COFFER_TRY(bytes<4>(*t, "_reserved"));
    for (std::size_t i = 0; i < 4; ++i)
      raw |= static_cast<std::uint64_t>(reserved[i]) << (8 * (2 + i));
  }
  return raw;
}

// CurrentVersion / CommittedVersion bytes: build, minor, major, reserved.
Result<Fixed<4>> version(const Json& j, const char* object_key, const char* prefix) {
  Fixed<4> out{};
  if (auto it = j.find(object_key); it != j.end() && it->is_object()) {
    out[0] = COFFER_TRY(number<std::uint8_t>(*it, "build"));
    out[1] = COFFER_TRY(number<std::uint8_t>(*it, "minor"));
    out[2] = COFFER_TRY(number<std::uint8_t>(*it, "major"));
    return out;
  }
  std::string p(prefix);
  out[0] = COFFER_TRY(number<std::uint8_t>(j, (p + "_build").c_str()));
  out[1] = COFFER_TRY(number<std::uint8_t>(j, (p + "_minor").c_str()));
  out[2] = COFFER_TRY(number<std::uint8_t>(j, (p + "_major").c_str()));
  return out;
}

Json byte_array(ByteView b) {
  Json a = Json::array();
  for (auto v : b) a.push_back(v);
  return a;
}

Json tcb_json(std::uint64_t raw, Product product) {
  TcbVersion t = decode_tcb(raw, product);
  Json fmc = product == Product::kTurin ? Json(t.fmc) : Json(nullptr);
  return Json{{"fmc", fmc},
              {"bootloader", t.bootloader},
              {"tee", t.tee},
              {"snp", t.snp},
              {"microcode", t.microcode}};
}

}  // namespace

Result<Report> report_from_json(const Json& j) {
  if (!j.is_object()) return bad("not an object");
  Report r;
  r.version = COFFER_TRY(number<std::uint32_t>(j, "version"));
  r.guest_svn = COFFER_TRY(number<std::uint32_t>(j, "guest_svn"));
  r.policy = COFFER_TRY(number<std::uint64_t>(j, "policy"));
  r.family_id = COFFER_TRY(bytes<16>(j, "family_id"));
  r.image_id = COFFER_TRY(bytes<16>(j, "image_id"));
  r.vmpl = COFFER_TRY(number<std::uint32_t>(j, "vmpl"));
  r.signature_algo = COFFER_TRY(number<std::uint32_t>(j, "sig_algo"));
  r.cpuid_fam_id = COFFER_TRY(number_or<std::uint8_t>(j, "cpuid_fam_id", 0));
  r.cpuid_mod_id = COFFER_TRY(number_or<std::uint8_t>(j, "cpuid_mod_id", 0));
  r.cpuid_step = COFFER_TRY(number_or<std::uint8_t>(j, "cpuid_step", 0));
  Product product = r.product_from_cpuid();
  r.current_tcb = COFFER_TRY(tcb(j, "current_tcb", product));
  r.platform_info = COFFER_TRY(number<std::uint64_t>(j, "plat_info"));
  r.flags = j.contains("key_info") ? COFFER_TRY(number<std::uint32_t>(j, "key_info"))
                                   : COFFER_TRY(number<std::uint32_t>(j, "_author_key_en"));
  r.reserved0 = COFFER_TRY(number_or<std::uint32_t>(j, "_reserved_0", 0));
  r.report_data = COFFER_TRY(bytes<64>(j, "report_data"));
  r.measurement = COFFER_TRY(bytes<48>(j, "measurement"));
  r.host_data = COFFER_TRY(bytes<32>(j, "host_data"));
  r.id_key_digest = COFFER_TRY(bytes<48>(j, "id_key_digest"));
  r.author_key_digest = COFFER_TRY(bytes<48>(j, "author_key_digest"));
  r.report_id = COFFER_TRY(bytes<32>(j, "report_id"));
  r.report_id_ma = COFFER_TRY(bytes<32>(j, "report_id_ma"));
  r.reported_tcb = COFFER_TRY(tcb(j, "reported_tcb", product));
  if (j.contains("_reserved_1")) {
    // sev <= 3 keeps the 24 bytes after REPORTED_TCB (CPUID fields included) as reserved
    auto reserved = COFFER_TRY(bytes<24>(j, "_reserved_1"));
    r.cpuid_fam_id = reserved[0];
    r.cpuid_mod_id = reserved[1];
    r.cpuid_step = reserved[2];
    std::copy(reserved.begin() + 3, reserved.end(), r.reserved1.begin());
  }
  r.chip_id = COFFER_TRY(bytes<64>(j, "chip_id"));
  r.committed_tcb = COFFER_TRY(tcb(j, "committed_tcb", product));
  r.current_version = COFFER_TRY(version(j, "current", "current"));
  r.committed_version = COFFER_TRY(version(j, "committed", "committed"));
  r.launch_tcb = COFFER_TRY(tcb(j, "launch_tcb", product));
  r.launch_mit_vector = COFFER_TRY(number_or<std::uint64_t>(j, "launch_mit_vector", 0));
  r.current_mit_vector = COFFER_TRY(number_or<std::uint64_t>(j, "current_mit_vector", 0));
  const Json* sig = COFFER_TRY(field(j, "signature"));
  if (!sig->is_object()) return bad("'signature' is not an object");
  r.signature_r = COFFER_TRY(bytes<72>(*sig, "r"));
  r.signature_s = COFFER_TRY(bytes<72>(*sig, "s"));
  // the binary rules (version range, signature algorithm) apply to the JSON form too
  return parse_report(serialize_report(r));
}

Json report_to_json(const Report& r) {
  Product product = r.product_from_cpuid();
  auto cpuid = [&](std::uint8_t v) { return r.version >= 3 ? Json(v) : Json(nullptr); };
  auto ver = [](const Fixed<4>& v) {
    return Json{{"major", v[2]}, {"minor", v[1]}, {"build", v[0]}};
  };
  Json j = {{"version", r.version},
            {"guest_svn", r.guest_svn},
            {"policy", r.policy},
            {"family_id", byte_array(r.family_id)},
            {"image_id", byte_array(r.image_id)},
            {"vmpl", r.vmpl},
            {"sig_algo", r.signature_algo},
            {"current_tcb", tcb_json(r.current_tcb, product)},
            {"plat_info", r.platform_info},
            {"key_info", r.flags},
            {"report_data", byte_array(r.report_data)},
            {"measurement", byte_array(r.measurement)},
            {"host_data", byte_array(r.host_data)},
            {"id_key_digest", byte_array(r.id_key_digest)},
            {"author_key_digest", byte_array(r.author_key_digest)},
            {"report_id", byte_array(r.report_id)},
            {"report_id_ma", byte_array(r.report_id_ma)},
            {"reported_tcb", tcb_json(r.reported_tcb, product)},
            {"cpuid_fam_id", cpuid(r.cpuid_fam_id)},
            {"cpuid_mod_id", cpuid(r.cpuid_mod_id)},
            {"cpuid_step", cpuid(r.cpuid_step)},
            {"chip_id", byte_array(r.chip_id)},
            {"committed_tcb", tcb_json(r.committed_tcb, product)},
            {"current", ver(r.current_version)},
            {"committed", ver(r.committed_version)},
            {"launch_tcb", tcb_json(r.launch_tcb, product)},
            {"signature", {{"r", byte_array(r.signature_r)}, {"s", byte_array(r.signature_s)}}}};
  if (r.version >= 5) {
    j["launch_mit_vector"] = r.launch_mit_vector;
    j["current_mit_vector"] = r.current_mit_vector;
  }
  return j;
}

}  // namespace coffer::evidence::snp
