// The launchers the host side uses (see enclave_factory.h).
#include "runtime/enclave_factory.h"

#include <string>

#include "runtime/process/process_enclave.h"
#include "runtime/vm/qemu_enclave.h"

namespace coffer::runtime {

Result<std::unique_ptr<Enclave>> launch_enclave(std::string_view kind, const EnclaveSpec& spec,
                                                const LaunchObserver& observer) {
  if (kind == "process") return process::launch_process_enclave(spec, observer);
  // the VM enclave: spec.enclave_image is the guest image (`coffer guest-image build`)
  if (kind == "vm") return vm::launch_vm_enclave(spec, {}, observer);
  return make_error("enclave_unavailable", "this build of coffer has no launcher for the '" +
                                               std::string(kind) + "' enclave");
}

}  // namespace coffer::runtime
