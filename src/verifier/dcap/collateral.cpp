#include "verifier/dcap/collateral.h"

#include <array>
#include <optional>
#include <set>

#include "core/json.h"
#include "verifier/dcap/errors.h"

namespace coffer::verifier::dcap {
namespace {

constexpr std::array<std::string_view, 7> kStatusNames = {"UpToDate",
                                                          "SWHardeningNeeded",
                                                          "ConfigurationNeeded",
                                                          "ConfigurationAndSWHardeningNeeded",
                                                          "OutOfDate",
                                                          "OutOfDateConfigurationNeeded",
                                                          "Revoked"};

std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// Index one past the JSON string starting at s[i] == '"', or npos.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Index one past the JSON value starting at s[i], or npos.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t') {
    ++i;
  }
  return i;
}

struct Fields {
  const Json& obj;
  DcapError code;

  Result<const Json*> get(std::string_view key) const {
    auto it = obj.find(std::string(key));
    if (it == obj.end()) return make_error(code, "missing field '" + std::string(key) + "'");
    return &*it;
  }
  Result<std::string> str(std::string_view key) const {
    const Json* v = COFFER_TRY(get(key));
    if (!v->is_string()) return make_error(code, "'" + std::string(key) + "' is not a string");
    return v->get<std::string>();
  }
  Result<std::int64_t> integer(std::string_view key) const {
    const Json* v = COFFER_TRY(get(key));
    if (!v->is_number_integer()) {
      return make_error(code, "'" + std::string(key) + "' is not an integer");
    }
    return v->get<std::int64_t>();
  }
  Result<Bytes> hex(std::string_view key, std::size_t size) const {
    auto b = hex_decode(COFFER_TRY(str(key)));
    if (!b || (size != 0 && b->size() != size)) {
      return make_error(
          code, "'" + std::string(key) + "' is not " + std::to_string(size) + " bytes of hex");
    }
    return *b;
  }
  Result<TimePoint> time(std::string_view key) const {
    auto t = parse_rfc3339(COFFER_TRY(str(key)));
    if (!t) return make_error(code, "'" + std::string(key) + "' is not an RFC 3339 time");
    return *t;
  }
};

Result<void> read_status_fields(const Fields& f, TcbStatus& status, std::string& date,
                                std::vector<std::string>& advisories) {
  auto s = parse_tcb_status(COFFER_TRY(f.str("tcbStatus")));
  if (!s) return make_error(f.code, s.error().message);
  status = *s;
  date = f.obj.value("tcbDate", "");
  if (auto it = f.obj.find("advisoryIDs"); it != f.obj.end()) {
    if (!it->is_array()) return make_error(f.code, "'advisoryIDs' is not an array");
    for (const auto& a : *it) {
      if (!a.is_string()) return make_error(f.code, "advisory ID is not a string");
      advisories.push_back(a.get<std::string>());
    }
  }
  return {};
}

Result<std::vector<IsvTcbLevel>> read_isv_levels(const Fields& f) {
  const Json* levels = COFFER_TRY(f.get("tcbLevels"));
  if (!levels->is_array()) return make_error(f.code, "'tcbLevels' is not an array");
  std::vector<IsvTcbLevel> out;
  for (const auto& l : *levels) {
    if (!l.is_object()) return make_error(f.code, "TCB level is not an object");
    Fields lf{l, f.code};
    IsvTcbLevel level;
    const Json* tcb = COFFER_TRY(lf.get("tcb"));
    if (!tcb->is_object()) return make_error(f.code, "'tcb' is not an object");
    auto svn = COFFER_TRY((Fields{*tcb, f.code}.integer("isvsvn")));
    if (svn < 0 || svn > 0xffff) return make_error(f.code, "isvsvn out of range");
    level.isv_svn = static_cast<std::uint16_t>(svn);
    COFFER_TRY_STATUS(read_status_fields(lf, level.status, level.tcb_date, level.advisory_ids));
    out.push_back(std::move(level));
  }
  return out;
}

Result<std::array<std::uint8_t, 16>> read_components(const Fields& f, std::string_view key) {
  const Json* comps = COFFER_TRY(f.get(key));
  if (!comps->is_array() || comps->size() != 16) {
    return make_error(f.code, "'" + std::string(key) + "' must list 16 components");
  }
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) {
    if (!(*comps)[i].is_object()) return make_error(f.code, "component is not an object");
    auto svn = COFFER_TRY((Fields{(*comps)[i], f.code}.integer("svn")));
    if (svn < 0 || svn > 0xff) return make_error(f.code, "component SVN out of range");
    out[i] = static_cast<std::uint8_t>(svn);
  }
  return out;
}

