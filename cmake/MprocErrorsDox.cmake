# Writes the documentation of every MPROC_E* code from the X-macro table
# of include/mproc.h (MPROC_ERRNO_MAP), so a code added there is documented
# with its value and message without another list to keep in step.
#   cmake -DHEADER=include/mproc.h -DOUT=errors.dox -P MprocErrorsDox.cmake
file(READ "${HEADER}" header)
# A message may hold ";", CMake's list separator: carried as a placeholder.
string(REPLACE ";" "@SEMICOLON@" header "${header}")
string(REGEX MATCHALL "X\\(E[A-Z0-9_]+, *-[0-9]+, *\"[^\"]*\"\\)" rows
  "${header}")
set(text "/* Generated from MPROC_ERRNO_MAP in mproc.h by MprocErrorsDox.cmake. */\n")
set(n 0)
foreach(row ${rows})
  if(row MATCHES "^X\\((E[A-Z0-9_]+), *(-[0-9]+), *\"([^\"]*)\"\\)$")
    string(REPLACE "@SEMICOLON@" ";" msg "${CMAKE_MATCH_3}")
    string(APPEND text "/** @var MPROC_${CMAKE_MATCH_1}\n * ${CMAKE_MATCH_2}: ${msg}. */\n")
    math(EXPR n "${n} + 1")
  endif()
endforeach()
if(n LESS 2)
  message(FATAL_ERROR "MprocErrorsDox: found ${n} X(...) rows of MPROC_ERRNO_MAP in ${HEADER}")
endif()
file(WRITE "${OUT}.tmp" "${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
