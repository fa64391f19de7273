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

# coffer_protobuf(TARGET PROTOS <paths under proto/>... [GRPC <those of them with gRPC services>...]
#                 [ROOT dir] [IMPORTS <paths under ROOT only imported>...]): protoc's C++ for those
# protos, generated into <build>/proto (so "ttrpc/ttrpc.pb.h" includes as its .proto imports) and
# compiled into a static library that links libprotobuf (and gRPC++ when GRPC lists any). Generated
# code is protoc's: no coffer warning flags. ROOT (default proto/) is the import root.
function(coffer_protobuf target)
  cmake_parse_arguments(ARG "" "ROOT" "PROTOS;GRPC;IMPORTS" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/proto)
  if(NOT ARG_ROOT)
    set(ARG_ROOT ${CMAKE_SOURCE_DIR}/proto)
  endif()
  set(deps)
  foreach(proto IN LISTS ARG_PROTOS ARG_IMPORTS)
    list(APPEND deps ${ARG_ROOT}/${proto})
  endforeach()
  set(sources)
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(outputs ${out}/${base}.pb.cc ${out}/${base}.pb.h)
    set(grpc_args)
    if(proto IN_LIST ARG_GRPC)
      list(APPEND outputs ${out}/${base}.grpc.pb.cc ${out}/${base}.grpc.pb.h)
      set(grpc_args --grpc_out=${out} --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND protobuf::protoc --cpp_out=${out} ${grpc_args} -I ${ARG_ROOT} ${ARG_ROOT}/${proto}
      DEPENDS ${deps} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(FILTER outputs INCLUDE REGEX "\\.cc$")
    list(APPEND sources ${outputs})
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
  if(ARG_GRPC)
    target_link_libraries(${target} PUBLIC gRPC::grpc++)
  endif()
endfunction()

# containerd's API protos (Debian's golang-github-containerd-containerd-dev), copied into the build
# tree with their `import weak` lines made plain imports (protoc's C++ generator does not support
# weak imports), together with the gogoproto and fieldpath option protos they import.
# coffer_containerd_protobuf(TARGET PROTOS <paths under github.com/containerd/containerd/>...
#                            [GRPC <those with gRPC services>...])
set(COFFER_GOCODE /usr/share/gocode/src CACHE PATH "Debian's Go source root (containerd's protos)")
function(coffer_containerd_protobuf target)
  cmake_parse_arguments(ARG "" "" "PROTOS;GRPC" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/containerd-proto)
  set(prefix github.com/containerd/containerd)
  set(imports gogoproto/gogo.proto ${prefix}/protobuf/plugin/fieldpath.proto)
  set(protos)
  set(grpc)
  foreach(proto IN LISTS ARG_PROTOS)
    list(APPEND protos ${prefix}/${proto})
  endforeach()
  foreach(proto IN LISTS ARG_GRPC)
    list(APPEND grpc ${prefix}/${proto})
  endforeach()
  foreach(proto IN LISTS imports protos)
    if(proto STREQUAL "gogoproto/gogo.proto")
      set(in ${COFFER_GOCODE}/github.com/gogo/protobuf/gogoproto/gogo.proto)
    else()
      set(in ${COFFER_GOCODE}/${proto})
    endif()
    if(NOT EXISTS ${in})
      message(FATAL_ERROR "${in} not found: run scripts/install-deps "
                          "(golang-github-containerd-containerd-dev)")
    endif()
    file(READ ${in} text)
    string(REGEX REPLACE "import weak " "import " text "${text}")
    file(CONFIGURE OUTPUT ${root}/${proto} CONTENT "${text}" @ONLY)
  endforeach()
  coffer_protobuf(${target} ROOT ${root} PROTOS ${imports} ${protos} GRPC ${grpc})
endfunction()
