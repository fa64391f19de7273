// How every `coffer` command ends: one exit-code table (docs/cli.md), one way to report an error
// (sanitised, with a hint that says what to do), and the option checks every group shares.
//
//   if (!r) cli::fail("coffer kbs", r.error(), cli::Peer::kKbs);   // prints, exits by the table
//
// Commands throw CLI::RuntimeError(code) through fail(); cli::run() (apps/coffer/main.cpp) turns
// it and CLI11's own parse errors into the process exit code.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "guest/aa/kbs_client.h"

namespace coffer::cli {

// The exit codes scripts can rely on, for every command.
enum class ExitCode : int {
  kOk = 0,
  // Refused or failed: verification, signature or policy check failed, the KBS denied the
  // request, a decryption key does not open the data, or any failure not listed below.
  kRefused = 1,
  // Usage: the command line is wrong (unknown option, missing argument, bad value, malformed
  // URL), or a file given as an argument is missing, unreadable or not what it should be.
  kUsage = 2,
  // Unreachable: connection refused, DNS, timeout, connection closed without an answer, TLS
  // handshake or certificate verification failed.
  kUnreachable = 3,
  // The server failed or answered something unexpected (HTTP 5xx, a malformed answer).
  kRemoteError = 4,
  // The target already exists (an existing PKI, file or socket that is not replaced).
  kConflict = 5,
  // The named thing does not exist: a KBS resource, policy or reference value (404), an image,
  // tag, manifest or blob.
  kNotFound = 6,
  // A bug: an exception escaped (core/main.h).
  kInternal = 70,
};

// Which server a command was talking to when an error happened: picks the hint's options.
enum class Peer { kNone, kKbs, kRegistry };

// The table: the exit code for an Error::code. Unlisted codes are kRefused.
ExitCode exit_code_for(std::string_view error_code);

// The error code for an HTTP status a KBS answered: guest::aa::kbs_status_code
// (src/guest/aa/kbs_client.h), the one mapping.
using guest::aa::kbs_status_code;

// What to do about `e`, naming real options; empty when there is nothing useful to add.
std::string hint_for(const Error& e, Peer peer);

// Text that came from files or the network, safe to print: printable ASCII and tabs kept, line
// breaks kept with the next line indented by 4 spaces, everything else (control characters,
// escape sequences, non-ASCII) as \xNN; at most 4 KiB, trailing line breaks dropped.
std::string printable(std::string_view text);

// Prints "<prefix>: <code>: <message>" and the hint to stderr, then leaves the command with the
// table's exit code for e.code.
[[noreturn]] void fail(std::string_view prefix, const Error& e, Peer peer = Peer::kNone);
// The same with the exit code given (a message the command composed itself).
[[noreturn]] void fail(std::string_view prefix, ExitCode code, std::string_view message);
// Leaves with the table's code for `e` after the command reported it itself.
[[noreturn]] void exit_for(const Error& e);

// True when `text` is UTF-8 without control characters other than tab, CR and LF: what may go
// to a terminal as it is.
bool is_terminal_safe(std::string_view text);

// "http[s]://host[:port][/path]" with the trailing '/'s removed; a usage error ("bad_url") for
// anything else, naming `option`.
Result<std::string> normalize_url(std::string_view option, std::string_view url);

// For add_option(...)->transform(...): normalize_url() on the option's value.
CLI::Validator http_url();
// For add_option(...)->check(...): the file exists, is a regular file and can be read; the
// message names it.
CLI::Validator readable_file();

// Every non-positional option of `app` and its subcommands that takes several values takes one
// per occurrence, so `--opt=A IMAGE` and `--opt A IMAGE` leave IMAGE to the positional. Call after
// every option is added.
void one_value_per_option(CLI::App& app);

// Adds --version: "<program> 0.1.0 (git ...)".
void add_version_flag(CLI::App& app, std::string_view program);

// Parses and runs `app`; the exit code by the table (CLI11 parse errors are usage errors,
// --help and --version exit 0).
int run(CLI::App& app, int argc, char** argv);

}  // namespace coffer::cli
