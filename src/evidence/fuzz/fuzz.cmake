# coffer_fuzz_target(NAME SOURCE src DEPS libs... CORPUS paths...): a libFuzzer target. With clang
# and libFuzzer it links -fsanitize=fuzzer; otherwise (g++, or clang 14 that cannot compile
# libstdc++ 12's <expected>) with the standalone driver in src/evidence/fuzz/driver.cpp. Either way
# a short bounded run is registered with CTest under the label "fuzz".
set(COFFER_FUZZ_SECONDS 10 CACHE STRING "Seconds per fuzz target in the ctest run")
function(coffer_fuzz_target name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPS;CORPUS" ${ARGN})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND COFFER_FUZZ_LIBFUZZER)
    add_executable(${name} ${ARG_SOURCE})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(${name} ${ARG_SOURCE} ${CMAKE_SOURCE_DIR}/src/evidence/fuzz/driver.cpp)
    target_compile_options(${name} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${name} PRIVATE -fsanitize=address,undefined)
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  coffer_warnings(${name})
  add_test(NAME ${name} COMMAND ${name} -max_total_time=${COFFER_FUZZ_SECONDS} ${ARG_CORPUS}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

# The parsers themselves must be instrumented, not only the target's translation unit.
function(coffer_fuzz_instrument target)
  target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(${target} INTERFACE -fsanitize=address,undefined)
endfunction()
