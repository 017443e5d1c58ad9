# Cross build for 64-bit Windows with mingw-w64; the tests run under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(MPROC_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${MPROC_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${MPROC_MINGW_PREFIX}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${MPROC_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Link the compiler's runtime statically, so the programs run under Wine
# without copying libgcc and winpthread DLLs beside them (-static-libgcc
# alone leaves winpthread a DLL; system DLLs stay dynamic either way).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
find_program(MPROC_WINE NAMES wine64 wine PATHS /usr/lib/wine)
if(MPROC_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MPROC_WINE})
endif()
