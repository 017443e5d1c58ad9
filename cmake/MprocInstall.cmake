# Install rules: the header, the libraries, the CMake package (config,
# version file, targets) and the pkg-config files mproc.pc and
# mproc-static.pc. Paths come from GNUInstallDirs. Two components, which
# the .deb packages follow (cmake/MprocPackage.cmake):
#
#   Runtime      the shared library (libmproc.so.X.Y.Z and its SONAME link;
#                libmproc.dll on Windows)
#   Development  everything a program is built with: the header, the
#                libmproc.so link, the static archive, the import library,
#                the CMake package, the .pc files, the mingw toolchain file
#
# Included from the top-level CMakeLists.txt when MPROC_INSTALL is on.

set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

install(TARGETS ${MPROC_INSTALL_TARGETS} EXPORT mprocTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
    NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
install(FILES include/mproc.h include/mproc_transport.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT Development)

# --------------------------------------------------------------------------
# CMake package: find_package(mproc 0.1) -> mproc::mproc, mproc::mproc_static

install(EXPORT mprocTargets NAMESPACE mproc::
  DESTINATION ${MPROC_CMAKE_DIR} COMPONENT Development)
configure_package_config_file(cmake/mprocConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/mprocConfig.cmake
  INSTALL_DESTINATION ${MPROC_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR)
# Same rule as the SONAME (top-level CMakeLists.txt: MPROC_SOVERSION).
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/mprocConfigVersion.cmake
  COMPATIBILITY ${MPROC_VERSION_COMPATIBILITY})
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/mprocConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/mprocConfigVersion.cmake
  DESTINATION ${MPROC_CMAKE_DIR} COMPONENT Development)
if(MINGW)
  # A Windows tree is consumed from a Linux host with the toolchain that
  # built it: -DCMAKE_TOOLCHAIN_FILE=<prefix>/lib/cmake/mproc/mingw-w64-x86_64.cmake
  install(FILES cmake/mingw-w64-x86_64.cmake DESTINATION ${MPROC_CMAKE_DIR}
    COMPONENT Development)
endif()

# --------------------------------------------------------------------------
# pkg-config. Both files are relocatable: the prefix is found from where the
# file is installed, so `cmake --install --prefix X` gives a right one too.

file(RELATIVE_PATH MPROC_PC_RELATIVE_PREFIX
  "/mproc-prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/mproc-prefix")
string(REGEX REPLACE "/$" "" MPROC_PC_RELATIVE_PREFIX
  "${MPROC_PC_RELATIVE_PREFIX}")

# What a program linked to the static archive needs besides it.
if(WIN32)
  set(MPROC_PC_SYSTEM_LIBS "-lkernel32 -ladvapi32")
else()
  # CMAKE_DL_LIBS holds library names ("dl"), not linker flags.
  set(MPROC_PC_SYSTEM_LIBS "-pthread")
  foreach(_lib ${CMAKE_DL_LIBS})
    string(APPEND MPROC_PC_SYSTEM_LIBS " -l${_lib}")
  endforeach()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    string(APPEND MPROC_PC_SYSTEM_LIBS " -lrt")
  endif()
endif()

# A program linked with `-L<libdir> -lmproc` from a libdir the dynamic
# loader does not search (the README's $HOME/.local) builds but cannot
# start: mproc.pc then records the libdir as the program's RUNPATH too.
# A system libdir (the .deb's /usr/lib/<triplet>) gets none.
set(MPROC_PC_RPATH "")
if(NOT WIN32)
  set(_mproc_system_dirs ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES}
    ${CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES})
  set(_mproc_is_system FALSE)
  foreach(_dir ${_mproc_system_dirs})
    file(REAL_PATH "${_dir}" _real)
    file(REAL_PATH "${CMAKE_INSTALL_FULL_LIBDIR}" _libdir_real)
    if(_real STREQUAL _libdir_real)
      set(_mproc_is_system TRUE)
    endif()
  endforeach()
  if(NOT _mproc_is_system)
    set(MPROC_PC_RPATH " -Wl,-rpath,\${libdir}")
  endif()
endif()

if(WIN32)
  set(MPROC_STATIC_OUTPUT_NAME mproc_static)
else()
  set(MPROC_STATIC_OUTPUT_NAME mproc)
endif()
set(MPROC_STATIC_ARCHIVE
  ${CMAKE_STATIC_LIBRARY_PREFIX}${MPROC_STATIC_OUTPUT_NAME}${CMAKE_STATIC_LIBRARY_SUFFIX})

set(_mproc_pc_files)
if(MPROC_BUILD_SHARED)
  configure_file(cmake/mproc.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc @ONLY)
  list(APPEND _mproc_pc_files ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc)
endif()
if(MPROC_BUILD_STATIC)
  set(MPROC_PC_NAME mproc-static)
  configure_file(cmake/mproc-static.pc.in
    ${CMAKE_CURRENT_BINARY_DIR}/mproc-static.pc @ONLY)
  list(APPEND _mproc_pc_files ${CMAKE_CURRENT_BINARY_DIR}/mproc-static.pc)
  if(NOT MPROC_BUILD_SHARED)
    # Only the archive is built: plain `mproc` is the static one.
    set(MPROC_PC_NAME mproc)
    configure_file(cmake/mproc-static.pc.in
      ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc @ONLY)
    list(APPEND _mproc_pc_files ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc)
  endif()
endif()
install(FILES ${_mproc_pc_files}
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT Development)
