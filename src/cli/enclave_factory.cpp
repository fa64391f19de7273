// The launchers the shipped `coffer` uses (see enclave_factory.h).
#include "cli/enclave_factory.h"

#include <string>

#include "runtime/process/process_enclave.h"

namespace coffer::cli {

Result<std::unique_ptr<runtime::Enclave>> launch_enclave(std::string_view kind,
                                                         const runtime::EnclaveSpec& spec,
                                                         const runtime::LaunchObserver& observer) {
  if (kind == "process") return runtime::process::launch_process_enclave(spec, observer);
  return make_error("enclave_unavailable", "this build of coffer has no launcher for the '" +
                                               std::string(kind) +
                                               "' enclave (the VM enclave comes later)");
}

}  // namespace coffer::cli
