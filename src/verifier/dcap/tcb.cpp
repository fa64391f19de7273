#include "verifier/dcap/tcb.h"

#include <algorithm>
#include <cstdio>

#include "verifier/dcap/errors.h"

namespace coffer::verifier::dcap {
namespace {

bool level_matches(const TcbLevel& level, const PckExtensions& pck,
                   const std::optional<TdxTcbInput>& tdx) {
  for (std::size_t i = 0; i < 16; ++i) {
    if (pck.components[i] < level.sgx_components[i]) return false;
  }
  if (pck.pce_svn < level.pce_svn) return false;
  if (tdx) {
    if (!level.tdx_components) return false;
    // With a TDX module major version (byte 1) > 0, bytes 0-1 are judged by the TDX module
    // identity instead (Intel QVL, TCB evaluation for TDX 1.5).
    std::size_t first = tdx->tee_tcb_svn[1] > 0 ? 2 : 0;
    for (std::size_t i = first; i < 16; ++i) {
      if (tdx->tee_tcb_svn[i] < (*level.tdx_components)[i]) return false;
    }
  }
  return true;
}

bool masked_equal(ByteView value, ByteView expected, ByteView mask) {
  if (value.size() != expected.size() || mask.size() != value.size()) return false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if ((value[i] & mask[i]) != (expected[i] & mask[i])) return false;
  }
  return true;
}

// A worse component status moves the platform status to the matching OutOfDate variant.
TcbStatus converge(TcbStatus platform, TcbStatus other) {
  if (other == TcbStatus::kRevoked || platform == TcbStatus::kRevoked) return TcbStatus::kRevoked;
  if (other != TcbStatus::kOutOfDate && other != TcbStatus::kOutOfDateConfigurationNeeded) {
    return platform;
  }
  switch (platform) {
    case TcbStatus::kUpToDate:
    case TcbStatus::kSWHardeningNeeded:
      return TcbStatus::kOutOfDate;
    case TcbStatus::kConfigurationNeeded:
    case TcbStatus::kConfigurationAndSWHardeningNeeded:
      return TcbStatus::kOutOfDateConfigurationNeeded;
    default:
      return platform;
  }
}

void add_advisories(std::vector<std::string>& out, const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
}

}  // namespace

const IsvTcbLevel* select_isv_level(const std::vector<IsvTcbLevel>& levels, std::uint16_t svn) {
  for (const auto& l : levels) {
    if (l.isv_svn <= svn) return &l;
  }
  return nullptr;
}

Result<TcbEvaluation> evaluate_tcb(const TcbInfo& info, const PckExtensions& pck,
                                   const IsvTcbLevel& qe_level,
                                   const std::optional<TdxTcbInput>& tdx) {
  TcbEvaluation ev;
  // platform level: the first (highest) level the PCK's TCB and, for TDX, TEE_TCB_SVN reach
  auto level = std::find_if(info.levels.begin(), info.levels.end(),
                            [&](const TcbLevel& l) { return level_matches(l, pck, tdx); });
  if (level == info.levels.end()) {
    return make_error(DcapError::kTcbLevelNotFound,
                      "the platform's TCB (PCK CPUSVN " + hex_encode(pck.cpu_svn) + ", PCESVN " +
                          std::to_string(pck.pce_svn) + ") is below every level of TCB info " +
                          info.id + " for FMSPC " + hex_encode(info.fmspc));
  }
  ev.platform_status = level->status;
  ev.tcb_date = level->tcb_date;
  add_advisories(ev.advisory_ids, level->advisory_ids);
  ev.qe_status = qe_level.status;
  add_advisories(ev.advisory_ids, qe_level.advisory_ids);
  ev.status = converge(ev.platform_status, ev.qe_status);

  if (tdx) {
    // the TDX module must be Intel's: MRSIGNERSEAM and SEAMATTRIBUTES under the identity's mask
    std::uint8_t major = tdx->tee_tcb_svn[1];
    const TdxModuleIdentity* identity = nullptr;
    if (major > 0) {
      char id[8];
      std::snprintf(id, sizeof id, "TDX_%02X", major);
      for (const auto& m : info.tdx_module_identities) {
        if (m.id == id) identity = &m;
      }
      if (!identity && !info.tdx_module_identities.empty()) {
        return make_error(DcapError::kTdxModuleMismatch,
                          std::string("TCB info has no identity ") + id);
      }
    }
    if (!identity && info.tdx_module) identity = &*info.tdx_module;
    if (identity) {
      if (!std::equal(identity->mrsigner.begin(), identity->mrsigner.end(),
                      tdx->mrsigner_seam.begin(), tdx->mrsigner_seam.end()) ||
          !masked_equal(tdx->seam_attributes, identity->attributes, identity->attributes_mask)) {
        return make_error(
            DcapError::kTdxModuleMismatch,
            "MRSIGNERSEAM/SEAMATTRIBUTES do not match TDX module identity " + identity->id);
      }
      if (!identity->levels.empty()) {
        const IsvTcbLevel* m = select_isv_level(identity->levels, tdx->tee_tcb_svn[0]);
        if (!m) {
          return make_error(DcapError::kTdxModuleTcbLevelNotFound,
                            "TDX module SVN " + std::to_string(tdx->tee_tcb_svn[0]) +
                                " is below every level of " + identity->id);
        }
        ev.tdx_module_status = m->status;
        add_advisories(ev.advisory_ids, m->advisory_ids);
        ev.status = converge(ev.status, m->status);
      }
    }
  }
  return ev;
}

}  // namespace coffer::verifier::dcap
