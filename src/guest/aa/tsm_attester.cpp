#include "guest/aa/tsm_attester.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/file.h"
#include "crypto/random.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/quote.h"

namespace coffer::guest::aa {
namespace {

namespace fs = std::filesystem;

std::string_view provider_name(TsmAttester::Kind k) {
  return k == TsmAttester::Kind::kTdx ? "tdx_guest" : "sev_guest";
}

Result<std::string> read_attr(const fs::path& path, std::size_t max = 1 << 20) {
  auto text = read_text_file(path, max);
  if (!text)
    return make_error("tsm_io_error", "reading " + path.string() + ": " + text.error().message);
  return text;
}

// One read(2), as configfs attributes are meant to be read (the value is produced per open).
Result<std::uint64_t> read_generation(const fs::path& entry) {
  const fs::path path = entry / "generation";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error("tsm_io_error", "opening " + path.string() + ": " + std::strerror(errno));
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return make_error("tsm_io_error", "reading " + path.string());
  std::string text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size())
    return make_error("tsm_io_error", "generation is not a number: " + text.substr(0, 32));
  return v;
}

// configfs attributes take one write(2) each: no temp file and rename.
Status write_attr(const fs::path& path, ByteView data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error("tsm_io_error", "opening " + path.string() + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    return make_error("tsm_io_error", "writing " + path.string() + ": " + std::strerror(err));
  return ok();
}

// GUIDs in their in-memory (mixed-endian) layout.
struct CertGuid {
  const char* type;
  std::uint8_t bytes[16];
};
constexpr CertGuid kCertGuids[] = {
    {"VCEK",
     {0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
      0xcd}},
    {"VLEK",
     {0xc2, 0x4b, 0x07, 0xa8, 0x5a, 0xa2, 0x3e, 0x48, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
      0xa1}},
    {"ASK",
     {0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
      0x82}},
    {"ARK",
     {0xa4, 0x06, 0xb4, 0xc0, 0x03, 0xa8, 0x52, 0x49, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
      0xae}},
};

// Removes the entry directory we created (configfs: rmdir) when the round trip ends.
struct EntryGuard {
  fs::path path;
  bool owned = false;
  ~EntryGuard() {
    if (owned) ::rmdir(path.c_str());
  }
};

}  // namespace

Result<Json> snp_cert_table_to_json(ByteView table) {
  Json out = Json::array();
  for (std::size_t pos = 0;; pos += 24) {
    if (pos + 24 > table.size())
      return make_error("bad_evidence", "SNP certificate table truncated");
    ByteView entry = table.subspan(pos, 24);
    if (std::all_of(entry.begin(), entry.end(), [](std::uint8_t b) { return b == 0; })) break;
    std::uint32_t offset = load_le32(entry.data() + 16), length = load_le32(entry.data() + 20);
    if (std::size_t{offset} + length > table.size())
      return make_error("bad_evidence", "SNP certificate table entry out of bounds");
    for (const auto& g : kCertGuids) {
      if (std::equal(g.bytes, g.bytes + 16, entry.begin())) {
        out.push_back(
            {{"cert_type", g.type}, {"data", base64_encode(table.subspan(offset, length))}});
      }
    }
  }
  return out;
}

bool TsmAttester::probe(Kind kind, const AttesterOptions& options) {
  std::error_code ec;
  if (!options.tsm_entry.empty()) {
    auto p = read_text_file(options.tsm_entry / "provider", 256);
    return p && p->starts_with(provider_name(kind));
  }
  if (!fs::is_directory(options.tsm_report_dir, ec)) return false;
  // The provider is only visible in an entry: create one to look.
  fs::path entry = options.tsm_report_dir / ("coffer-probe-" + crypto::random_uuid_hex());
  if (::mkdir(entry.c_str(), 0700) != 0) return false;
  auto p = read_text_file(entry / "provider", 256);
  ::rmdir(entry.c_str());
  return p && p->starts_with(provider_name(kind));
}

Result<TsmAttester::Report> TsmAttester::report(ByteView report_data) {
  if (report_data.size() != kReportDataSize)
    return make_error("bad_report_data", "report data must be exactly 64 bytes");
  EntryGuard guard;
  if (!options_.tsm_entry.empty()) {
    guard.path = options_.tsm_entry;
  } else {
    guard.path = options_.tsm_report_dir / ("coffer-" + crypto::random_uuid_hex());
    if (::mkdir(guard.path.c_str(), 0700) != 0) {
      return make_error("tee_not_found", "cannot create a configfs-tsm report entry in " +
                                             options_.tsm_report_dir.string() + ": " +
                                             std::strerror(errno));
    }
    guard.owned = true;
  }
  const fs::path& entry = guard.path;
  auto provider = read_attr(entry / "provider", 256);
  if (!provider)
    return make_error("tee_not_found", "no configfs-tsm provider in " + entry.string());
  if (!provider->starts_with(provider_name(kind_))) {
    return make_error("tsm_wrong_provider", "configfs-tsm provider is '" +
                                                provider->substr(0, provider->find('\n')) +
                                                "', not " + std::string(provider_name(kind_)));
  }
  std::uint64_t before = COFFER_TRY(read_generation(entry));
  COFFER_TRY_STATUS(write_attr(entry / "inblob", report_data));
  std::uint64_t written = COFFER_TRY(read_generation(entry));
  // Our write accounts for one step (configfs); more means someone else wrote in between.
  if (written > before + 1 || written < before) {
    return make_error("tsm_generation_race", "configfs-tsm generation moved from " +
                                                 std::to_string(before) + " to " +
                                                 std::to_string(written) +
                                                 " around our inblob write: another process "
                                                 "is using this report entry");
  }
  auto out = read_file(entry / "outblob", 1 << 20);
  if (!out) return make_error("tsm_io_error", "reading outblob: " + out.error().message);
  Report r{std::move(*out), {}};
  if (auto aux = read_file(entry / "auxblob", 1 << 20); aux) r.auxblob = std::move(*aux);
  std::uint64_t after = COFFER_TRY(read_generation(entry));
  if (after != written) {
    return make_error("tsm_generation_race", "configfs-tsm generation moved from " +
                                                 std::to_string(written) + " to " +
                                                 std::to_string(after) +
                                                 " while reading outblob: the report may not "
                                                 "carry our report data");
  }
  if (r.outblob.empty()) return make_error("tsm_io_error", "outblob is empty");
  return r;
}

Result<Json> TsmAttester::evidence(ByteView report_data) {
  auto r = COFFER_TRY(report(report_data));
  if (kind_ == Kind::kTdx) {
    Json j = {{"quote", base64_encode(r.outblob)}};
    if (auto ccel = read_file(options_.ccel_path, 16 << 20); ccel && !ccel->empty())
      j["cc_eventlog"] = base64_encode(*ccel);
    return j;
  }
  Json j = {{"attestation_report", base64_encode(r.outblob)}};
  if (!r.auxblob.empty()) j["cert_chain"] = COFFER_TRY(snp_cert_table_to_json(r.auxblob));
  return j;
}

Status TsmAttester::extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                               std::string_view /*description*/) {
  if (kind_ != Kind::kTdx)
    return make_error("not_supported", "SEV-SNP has no runtime measurement registers");
  if (digest.size() != 48) return make_error("bad_digest", "RTMR extensions take SHA-384 digests");
  if (index != 2 && index != 3) return make_error("bad_request", "a TD can extend RTMR2 and RTMR3");
  return write_attr(options_.tdx_measurements_dir / ("rtmr" + std::to_string(index) + ":sha384"),
                    digest);
}

Result<InitDataBinding> TsmAttester::check_init_data(ByteView digest) {
  auto r = COFFER_TRY(report(Bytes(kReportDataSize, 0)));
  ByteView field;
  std::optional<evidence::tdx::Quote> quote;
  std::optional<evidence::snp::Report> snp;
  if (kind_ == Kind::kTdx) {
    quote = COFFER_TRY(evidence::tdx::parse_quote(r.outblob));
    field = quote->body.mr_config_id;
  } else {
    snp = COFFER_TRY(evidence::snp::parse_report(r.outblob));
    field = snp->host_data;
  }
  Bytes expected(digest.begin(), digest.end());
  if (expected.size() > field.size() ||
      !std::equal(expected.begin(), expected.end(), field.begin()) ||
      !std::all_of(field.begin() + static_cast<std::ptrdiff_t>(expected.size()), field.end(),
                   [](std::uint8_t b) { return b == 0; })) {
    return make_error("init_data_mismatch",
                      std::string(kind_ == Kind::kTdx ? "MRCONFIGID" : "HOST_DATA") + " is " +
                          hex_encode(field) + ", not the init-data digest " + hex_encode(digest));
  }
  return InitDataBinding::kMatches;
}

}  // namespace coffer::guest::aa
