# mproc_mpi (MPROC_WITH_MPI): the same Pool over the ranks of an MPI job,
# a library of its own so that the core never links MPI (docs/mpi.md).
# Found with CMake's FindMPI: Open MPI (Debian: libopenmpi-dev and
# openmpi-bin) or MPICH, through the same code. POSIX only.
#
#   mproc::mproc_mpi   shared when mproc is (it links mproc::mproc), else
#                      static; header include/mproc_mpi.h (no MPI header)
#
# Installed in its own component (Mpi), with its own export set
# (mprocMpiTargets.cmake, which mprocConfig.cmake loads when present:
# find_package(mproc COMPONENTS mpi)) and mproc_mpi.pc.

if(WIN32)
  message(FATAL_ERROR "mproc: MPROC_WITH_MPI is for POSIX systems (docs/platforms.md)")
endif()
find_package(MPI REQUIRED COMPONENTS C)

# Which MPI: the launcher's flags differ (Open MPI's --oversubscribe).
set(MPROC_MPI_IS_OPENMPI FALSE)
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version
  OUTPUT_VARIABLE _mproc_mpiexec_version ERROR_VARIABLE _mproc_mpiexec_version
  RESULT_VARIABLE _rc TIMEOUT 30)
if(_mproc_mpiexec_version MATCHES "Open MPI|OpenRTE|open-mpi")
  set(MPROC_MPI_IS_OPENMPI TRUE)
endif()
string(REGEX REPLACE "\n.*" "" _mproc_mpiexec_version "${_mproc_mpiexec_version}")
message(STATUS "mproc: MPI ${MPI_C_VERSION}, launcher ${MPIEXEC_EXECUTABLE} (${_mproc_mpiexec_version})")

if(MPROC_BUILD_SHARED)
  add_library(mproc_mpi SHARED src/mpi/mpi.c src/mpi/ident.c)
  target_link_libraries(mproc_mpi PUBLIC mproc)
else()
  add_library(mproc_mpi STATIC src/mpi/mpi.c src/mpi/ident.c)
  target_link_libraries(mproc_mpi PUBLIC mproc_static)
endif()
add_library(mproc::mproc_mpi ALIAS mproc_mpi)
target_include_directories(mproc_mpi PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_definitions(mproc_mpi PRIVATE MPROC_MPI_BUILDING _GNU_SOURCE)
target_link_libraries(mproc_mpi PRIVATE MPI::MPI_C Threads::Threads ${CMAKE_DL_LIBS})
mproc_target_warnings(mproc_mpi)
set_target_properties(mproc_mpi PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${MPROC_SOVERSION}
  C_VISIBILITY_PRESET hidden)

if(MPROC_INSTALL)
  install(TARGETS mproc_mpi EXPORT mprocMpiTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Mpi
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Mpi)
  install(FILES include/mproc_mpi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    COMPONENT Mpi)
  install(EXPORT mprocMpiTargets NAMESPACE mproc::
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mproc COMPONENT Mpi)
  if(MPROC_BUILD_SHARED)
    set(MPROC_MPI_PC_REQUIRES mproc)
  else()
    set(MPROC_MPI_PC_REQUIRES mproc-static)
  endif()
  set(MPROC_MPI_PC_LIBS "")
  foreach(_lib ${MPI_C_LIBRARIES})
    string(APPEND MPROC_MPI_PC_LIBS " ${_lib}")
  endforeach()
  configure_file(cmake/mproc_mpi.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mproc_mpi.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mproc_mpi.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT Mpi)
endif()
