# K02: the shared library exports exactly the functions that
# include/mproc.h (and include/mproc_transport.h) declares with MPROC_API: nothing internal leaks (a
# program or another library could bind to it, or clash with it), nothing
# declared is missing (a program would fail to link). The static archive
# defines no global symbol outside the mproc_ prefix (internal ones are
# mproc__*), so it cannot clash with a program's own names.
#
#   cmake -DHEADER=include/mproc.h -DNM=nm [-DOBJDUMP=objdump]
#         [-DLIB=<libmproc.so or libmproc.dll>] [-DDLL=ON]
#         [-DARCHIVE=<libmproc.a>] -P k02-exports.cmake
#
# ELF: the dynamic symbol table (nm -D --defined-only). A DLL: its export
# table (objdump -p, "[Ordinal/Name Pointer] Table").

cmake_minimum_required(VERSION 3.20)

set(failures 0)
macro(fail)
  message(SEND_ERROR "K02: ${ARGN}")
  math(EXPR failures "${failures} + 1")
endmacro()

# The declared API: every `MPROC_API <type> mproc_x(` of the header, and of
# mproc_transport.h beside it (the pool-transport API that component
# libraries such as mproc_mpi use).
# Another library's header (mproc_mpi.h): -DAPI=MPROC_MPI_API -DALONE=ON
# (without mproc_transport.h) -DMIN_DECLS=3.
if(NOT DEFINED API)
  set(API MPROC_API)
endif()
if(NOT DEFINED MIN_DECLS)
  set(MIN_DECLS 10)
endif()
file(READ "${HEADER}" text)
get_filename_component(_incdir "${HEADER}" DIRECTORY)
if(NOT ALONE AND EXISTS "${_incdir}/mproc_transport.h")
  file(READ "${_incdir}/mproc_transport.h" _transport)
  string(APPEND text "\n${_transport}")
endif()
string(REGEX REPLACE "[\r\n\t ]+" " " text "${text}")
string(REGEX MATCHALL "${API} [^;(]*\\(" decls "${text}")
set(declared)
foreach(d ${decls})
  if(d MATCHES "(mproc_[A-Za-z0-9_]+) ?\\($")
    list(APPEND declared ${CMAKE_MATCH_1})
  endif()
endforeach()
list(REMOVE_DUPLICATES declared)
list(SORT declared)
list(LENGTH declared n_declared)
if(n_declared LESS MIN_DECLS)
  fail("found only ${n_declared} ${API} declarations in ${HEADER}")
endif()

if(DEFINED LIB)
  set(exported)
  if(DLL)
    execute_process(COMMAND ${OBJDUMP} -p "${LIB}" OUTPUT_VARIABLE out
      RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      fail("${OBJDUMP} -p ${LIB} failed (${rc})")
    endif()
    string(FIND "${out}" "[Ordinal/Name Pointer] Table" at)
    if(at LESS 0)
      fail("${LIB} has no export name table")
    else()
      string(SUBSTRING "${out}" ${at} -1 out)
      string(REGEX REPLACE "\r?\n\r?\n.*" "" out "${out}")
      string(REGEX MATCHALL "\\[ *[0-9]+\\] [^\r\n]+" rows "${out}")
      foreach(r ${rows})
        string(REGEX REPLACE "^\\[ *[0-9]+\\] " "" name "${r}")
        list(APPEND exported "${name}")
      endforeach()
    endif()
  else()
    execute_process(COMMAND ${NM} -D --defined-only "${LIB}"
      OUTPUT_VARIABLE out RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      fail("${NM} -D --defined-only ${LIB} failed (${rc})")
    endif()
    string(REGEX MATCHALL "[^\r\n]+" rows "${out}")
    foreach(r ${rows})
      # "0000000000012340 T mproc_init", or "mproc_x@@VERS" with versions.
      if(r MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ @]+)")
        list(APPEND exported ${CMAKE_MATCH_1})
      endif()
    endforeach()
  endif()
  list(REMOVE_DUPLICATES exported)
  list(SORT exported)
  set(extra ${exported})
  list(REMOVE_ITEM extra ${declared})
  # The C runtime's section entry points, which musl's crti.o leaves
  # global in every shared library: not the library's API.
  list(REMOVE_ITEM extra _init _fini)
  set(missing ${declared})
  list(REMOVE_ITEM missing ${exported})
  list(LENGTH exported n_exported)
  if(extra)
    string(REPLACE ";" " " extra "${extra}")
    fail("${LIB} exports what mproc.h does not declare: ${extra}")
  endif()
  if(missing)
    string(REPLACE ";" " " missing "${missing}")
    fail("${LIB} does not export what mproc.h declares: ${missing}")
  endif()
  message(STATUS "K02: ${LIB}: ${n_exported} exports, ${n_declared} declared")
endif()

if(DEFINED ARCHIVE)
  execute_process(COMMAND ${NM} -g --defined-only "${ARCHIVE}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    fail("${NM} -g --defined-only ${ARCHIVE} failed (${rc})")
  endif()
  string(REGEX MATCHALL "[^\r\n]+" rows "${out}")
  set(foreign)
  set(n_globals 0)
  foreach(r ${rows})
    if(r MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ ]+)$")
      math(EXPR n_globals "${n_globals} + 1")
      if(NOT CMAKE_MATCH_1 MATCHES "^mproc_")
        list(APPEND foreign ${CMAKE_MATCH_1})
      endif()
    endif()
  endforeach()
  if(foreign)
    list(REMOVE_DUPLICATES foreign)
    string(REPLACE ";" " " foreign "${foreign}")
    fail("${ARCHIVE} defines global symbols outside mproc_: ${foreign}")
  endif()
  message(STATUS "K02: ${ARCHIVE}: ${n_globals} global definitions, all mproc_*")
endif()

if(failures GREATER 0)
  message(FATAL_ERROR "K02: ${failures} failure(s)")
endif()
message(STATUS "K02: ok")
