// containerd-shim-coffer-v2: containerd's runtime v2 shim for coffer (runtime type
// io.containerd.coffer.v2; docs/kubernetes.md, "The shim"). The work is in src/runtime/shim.
#include "core/main.h"
#include "runtime/shim/shim.h"

int main(int argc, char** argv) {
  return coffer::run_main("containerd-shim-coffer-v2",
                          [&] { return coffer::runtime::shim::shim_main(argc, argv); });
}
