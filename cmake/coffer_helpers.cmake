# coffer_module(NAME SOURCES ... DEPS ...): a static library coffer_<NAME> with include root src/.
function(coffer_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(coffer_${name} STATIC ${ARG_SOURCES})
  target_include_directories(coffer_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(coffer_${name} PUBLIC ${ARG_DEPS})
  coffer_warnings(coffer_${name})
endfunction()

# coffer_test(NAME SOURCES ... DEPS ... [LABELS ...]): a GoogleTest binary registered with CTest.
# Tests run with the project root as working directory so that testdata/evidence resolves.
function(coffer_test name)
  if(NOT COFFER_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE COFFER_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                                             COFFER_BINARY_DIR="${CMAKE_BINARY_DIR}")
  coffer_warnings(${name})
  gtest_discover_tests(${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                       PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()

function(coffer_warnings target)
  # -Wshadow=local and the -Wno-* list are g++ options; clang (the fuzz build) would warn about
  # them as unknown. The g++ command line keeps its order, so existing builds are not invalidated.
  set(gnu $<CXX_COMPILER_ID:GNU>)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic $<${gnu}:-Wshadow=local>
                                           -Wnon-virtual-dtor -Wno-missing-field-initializers
                                           # g++ 12 false positives at -O2 in libstdc++ string, optional and expected code
                                           $<${gnu}:-Wno-restrict> $<${gnu}:-Wno-stringop-overflow>
                                           $<${gnu}:-Wno-array-bounds> $<${gnu}:-Wno-maybe-uninitialized>)
  if(COFFER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

include(GoogleTest OPTIONAL)
