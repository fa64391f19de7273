# One lookup per dependency; every one comes from a Debian package (scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)                    # libssl-dev
find_package(CURL REQUIRED)                           # libcurl4-openssl-dev
find_package(Boost 1.74 REQUIRED)                     # libboost-dev (Beast, Asio: header-only)
find_package(nlohmann_json 3.11 REQUIRED)             # nlohmann-json3-dev
find_package(tomlplusplus 3 REQUIRED)                 # libtomlplusplus-dev
find_package(CLI11 REQUIRED)                          # libcli11-dev
find_package(fmt REQUIRED)                            # libfmt-dev
find_package(spdlog REQUIRED)                         # libspdlog-dev
find_package(SQLite3 REQUIRED)                        # libsqlite3-dev
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)   # libre2-dev
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)  # libsodium-dev
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)      # libzstd-dev
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)      # libisal-dev (fast inflate)
pkg_check_modules(GPGME REQUIRED IMPORTED_TARGET gpgme)       # libgpgme-dev
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)  # libseccomp-dev (process enclave)
pkg_check_modules(FUSE3 REQUIRED IMPORTED_TARGET fuse3)       # libfuse3-dev, fuse3 (coffer-efs)
find_package(LibArchive REQUIRED)                     # libarchive-dev
# libarchive-dev's static library, for coffer-agent (apps/CMakeLists.txt): the agent only reads
# tar, and the shared library maps libxml2 and ICU (libicudata alone is 30 MiB) into every process,
# which made them 40 % of the process enclave's image (bench/README.md, cold start). Its digest
# code needs nettle (nettle-dev, a dependency of libarchive-dev).
find_library(COFFER_LIBARCHIVE_STATIC NAMES libarchive.a)
find_library(COFFER_NETTLE NAMES nettle)
find_package(ZLIB REQUIRED)                           # zlib1g-dev
find_package(Protobuf 3.12 REQUIRED)                  # libprotobuf-dev, protobuf-compiler
find_package(gRPC CONFIG REQUIRED)                    # libgrpc++-dev, protobuf-compiler-grpc
if(COFFER_BUILD_TESTS)
  find_package(GTest REQUIRED)                        # libgtest-dev, libgmock-dev
endif()
if(COFFER_BUILD_BENCH)
  find_package(benchmark REQUIRED)                    # libbenchmark-dev
endif()
