// The launchers the shipped `coffer` uses (see enclave_factory.h).
#include "cli/enclave_factory.h"

#include <string>

namespace coffer::cli {

Result<std::unique_ptr<runtime::Enclave>> launch_enclave(std::string_view kind,
                                                         const runtime::EnclaveSpec& spec,
                                                         const runtime::LaunchObserver& observer) {
  (void)spec;
  (void)observer;
  // MERGE POINT: with src/runtime/process in the tree, "process" is
  //   return runtime::launch_process_enclave(spec, observer);
  return make_error("enclave_unavailable", "this build of coffer has no launcher for the '" +
                                               std::string(kind) +
                                               "' enclave (src/runtime/process is not built in)");
}

}  // namespace coffer::cli
