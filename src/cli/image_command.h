// `coffer image ...`: copy, encrypt, decrypt, inspect, unpack, keygen, sign, verify over the
// transports docker://REF and oci:DIR[:TAG].
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

// Adds the `image` subcommand tree. Errors print "coffer image CMD: code: message" on stderr and
// throw CLI::RuntimeError(2); success exits 0. Progress goes to stderr: a live line per layer
// on a terminal, one plain line per finished layer otherwise.
void add_image_command(CLI::App& app);

}  // namespace coffer::cli
