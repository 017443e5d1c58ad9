# The API reference: `cmake --build <dir> --target docs` (or the docs
# preset) runs Doxygen over include/mproc.h and include/mproc_mpi.h (the
# MPI component's header, documented whether or not it is built) into <dir>/docs/html and fails
# on any Doxygen warning, printing them. Under another project's
# add_subdirectory the target is mproc-docs only.

set(MPROC_DOCS_OUT ${PROJECT_BINARY_DIR}/docs)
find_package(Doxygen QUIET)

if(NOT DOXYGEN_EXECUTABLE)
  add_custom_target(mproc-docs
    COMMAND ${CMAKE_COMMAND} -E echo
      "mproc docs: Doxygen is missing (Debian: apt-get install doxygen, or scripts/deps.sh docs), then configure again"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
else()
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
    ${MPROC_DOCS_OUT}/Doxyfile @ONLY)
  # The error codes' documentation comes from the header's own table.
  add_custom_command(OUTPUT ${MPROC_DOCS_OUT}/errors.dox
    COMMAND ${CMAKE_COMMAND} -DHEADER=${PROJECT_SOURCE_DIR}/include/mproc.h
      -DOUT=${MPROC_DOCS_OUT}/errors.dox
      -P ${PROJECT_SOURCE_DIR}/cmake/MprocErrorsDox.cmake
    DEPENDS ${PROJECT_SOURCE_DIR}/include/mproc.h
      ${PROJECT_SOURCE_DIR}/cmake/MprocErrorsDox.cmake
    VERBATIM)
  add_custom_target(mproc-docs
    COMMAND ${CMAKE_COMMAND} -DDOXYGEN=${DOXYGEN_EXECUTABLE}
      -DDOXYFILE=${MPROC_DOCS_OUT}/Doxyfile
      -DLOG=${MPROC_DOCS_OUT}/doxygen-warnings.log
      -DOUT=${MPROC_DOCS_OUT}
      -P ${PROJECT_SOURCE_DIR}/cmake/MprocRunDoxygen.cmake
    DEPENDS ${MPROC_DOCS_OUT}/errors.dox ${MPROC_DOCS_OUT}/Doxyfile
      ${PROJECT_SOURCE_DIR}/include/mproc.h
      ${PROJECT_SOURCE_DIR}/include/mproc_mpi.h ${PROJECT_SOURCE_DIR}/docs/api.md
    WORKING_DIRECTORY ${MPROC_DOCS_OUT}
    COMMENT "API reference (Doxygen) -> ${MPROC_DOCS_OUT}/html/index.html"
    VERBATIM)
endif()
if(PROJECT_IS_TOP_LEVEL)
  add_custom_target(docs DEPENDS mproc-docs)
endif()