Result<TdxModuleIdentity> read_module(const Fields& f, bool with_levels) {
  TdxModuleIdentity m;
  m.id = f.obj.value("id", "");
  m.mrsigner = COFFER_TRY(f.hex("mrsigner", 48));
  m.attributes = COFFER_TRY(f.hex("attributes", 8));
  m.attributes_mask = COFFER_TRY(f.hex("attributesMask", 8));
  if (with_levels) m.levels = COFFER_TRY(read_isv_levels(f));
  return m;
}

// Splits {"<member>": {...}, "signature": "<hex>"}. The member's exact bytes are found once;
// the signature is checked over them (by the caller, on signed_body) and the data is parsed from
// those very bytes, never from a second reading of the document. The document itself is parsed
// strictly too: a repeated member name, even spelled with escapes, refuses it.
Result<std::pair<Json, Bytes>> split_signed(std::string_view body, std::string_view member,
                                            DcapError code, std::string& raw_out) {
  auto doc = parse_json(body);
  if (!doc) return make_error(code, "collateral is not acceptable JSON: " + doc.error().message);
  if (!doc->is_object()) return make_error(code, "response is not a JSON object");
  auto raw = raw_json_member(body, member);
  if (!raw) return make_error(code, raw.error().message);
  auto inner = parse_json(*raw);
  if (!inner) return make_error(code, "'" + std::string(member) + "': " + inner.error().message);
  if (!inner->is_object()) return make_error(code, "'" + std::string(member) + "' not an object");
  Fields top{*doc, code};
  Bytes sig = COFFER_TRY(top.hex("signature", 64));
  raw_out = std::string(*raw);
  return std::pair{std::move(*inner), sig};
}

}  // namespace

std::string_view tcb_status_name(TcbStatus s) { return kStatusNames[static_cast<std::size_t>(s)]; }

Result<TcbStatus> parse_tcb_status(std::string_view name) {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<TcbStatus>(i);
  }
  return make_error(DcapError::kUnknownTcbStatus, "unknown TCB status '" + std::string(name) + "'");
}

Result<std::string_view> raw_json_member(std::string_view s, std::string_view key) {
  std::size_t i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{')
    return make_error(DcapError::kCollateralJsonInvalid, "not a JSON object");
  i = skip_ws(s, i + 1);
  std::set<std::string, std::less<>> names;
  std::optional<std::string_view> found;
  while (i < s.size() && s[i] == '"') {
    std::size_t key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) break;
    std::string_view quoted = s.substr(i, key_end - i);
    // Names are compared as JSON reads them: "tcb\u0049nfo" is "tcbInfo".
    std::string name(quoted.substr(1, quoted.size() - 2));
    if (name.find('\\') != std::string::npos) {
      auto decoded = parse_json(quoted);
      if (!decoded || !decoded->is_string()) break;
      name = decoded->get<std::string>();
    }
    if (!names.insert(name).second) {
      return make_error(DcapError::kCollateralJsonInvalid, "JSON object repeats the member name '" +
                                                               printable_excerpt(name) +
                                                               "'; the document is refused");
    }
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':') break;
    i = skip_ws(s, i + 1);
    std::size_t end = skip_value(s, i);
    if (end == std::string_view::npos) break;
    if (name == key) found = s.substr(i, end - i);
    i = skip_ws(s, end);
    if (i < s.size() && s[i] == ',') i = skip_ws(s, i + 1);
  }
  // Only a whole, well-formed object answers: a member found before a malformed rest does not.
  if (i >= s.size() || s[i] != '}')
    return make_error(DcapError::kCollateralJsonInvalid, "malformed JSON object");
  if (found) return *found;
  return make_error(DcapError::kCollateralJsonInvalid,
                    "member '" + std::string(key) + "' not found");
}

