# Fuzz targets (-DCOFFER_FUZZ=ON), shared by the policy, evidence and verifier modules.
#
# With clang 15 or newer (Debian 12: clang++-19 from clang-19 and libclang-rt-19-dev) the targets
# are real libFuzzer binaries (-fsanitize=fuzzer,address,undefined) and the libraries under test
# are compiled with -fsanitize=fuzzer-no-link so that libFuzzer sees their coverage. With other
# compilers (g++, or clang 14 that cannot compile libstdc++ 12's <expected>) they link a standalone
# mutation driver instead (src/evidence/fuzz/driver.cpp unless the target brings its own), under
# AddressSanitizer and UBSan. Either way CTest runs each target briefly under the label "fuzz".
include_guard(GLOBAL)

if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 15)
  set(coffer_fuzz_libfuzzer_default ON)
else()
  set(coffer_fuzz_libfuzzer_default OFF)
endif()
option(COFFER_FUZZ_LIBFUZZER "Link fuzz targets with libFuzzer (clang >= 15)"
       ${coffer_fuzz_libfuzzer_default})
set(COFFER_FUZZ_SECONDS 15 CACHE STRING "Seconds per fuzz target in the ctest run")

if(COFFER_FUZZ_LIBFUZZER)
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
  set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=fuzzer)
  check_cxx_source_compiles(
    "#include <cstddef>
     #include <cstdint>
     extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }"
    COFFER_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NOT COFFER_HAVE_LIBFUZZER)
    message(FATAL_ERROR "COFFER_FUZZ_LIBFUZZER: ${CMAKE_CXX_COMPILER} cannot link -fsanitize=fuzzer "
                        "(Debian: install libclang-rt-<version>-dev)")
  endif()
endif()

# The sanitizers of every fuzz build; a UBSan finding must end the run like an ASan one. (A
# function, not a variable: this file is included once, variables would exist only in the first
# including directory.)
function(coffer_fuzz_sanitizers out)
  set(${out} -fsanitize=address,undefined -fno-sanitize-recover=undefined PARENT_SCOPE)
endfunction()

# coffer_fuzz_instrument(target): the library under test must be instrumented too, not only the
# target's own translation unit (sanitizers everywhere, libFuzzer coverage for its feedback).
function(coffer_fuzz_instrument target)
  coffer_fuzz_sanitizers(coffer_fuzz_sanitizers)
  target_compile_options(${target} PRIVATE ${coffer_fuzz_sanitizers} -fno-omit-frame-pointer)
  if(COFFER_FUZZ_LIBFUZZER)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  target_link_options(${target} INTERFACE ${coffer_fuzz_sanitizers})
endfunction()

# coffer_fuzz_target(NAME SOURCE src DEPS libs... CORPUS files-or-dirs... [MAX_LEN n]
#                    [SECONDS s] [DRIVER src [DRIVER_ARGS args...]])
# CORPUS files are copied at configure time into <build>/<NAME>_seeds (libFuzzer only takes
# directories; missing files, e.g. without testdata/evidence, are skipped); directories are read
# as they are. libFuzzer writes what it finds into <build>/<NAME>_corpus, never into the sources,
# and crash reproducers as <build>/<NAME>-crash-*. DRIVER replaces the standalone driver when
# there is no libFuzzer; DRIVER_ARGS are then its whole command line.
function(coffer_fuzz_target name)
  coffer_fuzz_sanitizers(coffer_fuzz_sanitizers)
  cmake_parse_arguments(ARG "" "SOURCE;MAX_LEN;SECONDS;DRIVER" "DEPS;CORPUS;DRIVER_ARGS" ${ARGN})
  if(NOT ARG_SECONDS)
    set(ARG_SECONDS ${COFFER_FUZZ_SECONDS})
  endif()
  if(NOT ARG_DRIVER)
    set(ARG_DRIVER ${CMAKE_SOURCE_DIR}/src/evidence/fuzz/driver.cpp)
    set(ARG_DRIVER_ARGS "")
  endif()
  set(seeds ${CMAKE_CURRENT_BINARY_DIR}/${name}_seeds)
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  file(MAKE_DIRECTORY ${seeds} ${work})
  set(dirs "")
  foreach(path IN LISTS ARG_CORPUS)
    if(IS_DIRECTORY ${path})
      list(APPEND dirs ${path})
    elseif(EXISTS ${path})
      file(COPY ${path} DESTINATION ${seeds} NO_SOURCE_PERMISSIONS)
    else()
      message(STATUS "${name}: seed ${path} not found, skipped")
    endif()
  endforeach()
  set(args -max_total_time=${ARG_SECONDS})
  if(ARG_MAX_LEN)
    list(APPEND args -max_len=${ARG_MAX_LEN})
  endif()

  if(COFFER_FUZZ_LIBFUZZER)
    add_executable(${name} ${ARG_SOURCE})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${coffer_fuzz_sanitizers})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer ${coffer_fuzz_sanitizers})
    list(APPEND args -print_final_stats=1 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/${name}-
         ${work} ${seeds} ${dirs})
  else()
    add_executable(${name} ${ARG_SOURCE} ${ARG_DRIVER})
    target_compile_options(${name} PRIVATE ${coffer_fuzz_sanitizers} -fno-omit-frame-pointer)
    target_link_options(${name} PRIVATE ${coffer_fuzz_sanitizers})
    if(ARG_DRIVER_ARGS)
      set(args ${ARG_DRIVER_ARGS})
    else()
      list(APPEND args ${seeds} ${dirs})
    endif()
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  coffer_warnings(${name})
  if(COFFER_BUILD_TESTS)
    add_test(NAME ${name} COMMAND ${name} ${args} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300
                         ENVIRONMENT UBSAN_OPTIONS=print_stacktrace=1)
  endif()
endfunction()
