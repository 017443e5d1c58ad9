# K01: the shared library's ABI name and the CMake package's version file
# make the same promise.
#
#   cmake -DVERSION=X.Y.Z -DSOVERSION=... -DLIB=<real file>
#         [-DLINKER_FILE=<libmproc.so>] [-DSONAME_FILE=<libmproc.so.X.Y>]
#         [-DREADELF=readelf] [-DVERSION_FILE=<mprocConfigVersion.cmake>]
#         -P k01-soname.cmake
#
# The rule, stated here on its own rather than read back from the build:
# before 1.0 every minor release may break the ABI, so the ABI of X.Y.Z is
# "X.Y" for X = 0 and "X" from 1.0 on. The SONAME is libmproc.so.<ABI>, the
# links run libmproc.so -> libmproc.so.<ABI> -> libmproc.so.X.Y.Z, and
# find_package(mproc R) accepts this package exactly when R has the same
# ABI and is not newer.

cmake_minimum_required(VERSION 3.20)

set(failures 0)
macro(fail)
  message(SEND_ERROR "K01: ${ARGN}")
  math(EXPR failures "${failures} + 1")
endmacro()

function(abi_of version out)
  string(REPLACE "." ";" parts "${version}")
  list(LENGTH parts n)
  list(GET parts 0 major)
  set(minor 0)
  if(n GREATER 1)
    list(GET parts 1 minor)
  endif()
  if(major EQUAL 0)
    set(${out} "${major}.${minor}" PARENT_SCOPE)
  else()
    set(${out} "${major}" PARENT_SCOPE)
  endif()
endfunction()

abi_of(${VERSION} abi)
if(NOT SOVERSION STREQUAL abi)
  fail("the build's SOVERSION is ${SOVERSION}; version ${VERSION} needs ${abi}")
endif()

# --------------------------------------------------------------------------
# The ELF name and links (not on Windows, where a DLL has no SONAME).

if(DEFINED SONAME_FILE)
  get_filename_component(lib_name "${LIB}" NAME)
  get_filename_component(soname_name "${SONAME_FILE}" NAME)
  get_filename_component(linker_name "${LINKER_FILE}" NAME)
  if(NOT lib_name STREQUAL "libmproc.so.${VERSION}")
    fail("the library file is ${lib_name}, not libmproc.so.${VERSION}")
  endif()
  if(NOT soname_name STREQUAL "libmproc.so.${abi}")
    fail("the SONAME link is ${soname_name}, not libmproc.so.${abi}")
  endif()
  if(NOT IS_SYMLINK "${SONAME_FILE}")
    fail("${soname_name} is not a symbolic link")
  else()
    file(READ_SYMLINK "${SONAME_FILE}" to)
    if(NOT to STREQUAL lib_name)
      fail("${soname_name} -> ${to}, not -> ${lib_name}")
    endif()
  endif()
  if(NOT IS_SYMLINK "${LINKER_FILE}")
    fail("${linker_name} is not a symbolic link")
  else()
    file(READ_SYMLINK "${LINKER_FILE}" to)
    if(NOT to STREQUAL soname_name)
      fail("${linker_name} -> ${to}, not -> ${soname_name}")
    endif()
  endif()

  if(NOT READELF)
    set(READELF readelf)
  endif()
  execute_process(COMMAND ${READELF} -d "${LIB}" OUTPUT_VARIABLE dyn
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    fail("${READELF} -d ${LIB} failed (${rc})")
  elseif(NOT dyn MATCHES "Library soname: \\[([^]]*)\\]")
    fail("${lib_name} has no SONAME")
  elseif(NOT CMAKE_MATCH_1 STREQUAL "libmproc.so.${abi}")
    fail("the SONAME of ${lib_name} is ${CMAKE_MATCH_1}, not libmproc.so.${abi}")
  else()
    message(STATUS "K01: SONAME ${CMAKE_MATCH_1}; ${linker_name} -> ${soname_name} -> ${lib_name}")
  endif()
endif()

# --------------------------------------------------------------------------
# The version file against the same rule, for requests around this version.

if(DEFINED VERSION_FILE)
  string(REPLACE "." ";" parts "${VERSION}")
  list(GET parts 0 M)
  list(GET parts 1 m)
  list(GET parts 2 p)
  math(EXPR m1 "${m} + 1")
  math(EXPR p1 "${p} + 1")
  math(EXPR M1 "${M} + 1")
  set(requests "${VERSION}" "${M}.${m}" "${M}" "${M}.${m}.${p1}" "${M}.${m1}"
    "${M1}" "${M1}.0")
  if(m GREATER 0)
    math(EXPR m0 "${m} - 1")
    list(APPEND requests "${M}.${m0}" "${M}.${m0}.9")
  endif()
  if(M GREATER 0)
    math(EXPR M0 "${M} - 1")
    list(APPEND requests "${M0}.9")
  endif()
  foreach(req ${requests})
    abi_of(${req} req_abi)
    if(req_abi STREQUAL abi AND NOT req VERSION_GREATER VERSION)
      set(want TRUE)
    else()
      set(want FALSE)
    endif()
    # What find_package sets before it reads a version file.
    string(REPLACE "." ";" rparts "${req}")
    list(LENGTH rparts rn)
    set(PACKAGE_FIND_VERSION "${req}")
    set(PACKAGE_FIND_VERSION_COUNT ${rn})
    foreach(i 0 1 2)
      set(v 0)
      if(i LESS rn)
        list(GET rparts ${i} v)
      endif()
      if(i EQUAL 0)
        set(PACKAGE_FIND_VERSION_MAJOR ${v})
      elseif(i EQUAL 1)
        set(PACKAGE_FIND_VERSION_MINOR ${v})
      else()
        set(PACKAGE_FIND_VERSION_PATCH ${v})
      endif()
    endforeach()
    unset(PACKAGE_VERSION_COMPATIBLE)
    unset(PACKAGE_VERSION_EXACT)
    unset(PACKAGE_VERSION_UNSUITABLE)
    include("${VERSION_FILE}")
    if(PACKAGE_VERSION_COMPATIBLE)
      set(got TRUE)
    else()
      set(got FALSE)
    endif()
    if(NOT got STREQUAL want)
      fail("find_package(mproc ${req}) against ${VERSION}: the version file says compatible=${got}, the SONAME rule says ${want}")
    endif()
  endforeach()
  message(STATUS "K01: the version file agrees for requests ${requests}")
endif()

if(failures GREATER 0)
  message(FATAL_ERROR "K01: ${failures} failure(s)")
endif()
message(STATUS "K01: ok")
