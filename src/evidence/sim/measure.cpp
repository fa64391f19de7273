#include "evidence/sim/measure.h"

#include <algorithm>

#include "core/file.h"
#include "crypto/digest.h"
#include "evidence/init_data.h"

namespace coffer::evidence::sim {
namespace {

constexpr std::size_t kMaxComponentBytes = std::size_t{4} << 30;

enum Tag : std::uint8_t { kAgent = 1, kRootfs = 2, kKernel = 3, kInitrd = 4, kCmdline = 5 };

struct Loaded {
  Tag tag;
  std::string name;
  Bytes digest;
};

Result<Loaded> load(Tag tag, const std::optional<std::filesystem::path>& path, const char* what) {
  if (!path) return make_error("bad_enclave", std::string("the enclave needs its ") + what);
  auto data = read_file(*path, kMaxComponentBytes);
  if (!data) return wrap_error(data.error(), std::string("reading the ") + what);
  return Loaded{tag, what, crypto::sha384(*data)};
}

}  // namespace

Result<Bytes> init_data_digest(std::string_view toml_text) {
  return COFFER_TRY(parse_init_data(toml_text)).digest;
}

Result<LaunchMeasurements> measure_enclave(const EnclaveComponents& c) {
  std::vector<Loaded> parts;
  if (c.kind == EnclaveKind::kProcess) {
    if (c.agent_sha384) {
      if (c.agent_sha384->size() != 48) return make_error("bad_enclave", "agent digest size");
      parts.push_back(Loaded{kAgent, "agent executable", *c.agent_sha384});
    } else {
      parts.push_back(COFFER_TRY(load(kAgent, c.agent, "agent executable")));
    }
    parts.push_back(COFFER_TRY(load(kRootfs, c.rootfs_manifest, "root filesystem manifest")));
  } else {
    parts.push_back(COFFER_TRY(load(kKernel, c.kernel, "kernel")));
    if (c.initrd) parts.push_back(COFFER_TRY(load(kInitrd, c.initrd, "initrd")));
    parts.push_back(
        Loaded{kCmdline, "command line", crypto::sha384(as_bytes(c.cmdline.value_or("")))});
  }

  LaunchMeasurements m;
  crypto::Hasher mrtd(crypto::DigestAlg::kSha384);
  mrtd.update(as_bytes("coffer-sim-mrtd-v1"));
  std::uint8_t kind = c.kind == EnclaveKind::kProcess ? 1 : 2;
  mrtd.update(ByteView(&kind, 1));
  for (const auto& p : parts) {
    std::uint8_t hdr[5] = {p.tag};
    store_le32(hdr + 1, static_cast<std::uint32_t>(p.name.size()));
    mrtd.update(ByteView(hdr, 5));
    mrtd.update(as_bytes(p.name));
    mrtd.update(p.digest);
  }
  Bytes mr = mrtd.finish();
  std::copy(mr.begin(), mr.end(), m.mr_td.begin());
  // SGX MRENCLAVE: the same records under another label, SHA-256 (SGX's 32 bytes).
  crypto::Hasher mre(crypto::DigestAlg::kSha256);
  mre.update(as_bytes("coffer-sim-mrenclave-v1"));
  mre.update(ByteView(&kind, 1));
  for (const auto& p : parts) {
    std::uint8_t hdr[5] = {p.tag};
    store_le32(hdr + 1, static_cast<std::uint32_t>(p.name.size()));
    mre.update(ByteView(hdr, 5));
    mre.update(as_bytes(p.name));
    mre.update(p.digest);
  }
  Bytes mre_digest = mre.finish();
  std::copy(mre_digest.begin(), mre_digest.end(), m.mr_enclave.begin());

  // Launch-time RTMR extensions, each logged as the TD firmware would (EV_EVENT_TAG with the
  // component's name as event data).
  m.event_log.append(0, tdx::kEvEventTag, as_bytes("coffer-sim firmware"),
                     as_bytes("coffer-sim-firmware-v1"));
  auto find = [&](Tag t) {
    return std::find_if(parts.begin(), parts.end(), [t](const Loaded& l) { return l.tag == t; });
  };
  auto log = [&](unsigned rtmr, const Loaded& l) {
    m.event_log.append_digest(rtmr, tdx::kEvEventTag, as_bytes(l.name), l.digest);
  };
  if (c.kind == EnclaveKind::kProcess) {
    log(1, *find(kAgent));
    log(2, *find(kRootfs));
  } else {
    log(1, *find(kKernel));
    log(2, *find(kCmdline));
    if (auto it = find(kInitrd); it != parts.end()) log(2, *it);
  }

  if (c.init_data) {
    Bytes d = COFFER_TRY(init_data_digest(*c.init_data));
    if (d.size() > 48)
      return make_error("bad_init_data", "init-data digest longer than MRCONFIGID (use sha384)");
    std::copy(d.begin(), d.end(), m.mr_config_id.begin());
    std::copy(d.begin(), d.end(), m.config_id.begin());
    m.host_data_fits = d.size() <= 32;
    if (m.host_data_fits) std::copy(d.begin(), d.end(), m.host_data.begin());
  }
  return m;
}

Json LaunchMeasurements::reference_values() const {
  // TDX claims are hex, SNP claims standard base64 (as Trustee's verifiers name and encode them).
  Json j = {{"tdx.mr_td", hex_encode(mr_td)},
            {"tdx.mr_config_id", hex_encode(mr_config_id)},
            {"snp.measurement", base64_encode(mr_td)}};
  for (int i = 0; i < 4; ++i)
    j["tdx.rtmr_" + std::to_string(i)] = hex_encode(rtmrs()[static_cast<std::size_t>(i)]);
  if (host_data_fits) j["snp.host_data"] = base64_encode(host_data);
  return j;
}

}  // namespace coffer::evidence::sim
