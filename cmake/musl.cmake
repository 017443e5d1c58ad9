# Native build against musl libc with Debian's musl-gcc wrapper (musl-tools).
#
# musl ships no Linux kernel headers (linux/futex.h, asm/...); Debian's
# linux-libc-dev has them for glibc. Only those three directories are made
# visible, through links in the build tree, searched after musl's own
# headers: nothing of glibc's /usr/include comes in.
set(CMAKE_C_COMPILER musl-gcc)
set(_mproc_kh ${CMAKE_BINARY_DIR}/musl-kernel-headers)
file(MAKE_DIRECTORY ${_mproc_kh})
foreach(_d linux asm-generic)
  if(NOT EXISTS ${_mproc_kh}/${_d} AND EXISTS /usr/include/${_d})
    file(CREATE_LINK /usr/include/${_d} ${_mproc_kh}/${_d} SYMBOLIC)
  endif()
endforeach()
if(NOT EXISTS ${_mproc_kh}/asm)
  execute_process(COMMAND gcc -print-multiarch OUTPUT_VARIABLE _mproc_ma
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_mproc_ma AND EXISTS /usr/include/${_mproc_ma}/asm)
    file(CREATE_LINK /usr/include/${_mproc_ma}/asm ${_mproc_kh}/asm SYMBOLIC)
  endif()
endif()
set(CMAKE_C_FLAGS_INIT "-idirafter ${_mproc_kh}")
# Read by tests/CMakeLists.txt: valgrind 3.19 does not replace musl's
# allocator (every free looks invalid to it).
set(MPROC_LIBC_MUSL ON)
