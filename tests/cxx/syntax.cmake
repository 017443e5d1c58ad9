# K06: include/mproc.h compiles as C++ with every C++ compiler of the host
# (g++, clang++), in C++11, 17 and 20, -pedantic-errors and warnings as
# errors, MPROC_LIST included (tests/cxx/app.cpp).
#
#   cmake -DSOURCE=app.cpp -DINCLUDE=<include dir> -DCOMPILERS=g++,clang++ -P syntax.cmake
set(_passed 0)
set(_failed 0)
set(_found 0)
string(REPLACE "," ";" _compilers "${COMPILERS}")
foreach(_cxx ${_compilers})
  string(MAKE_C_IDENTIFIER "${_cxx}" _id)
  find_program(_path_${_id} ${_cxx})
  set(_path "${_path_${_id}}")
  if(NOT _path)
    message(STATUS "K06: ${_cxx} not installed")
    continue()
  endif()
  math(EXPR _found "${_found} + 1")
  foreach(_std 11 17 20)
    execute_process(
      COMMAND ${_path} -std=c++${_std} -pedantic-errors -Wall -Wextra
              -Werror -fsyntax-only -I${INCLUDE} ${SOURCE}
      RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(_rc EQUAL 0)
      math(EXPR _passed "${_passed} + 1")
      message(STATUS "ok   ${_cxx} -std=c++${_std}")
    else()
      math(EXPR _failed "${_failed} + 1")
      message(STATUS "FAIL ${_cxx} -std=c++${_std}:\n${_out}")
    endif()
  endforeach()
endforeach()
message(STATUS "K06: ${_passed} passed, ${_failed} failed")
if(_found EQUAL 0 OR NOT _failed EQUAL 0)
  message(FATAL_ERROR "K06: the header does not compile as C++ everywhere")
endif()
