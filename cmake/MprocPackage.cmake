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
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VENDOR "mproc")
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "mproc maintainers <mproc@localhost>")
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Runtime Development)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# libmproc-dev depends on the runtime package of the same version.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libmproc${MPROC_SOVERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# Depends: computed from the library's own NEEDED entries (dpkg-shlibdeps);
# a shlibs file and the ldconfig trigger for whoever links it.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libmproc-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)

include(CPack)

cpack_add_component(Runtime
  DISPLAY_NAME "mproc shared library"
  DESCRIPTION "Python's multiprocessing ideas (Process, Pipe, Queue, Lock and friends) as one C11 API. This package: the shared library.")
cpack_add_component(Development
  DISPLAY_NAME "mproc development files"
  DESCRIPTION "Python's multiprocessing ideas (Process, Pipe, Queue, Lock and friends) as one C11 API. This package: the header, the static library, the CMake package (find_package(mproc)) and the pkg-config files mproc and mproc-static."
  DEPENDS Runtime)
