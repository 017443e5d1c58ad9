# Debian packages with CPack, one per install component
# (cmake/MprocInstall.cmake):
#
#   libmproc<SOVERSION>   (libmproc0.1)  the shared library
#   libmproc-dev                         header, static archive, libmproc.so
#                                        link, CMake package, .pc files;
#                                        depends on the exact runtime package
#
# Built by the `deb` preset, which installs into /usr as a package must:
#   cmake --preset deb && cmake --build --preset deb   (build/deb/*.deb)
# A build configured with another CMAKE_INSTALL_PREFIX packages for that
# prefix. Linux only; elsewhere no package is configured.

if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  return()
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mproc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Debian's synopsis: a noun phrase without an article (lintian
# description-synopsis-starts-with-article).
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "portable multiprocessing runtime for C")
set(CPACK_PACKAGE_VENDOR "mproc")
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "mproc maintainers <mproc@localhost>")
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}")
# The shared library ships stripped, as Debian's policy asks (lintian
# unstripped-binary-or-object); CMake never strips the static archive,
# whose symbol table the linker needs.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Runtime Development)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# libmproc-dev depends on the runtime package of the same version.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libmproc${MPROC_SOVERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# Depends: computed from the library's own NEEDED entries (dpkg-shlibdeps,
# which CPack runs through the `file` command: scripts/deps.sh package);
# a shlibs file for whoever links it. CPack also writes a postinst and a
# postrm that run ldconfig (CMake 3.25; lintian would rather see a dpkg
# trigger: docs/platforms.md, "A new user on a clean Debian 12").
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libmproc-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)

include(CPack)

# The extended descriptions: lines of at most 80 characters (CPack puts
# each line of the text on its own line of the control file).
set(_mproc_deb_about
  "mproc gives C programs the ideas of Python's multiprocessing module as one\n"
  "C11 API: processes, Pipe, Queue, Lock and friends, shared memory and a\n"
  "process Pool, over POSIX (fork or spawn) and Win32 alike.\n")
string(CONCAT _mproc_deb_runtime ${_mproc_deb_about}
  "\nThis package holds the shared library.")
string(CONCAT _mproc_deb_dev ${_mproc_deb_about}
  "\nThis package holds the header, the static library, the CMake package\n"
  "(find_package(mproc)) and the pkg-config files mproc and mproc-static.")
cpack_add_component(Runtime
  DISPLAY_NAME "mproc shared library"
  DESCRIPTION "${_mproc_deb_runtime}")
cpack_add_component(Development
  DISPLAY_NAME "mproc development files"
  DESCRIPTION "${_mproc_deb_dev}"
  DEPENDS Runtime)
unset(_mproc_deb_about)
unset(_mproc_deb_runtime)
unset(_mproc_deb_dev)
