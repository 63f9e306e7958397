# Installs glrnn from a build tree into a fresh prefix, then configures, builds and runs the
# consumer project in this folder against that prefix only, as a user of the package would.
#
#   cmake -DGLRNN_BUILD_DIR=<glrnn build tree> -DGLRNN_SOURCE_DIR=<glrnn source tree>
#         -DWORK_DIR=<scratch folder, deleted first> -DMODEL_DIR=<model folder>
#         -DPROMPT_IDS=<ids separated by ';', ',' or spaces> -DEXPECTED_IDS=<expected ids, space-separated>
#         [-DCMAKE_CXX_COMPILER=<compiler>] [-DINSTALL_COMPONENT=<component>]
#         -P run_package_test.cmake
cmake_minimum_required(VERSION 3.16)

foreach(var GLRNN_BUILD_DIR GLRNN_SOURCE_DIR WORK_DIR MODEL_DIR PROMPT_IDS EXPECTED_IDS)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "package test: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS "${GLRNN_BUILD_DIR}/cmake_install.cmake")
  message(FATAL_ERROR "package test: '${GLRNN_BUILD_DIR}' is not a configured glrnn build tree (no cmake_install.cmake)")
endif()
if(NOT EXISTS "${GLRNN_SOURCE_DIR}/tests/package/CMakeLists.txt")
  message(FATAL_ERROR "package test: no consumer project at '${GLRNN_SOURCE_DIR}/tests/package'")
endif()
if(NOT IS_DIRECTORY "${MODEL_DIR}")
  message(FATAL_ERROR "package test: model folder '${MODEL_DIR}' does not exist")
endif()

# Runs a command; on a non-zero exit stops with its full output. Stdout goes to ${out_var}.
function(run_step what out_var)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "package test: ${what} failed (exit ${rc})\n"
      "command: ${command}\n--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Nothing from the environment may point the consumer at another glrnn.
unset(ENV{CMAKE_PREFIX_PATH})
unset(ENV{glrnn_DIR})
unset(ENV{glrnn_ROOT})

# 1. Install.
set(component_args "")
if(DEFINED INSTALL_COMPONENT AND NOT INSTALL_COMPONENT STREQUAL "")
  set(component_args --component "${INSTALL_COMPONENT}")
endif()
run_step("cmake --install" ignored
  "${CMAKE_COMMAND}" --install "${GLRNN_BUILD_DIR}" --prefix "${prefix}" ${component_args})

# 2. Configure the consumer against the prefix only (no build tree, no package registry).
set(configure_args
  -S "${GLRNN_SOURCE_DIR}/tests/package" -B "${build}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(DEFINED CMAKE_CXX_COMPILER AND NOT CMAKE_CXX_COMPILER STREQUAL "")
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
endif()
run_step("configuring the consumer project" ignored "${CMAKE_COMMAND}" ${configure_args})

# The package must have come from the prefix.
file(STRINGS "${build}/CMakeCache.txt" glrnn_dir_line REGEX "^glrnn_DIR:")
string(REGEX REPLACE "^glrnn_DIR:[A-Z]+=" "" glrnn_dir "${glrnn_dir_line}")
get_filename_component(real_prefix "${prefix}" REALPATH)
if(EXISTS "${glrnn_dir}")
  get_filename_component(glrnn_dir "${glrnn_dir}" REALPATH)
endif()
string(FIND "${glrnn_dir}/" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "package test: find_package(glrnn) used '${glrnn_dir}', not the installed prefix '${prefix}'")
endif()

# 3. Build it.
run_step("building the consumer project" ignored "${CMAKE_COMMAND}" --build "${build}" --config Release)

# 4. Run it.
set(consumer "${build}/consumer")
if(NOT EXISTS "${consumer}" AND EXISTS "${build}/Release/consumer")
  set(consumer "${build}/Release/consumer")  # multi-config generators
endif()
string(REGEX REPLACE "[ ,;]+" ";" prompt "${PROMPT_IDS}")
run_step("running the consumer" output "${consumer}" "${MODEL_DIR}" ${prompt})

string(STRIP "${output}" output)
string(REGEX REPLACE "[ \t,;]+" " " expected "${EXPECTED_IDS}")
string(STRIP "${expected}" expected)
if(NOT output STREQUAL expected)
  message(FATAL_ERROR "package test: the consumer generated\n  '${output}'\nexpected\n  '${expected}'")
endif()
message(STATUS "package test: installed package found in ${prefix}; consumer generated '${output}' as expected")