Result<TcbInfo> parse_tcb_info(std::string_view body) {
  constexpr DcapError code = DcapError::kTcbInfoInvalid;
  TcbInfo info;
  auto [obj, sig] = COFFER_TRY(split_signed(body, "tcbInfo", code, info.signed_body));
  info.signature = std::move(sig);
  Fields f{obj, code};
  info.id = COFFER_TRY(f.str("id"));
  info.version = static_cast<int>(COFFER_TRY(f.integer("version")));
  info.issue_date = COFFER_TRY(f.time("issueDate"));
  info.next_update = COFFER_TRY(f.time("nextUpdate"));
  info.fmspc = COFFER_TRY(f.hex("fmspc", 6));
  info.pce_id = COFFER_TRY(f.hex("pceId", 2));
  info.tcb_evaluation_data_number =
      static_cast<int>(COFFER_TRY(f.integer("tcbEvaluationDataNumber")));
  if (auto it = obj.find("tdxModule"); it != obj.end() && it->is_object()) {
    info.tdx_module = COFFER_TRY(read_module(Fields{*it, code}, false));
  }
  if (auto it = obj.find("tdxModuleIdentities"); it != obj.end()) {
    if (!it->is_array()) return make_error(code, "'tdxModuleIdentities' is not an array");
    for (const auto& m : *it) {
      if (!m.is_object()) return make_error(code, "TDX module identity is not an object");
      info.tdx_module_identities.push_back(COFFER_TRY(read_module(Fields{m, code}, true)));
    }
  }
  const Json* levels = COFFER_TRY(f.get("tcbLevels"));
  if (!levels->is_array()) return make_error(code, "'tcbLevels' is not an array");
  for (const auto& l : *levels) {
    if (!l.is_object()) return make_error(code, "TCB level is not an object");
    Fields lf{l, code};
    const Json* tcb = COFFER_TRY(lf.get("tcb"));
    if (!tcb->is_object()) return make_error(code, "'tcb' is not an object");
    Fields tf{*tcb, code};
    TcbLevel level;
    level.sgx_components = COFFER_TRY(read_components(tf, "sgxtcbcomponents"));
    auto pce = COFFER_TRY(tf.integer("pcesvn"));
    if (pce < 0 || pce > 0xffff) return make_error(code, "pcesvn out of range");
    level.pce_svn = static_cast<std::uint16_t>(pce);
    if (tcb->contains("tdxtcbcomponents")) {
      level.tdx_components = COFFER_TRY(read_components(tf, "tdxtcbcomponents"));
    }
    COFFER_TRY_STATUS(read_status_fields(lf, level.status, level.tcb_date, level.advisory_ids));
    info.levels.push_back(std::move(level));
  }
  return info;
}

Result<EnclaveIdentity> parse_enclave_identity(std::string_view body) {
  constexpr DcapError code = DcapError::kQeIdentityInvalid;
  EnclaveIdentity id;
  auto [obj, sig] = COFFER_TRY(split_signed(body, "enclaveIdentity", code, id.signed_body));
  id.signature = std::move(sig);
  Fields f{obj, code};
  id.id = COFFER_TRY(f.str("id"));
  id.version = static_cast<int>(COFFER_TRY(f.integer("version")));
  id.issue_date = COFFER_TRY(f.time("issueDate"));
  id.next_update = COFFER_TRY(f.time("nextUpdate"));
  id.tcb_evaluation_data_number =
      static_cast<int>(COFFER_TRY(f.integer("tcbEvaluationDataNumber")));
  auto misc = COFFER_TRY(f.hex("miscselect", 4));
  auto misc_mask = COFFER_TRY(f.hex("miscselectMask", 4));
  // MISCSELECT is a little-endian u32 in the report; the JSON spells it big-endian.
  id.miscselect = load_le32(Bytes(misc.rbegin(), misc.rend()).data());
  id.miscselect_mask = load_le32(Bytes(misc_mask.rbegin(), misc_mask.rend()).data());
  id.attributes = COFFER_TRY(f.hex("attributes", 16));
  id.attributes_mask = COFFER_TRY(f.hex("attributesMask", 16));
  id.mrsigner = COFFER_TRY(f.hex("mrsigner", 32));
  auto prod = COFFER_TRY(f.integer("isvprodid"));
  if (prod < 0 || prod > 0xffff) return make_error(code, "isvprodid out of range");
  id.isv_prod_id = static_cast<std::uint16_t>(prod);
  id.levels = COFFER_TRY(read_isv_levels(f));
  return id;
}

}  // namespace coffer::verifier::dcap
