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

# coffer_protobuf(TARGET PROTOS <paths under proto/>...): protoc's C++ for those protos, generated
# into <build>/proto (so "ttrpc/ttrpc.pb.h" includes as its .proto imports) and compiled into a
# static library that links libprotobuf. Generated code is protoc's: no coffer warning flags.
function(coffer_protobuf target)
  cmake_parse_arguments(ARG "" "" "PROTOS" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/proto)
  set(sources)
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    add_custom_command(
      OUTPUT ${out}/${base}.pb.cc ${out}/${base}.pb.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND protobuf::protoc --cpp_out=${out} -I ${CMAKE_SOURCE_DIR}/proto
              ${CMAKE_SOURCE_DIR}/proto/${proto}
      DEPENDS ${CMAKE_SOURCE_DIR}/proto/${proto} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND sources ${out}/${base}.pb.cc)
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
endfunction()
